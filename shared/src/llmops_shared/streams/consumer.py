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

Handlers are plain async functions ``(event) -> status events``; services bind their ports with
``functools.partial`` in ``app.py``.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

import redis.asyncio as aioredis
from redis.exceptions import ResponseError
from redis.typing import StreamIdT
from tenacity import AsyncRetrying, retry_if_exception, stop_after_attempt, wait_exponential_jitter

from llmops_shared.config import ConsumerSettings
from llmops_shared.events import Envelope, Event, EventDecodeError, decode_event, encode_event
from llmops_shared.events import stream_for as _stream_for
from llmops_shared.logging import event_log_context, get_logger
from llmops_shared.streams.attempts import AttemptLog
from llmops_shared.streams.commit import BatchCommitter, Completed, idempotency_key
from llmops_shared.streams.dead_letters import DeadLetter, move_to_dead_letters
from llmops_shared.streams.errors import (
    DependencyUnavailableError,
    NonRetryableError,
    describe,
    is_retryable,
)
from llmops_shared.streams.metrics import StreamMetrics
from llmops_shared.streams.publisher import EVENT_FIELD, TRANSIENT_REDIS_ERRORS, stream_key

Handler = Callable[[Event], Awaitable[Sequence[Envelope] | None]]
Decoder = Callable[..., Event]

_MAX_OUTAGE_BACKOFF_S = 5.0
_COMMIT_MAX_DELAY_S = 0.1  # a result waits at most this long (or one slow handler) to commit
_MAX_DEPENDENCY_BACKOFF_S = 30.0  # a slow batch still commits what is done at least this often


@dataclass(frozen=True)
class _Entry:
    message_id: bytes
    fields: dict[bytes, bytes] | None  # None: the entry was trimmed away while pending
    deliveries: int

    @property
    def redelivered(self) -> bool:
        return self.deliveries > 1

    @property
    def raw_event(self) -> bytes:
        return (self.fields or {}).get(EVENT_FIELD, b"")


def _is_nogroup(exc: ResponseError) -> bool:
    # "in", not "startswith": errors from a pipeline are reworded ("Command # 1 (...) of ...").
    return "NOGROUP" in str(exc)


_TRANSIENT_RESPONSES = ("READONLY", "LOADING", "BUSY", "MASTERDOWN", "TRYAGAIN", "CLUSTERDOWN",
                        "OOM")  # fmt: skip


def _is_transient_response(exc: ResponseError) -> bool:
    """Errors a failover, a restart or memory pressure cause; they pass."""
    return any(code in str(exc) for code in _TRANSIENT_RESPONSES)


def _retry_in_process(exc: BaseException) -> bool:
    return is_retryable(exc) and not isinstance(exc, DependencyUnavailableError)


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
        self._handler = handler
        self._settings = settings
        self._metrics = metrics.bind(self.stream, group)
        self._decode = decoder
        self._committer = BatchCommitter(
            redis,
            stream=self.stream,
            group=group,
            ttl_s=settings.idempotency_ttl_s,
            output_maxlen=output_maxlen,
            namespace=namespace,
        )
        self._outage_backoff_s = 0.0  # grows while a dependency stays down
        self._pause_requested = False  # a handler just found a dependency down
        self._replay_requested = False  # the janitor claimed entries only a replay can clear
        self._stop = asyncio.Event()
        self._attempts = AttemptLog(redis, key=f"{namespace}llmops:attempts:{stream}:{group}")
        self._log = get_logger(__name__).bind(stream=self.stream, group=group, consumer=consumer)

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
                if self._pause_requested:
                    self._pause_requested = False
                    await _sleep_unless(stop, self._outage_backoff_s)
                    replay_own_pending = True
                    continue
                if self._replay_requested:
                    self._replay_requested = False
                    replay_own_pending = True
                    continue
                entries = await self._read_new()
                if entries:
                    await self._process(entries)
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

    async def _read_new(self) -> list[_Entry]:
        reply = await self._redis.xreadgroup(
            self.group,
            self.consumer,
            {self.stream: ">"},
            count=self._settings.batch_size,
            block=self._settings.block_ms,
        )
        return [_Entry(mid, fields, 1) for mid, fields in _entries_of(reply)]

    async def _replay_own_pending(self, stop: asyncio.Event) -> None:
        """Entries delivered to this consumer name but never acknowledged (we crashed)."""
        last: bytes | str = b"0"
        replayed = 0
        while not stop.is_set():
            reply = await self._redis.xreadgroup(
                self.group, self.consumer, {self.stream: last}, count=self._settings.batch_size
            )
            raw = _entries_of(reply)
            if not raw:
                break
            last = raw[-1][0]
            replayed += len(raw)
            await self._process(await self._with_delivery_counts(raw))
            if self._pause_requested:
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
                self._log.error("pending_entries_trimmed", alert=True, ids=_ids(deleted))
            live = [(mid, fields) for mid, fields in claimed if mid is not None]
            if len(live) < len(claimed):
                # Redis 6.2 claims trimmed entries and returns them as nil; they are ours now,
                # and the replay of our own pending entries acknowledges them.
                self._replay_requested = True
            if live:
                self._log.info("entries_reclaimed", count=len(live))
                await self._process(await self._with_delivery_counts(live))
            if next_start in (b"0-0", "0-0") or self._pause_requested or self._stop.is_set():
                break
            start = next_start
        await self._refresh_gauges()

    async def _with_delivery_counts(self, raw: list[tuple[bytes, Any]]) -> list[_Entry]:
        async with self._redis.pipeline(transaction=False) as pipe:
            for mid, _ in raw:
                pipe.xpending_range(self.stream, self.group, min=mid, max=mid, count=1)
            replies = await pipe.execute()
        entries = []
        for (mid, fields), pending in zip(raw, replies, strict=True):
            deliveries = int(pending[0]["times_delivered"]) if pending else 1
            entries.append(_Entry(mid, fields, deliveries))
        return entries

    async def _refresh_gauges(self) -> None:
        try:
            groups = await self._redis.xinfo_groups(self.stream)
        except ResponseError as exc:
            if "no such key" in str(exc):
                return  # the stream is gone; the next read reports NOGROUP
            raise
        for info in groups:
            if _text(info.get("name")) != self.group:
                continue
            self._metrics.pending.set(int(info.get("pending") or 0))
            lag = info.get("lag")  # Redis >= 7.0, and unknown (nil) after some trims
            self._metrics.lag.set(float("nan") if lag is None else int(lag))

    # ------------------------------------------------------------------ processing

    async def _process(self, entries: list[_Entry]) -> None:
        heartbeat = _ClaimHeartbeat(self, [entry.message_id for entry in entries])
        try:
            await self._process_batch(entries)
        finally:
            heartbeat.stop()

    async def _claim_again(self, message_ids: list[StreamIdT]) -> None:
        """Reset the idle time of ``message_ids`` (see :class:`_ClaimHeartbeat`)."""
        try:
            await self._redis.xclaim(
                self.stream, self.group, self.consumer, 0, message_ids, justid=True
            )
        except (ResponseError, *TRANSIENT_REDIS_ERRORS) as exc:
            self._log.warning("claim_heartbeat_failed", error=describe(exc))

    async def _process_batch(self, entries: list[_Entry]) -> None:
        self._metrics.consumed.inc(len(entries))
        completed: list[Completed] = []
        dead: list[DeadLetter] = []
        decoded: list[tuple[_Entry, Event]] = []
        for entry in entries:
            if not entry.fields:  # XADD needs a field, so no fields means trimmed away
                self._log.error(
                    "pending_entry_trimmed", alert=True, message_id=_text(entry.message_id)
                )
                trimmed = f"trimmed:{_text(entry.message_id)}"
                completed.append(Completed(entry.message_id, trimmed, (), entry.redelivered))
                continue
            raw = entry.fields.get(EVENT_FIELD)
            if raw is None:
                dead.append(_rejected(entry, b"", "entry has no 'event' field", "MalformedEntry"))
                continue
            try:
                decoded.append((entry, self._decode(raw, expected_stream=self.contract_stream)))
            except EventDecodeError as exc:
                dead.append(_rejected(entry, raw, exc.reason, "EventDecodeError"))

        done = await self._already_processed([event.envelope.id for _, event in decoded])
        first_done_at: float | None = None
        for entry, event in decoded:
            if self._stop.is_set():
                break  # shutting down: what is not handled yet stays pending for a replay
            event_id = event.envelope.id
            if event_id in done:
                self._metrics.duplicates.inc()
                completed.append(Completed(entry.message_id, event_id, (), entry.redelivered))
                continue
            started = time.monotonic()
            outcome = await self._handle(entry, event)
            slow = time.monotonic() - started > _COMMIT_MAX_DELAY_S
            if isinstance(outcome, Completed):
                done.add(event_id)  # a later copy in this batch is a duplicate
                completed.append(outcome)
                first_done_at = first_done_at or time.monotonic()
            elif isinstance(outcome, DeadLetter):
                dead.append(outcome)
            if outcome is not None:
                self._outage_backoff_s = 0.0
            elif self._pause_requested:
                break  # the rest of the batch stays pending until the dependency is back
            overdue = first_done_at and time.monotonic() - first_done_at > _COMMIT_MAX_DELAY_S
            # After a slow handler (an import, a DVC push) commit at once: the next one may be
            # slower still, and a finished result must not wait for it (nor be redone if the
            # worker dies during it).
            if entry.redelivered or overdue or slow:
                await self._flush(completed, dead)
                completed, dead, first_done_at = [], [], None
        await self._flush(completed, dead)

    async def _already_processed(self, event_ids: list[str]) -> set[str]:
        if not event_ids:
            return set()
        keys = [idempotency_key(self.group, event_id, self.namespace) for event_id in event_ids]
        marks = await self._redis.mget(keys)
        return {eid for eid, mark in zip(event_ids, marks, strict=True) if mark is not None}

    async def _handle(self, entry: _Entry, event: Event) -> Completed | DeadLetter | None:
        envelope = event.envelope
        attempts_before = 0
        if entry.redelivered:
            attempts_before = await self._attempts.record_attempt(entry.message_id)
            if attempts_before >= self._settings.max_deliveries:
                return await self._poison_letter(entry)
        started = time.perf_counter()
        with event_log_context(
            event_id=envelope.id, event_type=envelope.type, correlation_id=envelope.correlationid
        ):
            try:
                outputs = await self._call_handler(event)
            except Exception as exc:  # noqa: BLE001 - every handler failure is classified below
                self._metrics.handler_seconds.observe(time.perf_counter() - started)
                return await self._failed(entry, exc, attempts=attempts_before + 1)
            self._metrics.handler_seconds.observe(time.perf_counter() - started)
            try:
                encoded = tuple(
                    (stream_key(self.namespace, _stream_for(out.type)), encode_event(out))
                    for out in outputs or ()
                )
            except Exception as exc:  # noqa: BLE001 - a handler bug; retrying repeats it
                bug = NonRetryableError(f"handler returned an event that cannot be sent: {exc!r}")
                return await self._failed(entry, bug, attempts=attempts_before + 1)
        return Completed(entry.message_id, envelope.id, encoded, entry.redelivered)

    async def _call_handler(self, event: Event) -> Sequence[Envelope] | None:
        try:
            return await self._handler(event)  # the fast path builds no retry machinery
        except Exception as exc:
            if (
                not is_retryable(exc)
                or isinstance(exc, DependencyUnavailableError)  # the pause backs off instead
                or self._settings.retry_attempts == 1
            ):
                raise
            self._metrics.retried.inc()
            self._log.warning("handler_retrying", error=describe(exc))
        retrying = AsyncRetrying(
            retry=retry_if_exception(_retry_in_process),
            stop=stop_after_attempt(self._settings.retry_attempts - 1),
            wait=wait_exponential_jitter(
                multiplier=self._settings.retry_initial_backoff_s,
                max=self._settings.retry_max_backoff_s,
                jitter=self._settings.retry_initial_backoff_s,
            ),
            before_sleep=lambda _: self._metrics.retried.inc(),
            reraise=True,
        )
        await asyncio.sleep(self._settings.retry_initial_backoff_s)
        return await retrying(self._handler, event)

    async def _failed(self, entry: _Entry, exc: Exception, *, attempts: int) -> DeadLetter | None:
        raw = entry.raw_event
        if not is_retryable(exc):
            self._log.error("event_rejected", error=describe(exc))
            return _rejected(entry, raw, describe(exc), type(exc).__name__)
        if isinstance(exc, DependencyUnavailableError):
            await self._dependency_down(entry, exc)
            return None
        if attempts >= self._settings.max_deliveries:
            reason = f"gave up after {attempts} deliveries: {describe(exc)}"
            return DeadLetter(
                entry.message_id,
                raw,
                reason,
                type(exc).__name__,
                entry.deliveries,
                "max_deliveries",
            )
        self._log.warning("handler_failed_left_pending", error=describe(exc), attempts=attempts)
        await self._attempts.record_error(entry.message_id, describe(exc))
        return None

    async def _dependency_down(self, entry: _Entry, exc: DependencyUnavailableError) -> None:
        """Not the event's fault: keep it pending, do not count the attempt, pause the loop."""
        if entry.redelivered:
            await self._attempts.undo_attempt(entry.message_id)
        await self._attempts.record_error(entry.message_id, describe(exc))
        self._outage_backoff_s = min(
            max(self._outage_backoff_s * 2, self._settings.retry_initial_backoff_s),
            _MAX_DEPENDENCY_BACKOFF_S,
        )
        self._pause_requested = True
        self._metrics.dependency_outages.inc()
        self._log.warning(
            "dependency_unavailable", error=describe(exc), pause_s=self._outage_backoff_s
        )

    async def _poison_letter(self, entry: _Entry) -> DeadLetter:
        """Handled ``max_deliveries`` times already without finishing: the worker died in it."""
        last_error = await self._attempts.last_error(entry.message_id)
        reason = (
            f"exceeded {self._settings.max_deliveries} deliveries; last error: "
            f"{last_error or 'none recorded (the worker died while handling it)'}"
        )
        return DeadLetter(
            entry.message_id,
            entry.raw_event,
            reason,
            "MaxDeliveriesExceeded",
            entry.deliveries,
            "max_deliveries",
        )

    async def _flush(self, completed: list[Completed], dead: list[DeadLetter]) -> None:
        if completed:
            await self._committer.commit(completed)
            self._metrics.acked.inc(len(completed))
            await self._attempts.forget([c.message_id for c in completed if c.redelivered])
        if dead:
            await move_to_dead_letters(
                self._redis, dead, stream=self.stream, group=self.group, consumer=self.consumer
            )
            await self._attempts.forget([d.message_id for d in dead])
            for letter in dead:
                if letter.cause == "max_deliveries":
                    self._metrics.dead_lettered_poison.inc()
                else:
                    self._metrics.dead_lettered_invalid.inc()
                self._log.error(
                    "event_dead_lettered",
                    alert=True,
                    message_id=_text(letter.message_id),
                    reason=letter.reason,
                    deliveries=letter.deliveries,
                )


class _ClaimHeartbeat:
    """While a batch is in hand, reset its entries' idle time every third of
    ``claim_idle_ms``, so another replica's janitor never takes over a handler that is merely
    slow (a model download, a DVC push). ``XCLAIM ... JUSTID`` to ourselves does not count as a
    delivery, and ids already acknowledged are skipped by Redis. A dead process stops beating,
    so its entries are reclaimed as before.

    A timer, not a task per batch: most batches end long before the first beat, and arming and
    cancelling a timer costs far less than starting and cancelling a task (at COUNT 1 every
    event is a batch).
    """

    def __init__(self, runner: ConsumerRunner, message_ids: list[StreamIdT]) -> None:
        self._runner = runner
        self._ids = message_ids
        self._interval_s = max(runner._settings.claim_idle_ms / 3000, 0.05)
        self._loop = asyncio.get_running_loop()
        self._task: asyncio.Task[None] | None = None
        self._timer = self._loop.call_later(self._interval_s, self._beat)

    def _beat(self) -> None:
        if self._task is None or self._task.done():
            self._task = self._loop.create_task(self._runner._claim_again(self._ids))
        self._timer = self._loop.call_later(self._interval_s, self._beat)

    def stop(self) -> None:
        self._timer.cancel()
        if self._task is not None and not self._task.done():
            self._task.cancel()


def _rejected(entry: _Entry, raw: bytes, reason: str, error_type: str) -> DeadLetter:
    """A dead letter for input that no retry can fix."""
    return DeadLetter(entry.message_id, raw, reason, error_type, entry.deliveries, "non_retryable")


def _entries_of(reply: Any) -> list[tuple[bytes, Any]]:
    """Entries of a one-stream XREADGROUP reply (RESP2, which our connections pin)."""
    return list(reply[0][1]) if reply else []


def _ids(ids: Sequence[bytes | str]) -> list[str]:
    return [_text(i) for i in ids]


def _text(value: bytes | str | None) -> str:
    if value is None:
        return ""
    return value.decode() if isinstance(value, bytes) else value


async def _sleep_unless(stop: asyncio.Event, seconds: float) -> None:
    """Sleep, but wake at once when ``stop`` is set."""
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), timeout=seconds)
