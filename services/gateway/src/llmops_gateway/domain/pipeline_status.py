"""Fold ``pipeline`` reports (workflow) into the pipeline record, and the model it registered
into its job."""

from __future__ import annotations

import uuid
from typing import Final

from sqlalchemy.orm import Session

from llmops_gateway.db import repository
from llmops_gateway.db.models import TrainingJob, WorkflowPipeline, utcnow
from llmops_gateway.domain.registered_models import record_registered_model
from llmops_gateway.domain.reports import observed_at, replace_given
from llmops_shared.events import PipelineStatusUpdated
from llmops_shared.streams import NonRetryableError

MAX_WORKFLOW_NAME: Final = 253
_TRAINING_WORKFLOW_PREFIX: Final = "train-"


def _job_of_workflow(session: Session, workflow_name: str) -> str | None:
    """The training job a workflow named ``train-<job id>`` runs, when that job exists."""
    if not workflow_name.startswith(_TRAINING_WORKFLOW_PREFIX):
        return None
    job_id = workflow_name.removeprefix(_TRAINING_WORKFLOW_PREFIX)
    return job_id if session.get(TrainingJob, job_id) is not None else None


def apply_pipeline(session: Session, report: PipelineStatusUpdated) -> bool:
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
    details = report.details
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
    replace_given(pipeline, details, "job_id", "namespace", "backend", "started_at", "finished_at")
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
    if details.registered_model is not None:
        record_registered_model(session, pipeline.job_id, details.registered_model, report.seq)
    return True
