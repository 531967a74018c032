"""Revision 0006 (model locations, registered models) on a database at 0005 that already
holds a model, a job and an endpoint: up, down and up again (both databases)."""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from llmops_gateway.db.migrate import downgrade, upgrade
from llmops_gateway.db.models import Base
from llmops_gateway.db.session import build_engine

pytestmark = pytest.mark.integration

_NOW = "2026-01-01T00:00:00+00:00"
_ROWS = {
    "catalog_models": {
        "id": "m-1", "name": "llama-3-8b-pretrain-v1", "family": "llama",
        "max_position_embeddings": 8192, "source": "manual", "status": "Ready",
        "verified": False, "seq": 0, "created_at": _NOW, "updated_at": _NOW,
    },
    "training_jobs": {
        "id": "job-1", "spec": "{}", "status": "Succeeded", "status_seq": 5,
        "created_at": _NOW, "updated_at": _NOW,
    },
    "serving_deployments": {
        "id": "ep-1", "environment": "dev", "route": "/m", "endpoint_name": "m",
        "model_id": "m-1", "model_ref": "llama-3-8b-sft-v1", "spec": "{}", "status": "Ready",
        "seq": 0, "created_at": _NOW, "updated_at": _NOW,
    },
}  # fmt: skip
_NEW_COLUMNS = {
    "catalog_models": {"storage_uri"},
    "training_jobs": {
        "registered_model_name", "registered_model_version", "model_run_id", "model_source",
        "model_storage_uri", "registered_model_seq",
    },
    "serving_deployments": {"storage_uri"},
}  # fmt: skip


def _columns(engine: sa.Engine, table: str) -> dict[str, bool]:
    """Column name -> nullable."""
    return {c["name"]: c["nullable"] for c in sa.inspect(engine).get_columns(table)}


def test_0006_adds_nullable_columns_keeps_rows_and_round_trips(gateway_db_url: str) -> None:
    engine = build_engine(gateway_db_url)
    try:
        upgrade(engine, "0005")
        with engine.begin() as conn:
            for table, row in _ROWS.items():
                names, params = ", ".join(row), ", ".join(f":{key}" for key in row)
                conn.execute(sa.text(f"INSERT INTO {table} ({names}) VALUES ({params})"), row)

        upgrade(engine)
        for table, added in _NEW_COLUMNS.items():
            columns = _columns(engine, table)
            assert {name: columns.get(name) for name in added} == dict.fromkeys(added, True)
            with engine.connect() as conn:
                values = conn.execute(sa.text(f"SELECT {', '.join(sorted(added))} FROM {table}"))
                assert set(values.one()) == {None}  # nothing is known of existing rows
        with engine.connect() as conn:
            context = MigrationContext.configure(conn, opts={"compare_type": True})
            assert compare_metadata(context, Base.metadata) == []
        with engine.begin() as conn:  # the new columns take what the gateway writes
            conn.execute(
                sa.text(
                    "UPDATE training_jobs SET registered_model_name = 'llama-3-8b-sft-v1', "
                    "model_storage_uri = :uri, registered_model_seq = :seq"
                ),
                {"uri": "s3://mlflow/1/run/artifacts/model", "seq": 2**62},
            )

        downgrade(engine, "0005")
        for table, added in _NEW_COLUMNS.items():
            assert not added & set(_columns(engine, table))
        with engine.connect() as conn:
            for table, row in _ROWS.items():
                kept = conn.execute(sa.text(f"SELECT id FROM {table}")).scalar_one()
                assert kept == row["id"]

        upgrade(engine)
        with engine.connect() as conn:
            context = MigrationContext.configure(conn, opts={"compare_type": True})
            assert compare_metadata(context, Base.metadata) == []
    finally:
        engine.dispose()
