"""The tracking handlers against an in-memory backend: what each event asks of the backend
and what the one status report says (the MLflow adapter has its own tests against a server)."""

from __future__ import annotations

import asyncio
import copy
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import pytest

from llmops_shared.events import (
    Envelope,
    Event,
    ExperimentMigrationRequested,
    ExperimentRunStatusUpdated,
    ModelVersionRegistered,
    Phase,
    StatusEntity,
    TrainingJobCancelled,
    TrainingJobSubmitted,
    decode_event,
    encode_event,
    new_event,
)
from llmops_shared.specs.examples import SEED_TRAIN_JOB_SPEC
from llmops_shared.streams import DependencyUnavailableError, NonRetryableError, is_retryable
from llmops_tracking.handlers import handle_training_event
from llmops_tracking.ports import (
    RunLeaseLost,
    RunLockBusy,
    RunLockUnavailable,
    RunStatus,
    TrackingPorts,
    TrackingRejected,
    TrackingUnavailable,
)

from support.fakes.tracking import FakeRunLocks, FakeTracking

pytestmark = pytest.mark.unit

CORRELATION_ID = "req-tracking-unit"
TEMPLATE = "llm-ops/{environment}/{job_type}/{model_family}"
EXPERIMENT = "llm-ops/dev/SFT/llama"


def new_id() -> str:
    return str(uuid.uuid4())


def received(envelope: Envelope) -> Event:
    """The event as a consumer decodes it off the stream."""
    return decode_event(encode_event(envelope))


def submitted(job_id: str, *, model_id: str | None = None, dataset_id: str | None = None) -> Event:
    payload = TrainingJobSubmitted.model_validate(
        {
            "job_id": job_id,
            "model_id": model_id,
            "dataset_id": dataset_id,
            "spec": copy.deepcopy(SEED_TRAIN_JOB_SPEC),
        }
    )
    return received(new_event(payload, source="gateway", correlation_id=CORRELATION_ID))


def cancelled(job_id: str, reason: str = "user asked") -> Event:
    payload = TrainingJobCancelled(job_id=job_id, reason=reason)
    return received(new_event(payload, source="gateway", correlation_id=CORRELATION_ID))


def migration(
    job_id: str,
    run_status: str,
    *,
    params: dict[str, Any] | None = None,
    tags: dict[str, Any] | None = None,
) -> Event:
    payload = ExperimentMigrationRequested.model_validate(
        {
            "job_id": job_id,
            "spec": copy.deepcopy(SEED_TRAIN_JOB_SPEC),
            "run_status": run_status,
            "params": params or {},
            "tags": tags or {},
        }
    )
    return received(new_event(payload, source="gateway", correlation_id=CORRELATION_ID))


def only_report(outputs: Sequence[Envelope]) -> ExperimentRunStatusUpdated:
    """The single report a handler returned, as the gateway decodes it."""
    [envelope] = outputs
    event = received(envelope)
    assert event.envelope.source == "tracking"
    assert event.envelope.correlationid == CORRELATION_ID
    return event.payload_as(ExperimentRunStatusUpdated)


@pytest.fixture
def journal() -> list[str]:
    """What the backend and the locks did, in order (shared by both fakes)."""
    return []


@pytest.fixture
def backend(journal: list[str]) -> FakeTracking:
    return FakeTracking(backend_name="mlflow", journal=journal)


@pytest.fixture
def locks(journal: list[str]) -> FakeRunLocks:
    return FakeRunLocks(journal=journal)


@pytest.fixture
def ports(backend: FakeTracking, locks: FakeRunLocks) -> TrackingPorts:
    return TrackingPorts(
        backend=backend, locks=locks, environment="dev", experiment_name_template=TEMPLATE
    )


# ------------------------------------------------------------------------------ submitted


async def test_a_submitted_job_gets_a_run_reported_running_with_its_facts(
    backend: FakeTracking, ports: TrackingPorts
) -> None:
    job_id = new_id()
    report = only_report(await handle_training_event(submitted(job_id), ports))

    run = backend.runs[job_id]
    assert report.entity is StatusEntity.EXPERIMENT_RUN
    assert report.entity_id == run.run_id
    assert report.phase is Phase.RUNNING
    assert report.reporter == "tracking"
    assert report.reason is None
    details = report.details
    assert details.job_id == job_id
    assert details.experiment_id == run.experiment_id
    assert details.experiment_name == EXPERIMENT
    assert details.run_url == f"http://tracking.test/#/experiments/1/runs/{run.run_id}"
    assert details.backend == "mlflow"
    assert details.params == dict(run.params)
    assert details.tags == dict(run.tags)


async def test_the_run_request_is_derived_from_the_event_and_settings(
    backend: FakeTracking, ports: TrackingPorts
) -> None:
    job_id, model_id = new_id(), new_id()
    await handle_training_event(submitted(job_id, model_id=model_id), ports)

    [request] = backend.requests
    assert request.job_id == job_id
    assert request.run_name == f"train-{job_id}"
    assert request.experiment_name == EXPERIMENT
    assert request.params["hyperparams.lr"] == "0.0001"
    assert request.params["resources.gpus"] == "2"
    assert request.params["use_gpu"] == "True"
    assert request.tags["llmops.job_id"] == job_id
    assert request.tags["llmops.model_id"] == model_id
    assert request.tags["llmops.environment"] == "dev"
    assert "llmops.dataset_id" not in request.tags  # not in the catalog: no tag at all
    assert request.start_time_ms is None
    assert request.end_time_ms is None


async def test_a_redelivered_submission_reuses_the_run(
    backend: FakeTracking, ports: TrackingPorts
) -> None:
    job_id = new_id()
    event = submitted(job_id)
    first = only_report(await handle_training_event(event, ports))
    second = only_report(await handle_training_event(event, ports))

    assert second.entity_id == first.entity_id
    assert len(backend.runs) == 1
    assert backend.requests[0] == backend.requests[1]  # deterministic: the same run asked for
    assert second.seq > first.seq


@pytest.mark.parametrize(
    ("status", "phase"),
    [
        (RunStatus.SCHEDULED, Phase.PENDING),
        (RunStatus.RUNNING, Phase.RUNNING),
        (RunStatus.FINISHED, Phase.SUCCEEDED),
        (RunStatus.FAILED, Phase.FAILED),
        (RunStatus.KILLED, Phase.CANCELLED),
    ],
)
async def test_the_report_phase_follows_the_runs_status(
    backend: FakeTracking, ports: TrackingPorts, status: RunStatus, phase: Phase
) -> None:
    job_id = new_id()
    await handle_training_event(submitted(job_id), ports)
    backend.set_status(job_id, status)

    report = only_report(await handle_training_event(submitted(job_id), ports))
    assert report.phase is phase


async def test_a_backend_note_becomes_the_reports_reason() -> None:
    backend = FakeTracking(backend_name="builtin", ui_url=None, note="records live elsewhere")
    ports = TrackingPorts(
        backend=backend, locks=FakeRunLocks(), environment="dev", experiment_name_template=TEMPLATE
    )

    report = only_report(await handle_training_event(submitted(new_id()), ports))
    assert report.reason == "records live elsewhere"
    assert report.details.backend == "builtin"
    assert report.details.run_url is None


async def test_an_unreachable_backend_keeps_the_submission_pending(
    backend: FakeTracking, ports: TrackingPorts
) -> None:
    backend.fail = TrackingUnavailable("mlflow answered 503")
    with pytest.raises(DependencyUnavailableError):
        await handle_training_event(submitted(new_id()), ports)


async def test_a_rejected_submission_is_not_retried_and_reports_nothing(
    backend: FakeTracking, ports: TrackingPorts
) -> None:
    """A 4xx from the tracking system dead-letters the event (docs/tracking.md): the error
    leaves the handler as a NonRetryableError, no status report is built."""
    backend.fail = TrackingRejected("Changing param values is not allowed")
    with pytest.raises(NonRetryableError, match="Changing param values"):
        await handle_training_event(submitted(new_id()), ports)
    assert backend.runs == {}


# ------------------------------------------------------------------------------ cancelled


async def test_a_cancel_kills_the_running_run_and_reports_cancelled(
    backend: FakeTracking, ports: TrackingPorts
) -> None:
    job_id = new_id()
    started = only_report(await handle_training_event(submitted(job_id), ports))

    report = only_report(await handle_training_event(cancelled(job_id, "not needed"), ports))
    assert backend.cancels == [(job_id, "not needed")]
    assert backend.runs[job_id].status is RunStatus.KILLED
    assert report.entity_id == started.entity_id
    assert report.phase is Phase.CANCELLED
    assert report.reason == "not needed"
    assert report.details.job_id == job_id
    assert report.details.backend == "mlflow"


async def test_a_cancel_of_an_ended_run_keeps_its_status_and_says_so(
    backend: FakeTracking, ports: TrackingPorts
) -> None:
    job_id = new_id()
    await handle_training_event(submitted(job_id), ports)
    backend.set_status(job_id, RunStatus.FINISHED)

    report = only_report(await handle_training_event(cancelled(job_id), ports))
    assert backend.runs[job_id].status is RunStatus.FINISHED
    assert report.phase is Phase.SUCCEEDED
    assert report.reason == "cancel ignored: the run had already ended as FINISHED"


async def test_a_cancel_of_a_job_without_a_run_reports_nothing(
    backend: FakeTracking, ports: TrackingPorts
) -> None:
    job_id = new_id()
    assert await handle_training_event(cancelled(job_id), ports) == []
    assert backend.cancels == [(job_id, "user asked")]


async def test_a_cancel_while_the_backend_is_down_stays_pending(
    backend: FakeTracking, ports: TrackingPorts
) -> None:
    backend.fail = TrackingUnavailable("connection refused")
    with pytest.raises(TrackingUnavailable):
        await handle_training_event(cancelled(new_id()), ports)


# ------------------------------------------------------------------------------ other types


async def test_an_event_tracking_does_not_act_on_is_skipped(
    backend: FakeTracking, ports: TrackingPorts
) -> None:
    payload = ModelVersionRegistered(
        model_name="m",
        version="1",
        run_id="abc",
        source="models:/m/1",
        created_at=datetime(2024, 1, 1, tzinfo=UTC),
    )
    event = received(new_event(payload, source="tracking"))

    assert await handle_training_event(event, ports) == []
    assert (backend.requests, backend.cancels, backend.migrations) == ([], [], [])


# ------------------------------------------------------------------------------ migration


async def test_a_migration_moves_the_record_with_its_values_and_reports_it(
    backend: FakeTracking, ports: TrackingPorts
) -> None:
    job_id = new_id()
    event = migration(
        job_id,
        "FINISHED",
        params={"hyperparams.lr": 0.5, "extra": {"b": 1, "a": [2]}},
        tags={"note": "kept", "llmops.job_id": "someone-else"},
    )
    report = only_report(await handle_training_event(event, ports))

    [(request, status)] = backend.migrations
    assert status is RunStatus.FINISHED
    assert request.params["hyperparams.lr"] == "0.5"  # the recorded value wins over the spec's
    assert request.params["extra"] == '{"a":[2],"b":1}'
    assert request.params["resources.gpus"] == "2"
    assert request.tags["note"] == "kept"
    assert request.tags["llmops.job_id"] == job_id  # always the event's
    assert request.tags["llmops.migrated_from"] == "builtin"

    run = backend.runs[job_id]
    assert report.entity_id == run.run_id
    assert report.phase is Phase.SUCCEEDED
    assert report.details.backend == "mlflow"
    assert report.details.experiment_name == EXPERIMENT
    move = report.details.migration
    assert move is not None
    assert (move.outcome, move.source, move.target, move.run_status) == (
        "migrated",
        "builtin",
        "mlflow",
        "FINISHED",
    )
    assert move.reason is None
    assert move.request_id is None


async def test_a_migration_carries_the_records_times(
    backend: FakeTracking, ports: TrackingPorts
) -> None:
    tags = {
        "llmops.builtin_started_at": "2024-01-02T03:04:05+00:00",
        "llmops.builtin_ended_at": "2024-01-02T04:00:00",  # naive: UTC
    }
    await handle_training_event(migration(new_id(), "FAILED", tags=tags), ports)

    [(request, _)] = backend.migrations
    assert request.start_time_ms == 1_704_164_645_000
    assert request.end_time_ms == 1_704_168_000_000


@pytest.mark.parametrize(
    ("run_status", "expected"),
    [
        ("Succeeded", RunStatus.FINISHED),
        (" cancelled ", RunStatus.KILLED),
        ("running", RunStatus.RUNNING),
        ("Failed", RunStatus.FAILED),
    ],
)
async def test_a_migrations_run_status_may_be_a_gateway_phase(
    backend: FakeTracking, ports: TrackingPorts, run_status: str, expected: RunStatus
) -> None:
    await handle_training_event(migration(new_id(), run_status), ports)
    [(_, status)] = backend.migrations
    assert status is expected


async def test_a_migration_reuses_the_jobs_run(backend: FakeTracking, ports: TrackingPorts) -> None:
    job_id = new_id()
    submitted_report = only_report(await handle_training_event(submitted(job_id), ports))

    report = only_report(await handle_training_event(migration(job_id, "RUNNING"), ports))
    assert report.entity_id == submitted_report.entity_id
    assert report.phase is Phase.RUNNING
    assert len(backend.runs) == 1


async def test_an_unknown_run_status_is_answered_failed_on_the_builtin_record(
    backend: FakeTracking, ports: TrackingPorts
) -> None:
    job_id = new_id()
    event = migration(job_id, "Paused")
    report = only_report(await handle_training_event(event, ports))

    assert backend.migrations == []
    assert report.entity_id == f"builtin-{job_id}"
    assert report.phase is Phase.FAILED
    assert report.reason is not None
    assert report.reason.startswith("migration to mlflow failed: unknown run_status 'Paused'")
    details = report.details
    assert details.job_id == job_id
    assert details.backend is None  # the record stays built-in: nothing about a backend
    assert details.experiment_name is None
    assert "backend" not in details.model_dump(mode="json")
    move = details.migration
    assert move is not None
    assert (move.outcome, move.reason, move.request_id) == ("failed", report.reason, event.id)


async def test_a_refused_migration_is_answered_failed_not_dead_lettered(
    backend: FakeTracking, ports: TrackingPorts
) -> None:
    job_id = new_id()
    backend.reject_migration = TrackingRejected("tracking is disabled")
    event = migration(job_id, "FINISHED")

    report = only_report(await handle_training_event(event, ports))
    assert report.entity_id == f"builtin-{job_id}"
    assert report.phase is Phase.FAILED
    assert report.reason == "migration to mlflow failed: tracking is disabled"
    assert report.details.migration is not None
    assert report.details.migration.request_id == event.id
    assert report.details.migration.run_status == "FINISHED"


async def test_a_migration_while_the_backend_is_down_stays_pending(
    backend: FakeTracking, ports: TrackingPorts
) -> None:
    backend.fail = TrackingUnavailable("mlflow answered 503")
    with pytest.raises(DependencyUnavailableError):
        await handle_training_event(migration(new_id(), "FINISHED"), ports)


# ------------------------------------------------------------------------------ the job's lock


async def test_every_handler_touches_the_run_only_under_the_jobs_lock(
    journal: list[str], ports: TrackingPorts
) -> None:
    job_id = new_id()
    await handle_training_event(submitted(job_id), ports)
    await handle_training_event(migration(job_id, "RUNNING"), ports)
    await handle_training_event(cancelled(job_id), ports)

    assert journal == [
        f"lock {job_id}",
        f"ensure_run {job_id}",
        f"create {job_id}",
        f"unlock {job_id}",
        f"lock {job_id}",
        f"migrate_run {job_id}",
        f"unlock {job_id}",
        f"lock {job_id}",
        f"cancel_run {job_id}",
        f"unlock {job_id}",
    ]


async def test_two_events_of_one_job_at_once_are_handled_one_after_the_other(
    backend: FakeTracking, journal: list[str], ports: TrackingPorts
) -> None:
    """A submission and its migration at the same time (two replicas share the locks): the
    second waits for the first, finds its run and reuses it."""
    job_id = new_id()
    first, second = await asyncio.gather(
        handle_training_event(submitted(job_id), ports),
        handle_training_event(migration(job_id, "RUNNING"), ports),
    )

    assert only_report(first).entity_id == only_report(second).entity_id
    assert len(backend.runs) == 1
    assert journal.count(f"create {job_id}") == 1
    assert [entry.split()[0] for entry in journal] == [
        "lock",
        "ensure_run",
        "create",
        "unlock",
        "lock",
        "migrate_run",
        "unlock",
    ]


async def test_other_jobs_do_not_wait_for_a_jobs_lock(
    backend: FakeTracking, locks: FakeRunLocks, ports: TrackingPorts
) -> None:
    locks.busy.add("someone-elses-job")
    report = only_report(await handle_training_event(submitted(new_id()), ports))
    assert report.phase is Phase.RUNNING


@pytest.mark.parametrize(
    "event",
    [
        lambda job_id: submitted(job_id),
        lambda job_id: migration(job_id, "FINISHED"),
        lambda job_id: cancelled(job_id),
    ],
    ids=["submitted", "migration", "cancelled"],
)
async def test_a_lock_held_too_long_elsewhere_is_retried_later(
    backend: FakeTracking, locks: FakeRunLocks, ports: TrackingPorts, event: Any
) -> None:
    """Another replica holds the job's lock longer than we wait: an ordinary retryable failure
    (counted: a lock that never frees ends in the dead letters), nothing touched, no report
    (a migration is not answered failed: the move may well succeed on the retry)."""
    job_id = new_id()
    locks.busy.add(job_id)

    with pytest.raises(RunLockBusy) as caught:
        await handle_training_event(event(job_id), ports)

    assert is_retryable(caught.value)
    assert not isinstance(caught.value, DependencyUnavailableError | NonRetryableError)
    assert backend.runs == {}
    assert (backend.requests, backend.migrations, backend.cancels) == ([], [], [])


async def test_a_lease_lost_before_the_create_creates_nothing_and_is_retried(
    backend: FakeTracking, locks: FakeRunLocks, ports: TrackingPorts
) -> None:
    job_id = new_id()
    locks.lose.add(job_id)

    with pytest.raises(RunLeaseLost) as caught:
        await handle_training_event(submitted(job_id), ports)
    assert is_retryable(caught.value)
    assert backend.runs == {}

    locks.lose.clear()  # the retry, once the lock is ours again
    report = only_report(await handle_training_event(submitted(job_id), ports))
    assert report.entity_id == backend.runs[job_id].run_id


async def test_locks_out_of_reach_keep_the_event_pending(
    backend: FakeTracking, locks: FakeRunLocks, ports: TrackingPorts
) -> None:
    locks.fail = RunLockUnavailable("cannot take the run lock: Redis is down")
    with pytest.raises(DependencyUnavailableError):
        await handle_training_event(submitted(new_id()), ports)
    assert backend.requests == []
