"""Request and response bodies of ``/training/jobs``: jobs, their model and experiment run.

The TrainJobSpec itself keeps the snake_case field names of the integration quickstart's spec
structure; it is the shared model, so its schema rules run while FastAPI parses the body.
"""

from __future__ import annotations

import hashlib
import json
from datetime import datetime
from typing import Any

from pydantic import Field

from llmops_gateway.api.schemas.common import API_PREFIX, CamelModel, Page
from llmops_gateway.api.schemas.workflows import PipelineSummaryOut
from llmops_gateway.db.models import TrainingJob, WorkflowPipeline
from llmops_gateway.domain.experiment_runs import RunMetrics
from llmops_gateway.domain.registered_models import registered_model
from llmops_shared.specs import TrainJobSpec


class TrainingJobRequest(CamelModel):
    """``POST /training/jobs`` (the training-job example of the integration quickstart)."""

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
    train_job_spec: TrainJobSpec = Field(
        description="The TrainJobSpec: what to train, on what data, how, and on which hardware."
    )

    def fingerprint(self) -> str:
        """SHA-256 of the canonical JSON body: what an Idempotency-Key is bound to."""
        body = self.model_dump(mode="json", by_alias=True)
        canonical = json.dumps(body, sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(canonical.encode()).hexdigest()


class CancelRequest(CamelModel):
    """``POST /training/jobs/{id}/cancel`` (the body is optional)."""

    reason: str = Field(default="cancelled by user", min_length=1, max_length=2000)


class RegisteredModelOut(CamelModel):
    """The MLflow model version the job's pipeline registered: what an endpoint serving the
    job's artifact (``deploymentSpec.model_ref`` = ``output.artifact_name``) loads."""

    name: str = Field(description="Registered model name (the job's output.artifact_name).")
    version: str | None = Field(description="MLflow model version; null without MLflow.")
    run_id: str | None = Field(description="The job's MLflow run.")
    source: str | None = Field(description="The version's source as MLflow stores it.")
    storage_uri: str = Field(description="Where the model's files are.")

    @classmethod
    def of(cls, job: TrainingJob) -> RegisteredModelOut | None:
        fields = registered_model(job)
        return None if fields is None else cls(**fields)


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
    train_job_spec: dict[str, Any] | None = Field(
        description="The spec as stored at submission; null for a viewer (stored specs name "
        "data and model locations: only operators and admins see them)."
    )
    status_url: str
    experiment_run_url: str
    pipeline: PipelineSummaryOut | None = Field(
        description="The workflow pipeline running the job; null before its first report."
    )
    registered_model: RegisteredModelOut | None = Field(
        description="The model version the pipeline's register stage created; null before."
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
    def of(
        cls, job: TrainingJob, pipeline: WorkflowPipeline | None, *, with_spec: bool = True
    ) -> TrainingJobOut:
        url = f"{API_PREFIX}/training/jobs/{job.id}"
        return cls.from_row(
            job,
            train_job_spec=job.spec if with_spec else None,
            status_url=url,
            experiment_run_url=f"{url}/experiment-run",
            pipeline=None if pipeline is None else PipelineSummaryOut.of(pipeline),
            registered_model=RegisteredModelOut.of(job),
        )


class TrainingJobList(Page[TrainingJobOut]):
    pass


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
    def of(cls, found: RunMetrics) -> ExperimentRunOut:
        run = found.run
        return cls.from_row(
            run,
            tracking_url=run.tracking_url if run.backend == "mlflow" else None,
            metrics=found.metrics,
            metrics_error=found.error,
        )
