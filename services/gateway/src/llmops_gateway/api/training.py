"""``/training/jobs``: submit, list, read, cancel, and the job's experiment run."""

from __future__ import annotations

from typing import Annotated

from fastapi import Body, Header

from llmops_gateway.api.auth import CurrentCaller
from llmops_gateway.api.deps import CorrelationId, Mlflow, Pagination, State
from llmops_gateway.api.errors import rules_refused
from llmops_gateway.api.routes import Routes
from llmops_gateway.api.schemas.training import (
    CancelRequest,
    ExperimentRunOut,
    TrainingJobList,
    TrainingJobOut,
    TrainingJobRequest,
)
from llmops_gateway.domain.errors import CatalogRuleError
from llmops_gateway.domain.experiment_runs import read_experiment_run
from llmops_gateway.domain.training import (
    SubmitTrainingJob,
    cancel_training_job,
    get_training_job,
    list_training_jobs,
    submit_training_job,
    with_pipeline,
)
from llmops_gateway.security.access import Scope

routes = Routes.at(
    "/training/jobs",
    tag="training",
    scope=Scope.GATEWAY,
    not_found="No such job",
    conflict="Conflict with the job's state or an Idempotency-Key",
)
router = routes.router


@routes.command("", summary="Submit a training job")
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
    # an Idempotency-Key replay may have a pipeline
    return TrainingJobOut.of(*with_pipeline(state.sessions, job))


@routes.page(summary="List training jobs, newest first")
def list_jobs(state: State, page: Pagination, caller: CurrentCaller) -> TrainingJobList:
    jobs = list_training_jobs(state.sessions, limit=page.limit, offset=page.offset)
    specs = caller.sees_specs()
    items = [TrainingJobOut.of(*job, with_spec=specs) for job in jobs]
    return TrainingJobList.of(items, page)


@routes.read("/{job_id}", summary="Read a training job")
def get_job(job_id: str, state: State, caller: CurrentCaller) -> TrainingJobOut:
    """The job, with ``pipeline`` (id, status, progress, start and end) once the workflow
    worker has reported it; its spec for operators and admins."""
    job = get_training_job(state.sessions, job_id)
    return TrainingJobOut.of(*with_pipeline(state.sessions, job), with_spec=caller.sees_specs())


@routes.command("/{job_id}/cancel", summary="Cancel a training job")
def cancel(
    job_id: str,
    state: State,
    correlation_id: CorrelationId,
    body: Annotated[CancelRequest | None, Body()] = None,
) -> TrainingJobOut:
    """Mark the job Cancelled and queue ``llmops.training.job.cancelled.v1``; workers stop
    what they started. 409 when the job already finished, failed or was cancelled."""
    reason = (body or CancelRequest()).reason
    job = cancel_training_job(
        state.sessions,
        job_id,
        reason=reason,
        correlation_id=correlation_id,
        openlineage=state.settings.openlineage_url is not None,
    )
    state.wake_relay()
    return TrainingJobOut.of(*with_pipeline(state.sessions, job))


@routes.read("/{job_id}/experiment-run", summary="The job's experiment run (MLflow or built-in)")
async def experiment_run(job_id: str, state: State, mlflow: Mlflow) -> ExperimentRunOut:
    """What tracking reported about the job's run; with MLflow, the run's latest metrics are
    read live from the MLflow server (never an error here: ``metricsError`` says why not)."""
    return ExperimentRunOut.of(await read_experiment_run(state.sessions, job_id, mlflow))
