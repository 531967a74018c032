"""Revision 0003 on a database that already holds a 0001-shaped pipeline row: up and down."""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from llmops_gateway.db.migrate import downgrade, upgrade
from llmops_gateway.db.models import Base
from llmops_gateway.db.session import build_engine

pytestmark = pytest.mark.integration

_ROW = {
    "id": "pl-1",
    "job_id": "job-1",
    "workflow_name": "train-job-1",
    "system": "argo",
    "status": "Running",
    "details": '{"note": "from 0001"}',
    "seq": 7,
    "created_at": "2026-01-01T00:00:00+00:00",
    "updated_at": "2026-01-01T00:00:00+00:00",
}


def _columns(engine: sa.Engine) -> dict[str, bool]:
    """Column name -> nullable."""
    return {c["name"]: c["nullable"] for c in sa.inspect(engine).get_columns("workflow_pipelines")}


def test_0003_keeps_existing_rows_and_round_trips_to_0001(gateway_db_url: str) -> None:
    engine = build_engine(gateway_db_url)
    try:
        upgrade(engine, "0002")
        columns = ", ".join(_ROW)
        values = ", ".join(f":{key}" for key in _ROW)
        with engine.begin() as conn:
            conn.execute(
                sa.text(f"INSERT INTO workflow_pipelines ({columns}) VALUES ({values})"), _ROW
            )

        upgrade(engine)
        with engine.connect() as conn:
            row = conn.execute(
                sa.text(
                    "SELECT workflow_name, backend, status, seq, progress_done, nodes "
                    "FROM workflow_pipelines"
                )
            ).one()
        assert tuple(row) == ("train-job-1", "argo", "Running", 7, None, None)
        head = _columns(engine)
        assert "details" not in head
        assert "system" not in head
        assert head["backend"] is True
        uniques = {
            tuple(u["column_names"])
            for u in sa.inspect(engine).get_unique_constraints("workflow_pipelines")
        }
        assert uniques == {("workflow_name",)}
        duplicate = {**_ROW, "id": "pl-2", "backend": "job"}
        del duplicate["system"], duplicate["details"]
        names = ", ".join(duplicate)
        params = ", ".join(f":{key}" for key in duplicate)
        insert = sa.text(f"INSERT INTO workflow_pipelines ({names}) VALUES ({params})")
        with engine.begin() as conn, pytest.raises(sa.exc.IntegrityError):
            conn.execute(insert, duplicate)

        downgrade(engine, "0001")
        with engine.connect() as conn:
            system, details = conn.execute(
                sa.text("SELECT system, details FROM workflow_pipelines")
            ).one()
        assert system == "argo"
        assert details in ({}, "{}")  # PostgreSQL decodes JSON, SQLite gives the text
        assert _columns(engine)["details"] is False
        assert _columns(engine)["system"] is False
        assert sa.inspect(engine).get_unique_constraints("workflow_pipelines") == []

        upgrade(engine)
        with engine.connect() as conn:
            context = MigrationContext.configure(conn, opts={"compare_type": True})
            assert compare_metadata(context, Base.metadata) == []
    finally:
        engine.dispose()
