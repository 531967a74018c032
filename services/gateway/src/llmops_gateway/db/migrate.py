"""Run the Alembic migrations shipped inside the package, without an ``alembic.ini``.

The gateway migrates itself at start (``DB_AUTO_MIGRATE``) or on demand
(``python -m llmops_gateway migrate``); both come here, on the same engine the app uses, so a
PostgreSQL ``search_path`` or a SQLite file is honoured exactly as at run time.
"""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine

MIGRATIONS_DIR = Path(__file__).resolve().parent.parent / "migrations"


def alembic_config(engine: Engine) -> Config:
    """An Alembic config pointing at the packaged scripts and at ``engine``."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.set_main_option(
        "sqlalchemy.url", engine.url.render_as_string(hide_password=False).replace("%", "%%")
    )
    config.attributes["engine"] = engine
    return config


def upgrade(engine: Engine, revision: str = "head") -> None:
    """Migrate the database of ``engine`` to ``revision``."""
    command.upgrade(alembic_config(engine), revision)


def downgrade(engine: Engine, revision: str) -> None:
    """Migrate the database of ``engine`` down to ``revision`` (``base`` drops everything)."""
    command.downgrade(alembic_config(engine), revision)
