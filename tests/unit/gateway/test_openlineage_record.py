"""The status fold queues a training job's OpenLineage run events (``openlineage_outbox``) in
the transaction that changed the job: START at the first phase after Pending, COMPLETE / FAIL /
ABORT at the end (with the START when it is missing), each once per job, and nothing at all
while OpenLineage is off."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

from llmops_gateway.db.models import OpenLineageOutbox, TrainingJob, utcnow
from llmops_gateway.db.session import SessionFactory
from llmops_gateway.domain.status import apply_status_event
from llmops_gateway.openlineage.record import RunEventType, run_events_of
from llmops_shared.events import Event, Phase, StatusEntity

from unit.gateway.folds import CONSUMER, SEQ, event_of, new_id, report, seed_job

pytestmark = pytest.mark.unit


def job_event(job_id: str, phase: Phase, seq: int, *, event_id: str | None = None) -> Event:
    return event_of(report(StatusEntity.JOB, job_id, phase, seq), event_id=event_id)


def fold(sessions: SessionFactory, event: Event, *, openlineage: bool = True) -> bool:
    return apply_status_event(sessions, event, consumer=CONSUMER, openlineage=openlineage)


def queued(sessions: SessionFactory, job_id: str | None = None) -> list[OpenLineageOutbox]:
    """The rows, in the order the emitter sends them (id)."""
    query = select(OpenLineageOutbox).order_by(OpenLineageOutbox.id)
    if job_id is not None:
        query = query.where(OpenLineageOutbox.job_id == job_id)
    with sessions() as session:
        return list(session.scalars(query))


def types(rows: list[OpenLineageOutbox]) -> list[str]:
    return [row.event_type for row in rows]


@pytest.mark.parametrize(
    ("phase", "expected"),
    [
        (Phase.PENDING, ()),
        (Phase.RUNNING, ("START",)),
        (Phase.SUCCEEDED, ("START", "COMPLETE")),
        (Phase.FAILED, ("START", "FAIL")),
        (Phase.CANCELLED, ("START", "ABORT")),
    ],
)
def test_each_phase_maps_to_its_run_events(phase: Phase, expected: tuple[str, ...]) -> None:
    assert tuple(run_events_of(phase)) == expected


def test_running_then_succeeded_queues_start_then_complete_at_the_reports_times(
    sessions: SessionFactory,
) -> None:
    job_id = seed_job(sessions)
    running = job_event(job_id, Phase.RUNNING, SEQ)
    assert fold(sessions, running)
    assert fold(sessions, job_event(job_id, Phase.RUNNING, SEQ + 1))  # still the one START
    succeeded = job_event(job_id, Phase.SUCCEEDED, SEQ + 2)
    assert fold(sessions, succeeded)

    start, complete = queued(sessions, job_id)
    assert (start.event_type, complete.event_type) == ("START", "COMPLETE")
    assert start.event_time == running.envelope.time
    assert complete.event_time == succeeded.envelope.time
    for row in (start, complete):
        assert (row.emitted_at, row.attempts, row.last_error) == (None, 0, None)
        assert row.next_attempt_at <= utcnow()


def test_a_job_that_fails_without_a_start_gets_both_start_first_at_the_same_time(
    sessions: SessionFactory,
) -> None:
    job_id = seed_job(sessions)
    failed = job_event(job_id, Phase.FAILED, SEQ)
    assert fold(sessions, failed)
    rows = queued(sessions, job_id)
    assert types(rows) == ["START", "FAIL"]
    assert {row.event_time for row in rows} == {failed.envelope.time}


def test_a_pending_report_queues_nothing(sessions: SessionFactory) -> None:
    job_id = seed_job(sessions)
    assert fold(sessions, job_event(job_id, Phase.PENDING, SEQ))
    assert queued(sessions) == []


def test_a_redelivered_report_queues_no_second_row(sessions: SessionFactory) -> None:
    job_id = seed_job(sessions)
    event_id = new_id()
    assert fold(sessions, job_event(job_id, Phase.SUCCEEDED, SEQ, event_id=event_id))
    assert not fold(sessions, job_event(job_id, Phase.SUCCEEDED, SEQ, event_id=event_id))
    assert types(queued(sessions)) == ["START", "COMPLETE"]


def test_a_stale_report_after_the_end_queues_nothing_more(sessions: SessionFactory) -> None:
    job_id = seed_job(sessions)
    fold(sessions, job_event(job_id, Phase.SUCCEEDED, SEQ + 5))
    assert not fold(sessions, job_event(job_id, Phase.FAILED, SEQ + 6))  # a finished job stays
    assert not fold(sessions, job_event(job_id, Phase.RUNNING, SEQ + 1))
    assert types(queued(sessions)) == ["START", "COMPLETE"]


def test_a_report_after_a_users_cancel_queues_the_abort_at_the_cancel(
    sessions: SessionFactory,
) -> None:
    """The API commits a cancel without a report; the worker's next report about the job (not
    applied: the job is finished) brings the ABORT, dated when the job was cancelled."""
    job_id = seed_job(sessions)
    fold(sessions, job_event(job_id, Phase.RUNNING, SEQ))
    cancelled_at = utcnow() - timedelta(seconds=30)
    with sessions.begin() as session:
        job = session.get(TrainingJob, job_id)
        assert job is not None
        job.status, job.status_seq, job.updated_at = "Cancelled", SEQ + 10, cancelled_at

    assert not fold(sessions, job_event(job_id, Phase.CANCELLED, SEQ + 5))
    assert not fold(sessions, job_event(job_id, Phase.RUNNING, SEQ + 6))  # still one ABORT
    start, abort = queued(sessions, job_id)
    assert (start.event_type, abort.event_type) == ("START", "ABORT")
    assert abort.event_time == cancelled_at


def test_reports_of_other_jobs_and_entities_do_not_mix(sessions: SessionFactory) -> None:
    first, second = seed_job(sessions), seed_job(sessions)
    fold(sessions, job_event(first, Phase.RUNNING, SEQ))
    fold(sessions, job_event(second, Phase.FAILED, SEQ))
    fold(sessions, job_event("no-such-job", Phase.RUNNING, SEQ))
    assert types(queued(sessions, first)) == ["START"]
    assert types(queued(sessions, second)) == ["START", "FAIL"]
    assert queued(sessions, "no-such-job") == []


def test_without_openlineage_nothing_is_queued(sessions: SessionFactory) -> None:
    job_id = seed_job(sessions)
    assert fold(sessions, job_event(job_id, Phase.RUNNING, SEQ), openlineage=False)
    assert fold(sessions, job_event(job_id, Phase.SUCCEEDED, SEQ + 1), openlineage=False)
    assert queued(sessions) == []
    assert RunEventType.START.value == "START"  # the outbox's vocabulary is OpenLineage's


def test_a_job_cancelled_while_pending_had_no_run_to_abort(sessions: SessionFactory) -> None:
    """A workflow stopped outside the gateway before it ran: the worker's Cancelled is applied
    to a Pending job, and no run is invented (no START, no ABORT)."""
    job_id = seed_job(sessions)
    assert fold(sessions, job_event(job_id, Phase.CANCELLED, SEQ))
    assert queued(sessions) == []


def test_a_started_job_cancelled_by_its_worker_ends_with_abort(sessions: SessionFactory) -> None:
    job_id = seed_job(sessions)
    fold(sessions, job_event(job_id, Phase.RUNNING, SEQ))
    assert fold(sessions, job_event(job_id, Phase.CANCELLED, SEQ + 1))
    assert types(queued(sessions)) == ["START", "ABORT"]
