"""Fold ``llmops.status`` reports into the read model: idempotent and ordered by ``seq``.

One report is applied in one SQL transaction that (1) skips it when its event id is already in
``processed_events``, (2) changes the entity only when the report's ``seq`` is greater than the
one stored for it, and (3) records the event id. So a redelivered report changes nothing and a
late report never overwrites a newer one, whatever order the workers' reports arrive in.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, Final

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError, field_validator
from sqlalchemy import update
from sqlalchemy.orm import Session

from llmops_gateway.db import repository
from llmops_gateway.db.models import (
    ExperimentRun,
    ProcessedEvent,
    TrainingJob,
    WorkflowPipeline,
    utcnow,
)
from llmops_gateway.db.session import SessionFactory
from llmops_gateway.domain.catalog_status import apply_model_report
from llmops_gateway.domain.dataset_status import apply_restore_report, apply_version_report
from llmops_gateway.domain.experiment_migration import (
    MIGRATION_ERROR_TAG,
    kept_reason,
    migration_error,
)
from llmops_gateway.domain.finished_runs import finish_run_if_job_ended, finish_run_of_job
from llmops_gateway.domain.registered_models import record_registered_model, registered_model_of
from llmops_gateway.domain.reports import brief, observed_at, typed_details
from llmops_gateway.domain.serving import DELETE_FAILED, DELETE_STATES
from llmops_gateway.domain.training import TERMINAL_PHASES
from llmops_shared.events import Envelope, Event, Phase, StatusEntity, StatusUpdated
from llmops_shared.logging import get_logger
from llmops_shared.streams import NonRetryableError

_log = get_logger(__name__)

Applier = Callable[[Session, StatusUpdated], bool]
"""Apply one report to its entity in the open session; True when something changed."""

_FINISHED: Final = tuple(sorted(phase.value for phase in TERMINAL_PHASES))
"""Job statuses no report changes any more."""


def _apply_job(session: Session, report: StatusUpdated) -> bool:
    """Newer reports set the job's status; a finished job (Succeeded, Failed, Cancelled) keeps
    its status whatever the seq: the worker may observe the workflow still Running after the
    user's cancel was committed, or report the stopped workflow as Failed, and neither may undo
    the cancel (the pipeline view shows what the workflow really did). A job that ends closes
    its run record (:mod:`llmops_gateway.domain.finished_runs`)."""
    result = session.execute(
        update(TrainingJob)
        .where(
            TrainingJob.id == report.entity_id,
            TrainingJob.status_seq < report.seq,
            TrainingJob.status.not_in(_FINISHED),
        )
        .values(
            status=report.phase.value,
            reason=report.reason,
            status_seq=report.seq,
            updated_at=utcnow(),
        )
    )
    changed = bool(getattr(result, "rowcount", 0))
    if changed:
        finish_run_of_job(session, report)
    return changed


def _text(details: Mapping[str, Any], key: str) -> str | None:
    value = details.get(key)
    return None if value is None else str(value)


def _mapping(details: Mapping[str, Any], key: str) -> dict[str, Any] | None:
    value = details.get(key)
    if value is None:
        return None
    if not isinstance(value, dict):
        raise NonRetryableError(f"details.{key} must be an object, got {type(value).__name__}")
    return value


def _apply_experiment_run(session: Session, report: StatusUpdated) -> bool:
    """Upsert the job's run. Missing or null fields keep their stored value and maps are merged,
    so a short "killed" report (the built-in backend's carries no params) does not erase what the
    "created" one reported.

    A migration's report (``details.migration``, see ``migrate experiments-to-mlflow``): one
    that moved a built-in record to a tracking system wins over the record whatever the seqs
    (the move is one-way, and clocks of two worker hosts may disagree), keeping the higher seq;
    backend, run id, experiment and URL become the new system's; a report without a reason
    keeps the record's (a cancel's), and the record's ``llmops.migration_error`` goes. One that
    failed is about the move, not the run: it never changes the record's status, reason, seq
    or times; it is kept as the record's ``llmops.migration_error`` tag (where the migrate
    command reads it) while the record is still built-in (it never undoes a move that
    succeeded), and never creates a record."""
    details = report.details
    job_id = details.get("job_id")
    if not isinstance(job_id, str) or not job_id:
        raise NonRetryableError("experiment_run status without details.job_id")
    migration = _mapping(details, "migration") or {}
    run = repository.experiment_run_for_job(session, job_id, for_update=True)
    if migration.get("outcome") == "failed":
        if run is None or run.backend != "builtin":
            return False
        last = migration_error(run.tags)
        if last is not None and int(last.get("seq") or 0) >= report.seq:
            return False
        error = {
            "request_id": migration.get("request_id"),
            "reason": migration.get("reason") or report.reason,
            "target": migration.get("target"),
            "seq": report.seq,
        }
        run.tags = {**run.tags, MIGRATION_ERROR_TAG: error}
        run.updated_at = ExperimentRun.updated_at  # SET to itself: no onupdate bump
        return True
    moved = (
        migration.get("outcome") == "migrated"
        and run is not None
        and run.backend == "builtin"
        and _text(details, "backend") not in (None, "builtin")
    )
    if run is not None and run.seq >= report.seq and not moved:
        return False
    if run is None:
        run = ExperimentRun(
            id=str(uuid.uuid4()),
            job_id=job_id,
            backend="builtin",
            params={},
            tags={},
            metrics={},
            created_at=utcnow(),
        )
        session.add(run)
    run.run_id = report.entity_id
    run.status = report.phase.value
    # a move's report has no reason: the record's (a cancel's) stays
    run.reason = kept_reason(run.reason) if moved and report.reason is None else report.reason
    run.seq = max(run.seq or 0, report.seq)
    run.updated_at = utcnow()
    if (experiment_id := _text(details, "experiment_id")) is not None:
        run.experiment_id = experiment_id
    if (experiment_name := _text(details, "experiment_name")) is not None:
        run.experiment_name = experiment_name
    if (run_url := _text(details, "run_url")) is not None:
        run.tracking_url = run_url
    if (backend := _text(details, "backend")) is not None:
        run.backend = backend
    for key in ("params", "tags", "metrics"):
        value = _mapping(details, key)
        if value:
            setattr(run, key, {**getattr(run, key), **value})
    if moved and MIGRATION_ERROR_TAG in run.tags:
        run.tags = {k: v for k, v in run.tags.items() if k != MIGRATION_ERROR_TAG}
    finish_run_if_job_ended(session, run)  # the job's end may have been folded first
    return True


class TrafficTarget(BaseModel):
    """One entry of a deployment report's ``details.traffic`` (unknown keys are dropped)."""

    model_config = ConfigDict(extra="ignore")

    revision: str | None = None
    percent: int | None = None
    latest: bool | None = None
    tag: str | None = None


_TRAFFIC: Final = TypeAdapter(list[TrafficTarget])


class RolloutState(BaseModel):
    """A deployment report's ``details.rollout`` (unknown keys are dropped)."""

    model_config = ConfigDict(extra="ignore")

    strategy: str | None = None
    canary_percent: int | None = None


def _sequence(details: Mapping[str, Any], key: str) -> list[Any] | None:
    value = details.get(key)
    if value is None:
        return None
    if not isinstance(value, list):
        raise NonRetryableError(f"details.{key} must be a list, got {type(value).__name__}")
    return value


def _traffic(details: Mapping[str, Any]) -> list[dict[str, Any]] | None:
    value = _sequence(details, "traffic")
    if value is None:
        return None
    try:
        targets = _TRAFFIC.validate_python(value)
    except ValidationError as exc:
        raise NonRetryableError(f"details.traffic is malformed: {brief(exc)}") from None
    return [target.model_dump(exclude_none=True) for target in targets]


def _rollout(details: Mapping[str, Any]) -> dict[str, Any] | None:
    rollout = typed_details(details, "rollout", RolloutState)
    return None if rollout is None else rollout.model_dump(exclude_none=True)


def _apply_deployment(session: Session, report: StatusUpdated) -> bool:
    """Fold a serving worker's report into its endpoint (entity id = endpoint id).

    The report's facts (namespace, backend, manifest, url, conditions, traffic) replace the
    stored ones; a missing, null or empty one keeps its stored value (the worker reports empty
    conditions and traffic when it has applied a manifest but not observed the result yet, which
    must not blank what the last observation showed); a ``rollout`` that names its strategy
    replaces the stored one (a promoted canary has no percent left), a partial one is merged.
    A manifest of the other format than the stored one (a migration between an InferenceService
    and the built-in Deployment + Service) first clears the old format's mode, URL, conditions and
    traffic. The endpoint's ``status``
    follows the phase, except while a delete is pending:

    * ``Deleted`` while Deleting/DeleteFailed: the resource is gone, so the row is removed
      (its name and route become free). ``Deleted`` without a delete request (someone removed
      the resource behind the platform's back) only marks the endpoint Deleted; a DELETE then
      removes it;
    * ``Failed`` while Deleting: the deletion failed; status DeleteFailed with the reason;
    * any other phase while Deleting: the resource still exists; the deployment view is
      updated and the status stays Deleting.

    A report about an unknown (or already removed) endpoint changes nothing.
    """
    endpoint = repository.serving_endpoint(session, report.entity_id, for_update=True)
    if endpoint is None or endpoint.seq >= report.seq:
        return False
    details = report.details
    if report.phase == Phase.DELETED and endpoint.status in DELETE_STATES:
        session.delete(endpoint)
        return True
    stored_kind = (endpoint.manifest or {}).get("kind")
    gone_kind = {"kserve": "InferenceService", "deployment": "builtin"}.get(
        str(details.get("backend"))
    )
    if (
        report.phase == Phase.DELETED
        and stored_kind is not None
        and gone_kind is not None
        and gone_kind != ("InferenceService" if stored_kind == "InferenceService" else "builtin")
    ):
        # A worker observing the endpoint's former format saw that object go (after a move
        # between formats, on a replica that did not make the move): the endpoint is not gone.
        return False
    endpoint.seq = report.seq
    endpoint.reported_phase = report.phase.value
    endpoint.reported_reason = report.reason
    endpoint.observed_at = observed_at(report.seq)
    endpoint.updated_at = utcnow()
    reported = _mapping(details, "manifest")
    stored = endpoint.manifest
    kserve = "InferenceService"
    if reported and stored and (reported.get("kind") == kserve) != (stored.get("kind") == kserve):
        # The endpoint moved to the other format (an InferenceService <-> the built-in List, or
        # its Deployment as the watcher reports it): what the old object reported (its mode,
        # URL, conditions, traffic) says nothing of the new one.
        endpoint.deployment_mode = None
        endpoint.serve_url = None
        endpoint.conditions = None
        endpoint.traffic = None
    for column, key in (
        ("namespace", "namespace"),
        ("backend", "backend"),
        ("deployment_mode", "deployment_mode"),
        ("serve_url", "url"),
    ):
        if (value := _text(details, key)) is not None:
            setattr(endpoint, column, value)
    if manifest := _mapping(details, "manifest"):
        endpoint.manifest = manifest
    if rollout := _rollout(details):
        # A report that names the strategy describes the whole rollout (after a promote its
        # canary percent is gone); a partial one only adds to what is stored.
        whole = "strategy" in rollout
        endpoint.rollout = rollout if whole else {**(endpoint.rollout or {}), **rollout}
    if conditions := _sequence(details, "conditions"):
        endpoint.conditions = conditions
    if migration := _mapping(details, "migration"):
        # a move between formats: kept as a condition (the refusal of a move reports the phase
        # the endpoint is observed in, so the status alone does not say it failed)
        endpoint.conditions = [
            c
            for c in endpoint.conditions or []
            if not (isinstance(c, dict) and c.get("type") == "Migration")
        ] + [
            {
                "type": "Migration",
                "status": {"migrated": "True", "failed": "False"}.get(
                    str(migration.get("outcome")), "Unknown"
                ),
                "reason": migration.get("outcome"),
                "message": migration.get("reason"),
                "target": migration.get("target"),
            }
        ]
    if traffic := _traffic(details):
        endpoint.traffic = traffic
    if endpoint.status not in DELETE_STATES:
        endpoint.status = report.phase.value
        endpoint.reason = report.reason
    elif report.phase == Phase.FAILED:
        endpoint.status = DELETE_FAILED
        endpoint.reason = report.reason or "the serving worker could not delete the deployment"
    return True


_MAX_INT32: Final = 2**31 - 1
"""The progress columns are plain INTEGERs."""


class PipelineProgress(BaseModel):
    """A pipeline report's ``details.progress``: finished steps out of all steps."""

    model_config = ConfigDict(extra="ignore")

    done: int | None = Field(default=None, ge=0, le=_MAX_INT32)
    total: int | None = Field(default=None, ge=0, le=_MAX_INT32)


def _as_utc(value: datetime | None) -> datetime | None:
    """Aware UTC; a naive time from a reporter is taken as UTC (what Kubernetes reports)."""
    if value is None:
        return None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class PipelineNode(BaseModel):
    """One step of the workflow (an Argo node, a Job, a rendered stage)."""

    model_config = ConfigDict(extra="ignore")

    name: str | None = None
    phase: str | None = None
    started_at: datetime | None = None
    finished_at: datetime | None = None
    message: str | None = None

    @field_validator("started_at", "finished_at")
    @classmethod
    def _utc(cls, value: datetime | None) -> datetime | None:
        return _as_utc(value)


class PipelineDetails(BaseModel):
    """The ``details`` of ``llmops.status.pipeline.updated.v1`` the gateway folds; every key
    may be missing, unknown keys are dropped, and an empty string counts as missing."""

    model_config = ConfigDict(extra="ignore")

    job_id: str | None = Field(default=None, max_length=64)
    namespace: str | None = Field(default=None, max_length=63)
    backend: str | None = Field(default=None, max_length=32)
    progress: PipelineProgress | None = None
    nodes: list[PipelineNode] | None = None
    started_at: datetime | None = None
    finished_at: datetime | None = None
    manifest: dict[str, Any] | None = None

    @field_validator("job_id", "namespace", "backend", "started_at", "finished_at", mode="before")
    @classmethod
    def _empty_is_missing(cls, value: Any) -> Any:
        return None if isinstance(value, str) and not value.strip() else value

    @field_validator("started_at", "finished_at")
    @classmethod
    def _utc(cls, value: datetime | None) -> datetime | None:
        return _as_utc(value)


MAX_WORKFLOW_NAME: Final = 253
_TRAINING_WORKFLOW_PREFIX: Final = "train-"


def _pipeline_details(details: Mapping[str, Any]) -> PipelineDetails:
    try:
        return PipelineDetails.model_validate(details)
    except ValidationError as exc:
        raise NonRetryableError(f"pipeline details are malformed: {brief(exc)}") from None


def _job_of_workflow(session: Session, workflow_name: str) -> str | None:
    """The training job a workflow named ``train-<job id>`` runs, when that job exists."""
    if not workflow_name.startswith(_TRAINING_WORKFLOW_PREFIX):
        return None
    job_id = workflow_name.removeprefix(_TRAINING_WORKFLOW_PREFIX)
    return job_id if session.get(TrainingJob, job_id) is not None else None


def _apply_pipeline(session: Session, report: StatusUpdated) -> bool:
    """Fold a workflow worker's report into its pipeline (entity id = the workflow name).

    The row is created by the first report. ``status`` and ``reason`` are the reported phase
    and message. ``job_id``, ``namespace``, ``backend``, ``nodes`` (the whole list),
    ``manifest``, ``started_at`` and ``finished_at`` replace the stored values when present;
    missing, null or empty ones keep them. ``progress`` is merged key by key, nulls skipped;
    ``{done: 0, total: 0}`` (what the worker sends before it has observed the workflow) counts
    as empty once a progress is stored.
    Without any ``job_id`` yet, a workflow named ``train-<id>`` of an existing job is linked to
    it. The job's own status is not touched: it follows the job reports; a
    ``registered_model`` is recorded on the job (see
    :mod:`llmops_gateway.domain.registered_models`).
    """
    name = report.entity_id
    if len(name) > MAX_WORKFLOW_NAME:
        raise NonRetryableError(f"workflow name longer than {MAX_WORKFLOW_NAME} characters")
    details = _pipeline_details(report.details)
    registered = registered_model_of(report.details)
    pipeline = repository.workflow_pipeline(session, name, for_update=True)
    if pipeline is not None and pipeline.seq >= report.seq:
        return False
    if pipeline is None:
        pipeline = WorkflowPipeline(id=str(uuid.uuid4()), workflow_name=name, created_at=utcnow())
        session.add(pipeline)
    pipeline.seq = report.seq
    pipeline.status = report.phase.value
    pipeline.reason = report.reason
    pipeline.observed_at = observed_at(report.seq)
    pipeline.updated_at = utcnow()
    for column in ("job_id", "namespace", "backend", "started_at", "finished_at"):
        if (value := getattr(details, column)) is not None:
            setattr(pipeline, column, value)
    if pipeline.job_id is None:
        pipeline.job_id = _job_of_workflow(session, name)
    if (progress := details.progress) is not None and (
        progress.done or progress.total or pipeline.progress_total is None
    ):  # 0/0 is "not observed yet": it does not reset a progress already reported
        if progress.done is not None:
            pipeline.progress_done = progress.done
        if progress.total is not None:
            pipeline.progress_total = progress.total
    if details.nodes:
        pipeline.nodes = [node.model_dump(mode="json") for node in details.nodes]
    if details.manifest:
        pipeline.manifest = details.manifest
    if registered is not None:
        record_registered_model(session, pipeline.job_id, registered, report.seq)
    return True


APPLIERS: Final[Mapping[StatusEntity, Applier]] = {
    StatusEntity.JOB: _apply_job,
    StatusEntity.EXPERIMENT_RUN: _apply_experiment_run,
    StatusEntity.DEPLOYMENT: _apply_deployment,
    StatusEntity.PIPELINE: _apply_pipeline,
    StatusEntity.MODEL: apply_model_report,
    StatusEntity.DATASET_VERSION: apply_version_report,
    StatusEntity.DATASET_RESTORE: apply_restore_report,
}
"""The entities the read model folds today; reports about others are ignored."""


def apply_status_event(sessions: SessionFactory, event: Event, *, consumer: str) -> bool:
    """Apply one status event in one transaction; True when the read model changed."""
    report = event.payload_as(StatusUpdated)
    applier = APPLIERS.get(report.entity)
    if applier is None:
        _log.debug("status_entity_ignored", entity=str(report.entity))
        return False
    with sessions.begin() as session:
        if session.get(ProcessedEvent, event.id) is not None:
            _log.debug("status_event_duplicate")
            return False
        changed = applier(session, report)
        session.add(
            ProcessedEvent(
                event_id=event.id, consumer=consumer, event_type=event.type, processed_at=utcnow()
            )
        )
    if not changed:
        _log.debug("status_event_stale", entity=str(report.entity), seq=report.seq)
    return changed


async def handle_status_event(
    event: Event, *, sessions: SessionFactory, consumer: str
) -> Sequence[Envelope]:
    """The consumer handler: the blocking SQL work runs in a thread; no events are emitted."""
    await asyncio.to_thread(apply_status_event, sessions, event, consumer=consumer)
    return ()
