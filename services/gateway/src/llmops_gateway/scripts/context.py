"""What every script needs: settings, the database, the outbox relay, and output.

Built when a command runs, never at import (``--help`` opens nothing). Output goes to stdout as
a rich table, or as JSON with ``--json`` (one document, nothing else on stdout, so it pipes into
``jq``); progress and notes go to stderr.

Exit codes, the same in every command: 0 done (or nothing to do), 1 the command ran and found
something wrong (violations, a record that did not move), 2 bad usage or settings (nothing was
done), 3 an operational error: the database or Redis cannot be used, no gateway database where
the unset ``DATABASE_URL`` points. :func:`script_context` turns those (and :class:`ScriptError`)
into one line on stderr and exit 3, never a traceback.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Final, NoReturn, cast, get_args

import typer
from alembic.util import CommandError
from pydantic import ValidationError
from redis.exceptions import RedisError
from rich.console import Console
from rich.markup import escape
from rich.table import Table
from sqlalchemy import Engine
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, DBAPIError

from llmops_gateway.config import GatewaySettings
from llmops_gateway.db.migrate import upgrade
from llmops_gateway.db.models import OUTBOX
from llmops_gateway.db.session import SessionFactory, build_engine, session_factory
from llmops_shared.config import Environment, local_data_dir, redis_url_path
from llmops_shared.streams import redact_url
from llmops_shared.streams.connection import sync_redis
from llmops_shared.streams.outbox import OutboxRelay

ENVIRONMENTS: Final[tuple[str, ...]] = get_args(Environment)

USAGE_ERROR: Final = 2
OPERATIONAL_ERROR: Final = 3


class ScriptError(Exception):
    """An operational failure the command cannot go on after: its message is printed as one
    line on stderr and the command exits 3."""


def one_line(error: BaseException | str) -> str:
    """``error``'s text on one line (drivers' messages span several)."""
    return " ".join(str(error).split())


def local_database(settings: GatewaySettings) -> Path:
    """The SQLite file used when ``DATABASE_URL`` is unset: ``DATA_DIR/gateway.db``, else the
    data dir of the local stack (``LLMOPS_DATA_DIR``, as ``llmops up`` and the ``llmops`` CLI
    use it), else ``.llmops/gateway.db``."""
    data_dir = settings.data_dir
    if "data_dir" not in settings.model_fields_set and os.environ.get("LLMOPS_DATA_DIR"):
        data_dir = Path(os.environ["LLMOPS_DATA_DIR"])
    return (data_dir / "gateway.db").absolute()


def database_url(settings: GatewaySettings) -> str:
    """``DATABASE_URL``; unset, the local SQLite file, said on stderr, and only if it exists
    (a command never creates an empty gateway database to report "0 checked" on)."""
    if settings.database_url is not None:
        return settings.database_url.get_secret_value()
    path = local_database(settings)
    if not path.is_file():
        raise ScriptError(f"no gateway database at {path}; set DATABASE_URL")
    typer.echo(f"DATABASE_URL is not set: using the SQLite file {path}", err=True)
    return f"sqlite:///{path}"


def stack_redis_url() -> Path | None:
    """The file holding the URL of the Redis a running ``llmops up`` started
    (``LLMOPS_DATA_DIR/redis-url``, default ``.llmops``), as the ``llmops`` CLI reads it."""
    written = redis_url_path(local_data_dir())
    return written if written.is_file() and written.read_text().strip() else None


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

    def redis_url(self) -> tuple[str, str] | None:
        """``(url, where it came from)``: ``REDIS_URL``, else the local stack's Redis
        (:func:`stack_redis_url`); None with neither."""
        if self.settings.redis_url is not None:
            return self.settings.redis_url.get_secret_value(), "REDIS_URL"
        if (written := stack_redis_url()) is not None:
            return written.read_text().strip(), f"written by `llmops up` in {written}"
        return None

    def publish_outbox(self) -> int:
        """Publish what the command queued (the gateway's relay would too, later), to
        :meth:`redis_url`.

        Without one the events wait in the outbox for the gateway's own relay. Redis
        unreachable is a :class:`ScriptError` (exit 3); what was committed stays committed, and
        its events stay in the outbox.
        """
        found = self.redis_url()
        if found is None:
            self.err.print(
                "[yellow]REDIS_URL is not set and no `llmops up` wrote one: the queued events "
                "are published by the gateway's relay when it runs[/yellow]"
            )
            return 0
        url, source = found
        if self.settings.redis_url is None:
            self.err.print(
                escape(f"REDIS_URL is not set: publishing to {redact_url(url)} ({source})"),
                soft_wrap=True,
            )
        client = sync_redis(url)
        try:
            relay = OutboxRelay(
                self.engine,
                OUTBOX,
                client,
                namespace=self.settings.stream_namespace,
                maxlen=self.settings.stream_maxlen,
                min_replicas=self.settings.relay_min_replicas,
                wait_timeout_ms=self.settings.relay_wait_timeout_ms,
            )
            return relay.relay_all()
        except RedisError as exc:
            raise ScriptError(
                f"cannot publish to Redis at {redact_url(url)} ({source}): {one_line(exc)}; "
                "what the command changed is saved and its events wait in the outbox for the "
                "gateway's relay (or run the command again)"
            ) from exc
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
    """Settings from the environment (and ``.env``), the database migrated to head.

    Invalid settings exit 2; an operational error in the command's body (the database or Redis
    cannot be used, a :class:`ScriptError`) exits 3 with one line on stderr."""
    try:
        settings = GatewaySettings()
    except ValidationError as exc:
        _invalid_configuration(_settings_errors(exc))
    except ValueError as exc:
        _invalid_configuration(one_line(exc))
    url: str | None = None
    try:
        url = database_url(settings)
        try:
            engine = build_engine(url)
        except ArgumentError as exc:
            _invalid_configuration(f"DATABASE_URL: {one_line(exc)}")
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
    except ScriptError as exc:
        _operational_error(str(exc))
    except DBAPIError as exc:
        _operational_error(f"database {_redacted(url)}: {one_line(exc.orig or exc)}")
    except CommandError as exc:
        _operational_error(f"database {_redacted(url)}: migrations: {one_line(exc)}")
    except RedisError as exc:
        _operational_error(f"Redis: {one_line(exc)}")
    except OSError as exc:
        _operational_error(one_line(exc))


def _redacted(url: str | None) -> str:
    return "" if url is None else make_url(url).render_as_string(hide_password=True)


def _settings_errors(exc: ValidationError) -> str:
    """``ENVIRONMENT: Input should be 'dev', 'stg' or 'prod'; ...``: the variables at fault."""
    return "; ".join(
        f"{'__'.join(str(part) for part in error['loc']).upper()}: {error['msg']}"
        for error in exc.errors()
    )


def _invalid_configuration(message: str) -> NoReturn:
    typer.echo(f"error: invalid configuration: {message}", err=True)
    raise typer.Exit(USAGE_ERROR)


def _operational_error(message: str) -> NoReturn:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(OPERATIONAL_ERROR)


def table_of(title: str, columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> Table:
    """A plain rich table; ``None`` shows as an empty cell."""
    table = Table(title=title)
    for column in columns:
        table.add_column(column)
    for row in rows:
        table.add_row(*("" if value is None else str(value) for value in row))
    return table
