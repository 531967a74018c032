"""Alembic environment of the gateway: online migrations on the engine the caller passes.

``llmops_gateway.db.migrate`` puts the engine in ``config.attributes``; the ``alembic`` CLI
(``alembic -x ...``) is not needed. Without one (someone ran the alembic command by hand with a
``sqlalchemy.url``), an engine is built from the URL.
"""

from __future__ import annotations

from alembic import context
from sqlalchemy import Engine

from llmops_gateway.db.models import Base
from llmops_gateway.db.session import build_engine

config = context.config
target_metadata = Base.metadata


def run_migrations_online() -> None:
    engine: Engine | None = config.attributes.get("engine")
    owned = engine is None
    if engine is None:
        engine = build_engine(config.get_main_option("sqlalchemy.url") or "")
    try:
        with engine.begin() as connection:
            context.configure(
                connection=connection,
                target_metadata=target_metadata,
                render_as_batch=connection.dialect.name == "sqlite",
                compare_type=True,
            )
            with context.begin_transaction():
                context.run_migrations()
    finally:
        if owned:
            engine.dispose()


if context.is_offline_mode():
    raise SystemExit("offline (--sql) migrations are not supported; run them against a database")
run_migrations_online()
