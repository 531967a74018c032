"""What a rendering needs: the training request (from the event) and the operator's options
(from the settings). Plain frozen dataclasses, so renders are pure functions of two values."""

from __future__ import annotations

from dataclasses import dataclass, field

from llmops_shared.events import DatasetVersionPin, TrainingJobSubmitted
from llmops_shared.specs import ImageTable, TrainJobSpec


@dataclass(frozen=True)
class TrainRequest:
    """One training job's pipeline, as the event describes it."""

    job_id: str
    namespace: str
    spec: TrainJobSpec
    model_id: str | None = None
    dataset_id: str | None = None
    correlation_id: str | None = None
    base_model_uri: str | None = None
    """Where the base model's files are (the catalog's location), when the gateway knows it."""
    dataset_version: DatasetVersionPin | None = None
    """The recorded dataset version to read by content address, when the dataset is versioned."""


@dataclass(frozen=True)
class RenderOptions:
    """The operator's choices that shape every pipeline (settings, not events)."""

    images: ImageTable = field(default_factory=ImageTable)
    gpu_available: bool = True
    gpu_type_node_label: str = "nvidia.com/gpu.product"
    step_image: str | None = None
    mlflow_tracking_uri: str = "http://mlflow-service.mlflow.svc.cluster.local:5000"
    mlflow_run_wait_s: int = 600
    artifact_root: str = "s3://llm-ops-artifacts"
    active_deadline_seconds: int = 7 * 24 * 3600
    ttl_seconds_after_success: int = 24 * 3600
    ttl_seconds_after_failure: int = 7 * 24 * 3600
    pod_gc_strategy: str = "OnPodSuccess"
    retry_limit: int = 3
    retry_backoff: str = "30s"
    retry_backoff_factor: int = 2
    retry_backoff_max: str = "10m"
    service_account: str | None = None
    train_cpu: str = "8"
    train_memory: str = "64Gi"
    step_cpu: str = "2"
    step_memory: str = "8Gi"
    pretrain_init_uri: str | None = None
    """Where a PRETRAIN job's architecture and tokenizer come from (``{model_family}`` is
    replaced): PRETRAIN has no base model, and training from scratch still needs both."""
    mlflow_artifacts_destination: str | None = None
    """The MLflow server's ``--artifacts-destination``, so register can turn an
    ``mlflow-artifacts:`` source into a location a model server can read."""


def train_request(
    event: TrainingJobSubmitted, *, namespace: str, correlation_id: str | None = None
) -> TrainRequest:
    """The request of a ``TrainingJobSubmitted`` event."""
    return TrainRequest(
        job_id=event.job_id,
        namespace=namespace,
        spec=event.spec,
        model_id=event.model_id,
        dataset_id=event.dataset_id,
        correlation_id=correlation_id,
        base_model_uri=event.base_model_uri,
        dataset_version=event.dataset_version,
    )
