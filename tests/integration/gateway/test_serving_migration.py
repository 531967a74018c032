"""Revision 0002 on a database where 0001 was applied and already holds an endpoint row."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from llmops_gateway.db.migrate import downgrade, upgrade
from llmops_gateway.db.session import build_engine

pytestmark = pytest.mark.integration

_ROW = {
    "id": "ep-1",
    "endpoint_name": "old-model",
    "model_ref": "llama-3-8b-sft-v1",
    "framework": "kserve",
    "spec": "{}",
    "status": "Ready",
    "seq": 0,
    "created_at": "2026-01-01T00:00:00+00:00",
    "updated_at": "2026-01-01T00:00:00+00:00",
}


def test_0002_back_fills_existing_rows_and_downgrades(gateway_db_url: str) -> None:
    engine = build_engine(gateway_db_url)
    try:
        upgrade(engine, "0001")
        columns = ", ".join(_ROW)
        values = ", ".join(f":{key}" for key in _ROW)
        with engine.begin() as conn:
            insert = f"INSERT INTO serving_deployments ({columns}) VALUES ({values})"
            conn.execute(sa.text(insert), _ROW)

        upgrade(engine)
        with engine.connect() as conn:
            row = conn.execute(
                sa.text("SELECT environment, route, model_id, backend FROM serving_deployments")
            ).one()
        assert tuple(row) == ("dev", "/old-model", "llama-3-8b-sft-v1", "kserve")
        uniques = {
            tuple(u["column_names"])
            for u in sa.inspect(engine).get_unique_constraints("serving_deployments")
        }
        assert uniques == {("environment", "endpoint_name"), ("environment", "route")}

        downgrade(engine, "0001")
        with engine.connect() as conn:
            framework = conn.execute(sa.text("SELECT framework FROM serving_deployments"))
            assert framework.scalar_one() == "kserve"
    finally:
        engine.dispose()
