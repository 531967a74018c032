"""Settings of the tracking service (environment and `.env`), on top of the shared base.

Names follow the integration quickstart's settings (``EXPERIMENT_TRACKING_ENABLED``,
``EXPERIMENT_TRACKING_SYSTEM``) and MLflow's own variables (``MLFLOW_TRACKING_URI``,
``MLFLOW_HTTP_REQUEST_*``), so one ``.env`` file configures the worker and any MLflow tooling run
next to it the same way.
"""

from __future__ import annotations

from typing import ClassVar, Final, Literal

from pydantic import Field, field_validator

from llmops_shared.config import OptionalSecret, ServiceSettings, checked_template

SUPPORTED_SYSTEMS: Final = ("mlflow",)
"""Values of ``EXPERIMENT_TRACKING_SYSTEM`` this worker implements."""

TEMPLATE_FIELDS: Final = frozenset({"environment", "job_type", "model_family"})
"""Placeholders ``EXPERIMENT_NAME_TEMPLATE`` may use."""


class TrackingSettings(ServiceSettings):
    """Everything the tracking service reads from its environment."""

    service_name: str = "tracking"
    integration_area: ClassVar[str | None] = "experiment_tracking"
    integration_system_field: ClassVar[str | None] = "experiment_tracking_system"
    health_port: int = Field(default=8081, ge=0, le=65535)
    experiment_tracking_enabled: bool = Field(
        default=True,
        description="false: no MLflow at all; runs are recorded by the gateway only (built-in).",
    )
    experiment_tracking_system: Literal["mlflow"] = Field(
        default="mlflow", description="Which tracking system to drive; only 'mlflow' exists."
    )
    mlflow_tracking_uri: str = Field(
        default="http://127.0.0.1:5000",
        description="MLflow tracking server (REST API). Credentials go in MLflow's own "
        "MLFLOW_TRACKING_USERNAME/PASSWORD/TOKEN variables, not in the URI.",
    )
    mlflow_ui_url: str | None = Field(
        default=None,
        description="Base URL users open in a browser, when it differs from the tracking URI "
        "(an in-cluster service name is not reachable from a laptop).",
    )
    experiment_name_template: str = Field(
        default="llm-ops/{environment}/{job_type}",
        description="MLflow experiment of a job; placeholders: {environment}, {job_type}, "
        "{model_family}.",
    )
    mlflow_http_request_max_retries: int = Field(
        default=0,
        ge=0,
        le=10,
        description="MLflow client retries per request. 0: the consumer runtime retries with "
        "backoff instead, and a retried POST can never create a second run.",
    )
    mlflow_http_request_timeout: int = Field(
        default=10, ge=1, description="Seconds per MLflow request (MLflow's default is 120)."
    )

    # ------------------------------------------------------------ model-version events
    mlflow_webhook_secret: OptionalSecret = Field(
        default=None,
        description="HMAC secret of the MLflow webhook (X-MLflow-Signature). Unset: the "
        "receiver answers 503 and no webhook is registered; the poller still runs.",
    )
    mlflow_webhook_url: str | None = Field(
        default=None,
        description="The URL MLflow must call, e.g. http://tracking:8081/mlflow/webhook. With "
        "the secret set, the worker creates or updates the MLflow webhook at start-up.",
    )
    mlflow_webhook_name: str = Field(
        default="llmops-model-versions",
        min_length=1,
        max_length=63,
        description="Name of the webhook registered in MLflow (one per deployment sharing an "
        "MLflow server: give each environment its own).",
    )
    mlflow_webhook_tolerance_s: int = Field(
        default=300,
        ge=1,
        description="Deliveries whose X-MLflow-Timestamp is further than this from now are "
        "refused (401): replay protection.",
    )
    polling_interval: float = Field(
        default=60.0,
        gt=0,
        description="Seconds between two passes of the model-version reconciliation poller.",
    )
    model_versions_backfill: bool = Field(
        default=True,
        description="First start (no watermark in Redis): publish every existing model version "
        "(true) or only those created from now on (false).",
    )
    model_versions_lookback_s: int = Field(
        default=300,
        ge=0,
        description="The poller re-reads versions created up to this long before its watermark "
        "(skipping those already published), so a version committed late is not missed.",
    )

    @field_validator("mlflow_webhook_url")
    @classmethod
    def _webhook_url(cls, value: str | None) -> str | None:
        """Empty means unset; anything else must be an http(s) URL MLflow can POST to."""
        value = (value or "").strip()
        if not value:
            return None
        if not value.startswith(("http://", "https://")):
            raise ValueError(f"MLFLOW_WEBHOOK_URL {value!r} is not an http(s) URL")
        return value

    @field_validator("experiment_tracking_system", mode="before")
    @classmethod
    def _known_system(cls, value: object) -> object:
        """Refuse an unknown system with a message that says what to do instead."""
        text = str(value).strip().lower()
        if text not in SUPPORTED_SYSTEMS:
            raise ValueError(
                f"EXPERIMENT_TRACKING_SYSTEM={value!r} is not supported by the tracking worker "
                f"(supported: {', '.join(SUPPORTED_SYSTEMS)}); set EXPERIMENT_TRACKING_ENABLED="
                "false to record runs in the gateway only"
            )
        return text

    @field_validator("experiment_name_template")
    @classmethod
    def _known_placeholders(cls, value: str) -> str:
        """Known placeholders only (:func:`checked_template`), and a name that is not empty."""
        checked_template(value, TEMPLATE_FIELDS, setting="EXPERIMENT_NAME_TEMPLATE")
        if not value.format(environment="x", job_type="x", model_family="x").strip():
            raise ValueError("EXPERIMENT_NAME_TEMPLATE renders an empty experiment name")
        return value

    @field_validator("mlflow_tracking_uri")
    @classmethod
    def _tracking_uri(cls, value: str) -> str:
        """Links are built by appending paths, so no trailing slash; empty is a mistake."""
        value = value.strip().rstrip("/")
        if not value:
            raise ValueError("MLFLOW_TRACKING_URI is empty")
        return value

    @field_validator("mlflow_ui_url")
    @classmethod
    def _ui_url(cls, value: str | None) -> str | None:
        """An empty ``MLFLOW_UI_URL=`` line means unset, i.e. use the tracking URI."""
        return (value or "").strip().rstrip("/") or None
