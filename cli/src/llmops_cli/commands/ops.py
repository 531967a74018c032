"""Operator commands around the event spine: a local Redis, stream status, dead letters (list,
replay).

Every command reads ``REDIS_URL`` (and ``STREAM_NAMESPACE``) like the services do.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import functools
import signal
import threading
from collections.abc import Awaitable, Callable
from typing import Annotated, TypeVar

import redis
import redis.asyncio as aioredis
import typer
from rich.console import Console
from rich.table import Table

from llmops_cli.embedded_redis import EmbeddedRedis, EmbeddedRedisError
from llmops_shared.config import ServiceSettings, local_data_dir, redis_url_path
from llmops_shared.events import Stream, dead_letter_stream
from llmops_shared.streams import async_redis, redact_url, sync_redis
from llmops_shared.streams.dead_letters import (
    DeadLetterAlreadyReplayedError,
    DeadLetterNotReplayableError,
    UnknownDeadLetterError,
    list_dead_letters,
    replay_dead_letter,
)

console = Console()
T = TypeVar("T")


def _redis_url(settings: ServiceSettings) -> str:
    """REDIS_URL, else the one a running `llmops up` wrote into its data dir."""
    if settings.redis_url is not None:
        return settings.redis_url.get_secret_value()
    written = redis_url_path(local_data_dir())
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
    target: Annotated[
        str | None,
        typer.Argument(
            help="a contract stream (e.g. llmops.training; all streams when omitted), "
            "or 'replay' followed by a dead letter's id",
            show_default=False,
        ),
    ] = None,
    letter: Annotated[
        str | None,
        typer.Argument(
            help="with replay: the id in the first column, <stream>:<entry id>",
            show_default=False,
        ),
    ] = None,
    limit: Annotated[int, typer.Option(help="how many, newest first")] = 20,
) -> None:
    """The dead letters of a stream with their reasons; `llmops dlq replay ID` replays one.

    Replaying puts the original event back on its stream unchanged (same event id) and removes
    it from the dead-letter stream, in one step; replay it after fixing the cause.
    """
    settings = ServiceSettings()
    if target == "replay":
        if letter is None:
            console.print("[red]usage: llmops dlq replay <stream>:<entry id>[/red]")
            raise typer.Exit(2)
        _replay(settings, letter)
        return
    if letter is not None:
        console.print(f"[red]unexpected argument {letter!r}[/red] (did you mean `dlq replay`?)")
        raise typer.Exit(2)
    stream: Stream | None = None
    if target is not None:
        try:
            stream = Stream(target)
        except ValueError:
            console.print(f"[red]unknown stream {target!r}[/red]; one of: {', '.join(Stream)}")
            raise typer.Exit(2) from None
    letters = _run(settings, functools.partial(
        list_dead_letters, namespace=settings.stream_namespace, stream=stream, limit=limit
    ))  # fmt: skip
    title = f"{settings.stream_namespace}{stream or '*'}.dlq"
    table = Table(title=title)
    for column in ("id", "group", "message", "event", "deliveries", "cause", "reason"):
        table.add_column(column, overflow="fold")
    for stored in letters:
        parsed = stored.letter
        event = stored.event or {}
        table.add_row(
            stored.id,
            parsed.group if parsed else stored.fields.get("group", ""),
            parsed.message_id if parsed else stored.fields.get("message_id", ""),
            str(event.get("type", "")),
            str(parsed.deliveries) if parsed else stored.fields.get("deliveries", ""),
            (parsed.cause or "") if parsed else stored.fields.get("cause", ""),
            parsed.reason if parsed else stored.fields.get("reason", ""),
        )
    console.print(table)


def _replay(settings: ServiceSettings, value: str) -> None:
    replay = functools.partial(
        replay_dead_letter,
        value=value,
        namespace=settings.stream_namespace,
        maxlen=settings.stream_maxlen,
    )
    try:
        replayed = _run(settings, replay)
    except UnknownDeadLetterError as exc:
        console.print(f"[red]{exc}[/red]")
        raise typer.Exit(1) from exc
    except (DeadLetterAlreadyReplayedError, DeadLetterNotReplayableError) as exc:
        console.print(f"[yellow]{exc}[/yellow]")
        raise typer.Exit(1) from exc
    console.print(
        f"replayed {replayed.id} onto {settings.stream_namespace}{replayed.stream} "
        f"as entry {replayed.replayed_entry_id}"
    )


def _run(settings: ServiceSettings, call: Callable[[aioredis.Redis], Awaitable[T]]) -> T:
    """Run an async streams function on its own client and event loop, in a thread of its own
    so the command also works when called from a running loop (tests, notebooks)."""
    url = _redis_url(settings)

    async def main() -> T:
        client = async_redis(url)
        try:
            return await call(client)
        finally:
            await client.aclose()

    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, main()).result()


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value
