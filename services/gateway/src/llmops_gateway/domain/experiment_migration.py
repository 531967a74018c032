"""Moving built-in experiment runs to MLflow: the plan, the requests, and how each one ended.

Pure logic over a :class:`~sqlalchemy.orm.Session` for ``migrate experiments-to-mlflow``
(:mod:`llmops_gateway.scripts.migrate_experiments` does the console, Redis and waiting):

1. :func:`plan` lists the job runs the built-in backend recorded (``experiment_runs.backend =
   'builtin'``), each with the status its MLflow run should get, or why it cannot move;
2. :func:`queue` adds one ``ExperimentMigrationRequested`` per movable run to the outbox, in the
   caller's transaction. The envelope id is derived from the job id and the record's ``seq``
   (:func:`migration_event_id`): asking again before the first request was answered gives the
   same id, which is already in the outbox (not queued twice) and in the tracking worker's
   idempotency store (not handled twice); once a report changed the record (a failed attempt),
   the next request is a new event;
3. :func:`outcomes` reads how each request ended: the record moved to another backend
   (migrated), or a newer report marked it ``Failed`` (the worker said why), or neither yet.
"""

from __future__ import annotations

import uuid
from collections.abc import Collection, Sequence
from dataclasses import asdict, dataclass
from typing import Any, Final, Literal

from pydantic import ValidationError
from sqlalchemy import select
from sqlalchemy.orm import Session

from llmops_gateway.db.models import ExperimentRun, TrainingJob
from llmops_gateway.domain.move_requests import Queued, queue_once
from llmops_gateway.domain.reports import brief
from llmops_shared.events import ExperimentMigrationRequested
from llmops_shared.specs import TrainJobSpec

BUILTIN: Final = "builtin"
TARGET: Final = "mlflow"
ENVIRONMENT_TAG: Final = "llmops.environment"

EVENT_ID_NAMESPACE: Final = uuid.UUID("5d0c4a8e-6f7b-4a43-9d0e-2c1b8f3e7a61")
"""uuid5 namespace of the migration requests' envelope ids (never change it: ids would change)."""

RUN_STATUS_OF_PHASE: Final = {
    "Pending": "SCHEDULED",
    "Running": "RUNNING",
    "Succeeded": "FINISHED",
    "Failed": "FAILED",
    "Cancelled": "KILLED",
}
"""The MLflow run status matching each phase a run or a job is reported in."""

FINISHED_JOB: Final = frozenset({"Succeeded", "Failed", "Cancelled"})

MIGRATION_FAILURE_PREFIX: Final = "migration to "
"""How the tracking worker's reason of a failed migration starts (``migration to mlflow failed:
...``): such a ``Failed`` is about the move, not the run."""

Outcome = Literal["migrated", "failed", "pending"]


def migration_event_id(job_id: str, seq: int) -> str:
    """The envelope id of the request to move ``job_id``'s run as recorded at ``seq``."""
    return str(uuid.uuid5(EVENT_ID_NAMESPACE, f"{job_id}:migrate-{TARGET}:{seq}"))


def carried_run_status(run_status: str, run_reason: str | None, job_status: str | None) -> str:
    """The status the MLflow run gets: how the job ended when it has (the built-in backend
    never ends a run itself: only a cancel reaches it); else how the run record ended (a
    ``Failed`` that was a failed migration does not count); else ``RUNNING``."""
    if job_status in FINISHED_JOB:
        return RUN_STATUS_OF_PHASE[job_status]
    failed_move = run_status == "Failed" and (run_reason or "").startswith(MIGRATION_FAILURE_PREFIX)
    if run_status in FINISHED_JOB and not failed_move:
        return RUN_STATUS_OF_PHASE[run_status]
    return "RUNNING"


@dataclass(frozen=True)
class PlannedRun:
    """A built-in run record and what moving it means.

    ``skipped`` says why it cannot move (no job row, a stored spec that no longer validates);
    ``spec`` is the validated spec otherwise.
    """

    job_id: str
    run_id: str
    experiment_name: str | None
    status: str
    reason: str | None
    job_status: str | None
    run_status: str
    seq: int
    params: dict[str, Any]
    tags: dict[str, Any]
    spec: TrainJobSpec | None
    skipped: str | None = None

    @property
    def event_id(self) -> str:
        return migration_event_id(self.job_id, self.seq)

    def as_dict(self) -> dict[str, Any]:
        return {
            "job_id": self.job_id,
            "run_id": self.run_id,
            "experiment_name": self.experiment_name,
            "status": self.status,
            "job_status": self.job_status,
            "run_status": self.run_status,
            "action": "skip" if self.skipped else "migrate",
            "skipped": self.skipped,
        }


def _planned(run: ExperimentRun, job: TrainingJob | None) -> PlannedRun:
    spec: TrainJobSpec | None = None
    skipped: str | None = None
    if job is None:
        skipped = "the training job is not in the gateway DB: no spec to migrate"
    else:
        try:
            spec = TrainJobSpec.model_validate(job.spec)
        except ValidationError as exc:
            skipped = f"the stored spec is not a valid TrainJobSpec: {brief(exc)}"
    return PlannedRun(
        job_id=run.job_id,
        run_id=run.run_id,
        experiment_name=run.experiment_name,
        status=run.status,
        reason=run.reason,
        job_status=None if job is None else job.status,
        run_status=carried_run_status(run.status, run.reason, None if job is None else job.status),
        seq=run.seq,
        params=dict(run.params or {}),
        tags=dict(run.tags or {}),
        spec=spec,
        skipped=skipped,
    )


def plan(
    session: Session, *, job_ids: Collection[str] = (), environment: str | None = None
) -> list[PlannedRun]:
    """The built-in runs to move, oldest first: only ``job_ids`` when given, and only those
    recorded in ``environment`` (their ``llmops.environment`` tag; a run without one counts as
    any environment's)."""
    query = (
        select(ExperimentRun, TrainingJob)
        .outerjoin(TrainingJob, TrainingJob.id == ExperimentRun.job_id)
        .where(ExperimentRun.backend == BUILTIN)
        .order_by(ExperimentRun.created_at, ExperimentRun.job_id)
    )
    if job_ids:
        query = query.where(ExperimentRun.job_id.in_(list(job_ids)))
    planned = []
    for run, job in session.execute(query):
        recorded_in = (run.tags or {}).get(ENVIRONMENT_TAG)
        if environment is not None and recorded_in not in (None, environment):
            continue
        planned.append(_planned(run, job))
    return planned


def migration_request(run: PlannedRun) -> ExperimentMigrationRequested:
    """The event payload moving ``run`` (which must not be skipped)."""
    if run.spec is None:
        raise ValueError(f"the run of job {run.job_id} cannot be migrated: {run.skipped}")
    return ExperimentMigrationRequested(
        job_id=run.job_id,
        spec=run.spec,
        target=TARGET,
        run_status=run.run_status,
        params=run.params,
        tags=run.tags,
    )


def queue(
    session: Session, runs: Sequence[PlannedRun], *, correlation_id: str
) -> Queued[PlannedRun]:
    """Add a migration request per movable run to the outbox of the open transaction; a
    request whose id is already there (asked before, not answered yet) is not added again."""
    movable = [run for run in runs if run.skipped is None]
    return queue_once(session, movable, migration_request, correlation_id=correlation_id)


@dataclass(frozen=True)
class RunOutcome:
    """Where one requested move stands, from the run record."""

    job_id: str
    outcome: Outcome
    status: str | None
    reason: str | None
    backend: str | None
    run_id: str | None
    experiment_id: str | None
    tracking_url: str | None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _outcome(planned: PlannedRun, run: ExperimentRun | None) -> RunOutcome:
    if run is None:
        return RunOutcome(planned.job_id, "pending", None, None, None, None, None, None)
    if run.backend != BUILTIN:
        outcome: Outcome = "migrated"
    elif run.seq != planned.seq and run.status == "Failed":
        outcome = "failed"
    else:
        outcome = "pending"
    return RunOutcome(
        job_id=planned.job_id,
        outcome=outcome,
        status=run.status,
        reason=run.reason,
        backend=run.backend,
        run_id=run.run_id,
        experiment_id=run.experiment_id,
        tracking_url=run.tracking_url,
    )


def outcomes(session: Session, runs: Sequence[PlannedRun]) -> list[RunOutcome]:
    """How each requested move stands now, in the order of ``runs``."""
    if not runs:
        return []
    rows = {
        row.job_id: row
        for row in session.scalars(
            select(ExperimentRun).where(ExperimentRun.job_id.in_([r.job_id for r in runs]))
        )
    }
    return [_outcome(run, rows.get(run.job_id)) for run in runs]
