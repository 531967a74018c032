"""Handlers of ``llmops.training``: a job gets a tracked run; a cancelled job's run is killed;
a built-in run record moves to MLflow on request (``migrate experiments-to-mlflow``, handled by
:mod:`llmops_tracking.moves`).

Plain async functions ``(event, ports) -> status events``; ``app.py`` binds ``ports`` with
``functools.partial``. They report one ``experiment_run`` status event per handled event, whose
``details`` (:class:`~llmops_shared.events.payloads.details.ExperimentRunDetails`, built by
:func:`~llmops_tracking.mapping.run_details`) the gateway folds into its run record (see
docs/tracking.md).

Every handler touches the job's run only while holding the job's lock (``ports.locks``), which
every replica of the worker shares: two events about one job (a redelivery claimed by a second
replica, a job's submission and its migration) are handled one after the other, so the second
finds the run the first made instead of creating another.
"""

from __future__ import annotations

from typing import Final

from llmops_shared.dispatch import Dispatcher
from llmops_shared.events import (
    Envelope,
    Event,
    ExperimentMigrationRequested,
    TrainingJobCancelled,
    TrainingJobSubmitted,
)
from llmops_shared.logging import get_logger
from llmops_tracking.mapping import run_request, run_status_event
from llmops_tracking.moves import handle_move
from llmops_tracking.ports import RunStatus, TrackingPorts

_log = get_logger(__name__)


async def handle_submitted(
    event: Event, job: TrainingJobSubmitted, ports: TrackingPorts
) -> list[Envelope]:
    """Create or reuse the job's run and report it (normally ``Running``)."""
    request = run_request(
        job,
        environment=ports.environment,
        experiment_name_template=ports.experiment_name_template,
    )
    async with ports.locks.hold(job.job_id) as lease:
        run = await ports.backend.ensure_run(request, lease)
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
    async with ports.locks.hold(cancel.job_id):
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


handle_training_event: Final[Dispatcher[TrackingPorts]] = Dispatcher(
    "tracking",
    {
        TrainingJobSubmitted: handle_submitted,
        TrainingJobCancelled: handle_cancelled,
        ExperimentMigrationRequested: handle_move,
    },
)
"""The handler of ``llmops.training``: ``handler(event, ports)``; types this service does not act
on are skipped."""
