"""Operator commands around the event spine: a local Redis, stream status, dead letters.

Every command reads ``REDIS_URL`` (and ``STREAM_NAMESPACE``) like the services do.
"""

from __future__ import annotations

import os
import signal
import threading
from pathlib import Path
from typing import Annotated

import redis
import typer
from rich.console import Console
from rich.table import Table

from llmops_shared.config import ServiceSettings
from llmops_shared.embedded_redis import EmbeddedRedis, EmbeddedRedisError
from llmops_shared.events import DeadLetterEntry, Stream, dead_letter_stream
from llmops_shared.stack import redis_url_path
from llmops_shared.streams import redact_url, sync_redis

console = Console()


def _redis_url(settings: ServiceSettings) -> str:
    """REDIS_URL, else the one a running `llmops up` wrote into its data dir."""
    if settings.redis_url is not None:
        return settings.redis_url.get_secret_value()
    written = redis_url_path(Path(os.environ.get("LLMOPS_DATA_DIR", ".llmops")))
    if written.exists():
        return written.read_text().strip()
    console.print("[red]REDIS_URL is not set[/red] (start one with `llmops redis` or `llmops up`)")
    raise typer.Exit(2)


def _client(settings: ServiceSettings) -> redis.Redis:
    return sync_redis(_redis_url(settings))


def run_redis(
    port: Annotated[int, typer.Option(help="TCP port on 127.0.0.1")] = 6379,
    appendonly: Annotated[bool, typer.Option(help="persist with AOF")] = True,
) -> None:
    """Run a private redis-server in the foreground until Ctrl-C."""
    try:
        server = EmbeddedRedis(port=port, appendonly=appendonly, appendfsync="everysec").start()
    except EmbeddedRedisError as exc:
        console.print(f"[red]could not start redis-server on port {port}[/red]: {exc}")
        console.print("Is a Redis already running there? Use it (REDIS_URL) or pass --port.")
        raise typer.Exit(1) from exc
    console.print(f"redis-server {server.binary} on [bold]{server.url}[/bold]")
    console.print(f"export REDIS_URL={server.url}   (Ctrl-C stops it; data in {server.data_dir})")
    stopped = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stopped.set())
    try:
        stopped.wait()
    except KeyboardInterrupt:
        pass
    finally:
        server.close()


def streams_status() -> None:
    """Length, consumer groups (lag, pending) and dead letters of every contract stream."""
    settings = ServiceSettings()
    client = _client(settings)
    table = Table(title=f"streams on {redact_url(_redis_url(settings))}")
    for column in ("stream", "length", "group", "consumers", "lag", "pending", "dead letters"):
        table.add_column(column)
    for stream in Stream:
        key = f"{settings.stream_namespace}{stream}"
        length = client.xlen(key)
        dlq = client.xlen(dead_letter_stream(key))
        groups = client.xinfo_groups(key) if client.exists(key) else []
        if not groups:
            table.add_row(key, str(length), "-", "-", "-", "-", str(dlq))
        for group in groups:
            table.add_row(
                key,
                str(length),
                _text(group["name"]),
                str(group["consumers"]),
                str(group.get("lag", "?")),
                str(group["pending"]),
                str(dlq),
            )
    console.print(table)


def dead_letters(
    stream: Annotated[str, typer.Argument(help="contract stream, e.g. llmops.training")],
    limit: Annotated[int, typer.Option(help="how many, newest first")] = 20,
) -> None:
    """The dead letters of STREAM with their reasons."""
    settings = ServiceSettings()
    client = _client(settings)
    key = dead_letter_stream(f"{settings.stream_namespace}{stream}")
    table = Table(title=key)
    for column in ("id", "group", "message", "deliveries", "cause", "reason"):
        table.add_column(column, overflow="fold")
    entries: list[tuple[bytes, dict[bytes, bytes]]] = client.xrevrange(key, count=limit) or []  # type: ignore[assignment]
    for entry_id, fields in entries:
        letter = DeadLetterEntry.from_fields(fields)
        table.add_row(
            _text(entry_id),
            letter.group,
            letter.message_id,
            str(letter.deliveries),
            letter.cause or "",
            letter.reason,
        )
    console.print(table)


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value
