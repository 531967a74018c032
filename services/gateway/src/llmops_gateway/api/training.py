"""``/training/jobs``: submit, list, read, cancel, and the job's experiment run."""

from __future__ import annotations

import asyncio
from typing import Annotated, Any

from fastapi import APIRouter, Body, Header, Query, status

from llmops_gateway.adapters.mlflow_metrics import MetricsUnavailableError
from llmops_gateway.api.deps import Authenticated, CorrelationId, Sessions, State
from llmops_gateway.api.errors import rules_refused
from llmops_gateway.api.schemas import (
    API_PREFIX,
    CancelRequest,
    ExperimentRunOut,
    TrainingJobList,
    TrainingJobOut,
    TrainingJobRequest,
)
from llmops_gateway.db import repository
from llmops_gateway.db.models import ExperimentRun, TrainingJob
from llmops_gateway.db.session import SessionFactory
from llmops_gateway.domain.errors import CatalogRuleError, NotFoundError
from llmops_gateway.domain.training import (
    SubmitTrainingJob,
    cancel_training_job,
    get_training_job,
    submit_training_job,
)
from llmops_gateway.domain.workflows import pipelines_of_jobs

router = APIRouter(prefix=f"{API_PREFIX}/training/jobs", tags=["training"])


def _job_out(sessions: SessionFactory, job: TrainingJob) -> TrainingJobOut:
    """The job with its pipeline (when the workflow worker has reported one)."""
    return TrainingJobOut.of(job, pipelines_of_jobs(sessions, [job.id]).get(job.id))


_ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"description": "Missing or invalid API key"},
    404: {"description": "No such job"},
    409: {"description": "Conflict with the job's state or an Idempotency-Key"},
}


@router.post(
    "",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=TrainingJobOut,
    dependencies=[Authenticated],
    responses=_ERRORS,
    summary="Submit a training job",
)
def submit(
    body: TrainingJobRequest,
    state: State,
    correlation_id: CorrelationId,
    idempotency_key: Annotated[str | None, Header(max_length=256)] = None,
) -> TrainingJobOut:
    """Validate the TrainJobSpec (schema and catalog rules), store the job as Pending and queue
    its ``llmops.training.job.submitted.v1`` event in the same transaction. 202: the job runs
    asynchronously; follow ``statusUrl``."""
    command = SubmitTrainingJob(
        spec=body.train_job_spec,
        model_id=body.model_id,
        dataset_id=body.dataset_id,
        job_type=body.job_type,
        correlation_id=correlation_id,
        idempotency_key=idempotency_key,
        request_hash=body.fingerprint(),
        require_dataset_version=state.settings.training_requires_dataset_version,
    )
    try:
        job = submit_training_job(state.sessions, command)
    except CatalogRuleError as exc:
        raise rules_refused(exc, "TrainJobSpec", ("body", "trainJobSpec")) from None
    state.wake_relay()
    return _job_out(state.sessions, job)  # an Idempotency-Key replay may have a pipeline


@router.get("", response_model=TrainingJobList, summary="List training jobs, newest first")
def list_jobs(
    sessions: Sessions,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> TrainingJobList:
    with sessions() as session:
        jobs = repository.list_training_jobs(session, limit=limit, offset=offset)
        pipelines = repository.pipelines_of_jobs(session, [job.id for job in jobs])
    return TrainingJobList(
        items=[TrainingJobOut.of(job, pipelines.get(job.id)) for job in jobs],
        limit=limit,
        offset=offset,
    )


@router.get(
    "/{job_id}", response_model=TrainingJobOut, responses=_ERRORS, summary="Read a training job"
)
def get_job(job_id: str, sessions: Sessions) -> TrainingJobOut:
    """The job, with ``pipeline`` (id, status, progress, start and end) once the workflow
    worker has reported it."""
    return _job_out(sessions, get_training_job(sessions, job_id))


@router.post(
    "/{job_id}/cancel",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=TrainingJobOut,
    dependencies=[Authenticated],
    responses=_ERRORS,
    summary="Cancel a training job",
)
def cancel(
    job_id: str,
    state: State,
    correlation_id: CorrelationId,
    body: Annotated[CancelRequest | None, Body()] = None,
) -> TrainingJobOut:
    """Mark the job Cancelled and queue ``llmops.training.job.cancelled.v1``; workers stop
    what they started. 409 when the job already finished, failed or was cancelled."""
    reason = (body or CancelRequest()).reason
    job = cancel_training_job(state.sessions, job_id, reason=reason, correlation_id=correlation_id)
    state.wake_relay()
    return _job_out(state.sessions, job)


def _load_run(sessions: SessionFactory, job_id: str) -> ExperimentRun:
    with sessions() as session:
        run = repository.experiment_run_for_job(session, job_id)
        if run is None:
            get_training_job(sessions, job_id)  # 404 for the job itself first
            raise NotFoundError(f"no experiment run reported yet for job {job_id}")
    return run


@router.get(
    "/{job_id}/experiment-run",
    response_model=ExperimentRunOut,
    responses=_ERRORS,
    summary="The job's experiment run (MLflow or built-in)",
)
async def experiment_run(job_id: str, state: State) -> ExperimentRunOut:
    """What tracking reported about the job's run; with MLflow, the run's latest metrics are
    read live from the MLflow server (never an error here: ``metricsError`` says why not)."""
    run = await asyncio.to_thread(_load_run, state.sessions, job_id)
    metrics: dict[str, Any] = dict(run.metrics)
    metrics_error: str | None = None
    if run.backend == "mlflow":
        if state.mlflow is None:
            metrics_error = "MLFLOW_TRACKING_URI is not configured on the gateway"
        else:
            try:
                metrics = dict(await state.mlflow.latest_metrics(run.run_id))
            except MetricsUnavailableError as exc:
                metrics_error = str(exc)
    return ExperimentRunOut.of(run, metrics, metrics_error)
