"""The consumer runner: every rule of the reliability contract in one loop.

For one stream and consumer group it

1. creates the group idempotently (BUSYGROUP is fine) at ``group_start_id``;
2. replays its own pending entries (XREADGROUP id ``0``) before reading new ones (``>``), at start
   and again after every Redis outage;
3. reads in batches, decodes and validates each event (a malformed one is dead-lettered at once),
   skips event ids the idempotency store has seen, runs the handler with in-process retries and
   backoff for transient errors, and commits the batch with one script (mark processed + status
   events + XACK, atomically; see :mod:`.commit`);
4. leaves an entry whose handler keeps failing pending, to be reclaimed later; once its handler
   has run in ``max_deliveries`` deliveries without finishing (an error each time, or the worker
   died in it), or at once for a non-retryable error, it goes to ``<stream>.dlq`` with the error
   (see :mod:`.dead_letters`); attempts are counted per entry, so the innocent batch-mates of a
   poison event are not blamed (see :mod:`.attempts`). Redelivered entries are committed one by
   one, so a crash repeats as little work as possible;
5. every ``janitor_interval_ms`` reclaims entries idle longer than ``claim_idle_ms`` from dead or
   stuck consumers (XAUTOCLAIM) and refreshes the lag and pending gauges; a live consumer
   keeps the batch in hand claimed (a heartbeat resets its idle time), so a slow handler is
   never taken over by another replica;
6. on NOGROUP (Redis lost the group) recreates it, counts it and logs an alert;
   when a handler raises :class:`DependencyUnavailableError` (MLflow, the cluster... is down)
   the entry stays pending *without* counting as an attempt, the rest of the batch is left
   pending too, and the consumer pauses with a growing backoff before replaying them: an outage
   of a dependency never fills the dead-letter stream;
7. stops between batches when ``stop`` is set: a batch in progress is finished and committed.

This module is the loop (rules 1, 2, 5, 6, 7); what happens to the entries it reads is
:mod:`.processing`. Handlers are plain async functions ``(event) -> status events``; services
bind their ports with ``functools.partial`` in ``app.py``.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from typing import Any

import redis.asyncio as aioredis
from redis.exceptions import ResponseError

from llmops_shared.config import ConsumerSettings
from llmops_shared.events import decode_event
from llmops_shared.logging import get_logger
from llmops_shared.streams.entries import Entry, entries_of, id_texts, text, with_delivery_counts
from llmops_shared.streams.errors import describe
from llmops_shared.streams.metrics import StreamMetrics
from llmops_shared.streams.processing import BatchProcessor, Decoder, Handler
from llmops_shared.streams.publisher import TRANSIENT_REDIS_ERRORS, stream_key

_MAX_OUTAGE_BACKOFF_S = 5.0


def _is_nogroup(exc: ResponseError) -> bool:
    # "in", not "startswith": errors from a pipeline are reworded ("Command # 1 (...) of ...").
    return "NOGROUP" in str(exc)


_TRANSIENT_RESPONSES = ("READONLY", "LOADING", "BUSY", "MASTERDOWN", "TRYAGAIN", "CLUSTERDOWN",
                        "OOM")  # fmt: skip


def _is_transient_response(exc: ResponseError) -> bool:
    """Errors a failover, a restart or memory pressure cause; they pass."""
    return any(code in str(exc) for code in _TRANSIENT_RESPONSES)


class ConsumerRunner:
    """Consume one stream as one member of one consumer group."""

    def __init__(
        self,
        redis: aioredis.Redis,
        *,
        stream: str,
        group: str,
        consumer: str,
        handler: Handler,
        settings: ConsumerSettings,
        metrics: StreamMetrics,
        namespace: str = "",
        output_maxlen: int = 1_000_000,
        decoder: Decoder = decode_event,
    ) -> None:
        self.contract_stream = stream
        self.namespace = namespace
        self.stream = stream_key(namespace, stream)
        self.group = group
        self.consumer = consumer
        self._redis = redis
        self._settings = settings
        self._metrics = metrics.bind(self.stream, group)
        self._replay_requested = False  # the janitor claimed entries only a replay can clear
        self._stop = asyncio.Event()
        self._log = get_logger(__name__).bind(stream=self.stream, group=group, consumer=consumer)
        self._processor = BatchProcessor(
            redis,
            stream=self.stream,
            contract_stream=stream,
            namespace=namespace,
            group=group,
            consumer=consumer,
            handler=handler,
            decoder=decoder,
            settings=settings,
            metrics=self._metrics,
            output_maxlen=output_maxlen,
            log=self._log,
            stopping=lambda: self._stop.is_set(),
        )

    # ------------------------------------------------------------------ main loop

    async def run(self, stop: asyncio.Event) -> None:
        """Consume until ``stop`` is set; survives Redis outages and a lost group."""
        self._log.info("consumer_starting")
        self._stop = stop
        replay_own_pending = True
        next_janitor_at = 0.0
        backoff_s = 0.1
        group_ready = False
        while not stop.is_set():
            try:
                if not group_ready:
                    await self.ensure_group()
                    group_ready = True
                if replay_own_pending:
                    await self._replay_own_pending(stop)
                    replay_own_pending = False
                if time.monotonic() >= next_janitor_at:
                    await self.janitor_tick()
                    next_janitor_at = time.monotonic() + self._settings.janitor_interval_ms / 1000
                if self._processor.pause_requested:
                    self._processor.pause_requested = False
                    await _sleep_unless(stop, self._processor.outage_backoff_s)
                    replay_own_pending = True
                    continue
                if self._replay_requested:
                    self._replay_requested = False
                    replay_own_pending = True
                    continue
                entries = await self._read_new()
                if entries:
                    await self._processor.process(entries)
                backoff_s = 0.1
            except ResponseError as exc:
                if _is_nogroup(exc):
                    self._metrics.group_recreated.inc()
                    self._log.error("consumer_group_missing", alert=True, error=str(exc))
                    group_ready = False
                    replay_own_pending = True
                    continue
                if not _is_transient_response(exc):
                    raise
                self._log.warning("redis_busy", error=describe(exc), retry_in_s=backoff_s)
                await _sleep_unless(stop, backoff_s)
                backoff_s = min(backoff_s * 2, _MAX_OUTAGE_BACKOFF_S)
                replay_own_pending = True
            except TRANSIENT_REDIS_ERRORS as exc:
                self._log.warning("redis_unavailable", error=describe(exc), retry_in_s=backoff_s)
                await _sleep_unless(stop, backoff_s)
                backoff_s = min(backoff_s * 2, _MAX_OUTAGE_BACKOFF_S)
                replay_own_pending = True
        self._log.info("consumer_stopped")

    async def ensure_group(self) -> None:
        """Create the group (and the stream) unless it exists."""
        try:
            await self._redis.xgroup_create(
                self.stream, self.group, id=self._settings.group_start_id, mkstream=True
            )
            self._log.info("consumer_group_created", start_id=self._settings.group_start_id)
        except ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise

    # ------------------------------------------------------------------ reading

    async def _read_new(self) -> list[Entry]:
        reply = await self._redis.xreadgroup(
            self.group,
            self.consumer,
            {self.stream: ">"},
            count=self._settings.batch_size,
            block=self._settings.block_ms,
        )
        return [Entry(mid, fields, 1) for mid, fields in entries_of(reply)]

    async def _replay_own_pending(self, stop: asyncio.Event) -> None:
        """Entries delivered to this consumer name but never acknowledged (we crashed)."""
        last: bytes | str = b"0"
        replayed = 0
        while not stop.is_set():
            reply = await self._redis.xreadgroup(
                self.group, self.consumer, {self.stream: last}, count=self._settings.batch_size
            )
            raw = entries_of(reply)
            if not raw:
                break
            last = raw[-1][0]
            replayed += len(raw)
            await self._process_pending(raw)
            if self._processor.pause_requested:
                break
        if replayed:
            self._log.info("own_pending_replayed", entries=replayed)

    async def janitor_tick(self) -> None:
        """Reclaim entries other consumers left idle too long, then refresh the gauges."""
        start: bytes | str = b"0-0"
        for _ in range(100):  # bounded: at most 100 batches per tick
            reply = await self._redis.xautoclaim(
                self.stream,
                self.group,
                self.consumer,
                min_idle_time=self._settings.claim_idle_ms,
                start_id=start,
                count=self._settings.batch_size,
            )
            next_start, claimed = reply[0], reply[1]
            deleted = reply[2] if len(reply) > 2 else []  # Redis >= 7 drops trimmed entries
            if deleted:
                self._log.error("pending_entries_trimmed", alert=True, ids=id_texts(deleted))
            live = [(mid, fields) for mid, fields in claimed if mid is not None]
            if len(live) < len(claimed):
                # Redis 6.2 claims trimmed entries and returns them as nil; they are ours now,
                # and the replay of our own pending entries acknowledges them.
                self._replay_requested = True
            if live:
                self._log.info("entries_reclaimed", count=len(live))
                await self._process_pending(live)
            if (
                next_start in (b"0-0", "0-0")
                or self._processor.pause_requested
                or self._stop.is_set()
            ):
                break
            start = next_start
        await self._refresh_gauges()

    async def _refresh_gauges(self) -> None:
        try:
            groups = await self._redis.xinfo_groups(self.stream)
        except ResponseError as exc:
            if "no such key" in str(exc):
                return  # the stream is gone; the next read reports NOGROUP
            raise
        for info in groups:
            if text(info.get("name")) != self.group:
                continue
            self._metrics.pending.set(int(info.get("pending") or 0))
            lag = info.get("lag")  # Redis >= 7.0, and unknown (nil) after some trims
            self._metrics.lag.set(float("nan") if lag is None else int(lag))

    async def _process_pending(self, raw: list[tuple[bytes, Any]]) -> None:
        """Process entries already delivered once, with their delivery counts."""
        entries = await with_delivery_counts(self._redis, self.stream, self.group, raw)
        await self._processor.process(entries)


async def _sleep_unless(stop: asyncio.Event, seconds: float) -> None:
    """Sleep, but wake at once when ``stop`` is set."""
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), timeout=seconds)
