"""Transactional outbox: write the state row and the event in one SQL transaction, publish later.

A request handler calls :func:`add_to_outbox` on the session that also writes its state, so the
event exists if and only if the state change committed. :class:`OutboxRelay` then appends the
unpublished rows to their streams in order and marks them published.

Delivery is at least once: if the relay crashes after XADD but before its UPDATE commits, the row
is published again with the same event id and consumers skip the copy. On PostgreSQL rows are
claimed with ``FOR UPDATE SKIP LOCKED``, so several gateway replicas can each run a relay; SQLite
ignores the clause and expects a single relay.
"""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime, timedelta

import redis
from sqlalchemy import (
    BigInteger,
    Column,
    DateTime,
    Engine,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    delete,
    func,
    insert,
    select,
    update,
)
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Session

from llmops_shared.events import Envelope, encode_event, stream_for
from llmops_shared.logging import get_logger
from llmops_shared.streams.errors import describe
from llmops_shared.streams.publisher import EVENT_FIELD, TRANSIENT_REDIS_ERRORS, stream_key

_ID_TYPE = BigInteger().with_variant(Integer(), "sqlite")  # SQLite autoincrements INTEGER only


def outbox_table(metadata: MetaData, name: str = "outbox") -> Table:
    """Define the outbox table on the caller's metadata (the gateway's, under its migrations)."""
    table = Table(
        name,
        metadata,
        Column("position", _ID_TYPE, primary_key=True, autoincrement=True),
        Column("event_id", String(64), nullable=False, unique=True),
        Column("stream", String(200), nullable=False),
        Column("event_type", String(200), nullable=False),
        Column("payload", Text, nullable=False),
        Column("created_at", DateTime(timezone=True), nullable=False),
        Column("published_at", DateTime(timezone=True), nullable=True),
    )
    Index(f"ix_{name}_unpublished", table.c.published_at, table.c.position)
    return table


def add_to_outbox(db: Session | Connection, table: Table, envelope: Envelope) -> None:
    """Queue ``envelope`` inside the caller's open transaction."""
    db.execute(
        insert(table).values(
            event_id=envelope.id,
            stream=str(stream_for(envelope.type)),
            event_type=envelope.type,
            payload=encode_event(envelope),
            created_at=datetime.now(UTC),
        )
    )


class OutboxRelay:
    """Move committed outbox rows to Redis Streams, oldest first.

    The SQL and Redis calls are blocking and run in a worker thread; :meth:`run` is the async
    loop a service starts next to its web server. :meth:`wake` lets a request that just committed
    skip the poll interval.
    """

    def __init__(
        self,
        engine: Engine,
        table: Table,
        redis_client: redis.Redis,
        *,
        batch_size: int = 500,
        poll_interval_s: float = 0.5,
        namespace: str = "",
        maxlen: int = 1_000_000,
        keep_published_for: timedelta = timedelta(days=7),
        purge_every: timedelta = timedelta(minutes=10),
    ) -> None:
        self._engine = engine
        self._namespace = namespace
        self._table = table
        self._redis = redis_client
        self._batch_size = batch_size
        self._poll_interval_s = poll_interval_s
        self._maxlen = maxlen or None
        self._keep_published_for = keep_published_for
        self._purge_every_s = purge_every.total_seconds()
        self._last_purge = float("-inf")
        self._wakeup = asyncio.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._log = get_logger(__name__)

    def wake(self) -> None:
        """Publish soon: a transaction with outbox rows just committed. Safe from any thread."""
        if self._loop is not None:
            self._loop.call_soon_threadsafe(self._wakeup.set)

    def relay_once(self) -> int:
        """Publish one batch of unpublished rows; returns how many were published."""
        table = self._table
        with self._engine.begin() as conn:
            rows = conn.execute(
                select(table.c.position, table.c.stream, table.c.payload)
                .where(table.c.published_at.is_(None))
                .order_by(table.c.position)
                .limit(self._batch_size)
                .with_for_update(skip_locked=True)
            ).all()
            if not rows:
                return 0
            with self._redis.pipeline(transaction=False) as pipe:
                for row in rows:
                    pipe.xadd(
                        stream_key(self._namespace, row.stream),
                        {EVENT_FIELD: row.payload},
                        maxlen=self._maxlen,
                        approximate=True,
                    )
                pipe.execute()
            conn.execute(
                update(table)
                .where(table.c.position.in_([row.position for row in rows]))
                .values(published_at=datetime.now(UTC))
            )
        return len(rows)

    def relay_all(self) -> int:
        """Publish until nothing is left; returns the total."""
        total = 0
        while published := self.relay_once():
            total += published
        return total

    def purge_published(self) -> int:
        """Delete rows published longer ago than ``keep_published_for``."""
        cutoff = datetime.now(UTC) - self._keep_published_for
        with self._engine.begin() as conn:
            result = conn.execute(delete(self._table).where(self._table.c.published_at < cutoff))
        return int(result.rowcount or 0)

    def pending_count(self) -> int:
        """Rows not yet published (a readiness and lag signal)."""
        with self._engine.connect() as conn:
            count = conn.execute(
                select(func.count()).where(self._table.c.published_at.is_(None))
            ).scalar_one()
        return int(count)

    async def run(self, stop: asyncio.Event) -> None:
        """Relay until ``stop`` is set, backing off while Redis or the database is down."""
        self._loop = asyncio.get_running_loop()
        backoff_s = self._poll_interval_s
        while not stop.is_set():
            self._wakeup.clear()
            try:
                published = await asyncio.to_thread(self.relay_all)
                if published:
                    self._log.debug("outbox_relayed", events=published)
                if time.monotonic() - self._last_purge >= self._purge_every_s:
                    purged = await asyncio.to_thread(self.purge_published)
                    self._last_purge = time.monotonic()
                    if purged:
                        self._log.info("outbox_purged", rows=purged)
                backoff_s = self._poll_interval_s
            except TRANSIENT_REDIS_ERRORS as exc:
                self._log.warning("outbox_relay_redis_unavailable", error=describe(exc))
                backoff_s = min(backoff_s * 2, 5.0)
            except Exception as exc:  # noqa: BLE001 - the database: log, back off, keep relaying
                self._log.error("outbox_relay_failed", error=describe(exc), exc_info=True)
                backoff_s = min(backoff_s * 2, 5.0)
            await _first_of(stop, self._wakeup, timeout_s=backoff_s)


async def _first_of(*events: asyncio.Event, timeout_s: float) -> None:
    """Return when any event is set or the timeout passes."""
    waiters = [asyncio.ensure_future(event.wait()) for event in events]
    try:
        await asyncio.wait(waiters, timeout=timeout_s, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for waiter in waiters:
            waiter.cancel()
