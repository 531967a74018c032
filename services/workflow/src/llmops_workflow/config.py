"""Settings of the workflow service (environment and ``.env``), on top of the shared base.

Names follow the integration quickstart's settings (``WORKFLOW_ORCHESTRATION_ENABLED``,
``WORKFLOW_ORCHESTRATION_SYSTEM``, ``ARGO_WORKFLOWS_NAMESPACE``) and mirror the serving worker's
(``*_BACKEND``, ``MANIFESTS_DIR``, ``KUBECONFIG``, ``GPU_AVAILABLE``, ``WATCH_INTERVAL_S``), so one
``.env`` configures both the same way.
"""

from __future__ import annotations

import shutil
import sys
from enum import StrEnum
from pathlib import Path
from typing import Any, ClassVar, Literal

from pydantic import AliasChoices, Field, SecretStr, field_validator, model_validator

from llmops_shared.config import ServiceSettings, local_data_dir
from llmops_shared.kube.labels import namespace_for
from llmops_shared.kube.settings import KubeSettings


class BackendKind(StrEnum):
    """Where rendered pipelines go (``WORKFLOW_BACKEND``)."""

    ARGO = "argo"
    JOB = "job"
    MANIFESTS = "manifests"
    LOCAL = "local"


class RenderFormat(StrEnum):
    """What is rendered: an Argo Workflow, or the built-in batch/v1 Jobs (one per stage)."""

    ARGO = "argo"
    JOBS = "jobs"


class ArgoSubmitVia(StrEnum):
    """How ``WORKFLOW_BACKEND=argo`` reaches Argo (``ARGO_SUBMIT_VIA``)."""

    KUBERNETES = "kubernetes"
    ARGO_SERVER = "argo_server"


PodGCStrategy = Literal[
    "OnPodCompletion", "OnPodSuccess", "OnWorkflowCompletion", "OnWorkflowSuccess"
]


def default_manifests_dir() -> Path:
    """``<data dir>/workflows``."""
    return local_data_dir() / "workflows"


def default_local_workdir() -> Path:
    """``<data dir>/pipelines``: the local backend's records, logs and outputs."""
    return local_data_dir() / "pipelines"


class WorkflowSettings(ServiceSettings, KubeSettings):
    """Everything the workflow service reads from its environment (the cluster's settings are
    :class:`~llmops_shared.kube.settings.KubeSettings`, the serving worker's too)."""

    service_name: str = "workflow"
    integration_area: ClassVar[str | None] = "workflow_orchestration"
    integration_system_field: ClassVar[str | None] = "workflow_orchestration_system"
    health_port: int = Field(default=8083, ge=0, le=65535)
    workflow_orchestration_enabled: bool = Field(
        default=True,
        description="false: no Argo; the built-in batch/v1 Jobs (one per stage) are rendered.",
    )
    workflow_orchestration_system: Literal["argo_workflows"] = Field(
        default="argo_workflows", description="Orchestrator to render for; only Argo exists."
    )
    workflow_backend: BackendKind = Field(
        default=BackendKind.MANIFESTS,
        description="argo: apply Workflows to a cluster; job: the built-in Jobs on a cluster; "
        "manifests: write YAML files (GitOps); local: run the stages as processes on this "
        "machine (the default of llmops up).",
    )
    local_workdir: Path = Field(
        default_factory=default_local_workdir,
        description="local backend: <dir>/<namespace>/<name>/ holds each pipeline's record, "
        "stage logs and outputs.",
    )
    local_python: str = Field(
        default=sys.executable,
        description="local backend: the Python whose environment runs the stages (it must have "
        "llmops-trainer); its directory comes first on the stages' PATH (python, torchrun).",
    )
    local_max_running: int = Field(
        default=1, ge=1, description="local backend: pipelines running at once; others wait."
    )
    local_stage_env: list[str] = Field(
        default_factory=list,
        description="local backend: names of further environment variables the stages inherit "
        "(PATH, HOME, locale, proxies, HF_*, AWS_*, CUDA_*... always do; the platform's own "
        "settings and secrets never).",
    )
    local_stop_grace_s: float = Field(
        default=10.0,
        gt=0,
        description="local backend: seconds a stopped stage gets after SIGTERM before SIGKILL.",
    )
    pretrain_init_uri: str | None = Field(
        default=None,
        description="Where PRETRAIN jobs (no base model) get their architecture and tokenizer: "
        "a model directory URI; {model_family} is replaced (e.g. s3://models/init/"
        "{model_family}).",
    )
    mlflow_artifacts_destination: str | None = Field(
        default=None,
        description="The MLflow server's --artifacts-destination (a directory or s3://...), "
        "so the register stage can give model servers a readable location for "
        "mlflow-artifacts: sources.",
    )
    manifests_dir: Path = Field(
        default_factory=default_manifests_dir,
        description="Directory of the manifests backend: <dir>/<namespace>/<name>.yaml.",
    )
    argo_submit_via: ArgoSubmitVia = Field(
        default=ArgoSubmitVia.KUBERNETES,
        description="With WORKFLOW_BACKEND=argo: kubernetes (the Kubernetes API, server-side "
        "apply) or argo_server (the Argo Server REST API at ARGO_SERVER_URL).",
    )
    argo_server_url: str | None = Field(
        default=None,
        description="Base URL of the Argo Server (e.g. https://argo-server.argo.svc:2746); "
        "required with ARGO_SUBMIT_VIA=argo_server.",
    )
    argo_token: SecretStr | None = Field(
        default=None,
        description="Argo Server token, sent as 'Authorization: Bearer <token>' (a value "
        "already starting with 'Bearer ' is sent as is); unset: no header.",
    )
    argo_server_verify_tls: bool = Field(
        default=True, description="false: accept any certificate of the Argo Server."
    )
    argo_namespace: str | None = Field(
        default=None,
        validation_alias=AliasChoices("argo_namespace", "argo_workflows_namespace"),
        description="Namespace of the Workflows (ARGO_NAMESPACE, or ARGO_WORKFLOWS_NAMESPACE as "
        "the integration quickstart calls it); unset: llm-ops-<ENVIRONMENT>.",
    )
    gpu_available: bool = Field(
        default=True, description="false: the cluster has no GPUs; train on CPU images."
    )
    gpu_type_node_label: str = Field(
        default="nvidia.com/gpu.product",
        description="Node label matched against resources.gpu_type (node selector).",
    )
    image_table_file: Path | None = Field(
        default=None,
        description="YAML override of the image table (llmops_shared.specs.ImageTable).",
    )
    workflow_step_image: str | None = Field(
        default=None,
        description="Image of prepare-data, evaluate and register; unset: the job type's CPU "
        "trainer image (evaluate: the train image).",
    )
    mlflow_tracking_uri: str = Field(
        default="http://mlflow-service.mlflow.svc.cluster.local:5000",
        description="MLflow as the pipeline's pods reach it (passed into every step).",
    )
    mlflow_run_wait_s: int = Field(
        default=600, ge=1, description="How long prepare-data waits for the job's MLflow run."
    )
    artifact_root: str = Field(
        default="s3://llm-ops-artifacts",
        description="Where steps exchange data: <root>/jobs/<job_id>/{data,model,eval}.",
    )
    active_deadline_seconds: int = Field(
        default=7 * 24 * 3600, ge=1, description="Wall-clock limit of a whole pipeline."
    )
    ttl_seconds_after_success: int = Field(
        default=24 * 3600, ge=0, description="Delete a succeeded Workflow after this long."
    )
    ttl_seconds_after_failure: int = Field(
        default=7 * 24 * 3600, ge=0, description="Delete a failed Workflow after this long."
    )
    pipeline_record_ttl_s: int = Field(
        default=90 * 24 * 3600,
        ge=60,
        description="How long the worker remembers a job's pipeline (Redis, reset at every "
        "change): a submission replayed within it after the pipeline ended (and was deleted "
        "by its TTL) is reported, not run again; longer than ACTIVE_DEADLINE_SECONDS.",
    )
    pod_gc_strategy: PodGCStrategy = Field(
        default="OnPodSuccess", description="Argo podGC: failed pods are kept for debugging."
    )
    retry_limit: int = Field(
        default=3, ge=0, description="Retries of a step on infrastructure errors (OnError)."
    )
    retry_backoff: str = Field(default="30s", description="First retry delay (Argo duration).")
    retry_backoff_factor: int = Field(default=2, ge=1, description="Backoff multiplier.")
    retry_backoff_max: str = Field(default="10m", description="Longest retry delay (cap).")
    workflow_service_account: str | None = Field(
        default=None, description="serviceAccountName of the pipeline pods (Argo executor RBAC)."
    )
    train_cpu: str = Field(default="8", description="CPU request/limit of a train pod.")
    train_memory: str = Field(default="64Gi", description="Memory request/limit of a train pod.")
    step_cpu: str = Field(default="2", description="CPU of prepare-data/evaluate/register.")
    step_memory: str = Field(default="8Gi", description="Memory of the other steps.")

    @field_validator("workflow_orchestration_system", mode="before")
    @classmethod
    def _known_system(cls, value: object) -> object:
        text = str(value).strip().lower()
        if text not in {"argo_workflows", "argo"}:
            raise ValueError(
                f"WORKFLOW_ORCHESTRATION_SYSTEM={value!r} is not supported (supported: "
                "argo_workflows); set WORKFLOW_ORCHESTRATION_ENABLED=false for the built-in Jobs"
            )
        return "argo_workflows"

    @model_validator(mode="after")
    def _backend_matches_orchestration(self) -> WorkflowSettings:
        """``WORKFLOW_BACKEND=argo`` with orchestration disabled is a contradiction; so is
        ``job`` with it enabled (say which one is meant rather than guess)."""
        if self.workflow_backend is BackendKind.ARGO and not self.workflow_orchestration_enabled:
            raise ValueError(
                "WORKFLOW_BACKEND=argo needs WORKFLOW_ORCHESTRATION_ENABLED=true; use "
                "WORKFLOW_BACKEND=job (built-in) or manifests"
            )
        if self.workflow_backend is BackendKind.JOB and self.workflow_orchestration_enabled:
            raise ValueError(
                "WORKFLOW_BACKEND=job is the built-in fallback: set "
                "WORKFLOW_ORCHESTRATION_ENABLED=false with it"
            )
        if (
            self.workflow_backend is BackendKind.ARGO
            and self.argo_submit_via is ArgoSubmitVia.ARGO_SERVER
            and not self.argo_server_url
        ):
            raise ValueError("ARGO_SUBMIT_VIA=argo_server needs ARGO_SERVER_URL")
        return self

    @model_validator(mode="after")
    def _records_outlive_pipelines(self) -> WorkflowSettings:
        """A running pipeline's record is not rewritten until it ends: it must not expire
        first (the restarted worker would not look for it, a replay would run it again)."""
        if self.pipeline_record_ttl_s <= self.active_deadline_seconds:
            raise ValueError(
                f"PIPELINE_RECORD_TTL_S={self.pipeline_record_ttl_s} must be longer than "
                f"ACTIVE_DEADLINE_SECONDS={self.active_deadline_seconds}"
            )
        return self

    @field_validator("argo_server_url")
    @classmethod
    def _http_url(cls, value: str | None) -> str | None:
        if value is None or not value.strip():
            return None
        text = value.strip()
        if not text.startswith(("http://", "https://")):
            raise ValueError(f"ARGO_SERVER_URL={value!r} must start with http:// or https://")
        return text.rstrip("/")

    @model_validator(mode="after")
    def _local_defaults(self) -> WorkflowSettings:
        """What a laptop needs unless set: artifacts on local disk, GPUs only when there is an
        NVIDIA driver, and a quicker watcher (a stage change shows within a second)."""
        if self.workflow_backend is not BackendKind.LOCAL:
            return self
        given = self.model_fields_set
        if "artifact_root" not in given:
            self.artifact_root = str((local_data_dir() / "artifacts").resolve())
        if "gpu_available" not in given:
            self.gpu_available = shutil.which("nvidia-smi") is not None
        if "watch_interval_s" not in given:
            self.watch_interval_s = 1.0
        return self

    def _integration_updates(self, enabled: bool) -> dict[str, Any]:
        """On a cluster the backend follows the flag: Argo when on, the built-in Jobs when off
        (the manifests and local backends run either format)."""
        if self.workflow_backend in (BackendKind.MANIFESTS, BackendKind.LOCAL):
            return {}
        if enabled == self.workflow_orchestration_enabled:
            return {}  # back to what was configured, exactly
        return {"workflow_backend": BackendKind.ARGO if enabled else BackendKind.JOB}

    @property
    def render_format(self) -> RenderFormat:
        """Argo Workflows when orchestration is enabled, else the built-in Jobs."""
        return RenderFormat.ARGO if self.workflow_orchestration_enabled else RenderFormat.JOBS

    @property
    def namespace(self) -> str:
        """Where pipelines are created and watched."""
        return self.argo_namespace or namespace_for(self.environment)
