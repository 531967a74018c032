"""Moving built-in experiment runs to MLflow: the plan, the requests, and how each one ended.

Pure logic over a :class:`~sqlalchemy.orm.Session` for ``migrate experiments-to-mlflow``
(:mod:`llmops_gateway.moves.cli` does the console, Redis and waiting):

1. :func:`plan` lists the job runs the built-in backend recorded (``experiment_runs.backend =
   'builtin'``), each with the status its MLflow run should get, or why it cannot move;
2. :func:`queue` adds one ``ExperimentMigrationRequested`` per movable run to the outbox, in the
   caller's transaction. The envelope id is derived from the job id, the record's ``seq`` and
   the id of the last request that failed, if any (:func:`move_event_id`): asking again
   before the first request was answered gives the same id, which is already in the outbox
   (not queued twice) and in the tracking worker's idempotency store (not handled twice); once
   a request failed, the next one is a new event. The request carries what the record holds
   that the event has no field for as tags: the record's reason (``llmops.status_reason``)
   and its times (``llmops.builtin_started_at`` / ``llmops.builtin_ended_at``, which become
   the MLflow run's start and end time);
3. :func:`outcomes` reads how each request ended: the record moved to another backend
   (migrated), or the worker's answer to *this* request is stored as the record's
   ``llmops.migration_error`` tag (failed: the run's own status and reason are never changed
   by a failed move), or neither yet.
"""

from __future__ import annotations

import uuid
from collections.abc import Collection, Mapping, Sequence
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any, Final, Literal

from pydantic import ValidationError
from sqlalchemy import select
from sqlalchemy.orm import Session

from llmops_gateway.db.models import ExperimentRun, TrainingJob
from llmops_gateway.domain.reports import brief
from llmops_gateway.moves.requests import Queued, queue_once
from llmops_shared.events import ExperimentMigrationRequested
from llmops_shared.specs import TrainJobSpec

BUILTIN: Final = "builtin"
TARGET: Final = "mlflow"
ENVIRONMENT_TAG: Final = "llmops.environment"

EVENT_ID_NAMESPACE: Final = uuid.UUID("5d0c4a8e-6f7b-4a43-9d0e-2c1b8f3e7a61")
"""uuid5 namespace of the move requests' envelope ids (never change it: ids would change)."""

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
"""How the tracking worker's reason of a failed move starts (``migration to mlflow failed:
...``): such a ``Failed`` is about the move, not the run (records folded before the gateway
kept failed moves out of the status still hold one)."""

BUILTIN_NOTE_PREFIX: Final = "experiment tracking is disabled (EXPERIMENT_TRACKING_ENABLED=false)"
"""How the built-in backend's note starts (every built-in report's reason): about the backend,
not the run, so it is neither carried to MLflow nor kept after the move."""

MIGRATION_ERROR_TAG: Final = "llmops.migration_error"
"""The record's tag holding the last failed move: ``{request_id, reason, target, seq}``. Kept
in the gateway only (never sent to MLflow), dropped once the run moved."""
STATUS_REASON_TAG: Final = "llmops.status_reason"
"""The MLflow tag carrying the record's reason (``cancelled by alice: wrong dataset``)."""
STARTED_AT_TAG: Final = "llmops.builtin_started_at"
ENDED_AT_TAG: Final = "llmops.builtin_ended_at"
GATEWAY_ONLY_TAGS: Final = frozenset({MIGRATION_ERROR_TAG})

Outcome = Literal["migrated", "failed", "dead_lettered", "pending"]


def move_event_id(job_id: str, seq: int, after: str | None = None) -> str:
    """The envelope id of the request to move ``job_id``'s run as recorded at ``seq``; ``after``
    is the id of the last request that failed (a retry is a new event)."""
    name = f"{job_id}:migrate-{TARGET}:{seq}" + (f":after:{after}" if after else "")
    return str(uuid.uuid5(EVENT_ID_NAMESPACE, name))


def kept_reason(reason: str | None) -> str | None:
    """The record's reason when it is about the run (a cancel's, a failure's); ``None`` for the
    built-in backend's note and an old failed move's reason."""
    if reason is None or reason.startswith((MIGRATION_FAILURE_PREFIX, BUILTIN_NOTE_PREFIX)):
        return None
    return reason


def move_error(tags: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """The last failed move stored on a record (its ``llmops.migration_error`` tag)."""
    value = (tags or {}).get(MIGRATION_ERROR_TAG)
    return value if isinstance(value, dict) else None


def carried_run_status(run_status: str, run_reason: str | None, job_status: str | None) -> str:
    """The status the MLflow run gets: how the job ended when it has (the built-in backend
    never ends a run itself: only a cancel reaches it); else how the run record ended (a
    ``Failed`` that was a failed move does not count); else ``RUNNING``."""
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
    started_at: datetime | None = None
    """When the record was created: the MLflow run's start time."""
    ended_at: datetime | None = None
    """When the job (or else the record) ended, if it has: the MLflow run's end time."""
    failed_request: str | None = None
    """The id of the last request to move this record that failed."""

    @property
    def event_id(self) -> str:
        return move_event_id(self.job_id, self.seq, self.failed_request)

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
            "event_id": None if self.skipped else self.event_id,
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
    ended_at: datetime | None = None
    if job is not None and job.status in FINISHED_JOB:
        ended_at = job.updated_at
    elif run.status in FINISHED_JOB and kept_reason(run.reason) == run.reason:
        ended_at = run.updated_at
    error = move_error(run.tags)
    failed_request = error.get("request_id") if error else None
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
        started_at=run.created_at,
        ended_at=ended_at,
        failed_request=failed_request if isinstance(failed_request, str) else None,
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


def move_request(run: PlannedRun) -> ExperimentMigrationRequested:
    """The event payload moving ``run`` (which must not be skipped): the record's tags (less
    the gateway's own) plus its reason and times, which the event has no field for."""
    if run.spec is None:
        raise ValueError(f"the run of job {run.job_id} cannot be migrated: {run.skipped}")
    tags = {k: v for k, v in run.tags.items() if k not in GATEWAY_ONLY_TAGS}
    if (reason := kept_reason(run.reason)) is not None:
        tags[STATUS_REASON_TAG] = reason
    if run.started_at is not None:
        tags[STARTED_AT_TAG] = run.started_at.isoformat()
    if run.ended_at is not None:
        tags[ENDED_AT_TAG] = run.ended_at.isoformat()
    return ExperimentMigrationRequested(
        job_id=run.job_id,
        spec=run.spec,
        target=TARGET,
        run_status=run.run_status,
        params=run.params,
        tags=tags,
    )


def queue(
    session: Session, runs: Sequence[PlannedRun], *, correlation_id: str
) -> Queued[PlannedRun]:
    """Add a move request per movable run to the outbox of the open transaction; a
    request whose id is already there (asked before, not answered yet) is not added again."""
    movable = [run for run in runs if run.skipped is None]
    return queue_once(session, movable, move_request, correlation_id=correlation_id)


@dataclass(frozen=True)
class RunOutcome:
    """Where one requested move stands, from the run record (``reason``: why the move failed
    when it did, else the record's)."""

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
    error = move_error(run.tags)
    reason = run.reason
    if run.backend != BUILTIN:
        outcome: Outcome = "migrated"
    elif error is not None and error.get("request_id") == planned.event_id:
        outcome = "failed"
        reason = str(error.get("reason"))
    else:
        outcome = "pending"
    return RunOutcome(
        job_id=planned.job_id,
        outcome=outcome,
        status=run.status,
        reason=reason,
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
