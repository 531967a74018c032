"""The packaged Alembic migrations: upgrade, downgrade, and no drift from the models."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from llmops_gateway.db.migrate import downgrade, upgrade
from llmops_gateway.db.models import Base
from llmops_gateway.db.session import build_engine

pytestmark = pytest.mark.integration

TABLES = {
    "experiment_runs", "serving_deployments", "workflow_pipelines", "registry_models",
    "dataset_versions", "integration_configs", "training_jobs", "catalog_models",
    "catalog_datasets", "outbox", "processed_events",
}  # fmt: skip


def test_upgrade_creates_every_table_and_matches_the_models(gateway_db_url: str) -> None:
    engine = build_engine(gateway_db_url)
    try:
        upgrade(engine)
        upgrade(engine)  # already at head: a no-op
        assert set(sa.inspect(engine).get_table_names()) >= TABLES
        with engine.connect() as conn:
            context = MigrationContext.configure(conn, opts={"compare_type": True})
            assert compare_metadata(context, Base.metadata) == []
        downgrade(engine, "base")
        assert set(sa.inspect(engine).get_table_names()) <= {"alembic_version"}
        upgrade(engine)
        assert set(sa.inspect(engine).get_table_names()) >= TABLES
    finally:
        engine.dispose()


def test_migrate_command_creates_the_sqlite_file_under_the_data_dir(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
    env["DATA_DIR"] = str(tmp_path / "state")
    result = subprocess.run(
        [sys.executable, "-m", "llmops_gateway", "migrate"],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    engine = build_engine(f"sqlite:///{tmp_path / 'state' / 'gateway.db'}")
    try:
        assert set(sa.inspect(engine).get_table_names()) >= TABLES
    finally:
        engine.dispose()


def test_serve_refuses_to_start_without_api_keys(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k not in {"API_KEYS", "AUTH_DISABLED"}}
    env["DATA_DIR"] = str(tmp_path)
    result = subprocess.run(
        [sys.executable, "-m", "llmops_gateway"],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2
    assert "API_KEYS" in result.stderr
