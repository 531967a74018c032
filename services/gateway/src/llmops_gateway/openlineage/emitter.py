"""Send the queued OpenLineage run events: a background loop of the gateway.

Each pass takes the due rows one at a time, oldest first, and for each:

1. **claims** it in a short transaction: ``SELECT ... FOR UPDATE SKIP LOCKED`` (PostgreSQL;
   SQLite serialises writers anyway) of an unsent row whose ``next_attempt_at`` has come, and
   moves its ``next_attempt_at`` a lease ahead. Another gateway skips the locked row, then sees
   it leased, so two replicas never send the same row at once; no transaction is open while
   the event travels, and a gateway that dies mid-send leaves the row to be sent again when the
   lease ends (at least once, never lost);
2. **builds** the event from the database (:func:`.events.run_event`) and **sends** it;
3. marks it sent (``emitted_at``), or counts the failure: ``attempts`` + 1, ``last_error``
   (cut to its column), logged, and tried again after a capped doubling backoff
   (``OPENLINEAGE_RETRY_INITIAL_S``, doubled per failure, at most 5 minutes). A row that fails
   to build or to send is one failed row: the others go on. A refusal that no retry changes
   (the receiver's 4xx other than 408 and 429, or a job no longer in the database) gives the
   row up (``given_up_at``, logged as an error) instead: it would otherwise hold back the
   job's later rows forever.

Rows wait while an earlier row of the same job is unsent (a job's START is sent before its
end), and a COMPLETE waits for the job's registered model version (its output) until
``OPENLINEAGE_OUTPUT_GRACE_S`` after it was queued, then goes without it. The loop polls every
``OPENLINEAGE_POLL_INTERVAL_S``.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Final

from openlineage.client.event_v2 import RunEvent
from prometheus_client import CollectorRegistry, Counter
from requests import HTTPError, RequestException
from sqlalchemy import Select, exists, or_, select, update
from sqlalchemy.orm import aliased

from llmops_gateway.db.models import OpenLineageOutbox, TrainingJob, utcnow
from llmops_gateway.db.models.openlineage import LAST_ERROR_LENGTH
from llmops_gateway.db.session import SessionFactory
from llmops_gateway.openlineage.events import JobGone, Naming, run_event
from llmops_gateway.openlineage.record import RunEventType
from llmops_shared.logging import get_logger
from llmops_shared.streams.errors import describe

RETRY_MAX_S: Final = 300.0
"""The longest wait between two attempts of a row."""

_LOOP_BACKOFF_MAX_S: Final = 30.0
"""The longest wait of the loop itself while the database fails."""

Send = Callable[[RunEvent], None]
"""Posts one event; raises when the receiver did not accept it."""


class LineageMetrics:
    """Events sent and failed attempts, by event type, on the gateway's registry."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.emitted = Counter(
            "llmops_openlineage_events_emitted",
            "OpenLineage run events the receiver accepted",
            ("event_type",),
            registry=registry,
        )
        self.failed = Counter(
            "llmops_openlineage_emit_failures",
            "Attempts to send an OpenLineage run event that failed (built or sent)",
            ("event_type",),
            registry=registry,
        )


RETRYABLE_STATUS: Final = frozenset({408, 429})
"""4xx answers that a later attempt may change (timeout, rate limit)."""


def permanent(exc: Exception) -> bool:
    """Whether retrying ``exc`` cannot succeed: the job is gone, or the receiver refused the
    event itself (a 4xx but timeout and rate limit)."""
    if isinstance(exc, JobGone):
        return True
    response = getattr(exc, "response", None) if isinstance(exc, HTTPError) else None
    status = getattr(response, "status_code", None)
    return isinstance(status, int) and 400 <= status < 500 and status not in RETRYABLE_STATUS


def retry_delay_s(attempts: int, *, initial_s: float, max_s: float = RETRY_MAX_S) -> float:
    """The wait after a row's ``attempts``-th failure: ``initial_s`` doubled per earlier
    failure, at most ``max_s``."""
    doublings = min(max(attempts - 1, 0), 32)
    return min(max_s, initial_s * float(2**doublings))


class LineageEmitter:
    """Sends the due rows of ``openlineage_outbox`` with ``send``; :meth:`run` is the loop."""

    def __init__(
        self,
        sessions: SessionFactory,
        send: Send,
        naming: Naming,
        metrics: LineageMetrics,
        *,
        output_grace_s: float = 30.0,
        poll_interval_s: float = 1.0,
        retry_initial_s: float = 1.0,
        lease_s: float = 40.0,
        batch_size: int = 100,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self._sessions = sessions
        self._send = send
        self._naming = naming
        self._metrics = metrics
        self._output_grace = timedelta(seconds=output_grace_s)
        self._poll_interval_s = poll_interval_s
        self._retry_initial_s = retry_initial_s
        self._lease = timedelta(seconds=lease_s)
        self._batch_size = batch_size
        self._clock = clock
        self._log = get_logger(__name__)

    async def run(self, stop: asyncio.Event) -> None:
        """Send due rows until ``stop`` is set, backing off while the database fails."""
        delay_s = self._poll_interval_s
        while not stop.is_set():
            try:
                handled = await asyncio.to_thread(self.emit_due, stop.is_set)
                delay_s = 0.0 if handled >= self._batch_size else self._poll_interval_s
            except Exception as exc:  # noqa: BLE001 - the database: log, back off, keep going
                self._log.error("openlineage_emitter_failed", error=describe(exc), exc_info=True)
                delay_s = min(max(delay_s, self._poll_interval_s) * 2, _LOOP_BACKOFF_MAX_S)
            with contextlib.suppress(TimeoutError):  # the poll interval passed
                await asyncio.wait_for(stop.wait(), timeout=delay_s)

    def emit_due(self, should_stop: Callable[[], bool] = lambda: False) -> int:
        """Handle up to a batch of due rows, one at a time, until none is due or
        ``should_stop()``; returns how many were handled (sent or failed)."""
        handled = 0
        while handled < self._batch_size and not should_stop():
            row = self.claim()
            if row is None:
                break
            self.send(row)
            handled += 1
        return handled

    def claim(self) -> OpenLineageOutbox | None:
        """The oldest due row, leased to this emitter; None when no row is due."""
        now = self._clock()
        with self._sessions.begin() as session:
            row = session.scalars(self._due(now)).first()
            if row is not None:
                row.next_attempt_at = now + self._lease
        return row

    def send(self, row: OpenLineageOutbox) -> bool:
        """Build and send ``row``'s event, then record the outcome; True when it was sent."""
        try:
            with self._sessions() as session:
                event = run_event(session, row, self._naming)
            self._send(event)
        except Exception as exc:  # noqa: BLE001 - a row that cannot be sent never stops the rest
            self._failed(row, exc)
            return False
        with self._sessions.begin() as session:
            session.execute(
                update(OpenLineageOutbox)
                .where(OpenLineageOutbox.id == row.id)
                .values(
                    emitted_at=self._clock(),
                    attempts=OpenLineageOutbox.attempts + 1,
                    last_error=None,
                )
            )
        self._metrics.emitted.labels(row.event_type).inc()
        self._log.info(
            "openlineage_event_emitted",
            job_id=row.job_id,
            event_type=row.event_type,
            attempts=row.attempts + 1,
        )
        return True

    def _failed(self, row: OpenLineageOutbox, exc: Exception) -> None:
        if permanent(exc):
            self._give_up(row, exc)
            return
        attempts = row.attempts + 1
        delay_s = retry_delay_s(attempts, initial_s=self._retry_initial_s)
        error = describe(exc)
        self._count_failure(row, error, next_attempt_at=self._clock() + timedelta(seconds=delay_s))
        self._log.warning(
            "openlineage_emit_failed",
            job_id=row.job_id,
            event_type=row.event_type,
            attempts=attempts,
            retry_in_s=delay_s,
            error=error,
            # a receiver's answer or a network error says enough; anything else is a bug
            exc_info=not isinstance(exc, RequestException),
        )

    def _give_up(self, row: OpenLineageOutbox, exc: Exception) -> None:
        error = describe(exc)
        self._count_failure(row, error, given_up_at=self._clock())
        self._log.error(
            "openlineage_event_given_up",
            job_id=row.job_id,
            event_type=row.event_type,
            attempts=row.attempts + 1,
            error=error,
        )

    def _count_failure(self, row: OpenLineageOutbox, error: str, **values: datetime) -> None:
        """One more failed attempt of ``row``, its error kept, and ``values`` (when to try
        again, or that it was given up)."""
        with self._sessions.begin() as session:
            session.execute(
                update(OpenLineageOutbox)
                .where(OpenLineageOutbox.id == row.id)
                .values(
                    attempts=OpenLineageOutbox.attempts + 1,
                    last_error=error[:LAST_ERROR_LENGTH],
                    **values,
                )
            )
        self._metrics.failed.labels(row.event_type).inc()

    def _due(self, now: datetime) -> Select[OpenLineageOutbox]:
        """Unsent rows whose time has come, with no unsent earlier row of their job, and (for a
        COMPLETE) whose job registered its model or whose grace is over; oldest first."""
        row = OpenLineageOutbox
        earlier = aliased(OpenLineageOutbox)
        earlier_unsent = exists().where(
            earlier.job_id == row.job_id,
            earlier.emitted_at.is_(None),
            earlier.given_up_at.is_(None),
            earlier.id < row.id,
        )
        has_output = exists().where(
            TrainingJob.id == row.job_id,
            TrainingJob.registered_model_name.is_not(None),
            TrainingJob.registered_model_version.is_not(None),
        )
        return (
            select(row)
            .where(
                row.emitted_at.is_(None),
                row.given_up_at.is_(None),
                row.next_attempt_at <= now,
                ~earlier_unsent,
                or_(
                    row.event_type != RunEventType.COMPLETE.value,
                    row.created_at <= now - self._output_grace,
                    has_output,
                ),
            )
            .order_by(row.id)
            .limit(1)
            .with_for_update(skip_locked=True, of=row)
        )
