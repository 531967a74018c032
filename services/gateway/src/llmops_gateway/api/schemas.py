"""Request and response bodies: camelCase on the wire (as in the seed), snake_case in Python.

The TrainJobSpec itself keeps the seed's snake_case field names; it is the shared model, so its
schema rules run while FastAPI parses the body.
"""

from __future__ import annotations

import hashlib
import json
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel

from llmops_gateway.db.models import (
    ExperimentRun,
    ServingDeployment,
    TrainingJob,
    WorkflowPipeline,
)
from llmops_shared.events.fields import Route
from llmops_shared.specs import DeploymentSpec, TrainJobSpec

API_PREFIX = "/llm-ops/v1"


class CamelModel(BaseModel):
    """camelCase aliases; snake_case names are accepted on input too."""

    model_config = ConfigDict(
        alias_generator=to_camel, validate_by_name=True, validate_by_alias=True, extra="forbid"
    )


# --- training -------------------------------------------------------------------------------


class TrainingJobRequest(CamelModel):
    """``POST /training/jobs`` (seed section 5.1)."""

    model_id: str | None = Field(
        default=None, max_length=256, description="The platform's own model id, if any."
    )
    dataset_id: str | None = Field(
        default=None, max_length=256, description="The platform's own dataset id, if any."
    )
    job_type: str | None = Field(
        default=None,
        min_length=1,
        max_length=64,
        description="The platform's free-form job label, e.g. 'finetune'.",
    )
    train_job_spec: TrainJobSpec = Field(description="The TrainJobSpec (seed section 4.1).")

    def fingerprint(self) -> str:
        """SHA-256 of the canonical JSON body: what an Idempotency-Key is bound to."""
        body = self.model_dump(mode="json", by_alias=True)
        canonical = json.dumps(body, sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(canonical.encode()).hexdigest()


class CancelRequest(CamelModel):
    """``POST /training/jobs/{id}/cancel`` (the body is optional)."""

    reason: str = Field(default="cancelled by user", min_length=1, max_length=2000)


class PipelineProgressOut(CamelModel):
    """Finished steps out of all steps, as last reported (null until reported)."""

    done: int | None
    total: int | None

    @classmethod
    def of(cls, pipeline: WorkflowPipeline) -> PipelineProgressOut:
        return cls(done=pipeline.progress_done, total=pipeline.progress_total)


class PipelineSummaryOut(CamelModel):
    """The pipeline running a training job, in the job's view."""

    id: str = Field(description="The workflow name (train-<job id>).")
    status: str
    progress: PipelineProgressOut
    started_at: datetime | None
    finished_at: datetime | None
    pipeline_url: str

    @classmethod
    def of(cls, pipeline: WorkflowPipeline) -> PipelineSummaryOut:
        return cls(
            id=pipeline.workflow_name,
            status=pipeline.status,
            progress=PipelineProgressOut.of(pipeline),
            started_at=pipeline.started_at,
            finished_at=pipeline.finished_at,
            pipeline_url=pipeline_url(pipeline.workflow_name),
        )


class TrainingJobOut(CamelModel):
    """A training job as clients see it."""

    id: str
    model_id: str | None
    dataset_id: str | None
    job_type: str | None
    status: str
    reason: str | None
    created_at: datetime
    updated_at: datetime
    correlation_id: str | None
    train_job_spec: dict[str, Any] = Field(description="The spec as stored at submission.")
    status_url: str
    experiment_run_url: str
    pipeline: PipelineSummaryOut | None = Field(
        description="The workflow pipeline running the job; null before its first report."
    )
    violations: list[dict[str, Any]] | None = Field(
        default=None,
        description="Rules the stored spec broke at the last `validate training-jobs --mark` "
        "(`{loc, message, rule, type}` each; [] when clean); null: never re-validated.",
    )
    validated_at: datetime | None = Field(
        default=None, description="When `validate training-jobs --mark` last checked the job."
    )

    @classmethod
    def of(cls, job: TrainingJob, pipeline: WorkflowPipeline | None) -> TrainingJobOut:
        url = f"{API_PREFIX}/training/jobs/{job.id}"
        return cls(
            id=job.id,
            model_id=job.model_id,
            dataset_id=job.dataset_id,
            job_type=job.job_type,
            status=job.status,
            reason=job.reason,
            created_at=job.created_at,
            updated_at=job.updated_at,
            correlation_id=job.correlation_id,
            train_job_spec=job.spec,
            status_url=url,
            experiment_run_url=f"{url}/experiment-run",
            pipeline=None if pipeline is None else PipelineSummaryOut.of(pipeline),
            violations=job.violations,
            validated_at=job.validated_at,
        )


class TrainingJobList(CamelModel):
    items: list[TrainingJobOut]
    limit: int
    offset: int


class ExperimentRunOut(CamelModel):
    """The tracking run of a job; ``metrics`` are live from MLflow when it is the backend."""

    job_id: str
    run_id: str
    experiment_id: str | None
    experiment_name: str | None
    backend: str = Field(description="mlflow or builtin.")
    status: str
    reason: str | None
    tracking_url: str | None
    params: dict[str, Any]
    metrics: dict[str, Any]
    metrics_error: str | None = Field(
        default=None, description="Why metrics are missing (e.g. MLflow unreachable)."
    )
    updated_at: datetime

    @classmethod
    def of(
        cls, run: ExperimentRun, metrics: dict[str, Any], metrics_error: str | None
    ) -> ExperimentRunOut:
        return cls(
            job_id=run.job_id,
            run_id=run.run_id,
            experiment_id=run.experiment_id,
            experiment_name=run.experiment_name,
            backend=run.backend,
            status=run.status,
            reason=run.reason,
            tracking_url=run.tracking_url if run.backend == "mlflow" else None,
            params=run.params,
            metrics=metrics,
            metrics_error=metrics_error,
            updated_at=run.updated_at,
        )


# --- workflows ------------------------------------------------------------------------------


def pipeline_url(workflow_name: str) -> str:
    return f"{API_PREFIX}/workflows/pipelines/{workflow_name}"


class PipelineNodeOut(CamelModel):
    """One step of the workflow (an Argo node, a Job, a rendered stage)."""

    name: str | None = None
    phase: str | None = None
    started_at: datetime | None = None
    finished_at: datetime | None = None
    message: str | None = None


class PipelineOut(CamelModel):
    """A workflow pipeline as the workflow worker last reported it."""

    id: str = Field(description="The workflow name (train-<job id>).")
    job_id: str | None
    workflow_name: str
    namespace: str | None
    backend: str | None = Field(description="argo, job or manifests.")
    status: str = Field(description="The reported phase.")
    reason: str | None = Field(description="The reported message, e.g. why it failed.")
    progress: PipelineProgressOut
    nodes: list[PipelineNodeOut]
    started_at: datetime | None
    finished_at: datetime | None
    observed_at: datetime | None = Field(description="When the last applied report was observed.")
    manifest: dict[str, Any] | None = Field(
        description="The rendered Workflow (or Job manifests) as last reported."
    )

    @classmethod
    def of(cls, pipeline: WorkflowPipeline) -> PipelineOut:
        return cls(
            id=pipeline.workflow_name,
            job_id=pipeline.job_id,
            workflow_name=pipeline.workflow_name,
            namespace=pipeline.namespace,
            backend=pipeline.backend,
            status=pipeline.status,
            reason=pipeline.reason,
            progress=PipelineProgressOut.of(pipeline),
            nodes=[PipelineNodeOut.model_validate(node) for node in pipeline.nodes or []],
            started_at=pipeline.started_at,
            finished_at=pipeline.finished_at,
            observed_at=pipeline.observed_at,
            manifest=pipeline.manifest,
        )


class PipelineList(CamelModel):
    items: list[PipelineOut]
    limit: int
    offset: int


# --- serving --------------------------------------------------------------------------------

Environment = Literal["dev", "stg", "prod"]


class ServingEndpointRequest(CamelModel):
    """``POST /serving/endpoints`` (seed section 5.2)."""

    model_id: str = Field(
        min_length=1,
        max_length=256,
        description="The catalog model to serve: its id, or its name.",
    )
    route: Route
    environment: Environment = Field(description="Target environment: dev, stg or prod.")
    deployment_spec: DeploymentSpec = Field(description="The DeploymentSpec (seed section 4.2).")


class RollbackRequest(CamelModel):
    """``POST /serving/endpoints/{id}/rollback`` (the body is optional)."""

    reason: str = Field(default="rolled back by user", min_length=1, max_length=2000)


class ServingEndpointOut(CamelModel):
    """A serving endpoint as clients see it.

    ``status`` is the last reported phase (Pending until the first report: Ready, Failed,
    Degraded...), or Deleting / DeleteFailed after a DELETE.
    """

    id: str
    name: str = Field(description="The InferenceService (or Deployment) name.")
    route: str
    environment: str
    model_id: str = Field(description="Catalog id of the served model.")
    status: str
    reason: str | None
    url: str | None = Field(description="Where the endpoint answers, once reported.")
    rollout_action: str | None = Field(
        description="promoted or rolled_back once requested; null before."
    )
    deployment_spec: dict[str, Any] = Field(description="The spec as stored at creation.")
    correlation_id: str | None
    created_at: datetime
    updated_at: datetime
    delete_requested_at: datetime | None
    status_url: str
    deployment_url: str
    violations: list[dict[str, Any]] | None = Field(
        default=None,
        description="Rules the stored spec broke at the last `validate serving-endpoints "
        "--mark` (`{loc, message, rule, type}` each; [] when clean); null: never re-validated.",
    )
    validated_at: datetime | None = Field(
        default=None,
        description="When `validate serving-endpoints --mark` last checked the endpoint.",
    )

    @classmethod
    def of(cls, endpoint: ServingDeployment) -> ServingEndpointOut:
        url = f"{API_PREFIX}/serving/endpoints/{endpoint.id}"
        return cls(
            id=endpoint.id,
            name=endpoint.endpoint_name,
            route=endpoint.route,
            environment=endpoint.environment,
            model_id=endpoint.model_id,
            status=endpoint.status,
            reason=endpoint.reason,
            url=endpoint.serve_url,
            rollout_action=endpoint.rollout_action,
            deployment_spec=endpoint.spec,
            correlation_id=endpoint.correlation_id,
            created_at=endpoint.created_at,
            updated_at=endpoint.updated_at,
            delete_requested_at=endpoint.delete_requested_at,
            status_url=url,
            deployment_url=f"{url}/deployment",
            violations=endpoint.violations,
            validated_at=endpoint.validated_at,
        )


class ServingEndpointList(CamelModel):
    items: list[ServingEndpointOut]
    limit: int
    offset: int


class TrafficTargetOut(CamelModel):
    revision: str | None = None
    percent: int | None = None
    latest: bool | None = None
    tag: str | None = None


class RolloutOut(CamelModel):
    """The rollout as reported: the strategy and the canary's share of the traffic."""

    strategy: str | None = None
    canary_percent: int | None = None


class DeploymentOut(CamelModel):
    """The endpoint's cluster resource as the serving worker last reported it."""

    endpoint_id: str
    name: str
    namespace: str | None
    backend: str | None = Field(description="kserve, deployment or manifests.")
    deployment_mode: str | None
    manifest: dict[str, Any] | None = Field(
        description="The rendered InferenceService (or Deployment) as last reported."
    )
    status: str | None = Field(description="The reported phase.")
    reason: str | None
    url: str | None
    conditions: list[Any]
    traffic: list[TrafficTargetOut]
    rollout: RolloutOut | None
    observed_at: datetime

    @classmethod
    def of(cls, endpoint: ServingDeployment, observed_at: datetime) -> DeploymentOut:
        return cls(
            endpoint_id=endpoint.id,
            name=endpoint.endpoint_name,
            namespace=endpoint.namespace,
            backend=endpoint.backend,
            deployment_mode=endpoint.deployment_mode,
            manifest=endpoint.manifest,
            status=endpoint.reported_phase,
            reason=endpoint.reported_reason,
            url=endpoint.serve_url,
            conditions=endpoint.conditions or [],
            traffic=[TrafficTargetOut.model_validate(t) for t in endpoint.traffic or []],
            rollout=None if endpoint.rollout is None else RolloutOut(**endpoint.rollout),
            observed_at=observed_at,
        )
