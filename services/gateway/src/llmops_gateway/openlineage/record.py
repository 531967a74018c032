"""Queue a training job's OpenLineage run events, in the status fold's transaction.

A job report the fold applied maps to run events (OpenLineage's ``eventType``) by its phase:

* ``Pending``: none (nothing runs yet);
* any other phase before the end (``Running``): ``START``;
* ``Succeeded``: ``COMPLETE``; ``Failed``: ``FAIL``; ``Cancelled``: ``ABORT``, OpenLineage's
  type for a run stopped abnormally (neither completed nor failed), only of a run that
  started (a job cancelled while Pending never ran: no event).

A job that ends without a ``START`` (its ``Running`` report was stale, or came before
``OPENLINEAGE_URL`` was set) gets the ``START`` too, at the same time and queued first: the
emitter sends a job's rows in id order.

A user's cancel is committed by the API (``domain.training.cancel_training_job``), not by a
report: the cancel queues the ``ABORT`` of a run that started (:func:`record_cancel`, in the
cancel's transaction). The fold applies no report to a finished job; a report that the job ran
(``Running``, ``Succeeded``, ``Failed``) about a job already ``Cancelled`` means the run
started while the cancel was on its way: its ``START`` (when observed) and ``ABORT`` (at the
cancel, the job's ``updated_at``) are queued if missing. The worker's own ``Cancelled`` report
proves no run: it only confirms the ``ABORT`` of one that started.

Every row is inserted only if absent (unique job and type), so a redelivered report, or two
reports folded at once by two gateways, queue nothing twice.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any, Final

from sqlalchemy import insert, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from llmops_gateway.db.models import OpenLineageOutbox, TrainingJob, utcnow
from llmops_shared.events import JobStatusUpdated, Phase


class RunEventType(StrEnum):
    """The OpenLineage run event types a training job emits (``RunEvent.eventType``)."""

    START = "START"
    COMPLETE = "COMPLETE"
    FAIL = "FAIL"
    ABORT = "ABORT"


ENDS: Final[dict[Phase, RunEventType]] = {
    Phase.SUCCEEDED: RunEventType.COMPLETE,
    Phase.FAILED: RunEventType.FAIL,
    Phase.CANCELLED: RunEventType.ABORT,
}
"""A job's final phase -> the run event that ends its run."""


def run_events_of(phase: Phase) -> tuple[RunEventType, ...]:
    """The run events a job entering ``phase`` has emitted by then, in order."""
    if phase == Phase.PENDING:
        return ()
    end = ENDS.get(phase)
    return (RunEventType.START,) if end is None else (RunEventType.START, end)


def record_run_events(
    session: Session, report: JobStatusUpdated, *, applied: bool, at: datetime
) -> int:
    """Queue the run events ``report`` (published at ``at``) brings about, in the open
    transaction; ``applied`` is whether the fold changed the job with it. Returns how many
    rows were queued (0 when they exist already)."""
    job_id = report.entity_id
    if applied and report.phase == Phase.CANCELLED:  # a cancel proves no run: end one only
        return int(record_cancel(session, job_id, at))
    if applied:
        return sum(_queue(session, job_id, kind, at) for kind in run_events_of(report.phase))
    job = session.get(TrainingJob, job_id)
    if job is None or job.status != Phase.CANCELLED.value:
        return 0
    if report.phase in (Phase.PENDING, Phase.CANCELLED):
        return int(record_cancel(session, job_id, job.updated_at))
    started = _queue(session, job_id, RunEventType.START, min(at, job.updated_at))
    return int(started) + int(_queue(session, job_id, RunEventType.ABORT, job.updated_at))


def record_cancel(session: Session, job_id: str, at: datetime) -> bool:
    """Queue the ``ABORT`` of a job the user cancelled at ``at``, when its run had started
    (a ``START`` is queued or sent); a job cancelled before it ran has no run to end."""
    started = select(OpenLineageOutbox.id).where(
        OpenLineageOutbox.job_id == job_id,
        OpenLineageOutbox.event_type == RunEventType.START.value,
    )
    if session.scalar(started) is None:
        return False
    return _queue(session, job_id, RunEventType.ABORT, at)


def _queue(session: Session, job_id: str, event_type: RunEventType, at: datetime) -> bool:
    """Insert the row unless the job has one of this type; True when inserted."""
    now = utcnow()
    values: dict[str, Any] = {
        "job_id": job_id,
        "event_type": event_type.value,
        "event_time": at,
        "created_at": now,
        "attempts": 0,
        "next_attempt_at": now,
    }
    dialect = session.get_bind().dialect.name
    if dialect == "postgresql":
        statement: Any = postgresql.insert(OpenLineageOutbox).values(values)
        statement = statement.on_conflict_do_nothing(index_elements=["job_id", "event_type"])
    elif dialect == "sqlite":
        statement = sqlite.insert(OpenLineageOutbox).values(values)
        statement = statement.on_conflict_do_nothing(index_elements=["job_id", "event_type"])
    else:  # no portable ON CONFLICT: look first (a race ends in the unique key, and a retry)
        exists = select(OpenLineageOutbox.id).where(
            OpenLineageOutbox.job_id == job_id, OpenLineageOutbox.event_type == event_type.value
        )
        if session.scalar(exists) is not None:
            return False
        statement = insert(OpenLineageOutbox).values(values)
    result = session.execute(statement)
    return bool(getattr(result, "rowcount", 0))
