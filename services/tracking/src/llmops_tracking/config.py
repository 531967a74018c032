"""Settings of the tracking service (environment and `.env`), on top of the shared base.

Names follow the integration quickstart's settings (``EXPERIMENT_TRACKING_ENABLED``,
``EXPERIMENT_TRACKING_SYSTEM``) and MLflow's own variables (``MLFLOW_TRACKING_URI``,
``MLFLOW_HTTP_REQUEST_*``), so one ``.env`` file configures the worker and any MLflow tooling run
next to it the same way.
"""

from __future__ import annotations

from typing import ClassVar, Final, Literal

from pydantic import Field, field_validator, model_validator

from llmops_shared.config import OptionalSecret, ServiceSettings, checked_template

SUPPORTED_SYSTEMS: Final = ("mlflow",)
"""Values of ``EXPERIMENT_TRACKING_SYSTEM`` this worker implements."""

TEMPLATE_FIELDS: Final = frozenset({"environment", "job_type", "model_family"})
"""Placeholders ``EXPERIMENT_NAME_TEMPLATE`` may use."""

DEFAULT_RUN_LOCK_TTL_S: Final = 30.0
"""``RUN_LOCK_TTL_S`` when unset (unless MLflow calls may take longer than half of it)."""

MLFLOW_BACKOFF_FACTOR_S: Final = 2.0
MLFLOW_BACKOFF_JITTER_S: Final = 1.0
MLFLOW_BACKOFF_MAX_S: Final = 120.0
"""MLflow's defaults between two client retries (``MLFLOW_HTTP_REQUEST_BACKOFF_*``)."""


def mlflow_call_budget_s(timeout_s: float, max_retries: int) -> float:
    """The longest one MLflow client call may take: every attempt timing out, plus MLflow's
    default backoff between attempts (factor 2, jitter up to 1 s, at most 120 s each)."""
    backoff = sum(
        min(
            MLFLOW_BACKOFF_FACTOR_S * 2.0 ** (attempt - 1) + MLFLOW_BACKOFF_JITTER_S,
            MLFLOW_BACKOFF_MAX_S,
        )
        for attempt in range(1, max_retries + 1)
    )
    return timeout_s * (max_retries + 1) + backoff


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
    run_lock_ttl_s: float | None = Field(
        default=None,
        gt=0,
        description="TTL of a job's run lock in Redis (renewed every third of it while held): "
        "how long the lock of a replica that died holding it blocks the job, and how long a "
        "replica waits for a held one. Unset: 30 s, or twice the longest MLflow call when "
        "that is more; when set, more than 1.5 times that call (MLFLOW_HTTP_REQUEST_TIMEOUT, "
        "retries and backoff).",
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

    @property
    def mlflow_call_budget_s(self) -> float:
        """The longest one MLflow client call may take with these settings."""
        return mlflow_call_budget_s(
            self.mlflow_http_request_timeout, self.mlflow_http_request_max_retries
        )

    @property
    def run_lock_ttl(self) -> float:
        """``RUN_LOCK_TTL_S``, or its default for these MLflow settings."""
        if self.run_lock_ttl_s is not None:
            return self.run_lock_ttl_s
        return max(DEFAULT_RUN_LOCK_TTL_S, 2 * self.mlflow_call_budget_s)

    @model_validator(mode="after")
    def _lock_outlasts_a_call(self) -> TrackingSettings:
        """A create is sent only while the job's lease has a whole MLflow call left, and a
        healthy lease always has two thirds of its TTL left; below that no run is ever made."""
        budget = self.mlflow_call_budget_s
        if self.run_lock_ttl_s is not None and self.run_lock_ttl_s * 2 / 3 <= budget:
            raise ValueError(
                f"RUN_LOCK_TTL_S={self.run_lock_ttl_s:g} is too short for MLflow calls of up to "
                f"{budget:g}s (MLFLOW_HTTP_REQUEST_TIMEOUT={self.mlflow_http_request_timeout}, "
                f"MLFLOW_HTTP_REQUEST_MAX_RETRIES={self.mlflow_http_request_max_retries}): "
                f"set it above {budget * 1.5:g}"
            )
        return self

    @field_validator("run_lock_ttl_s", mode="before")
    @classmethod
    def _ttl_unset(cls, value: object) -> object:
        """An empty ``RUN_LOCK_TTL_S=`` line means unset (the default)."""
        return None if isinstance(value, str) and not value.strip() else value

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
