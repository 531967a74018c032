"""A migrated SQLite database per test, made fast: the gateway's migrations run once per
session into a template file, which each test copies (a file copy, not a migration)."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from llmops_gateway.db.migrate import upgrade
from llmops_gateway.db.session import SessionFactory, build_engine, session_factory


@pytest.fixture(scope="session")
def migrated_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A SQLite file at the head revision, migrated by the gateway's own helper."""
    path = tmp_path_factory.mktemp("gateway-template") / "gateway.db"
    engine = build_engine(f"sqlite:///{path}")
    upgrade(engine)
    engine.dispose()  # the last connection checkpoints the WAL into the file
    return path


@pytest.fixture
def sessions(migrated_template: Path, tmp_path: Path) -> Iterator[SessionFactory]:
    """The gateway's session factory on this test's own copy of the migrated database."""
    path = tmp_path / "gateway.db"
    shutil.copyfile(migrated_template, path)
    engine = build_engine(f"sqlite:///{path}")
    yield session_factory(engine)
    engine.dispose()
