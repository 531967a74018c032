"""Migrating a built-in run record to MLflow (``ExperimentMigrationRequested``), real MLflow.

The record is what the built-in backend reported for a submitted job (params, tags); the
handler must turn it into the job's MLflow run (created or reused by the job id tag), mark it
migrated, end it like the record (with the record's times), and report it as any run is
reported, or answer on the built-in record that the *move* failed, with the reason and the
request's id, when it cannot move.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import pytest
from mlflow.tracking import MlflowClient

from llmops_shared.events import (
    Envelope,
    ExperimentMigrationRequested,
    ExperimentRunStatusUpdated,
    decode_event,
    encode_event,
    new_event,
)
from llmops_tracking.adapters.builtin import BuiltinTracking
from llmops_tracking.adapters.redis_locks import RedisRunLocks
from llmops_tracking.handlers import handle_training_event
from llmops_tracking.ports import TrackingPorts
from llmops_workflow.handlers import handle_training_event as workflow_handler

from integration.tracking.helpers import (
    CORRELATION_ID,
    new_job_id,
    received,
    runs_of_job,
    seed_spec,
    submitted,
)
from support.streams import details_of

pytestmark = pytest.mark.integration


@pytest.fixture
def builtin_ports(locks: RedisRunLocks, template: str) -> TrackingPorts:
    return TrackingPorts(
        backend=BuiltinTracking(), locks=locks, environment="dev", experiment_name_template=template
    )


async def builtin_record(job_id: str, ports: TrackingPorts, **hyperparams: Any) -> dict[str, Any]:
    """The details the built-in backend reported for the job's submission (the gateway's
    record: params and tags)."""
    [report] = await handle_training_event(received(submitted(job_id, **hyperparams)), ports)
    details: dict[str, Any] = details_of(decode_event(encode_event(report)).payload)
    assert details["backend"] == "builtin"
    return details


def migration(job_id: str, record: dict[str, Any], run_status: str, **hyperparams: Any) -> Envelope:
    """The request ``migrate experiments-to-mlflow`` queues for the record."""
    payload = ExperimentMigrationRequested(
        job_id=job_id,
        spec=seed_spec(**hyperparams),  # type: ignore[arg-type]
        run_status=run_status,
        params=record["params"],
        tags=record["tags"],
    )
    return new_event(payload, source="gateway", correlation_id=CORRELATION_ID)


def only_report(outputs: Sequence[Envelope]) -> ExperimentRunStatusUpdated:
    [envelope] = outputs
    decoded = decode_event(encode_event(envelope))
    assert decoded.envelope.source == "tracking"
    assert decoded.envelope.correlationid == CORRELATION_ID
    return decoded.payload_as(ExperimentRunStatusUpdated)


async def test_a_record_becomes_an_mlflow_run_with_its_params_tags_and_end(
    ports: TrackingPorts,
    builtin_ports: TrackingPorts,
    mlflow_reader: MlflowClient,
    template: str,
) -> None:
    job_id = new_job_id()
    record = await builtin_record(job_id, builtin_ports)
    record["tags"]["team"] = "nlp"  # whatever the record holds moves with it
    event = migration(job_id, record, "FINISHED")

    report = only_report(await handle_training_event(received(event), ports))

    [run] = runs_of_job(mlflow_reader, job_id)
    assert run.info.status == "FINISHED"
    assert run.info.run_name == f"train-{job_id}"
    experiment = mlflow_reader.get_experiment(run.info.experiment_id)
    assert experiment.name == template.format(environment="dev", job_type="SFT")
    assert run.data.params == record["params"]
    assert run.data.tags.items() >= {**record["tags"], "llmops.migrated_from": "builtin"}.items()
    # reported exactly as a normal run, plus what the migration did
    assert (report.entity_id, report.phase, report.reason) == (run.info.run_id, "Succeeded", None)
    details = details_of(report)
    assert details["job_id"] == job_id
    assert details["backend"] == "mlflow"
    assert details["experiment_id"] == run.info.experiment_id
    assert details["experiment_name"] == experiment.name
    assert details["run_url"] == (
        f"{mlflow_reader.tracking_uri}/#/experiments/{run.info.experiment_id}"
        f"/runs/{run.info.run_id}"
    )
    assert details["params"] == record["params"]
    assert details["tags"]["llmops.migrated_from"] == "builtin"
    assert details["migration"] == {
        "from": "builtin",
        "target": "mlflow",
        "outcome": "migrated",
        "run_status": "FINISHED",
    }


async def test_the_records_times_become_the_runs_start_and_end(
    ports: TrackingPorts, builtin_ports: TrackingPorts, mlflow_reader: MlflowClient
) -> None:
    """The event has no timestamps: the gateway sends the record's as tags, and the run is
    created with the record's start and ended with its end (not the migration's time)."""
    job_id = new_job_id()
    record = await builtin_record(job_id, builtin_ports)
    started = datetime(2026, 1, 2, 3, 4, 5, 678000, tzinfo=UTC)
    ended = datetime(2026, 1, 2, 5, 0, 0, tzinfo=UTC)
    record["tags"] |= {
        "llmops.builtin_started_at": started.replace(tzinfo=None).isoformat(),  # naive: UTC
        "llmops.builtin_ended_at": ended.isoformat(),
        "llmops.status_reason": "cancelled by alice: wrong dataset",
    }

    report = only_report(
        await handle_training_event(received(migration(job_id, record, "KILLED")), ports)
    )

    [run] = runs_of_job(mlflow_reader, job_id)
    assert (run.info.status, report.phase) == ("KILLED", "Cancelled")
    assert run.info.start_time == int(started.timestamp() * 1000)
    assert run.info.end_time == int(ended.timestamp() * 1000)
    assert run.data.tags["llmops.status_reason"] == "cancelled by alice: wrong dataset"


async def test_unreadable_times_are_ignored(
    ports: TrackingPorts, builtin_ports: TrackingPorts, mlflow_reader: MlflowClient
) -> None:
    job_id = new_job_id()
    record = await builtin_record(job_id, builtin_ports)
    record["tags"] |= {"llmops.builtin_started_at": "yesterday"}
    before = int(datetime.now(UTC).timestamp() * 1000)

    await handle_training_event(received(migration(job_id, record, "FINISHED")), ports)

    [run] = runs_of_job(mlflow_reader, job_id)
    assert run.info.start_time >= before - 1000
    assert run.info.end_time >= run.info.start_time


async def test_a_redelivered_request_reuses_the_run(
    ports: TrackingPorts, builtin_ports: TrackingPorts, mlflow_reader: MlflowClient
) -> None:
    job_id = new_job_id()
    record = await builtin_record(job_id, builtin_ports)
    event = received(migration(job_id, record, "Cancelled"))  # a gateway phase works too

    first = only_report(await handle_training_event(event, ports))
    again = only_report(await handle_training_event(event, ports))

    [run] = runs_of_job(mlflow_reader, job_id)
    assert first.entity_id == again.entity_id == run.info.run_id
    assert (first.phase, again.phase) == ("Cancelled", "Cancelled")
    assert run.info.status == "KILLED"
    assert again.seq > first.seq


async def test_a_running_record_reuses_the_jobs_mlflow_run_and_keeps_it_running(
    ports: TrackingPorts, builtin_ports: TrackingPorts, mlflow_reader: MlflowClient
) -> None:
    job_id = new_job_id()
    [created] = await handle_training_event(received(submitted(job_id)), ports)  # MLflow on
    record = await builtin_record(job_id, builtin_ports)

    report = only_report(
        await handle_training_event(received(migration(job_id, record, "RUNNING")), ports)
    )

    [run] = runs_of_job(mlflow_reader, job_id)
    assert report.entity_id == run.info.run_id == created.subject
    assert report.phase == "Running"
    assert run.info.status == "RUNNING"
    assert run.data.tags["llmops.migrated_from"] == "builtin"


async def test_the_builtin_backend_answers_failed_with_the_reason(
    builtin_ports: TrackingPorts, mlflow_reader: MlflowClient
) -> None:
    job_id = new_job_id()
    record = await builtin_record(job_id, builtin_ports)

    request = migration(job_id, record, "RUNNING")
    report = only_report(await handle_training_event(received(request), builtin_ports))

    assert (report.entity_id, report.phase) == (f"builtin-{job_id}", "Failed")
    reason = (
        "migration to mlflow failed: experiment tracking is disabled "
        "(EXPERIMENT_TRACKING_ENABLED=false): enable it before migrating"
    )
    assert report.reason == reason
    assert "backend" not in details_of(report)  # the record stays built-in
    # the gateway keeps this in the record's migration error, not its status: it needs the
    # request's id to tell this answer from an older request's
    assert details_of(report)["migration"] == {
        "from": "builtin",
        "target": "mlflow",
        "outcome": "failed",
        "run_status": "RUNNING",
        "reason": reason,
        "request_id": request.id,
    }
    assert runs_of_job(mlflow_reader, job_id) == []


async def test_a_record_mlflow_refuses_is_answered_failed_not_dead_lettered(
    ports: TrackingPorts, builtin_ports: TrackingPorts, mlflow_reader: MlflowClient
) -> None:
    job_id = new_job_id()
    await handle_training_event(received(submitted(job_id, lr=0.5)), ports)
    record = await builtin_record(job_id, builtin_ports)  # lr 0.0001: MLflow keeps params

    report = only_report(
        await handle_training_event(received(migration(job_id, record, "FINISHED")), ports)
    )

    assert report.phase == "Failed"
    assert report.reason is not None
    assert report.reason.startswith("migration to mlflow failed: MLflow rejected migrating")
    assert "Changing param values is not allowed" in report.reason
    [run] = runs_of_job(mlflow_reader, job_id)
    assert run.info.status == "RUNNING"  # untouched


async def test_an_unknown_run_status_is_answered_failed(
    ports: TrackingPorts, builtin_ports: TrackingPorts, mlflow_reader: MlflowClient
) -> None:
    job_id = new_job_id()
    record = await builtin_record(job_id, builtin_ports)

    report = only_report(
        await handle_training_event(received(migration(job_id, record, "Paused")), ports)
    )

    assert report.phase == "Failed"
    assert "unknown run_status 'Paused'" in (report.reason or "")
    assert runs_of_job(mlflow_reader, job_id) == []


async def test_the_workflow_worker_ignores_a_migration_request() -> None:
    """Same stream, other consumer group: nothing is re-run (it never touches its ports)."""
    event = received(migration(new_job_id(), {"params": {}, "tags": {}}, "RUNNING"))
    assert await workflow_handler(event, ports=None) == []  # type: ignore[arg-type]
