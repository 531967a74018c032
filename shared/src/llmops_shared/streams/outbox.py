"""Transactional outbox: write the state row and the event in one SQL transaction, publish later.

A request handler calls :func:`add_to_outbox` on the session that also writes its state, so the
event exists if and only if the state change committed. :class:`OutboxRelay` then appends the
unpublished rows to their streams in order and marks them published.

Delivery is at least once: if the relay crashes after XADD but before its UPDATE commits, the row
is published again with the same event id and consumers skip the copy. On PostgreSQL rows are
claimed with ``FOR UPDATE SKIP LOCKED``, so several gateway replicas can each run a relay; SQLite
ignores the clause and expects a single relay.

Redis replication is asynchronous, so an XADD the primary acknowledged can vanish in a failover.
When Redis has replicas the relay therefore ends each batch with ``WAIT`` (on the connection that
sent the XADDs) and marks the rows published only when ``min_replicas`` replicas acknowledged
them; otherwise it raises :class:`ReplicationShortfall`, the rows stay unpublished and the next
pass sends them again (a duplicate entry with the same event id, which consumers skip).
``min_replicas="auto"`` waits for every replica the primary reports online (``INFO
replication``), none on a single Redis, where nothing changes.
"""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

import redis
from prometheus_client import CollectorRegistry, Counter, Gauge
from redis.exceptions import NoPermissionError
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

MinReplicas = int | Literal["auto"]
"""How many replicas must acknowledge a batch before its rows are marked published: a number,
or ``"auto"``: the replicas the primary reports online when the batch is sent (0 without any)."""


class ReplicationShortfall(redis.RedisError):
    """Fewer replicas than required acknowledged a batch within the WAIT timeout.

    The batch is on the primary (consumers may already read it) but its rows stay unpublished:
    the next pass sends them again.
    """

    def __init__(self, *, acknowledged: int, required: int, events: int) -> None:
        super().__init__(
            f"{acknowledged} of {required} required replica(s) acknowledged {events} event(s); "
            "the rows stay unpublished and are sent again"
        )
        self.acknowledged = acknowledged
        self.required = required
        self.events = events


def online_replicas(info: dict[str, Any]) -> int:
    """The replicas an ``INFO replication`` reply (as redis-py parses it) lists as online.

    A replica still in its initial sync (``wait_bgsave``, ``send_bulk``) acknowledges nothing yet,
    so it is not counted; a hung one is, until the primary drops it (``repl-timeout``).
    """
    return sum(
        1
        for key, value in info.items()
        if key.startswith("slave") and isinstance(value, dict) and value.get("state") == "online"
    )


class RelayMetrics:
    """The relay's families on a registry the service owns."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.shortfalls = Counter(
            "llmops_outbox_replication_shortfalls",
            "Outbox batches left unpublished because fewer replicas than required acknowledged "
            "them in time (sent again on the next pass)",
            registry=registry,
        )
        self.required = Gauge(
            "llmops_outbox_replicas_required",
            "Replicas that must acknowledge an outbox batch (the last batch's; auto: online ones)",
            registry=registry,
        )


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
        min_replicas: MinReplicas = "auto",
        wait_timeout_ms: int = 1000,
        registry: CollectorRegistry | None = None,
    ) -> None:
        if min_replicas != "auto" and min_replicas < 0:
            raise ValueError(f"min_replicas must be >= 0 or 'auto', not {min_replicas}")
        if wait_timeout_ms < 1:  # WAIT with 0 blocks for ever
            raise ValueError(f"wait_timeout_ms must be >= 1, not {wait_timeout_ms}")
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
        self._min_replicas: MinReplicas = min_replicas
        self._wait_timeout_ms = wait_timeout_ms
        self._replicas_unknown = False  # auto, and INFO refused (an ACL): wait for none
        self._metrics = RelayMetrics(registry) if registry is not None else None
        self._log = get_logger(__name__)

    def wake(self) -> None:
        """Publish soon: a transaction with outbox rows just committed. Safe from any thread."""
        if self._loop is not None:
            self._loop.call_soon_threadsafe(self._wakeup.set)

    def relay_once(self) -> int:
        """Publish one batch of unpublished rows; returns how many were published.

        Raises :class:`ReplicationShortfall` (the rows stay unpublished) when fewer replicas than
        required acknowledged the batch within ``wait_timeout_ms``.
        """
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
            required = self._required_replicas()
            # one connection for the XADDs and the WAIT: WAIT counts the replicas that have
            # this connection's writes
            with self._redis.pipeline(transaction=False) as pipe:
                for row in rows:
                    pipe.xadd(
                        stream_key(self._namespace, row.stream),
                        {EVENT_FIELD: row.payload},
                        maxlen=self._maxlen,
                        approximate=True,
                    )
                if required:
                    pipe.wait(required, self._wait_timeout_ms)
                replies = pipe.execute()
            if required and (acknowledged := int(replies[-1])) < required:
                # leaving the block rolls back: the rows stay unpublished (and unlocked)
                raise ReplicationShortfall(
                    acknowledged=acknowledged, required=required, events=len(rows)
                )
            conn.execute(
                update(table)
                .where(table.c.position.in_([row.position for row in rows]))
                .values(published_at=datetime.now(UTC))
            )
        return len(rows)

    def _required_replicas(self) -> int:
        """How many replicas must acknowledge the batch about to be sent."""
        required = self._min_replicas
        if required == "auto":
            required = 0
            if not self._replicas_unknown:
                try:
                    required = online_replicas(self._redis.info("replication"))
                except NoPermissionError as exc:  # the user lacks INFO: as before, no WAIT
                    self._replicas_unknown = True
                    self._log.warning(
                        "outbox_relay_replicas_unknown",
                        alert=True,
                        error=describe(exc),
                        hint="grant the relay's Redis user +info and +wait, or set "
                        "RELAY_MIN_REPLICAS; until then batches are marked published without "
                        "waiting for replicas",
                    )
        if self._metrics is not None:
            self._metrics.required.set(required)
        return required

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
            except ReplicationShortfall as exc:
                if self._metrics is not None:
                    self._metrics.shortfalls.inc()
                self._log.warning(
                    "outbox_replication_shortfall",
                    acknowledged=exc.acknowledged,
                    required=exc.required,
                    events=exc.events,
                    wait_timeout_ms=self._wait_timeout_ms,
                )
                backoff_s = min(backoff_s * 2, 5.0)
                # not woken by new requests: each pass sends the batch again (duplicates)
                await _first_of(stop, timeout_s=backoff_s)
                continue
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
