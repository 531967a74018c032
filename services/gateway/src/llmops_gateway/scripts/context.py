"""What every script needs: settings, the database, the outbox relay, and output.

Built when a command runs, never at import (``--help`` opens nothing). Output goes to stdout as
a rich table, or as JSON with ``--json`` (one document, nothing else on stdout, so it pipes into
``jq``); progress and notes go to stderr.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Annotated, Any, Final, NoReturn, cast, get_args

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table
from sqlalchemy import Engine

from llmops_gateway.config import GatewaySettings
from llmops_gateway.db.migrate import upgrade
from llmops_gateway.db.models import OUTBOX
from llmops_gateway.db.session import SessionFactory, build_engine, session_factory
from llmops_shared.config import Environment
from llmops_shared.streams import OutboxRelay
from llmops_shared.streams.connection import sync_redis

ENVIRONMENTS: Final[tuple[str, ...]] = get_args(Environment)

JsonOutput = Annotated[
    bool, typer.Option("--json", help="One JSON document on stdout instead of tables.")
]


@dataclass
class ScriptContext:
    """One command's settings, database and consoles."""

    settings: GatewaySettings
    engine: Engine
    sessions: SessionFactory
    json_output: bool = False
    out: Console = field(default_factory=lambda: Console(soft_wrap=True))
    err: Console = field(default_factory=lambda: Console(stderr=True))

    def publish_outbox(self) -> int:
        """Publish what the command queued (the gateway's relay would too, later).

        Without ``REDIS_URL`` the events wait in the outbox for the gateway's own relay.
        """
        if self.settings.redis_url is None:
            self.err.print(
                "[yellow]REDIS_URL is not set: the queued events are published by the "
                "gateway's relay when it runs[/yellow]"
            )
            return 0
        client = sync_redis(self.settings.redis_url.get_secret_value())
        try:
            relay = OutboxRelay(
                self.engine,
                OUTBOX,
                client,
                namespace=self.settings.stream_namespace,
                maxlen=self.settings.stream_maxlen,
            )
            return relay.relay_all()
        finally:
            client.close()

    def usage_error(self, message: str) -> NoReturn:
        """Bad options: say why on stderr and exit 2 (before anything was changed)."""
        self.err.print(escape(message), style="red")
        raise typer.Exit(2)

    def environment(self, name: str) -> Environment:
        """``name`` as an environment (``--environment``); an unknown one is a usage error."""
        if name not in ENVIRONMENTS:
            self.usage_error(f"unknown environment {name!r} (one of {', '.join(ENVIRONMENTS)})")
        return cast(Environment, name)

    def emit(self, document: Any, table: Table | None = None) -> None:
        """The command's result: ``document`` as JSON with ``--json``, else ``table``."""
        if self.json_output:
            self.out.print_json(json.dumps(document, default=str))
        elif table is not None:
            self.out.print(table)


@contextmanager
def script_context(*, json_output: bool = False) -> Iterator[ScriptContext]:
    """Settings from the environment (and ``.env``), the database migrated to head."""
    try:
        settings = GatewaySettings()
    except ValueError as exc:
        typer.echo(f"invalid configuration:\n{exc}", err=True)
        raise typer.Exit(2) from exc
    engine = build_engine(settings.sqlalchemy_url())
    try:
        if settings.db_auto_migrate:
            upgrade(engine)
        yield ScriptContext(
            settings=settings,
            engine=engine,
            sessions=session_factory(engine),
            json_output=json_output,
        )
    finally:
        engine.dispose()


def table_of(title: str, columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> Table:
    """A plain rich table; ``None`` shows as an empty cell."""
    table = Table(title=title)
    for column in columns:
        table.add_column(column)
    for row in rows:
        table.add_row(*("" if value is None else str(value) for value in row))
    return table
