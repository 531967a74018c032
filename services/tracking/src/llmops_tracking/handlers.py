"""Handlers of ``llmops.training``: a job gets a tracked run; a cancelled job's run is killed;
a built-in run record moves to MLflow on request (``migrate experiments-to-mlflow``).

Plain async functions ``(event, ports) -> status events``; ``app.py`` binds ``ports`` with
``functools.partial``. They report one ``experiment_run`` status event per handled event, whose
``details`` the gateway folds into its run record, so the shape built by :func:`run_details` is
a contract with the gateway (see docs/tracking.md).
"""

from __future__ import annotations

from typing import Final

from pydantic import JsonValue

from llmops_shared.events import (
    Envelope,
    Event,
    ExperimentMigrationRequested,
    Phase,
    StatusEntity,
    TrainingJobCancelled,
    TrainingJobSubmitted,
    status_event,
)
from llmops_shared.logging import get_logger
from llmops_tracking.adapters.builtin import builtin_run_id
from llmops_tracking.mapping import MIGRATED_FROM, migration_request, run_request
from llmops_tracking.ports import RunStatus, TrackedRun, TrackingPorts, TrackingRejected

REPORTER: Final = "tracking"

PHASES: Final = {
    RunStatus.SCHEDULED: Phase.PENDING,
    RunStatus.RUNNING: Phase.RUNNING,
    RunStatus.FINISHED: Phase.SUCCEEDED,
    RunStatus.FAILED: Phase.FAILED,
    RunStatus.KILLED: Phase.CANCELLED,
}
"""The status phase that reports a run in each tracking status."""

CARRIED_STATUSES: Final = {
    **{status.value.lower(): status for status in RunStatus},
    **{phase.value.lower(): status for status, phase in PHASES.items()},
}
"""``run_status`` of a migration: MLflow's names (``FINISHED``) or the gateway's phases
(``Succeeded``), case-insensitive."""

_log = get_logger(__name__)


async def handle_training_event(event: Event, ports: TrackingPorts) -> list[Envelope]:
    """Dispatch one event of ``llmops.training``; types this service does not act on are skipped."""
    payload = event.payload
    if isinstance(payload, TrainingJobSubmitted):
        return await handle_submitted(event, payload, ports)
    if isinstance(payload, TrainingJobCancelled):
        return await handle_cancelled(event, payload, ports)
    if isinstance(payload, ExperimentMigrationRequested):
        return await handle_migration(event, payload, ports)
    _log.info("event_not_for_tracking", event_type=event.type)
    return []


async def handle_submitted(
    event: Event, job: TrainingJobSubmitted, ports: TrackingPorts
) -> list[Envelope]:
    """Create or reuse the job's run and report it (normally ``Running``)."""
    request = run_request(
        job,
        environment=ports.environment,
        experiment_name_template=ports.experiment_name_template,
    )
    run = await ports.backend.ensure_run(request)
    _log.info(
        "run_tracked",
        job_id=job.job_id,
        run_id=run.run_id,
        experiment=run.experiment_name,
        backend=ports.backend.name,
        status=run.status.value,
    )
    return [run_status_event(event, run, job_id=job.job_id, backend=ports.backend.name)]


async def handle_cancelled(
    event: Event, cancel: TrainingJobCancelled, ports: TrackingPorts
) -> list[Envelope]:
    """Kill the job's run and report ``Cancelled``; a job without a run is logged, not an error.

    A run that had already finished or failed keeps its status, and the report says so.
    """
    run = await ports.backend.cancel_run(cancel.job_id, cancel.reason)
    if run is None:
        _log.warning(
            "cancel_without_run",
            job_id=cancel.job_id,
            backend=ports.backend.name,
            note="no run is tagged with this job id; nothing to stop, nothing reported",
        )
        return []
    reason = (
        cancel.reason
        if run.status is RunStatus.KILLED
        else f"cancel ignored: the run had already ended as {run.status.value}"
    )
    _log.info("run_cancelled", job_id=cancel.job_id, run_id=run.run_id, status=run.status.value)
    return [
        run_status_event(
            event, run, job_id=cancel.job_id, backend=ports.backend.name, reason=reason
        )
    ]


async def handle_migration(
    event: Event, migration: ExperimentMigrationRequested, ports: TrackingPorts
) -> list[Envelope]:
    """Move a built-in run record to the tracking system and report it like any run.

    The run is the job's own (created or reused by the job id tag, so a redelivery or a second
    request reuses it), with the record's params and tags, tagged ``llmops.migrated_from`` and
    ended like the record when its status is terminal. The report is the normal one (backend,
    run id, experiment, URL) plus ``details.migration``; its ``seq`` is now, later than any
    report of the built-in record. A migration that cannot be done (the built-in backend runs
    here, the tracking system refuses the record, an unknown ``run_status``) is answered on
    the built-in run with ``details.migration.outcome = failed``, the reason and the request's
    id, so the command does not wait forever; that answer is about the move, not the run: the
    gateway keeps the record's status and reason. An unreachable tracking system keeps the
    event pending like any other.
    """
    status = CARRIED_STATUSES.get(migration.run_status.strip().lower())
    if status is None:
        expected = ", ".join(s.value for s in RunStatus)
        return [
            migration_failed(
                event,
                migration,
                f"unknown run_status {migration.run_status!r} (expected one of {expected})",
            )
        ]
    request = migration_request(
        migration,
        environment=ports.environment,
        experiment_name_template=ports.experiment_name_template,
    )
    try:
        run = await ports.backend.migrate_run(request, status)
    except TrackingRejected as exc:
        _log.warning(
            "run_migration_failed",
            job_id=migration.job_id,
            target=migration.target,
            backend=ports.backend.name,
            reason=str(exc),
        )
        return [migration_failed(event, migration, str(exc))]
    _log.info(
        "run_migrated",
        job_id=migration.job_id,
        run_id=run.run_id,
        experiment=run.experiment_name,
        status=run.status.value,
    )
    details = run_details(run, job_id=migration.job_id, backend=ports.backend.name)
    details["migration"] = migration_facts(migration, outcome="migrated")
    return [
        status_event(
            StatusEntity.EXPERIMENT_RUN,
            entity_id=run.run_id,
            phase=PHASES[run.status],
            reporter=REPORTER,
            correlation_id=event.envelope.correlationid,
            details=details,
        )
    ]


def migration_facts(
    migration: ExperimentMigrationRequested, *, outcome: str, **more: JsonValue
) -> dict[str, JsonValue]:
    """``details.migration`` of a migration's report (``more``: a failure's reason and
    request id)."""
    return {
        "from": MIGRATED_FROM,
        "target": migration.target,
        "outcome": outcome,
        "run_status": migration.run_status,
        **more,
    }


def migration_failed(
    event: Event, migration: ExperimentMigrationRequested, reason: str
) -> Envelope:
    """The answer to a move that failed, on the built-in run record: ``Failed`` with the
    reason, and ``details.migration`` saying it is the move that failed (with the reason and
    the request's envelope id, which the gateway keeps so the command can tell this request's
    failure from an older one's). No ``backend`` nor experiment in the details: the record
    stays what it was, built-in; the gateway never takes the phase or reason of such a report
    as the run's."""
    reason = f"migration to {migration.target} failed: {reason}"
    return status_event(
        StatusEntity.EXPERIMENT_RUN,
        entity_id=builtin_run_id(migration.job_id),
        phase=Phase.FAILED,
        reporter=REPORTER,
        correlation_id=event.envelope.correlationid,
        reason=reason,
        details={
            "job_id": migration.job_id,
            "migration": migration_facts(
                migration, outcome="failed", reason=reason, request_id=event.id
            ),
        },
    )


def run_status_event(
    event: Event, run: TrackedRun, *, job_id: str, backend: str, reason: str | None = None
) -> Envelope:
    """The ``experiment_run`` status event reporting ``run``, correlated with ``event``."""
    return status_event(
        StatusEntity.EXPERIMENT_RUN,
        entity_id=run.run_id,
        phase=PHASES[run.status],
        reporter=REPORTER,
        correlation_id=event.envelope.correlationid,
        reason=reason or run.note,
        details=run_details(run, job_id=job_id, backend=backend),
    )


def run_details(run: TrackedRun, *, job_id: str, backend: str) -> dict[str, JsonValue]:
    """The ``details`` of the status event: the gateway's run record, field for field."""
    return {
        "job_id": job_id,
        "experiment_id": run.experiment_id,
        "experiment_name": run.experiment_name,
        "run_url": run.run_url,
        "backend": backend,
        "params": dict(run.params),
        "tags": dict(run.tags),
    }
