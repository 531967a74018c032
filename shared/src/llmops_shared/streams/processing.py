"""Processing one batch of entries: decode, skip duplicates, handle, commit or dead-letter.

Split out of :mod:`llmops_shared.streams.consumer`, whose runner reads the stream, survives
outages and reclaims idle entries; this module is what happens to the entries it read (rules
3, 4 and the dependency pause of rule 6 of the consumer's contract).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Sequence

import redis.asyncio as aioredis
from structlog.stdlib import BoundLogger
from tenacity import AsyncRetrying, retry_if_exception, stop_after_attempt, wait_exponential_jitter

from llmops_shared.config import ConsumerSettings
from llmops_shared.events import Envelope, Event, EventDecodeError, encode_event
from llmops_shared.events import stream_for as _stream_for
from llmops_shared.logging import event_log_context
from llmops_shared.streams.attempts import AttemptLog
from llmops_shared.streams.commit import BatchCommitter, Completed, idempotency_key
from llmops_shared.streams.dead_letters import DeadLetter, move_to_dead_letters
from llmops_shared.streams.entries import Entry, text
from llmops_shared.streams.errors import (
    DependencyUnavailableError,
    NonRetryableError,
    describe,
    is_retryable,
)
from llmops_shared.streams.heartbeat import ClaimHeartbeat
from llmops_shared.streams.metrics import BoundStreamMetrics
from llmops_shared.streams.publisher import EVENT_FIELD, stream_key

Handler = Callable[[Event], Awaitable[Sequence[Envelope] | None]]
Decoder = Callable[..., Event]

_COMMIT_MAX_DELAY_S = 0.1  # a result waits at most this long (or one slow handler) to commit
_MAX_DEPENDENCY_BACKOFF_S = 30.0  # a slow batch still commits what is done at least this often


def _retry_in_process(exc: BaseException) -> bool:
    return is_retryable(exc) and not isinstance(exc, DependencyUnavailableError)


class BatchProcessor:
    """Runs the handler on the entries a :class:`~.consumer.ConsumerRunner` read.

    When a handler finds a dependency down, :attr:`pause_requested` is set and
    :attr:`outage_backoff_s` says how long the runner pauses before replaying.
    """

    def __init__(
        self,
        redis: aioredis.Redis,
        *,
        stream: str,
        contract_stream: str,
        namespace: str,
        group: str,
        consumer: str,
        handler: Handler,
        decoder: Decoder,
        settings: ConsumerSettings,
        metrics: BoundStreamMetrics,
        output_maxlen: int,
        log: BoundLogger,
        stopping: Callable[[], bool],
    ) -> None:
        self.stream = stream
        self.contract_stream = contract_stream
        self.namespace = namespace
        self.group = group
        self.consumer = consumer
        self._redis = redis
        self._handler = handler
        self._decode = decoder
        self._settings = settings
        self._metrics = metrics
        self._log = log
        self._stopping = stopping
        self._committer = BatchCommitter(
            redis,
            stream=stream,
            group=group,
            ttl_s=settings.idempotency_ttl_s,
            output_maxlen=output_maxlen,
            namespace=namespace,
        )
        self._attempts = AttemptLog(
            redis, key=f"{namespace}llmops:attempts:{contract_stream}:{group}"
        )
        self.outage_backoff_s = 0.0  # grows while a dependency stays down
        self.pause_requested = False  # a handler just found a dependency down

    async def process(self, entries: list[Entry]) -> None:
        """Process ``entries``, keeping them claimed (:class:`ClaimHeartbeat`) meanwhile."""
        heartbeat = ClaimHeartbeat(
            self._redis,
            stream=self.stream,
            group=self.group,
            consumer=self.consumer,
            message_ids=[entry.message_id for entry in entries],
            claim_idle_ms=self._settings.claim_idle_ms,
            log=self._log,
        )
        try:
            await self._process_batch(entries)
        finally:
            heartbeat.stop()

    async def _process_batch(self, entries: list[Entry]) -> None:
        self._metrics.consumed.inc(len(entries))
        completed: list[Completed] = []
        dead: list[DeadLetter] = []
        decoded: list[tuple[Entry, Event]] = []
        for entry in entries:
            if not entry.fields:  # XADD needs a field, so no fields means trimmed away
                self._log.error(
                    "pending_entry_trimmed", alert=True, message_id=text(entry.message_id)
                )
                trimmed = f"trimmed:{text(entry.message_id)}"
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
            if self._stopping():
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
                self.outage_backoff_s = 0.0
            elif self.pause_requested:
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

    async def _handle(self, entry: Entry, event: Event) -> Completed | DeadLetter | None:
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

    async def _failed(self, entry: Entry, exc: Exception, *, attempts: int) -> DeadLetter | None:
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

    async def _dependency_down(self, entry: Entry, exc: DependencyUnavailableError) -> None:
        """Not the event's fault: keep it pending, do not count the attempt, pause the loop."""
        if entry.redelivered:
            await self._attempts.undo_attempt(entry.message_id)
        await self._attempts.record_error(entry.message_id, describe(exc))
        self.outage_backoff_s = min(
            max(self.outage_backoff_s * 2, self._settings.retry_initial_backoff_s),
            _MAX_DEPENDENCY_BACKOFF_S,
        )
        self.pause_requested = True
        self._metrics.dependency_outages.inc()
        self._log.warning(
            "dependency_unavailable", error=describe(exc), pause_s=self.outage_backoff_s
        )

    async def _poison_letter(self, entry: Entry) -> DeadLetter:
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
                    message_id=text(letter.message_id),
                    reason=letter.reason,
                    deliveries=letter.deliveries,
                )


def _rejected(entry: Entry, raw: bytes, reason: str, error_type: str) -> DeadLetter:
    """A dead letter for input that no retry can fix."""
    return DeadLetter(entry.message_id, raw, reason, error_type, entry.deliveries, "non_retryable")
