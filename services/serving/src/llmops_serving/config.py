"""Settings of the serving service (environment and ``.env``), on top of the shared base.

Names follow the integration quickstart's settings (``SERVING_FRAMEWORK_ENABLED``,
``SERVING_FRAMEWORK_DEFAULT``) and KServe's own vocabulary (``KSERVE_DEPLOYMENT_MODE`` takes the
values of the ``serving.kserve.io/deploymentMode`` annotation), so one ``.env`` reads the same to an
operator who knows KServe.
"""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import Any, ClassVar, Final, Literal

from pydantic import Field, field_validator, model_validator

from llmops_shared.config import Environment, ServiceSettings, checked_template, local_data_dir
from llmops_shared.kube.labels import namespace_for
from llmops_shared.kube.settings import KubeSettings


class DeploymentMode(StrEnum):
    """KServe's deployment modes (the ``serving.kserve.io/deploymentMode`` annotation).

    ``Serverless`` (Knative) honours ``spec.predictor.canaryTrafficPercent``. ``Standard`` is
    KServe's plain-Deployment mode; since v0.20 it splits traffic with the ``spec.canary`` list.
    ``RawDeployment`` is the older name of the same mode, and this worker treats it as the
    pre-0.20 behaviour: it has no traffic splitting and silently ignores
    ``canaryTrafficPercent``, so canary requests are refused in it.
    """

    SERVERLESS = "Serverless"
    STANDARD = "Standard"
    RAW_DEPLOYMENT = "RawDeployment"


class BackendKind(StrEnum):
    """Where rendered manifests go (``SERVING_BACKEND``)."""

    KSERVE = "kserve"
    DEPLOYMENT = "deployment"
    MANIFESTS = "manifests"


class RenderFormat(StrEnum):
    """What is rendered: a KServe InferenceService, or the built-in Deployment + Service."""

    KSERVE = "kserve"
    BUILTIN = "builtin"


STORAGE_TEMPLATE_FIELDS: Final = frozenset({"model_ref", "model_family", "environment"})
"""Placeholders ``STORAGE_URI_TEMPLATE`` may use."""

ALL_ENVIRONMENTS: Final[tuple[Environment, ...]] = ("dev", "stg", "prod")


def default_manifests_dir() -> Path:
    """``$LLMOPS_DATA_DIR/manifests`` (the local stack's data dir), else ``.llmops/manifests``."""
    return local_data_dir() / "manifests"


class ServingSettings(ServiceSettings, KubeSettings):
    """Everything the serving service reads from its environment (the cluster's settings are
    :class:`~llmops_shared.kube.settings.KubeSettings`, the workflow worker's too)."""

    service_name: str = "serving"
    integration_area: ClassVar[str | None] = "serving_framework"
    integration_system_field: ClassVar[str | None] = "serving_framework_default"
    health_port: int = Field(default=8082, ge=0, le=65535)
    serving_framework_enabled: bool = Field(
        default=True,
        description="false: no KServe; the built-in Deployment + Service is rendered instead.",
    )
    serving_framework_default: Literal["kserve"] = Field(
        default="kserve", description="Which serving framework to render; only 'kserve' exists."
    )
    serving_backend: BackendKind = Field(
        default=BackendKind.MANIFESTS,
        description="kserve: apply to a cluster; deployment: the built-in Deployment + Service "
        "on a cluster; manifests: write YAML files (local default, GitOps).",
    )
    manifests_dir: Path = Field(
        default_factory=default_manifests_dir,
        description="Directory of the manifests backend: <dir>/<namespace>/<name>.yaml.",
    )
    gpu_available: bool = Field(
        default=True, description="false: the cluster has no GPUs; serve on CPU images."
    )
    kserve_deployment_mode: DeploymentMode = Field(
        default=DeploymentMode.SERVERLESS,
        description="serving.kserve.io/deploymentMode of rendered InferenceServices.",
    )
    storage_uri_template: str = Field(
        default="s3://llm-models/{model_ref}",
        description="Model artifact URI when an event carries none; placeholders: {model_ref}, "
        "{model_family}, {environment}.",
    )
    image_table_file: Path | None = Field(
        default=None,
        description="YAML override of the serve image table (llmops_shared.specs.ImageTable).",
    )
    serving_cpu: str = Field(default="4", description="CPU request/limit per replica.")
    serving_memory: str = Field(default="16Gi", description="Memory request/limit per replica.")
    watch_environments: list[Environment] = Field(
        default_factory=lambda: list(ALL_ENVIRONMENTS),
        description="Environments whose llm-ops-<env> namespaces the watcher polls.",
    )
    tombstone_retention_days: int = Field(
        default=365,
        ge=0,
        le=100 * 365,
        description="How long a deleted endpoint's tombstone is kept in Redis (events for it "
        "are refused meanwhile); 0: for ever.",
    )

    @field_validator("serving_framework_default", mode="before")
    @classmethod
    def _known_framework(cls, value: object) -> object:
        text = str(value).strip().lower()
        if text != "kserve":
            raise ValueError(
                f"SERVING_FRAMEWORK_DEFAULT={value!r} is not supported (supported: kserve); set "
                "SERVING_FRAMEWORK_ENABLED=false for the built-in Deployment + Service"
            )
        return text

    @field_validator("storage_uri_template")
    @classmethod
    def _known_placeholders(cls, value: str) -> str:
        return checked_template(value, STORAGE_TEMPLATE_FIELDS, setting="STORAGE_URI_TEMPLATE")

    @model_validator(mode="after")
    def _backend_matches_framework(self) -> ServingSettings:
        """``SERVING_BACKEND=kserve`` with the framework disabled is a contradiction."""
        if self.serving_backend is BackendKind.KSERVE and not self.serving_framework_enabled:
            raise ValueError(
                "SERVING_BACKEND=kserve needs SERVING_FRAMEWORK_ENABLED=true; use "
                "SERVING_BACKEND=deployment (built-in) or manifests"
            )
        return self

    def _integration_updates(self, enabled: bool) -> dict[str, Any]:
        """On a cluster the backend follows the flag: KServe when on, the built-in Deployment
        when off (the manifests backend renders either format)."""
        if self.serving_backend is BackendKind.MANIFESTS:
            return {}
        if enabled == self.serving_framework_enabled:
            return {}  # back to what was configured, exactly
        return {"serving_backend": BackendKind.KSERVE if enabled else BackendKind.DEPLOYMENT}

    @property
    def render_format(self) -> RenderFormat:
        """InferenceServices unless the framework is off or the built-in backend is chosen."""
        if self.serving_framework_enabled and self.serving_backend is not BackendKind.DEPLOYMENT:
            return RenderFormat.KSERVE
        return RenderFormat.BUILTIN

    @property
    def tombstone_retention_s(self) -> int | None:
        """The tombstones' TTL; ``None``: they do not expire."""
        return self.tombstone_retention_days * 86_400 or None

    @property
    def watch_namespaces(self) -> list[str]:
        """The namespaces the watcher polls."""
        return [namespace_for(env) for env in self.watch_environments]
