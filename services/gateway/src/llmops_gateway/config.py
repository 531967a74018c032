"""Settings of the gateway service (environment and `.env`), on top of the shared base."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

from pydantic import AfterValidator, Field

from llmops_shared.config import ApiKeys, OptionalSecret, OptionalText, ServiceSettings
from llmops_shared.events import IntegrationArea
from llmops_shared.integration_flags import SYSTEM_SETTINGS, IntegrationFlag
from llmops_shared.uris import without_credentials


def lineage_url(value: str | None) -> str | None:
    """``OPENLINEAGE_URL``: an http(s) URL without credentials (the key goes in
    ``OPENLINEAGE_API_KEY``: the URL is logged and shown, the key never)."""
    if value is None:
        return None
    if not value.startswith(("http://", "https://")):
        raise ValueError(f"OPENLINEAGE_URL {value!r} must be an http(s) URL")
    return without_credentials(value)


LineageUrl = Annotated[OptionalText, AfterValidator(lineage_url)]


class GatewaySettings(ServiceSettings):
    """Everything the gateway service reads from its environment.

    ``API_KEYS`` is a comma-separated list (a JSON list works too); an empty list with
    ``AUTH_DISABLED`` unset makes :func:`llmops_gateway.app.create_app` refuse to build the app,
    so a gateway is never exposed without authentication by accident.
    """

    service_name: str = "gateway"
    host: str = Field(default="127.0.0.1", description="Address the REST API binds to.")
    port: int = Field(default=8000, ge=0, le=65535, description="Port of the REST API.")
    console_argo_url: OptionalText = Field(
        default=None,
        description="The Argo Workflows UI's base URL: the console links each pipeline to "
        "<url>/workflows/<namespace>/<name>.",
    )
    console_git_commit_url: OptionalText = Field(
        default=None,
        description="A commit's web page with {sha} in it (e.g. https://github.com/org/deploy/"
        "commit/{sha}): the console links each values commit there.",
    )
    api_keys: ApiKeys = Field(
        default_factory=list,
        description="Bootstrap bearer keys (comma-separated), each admin in every environment; "
        "make named keys with roles through POST /keys (llmops keys create).",
    )
    auth_disabled: bool = Field(
        default=False,
        description="Accept every request without a credential, as an admin (local use only).",
    )
    oidc_issuer: OptionalText = Field(
        default=None,
        description="Accept bearer JWTs from this OIDC issuer (its URL, as in the tokens' iss); "
        "unset: API keys only.",
    )
    oidc_audience: OptionalText = Field(
        default=None, description="The aud the tokens must carry (required with OIDC_ISSUER)."
    )
    oidc_jwks_url: OptionalText = Field(
        default=None, description="The issuer's JWKS; unset: discovered from the issuer."
    )
    oidc_roles_claim: str = Field(
        default="groups",
        description="The claim whose values map to roles (a dotted path, e.g. "
        "realm_access.roles, reaches into an object).",
    )
    oidc_role_map: dict[str, list[str]] = Field(
        default_factory=dict,
        description='Claim value -> roles, as JSON: {"ml-admins": ["admin"], '
        '"ml-dev": ["dev:operator", "prod:viewer"]}; values not listed give no role.',
    )
    oidc_subject_claim: str = Field(
        default="sub",
        description="The claim that names the caller in the audit log (e.g. email); sub when "
        "a token lacks it.",
    )
    oidc_algorithms: list[str] = Field(
        default_factory=lambda: ["RS256", "ES256"],
        description="Accepted signature algorithms (asymmetric only).",
    )
    data_dir: Path = Field(
        default=Path(".llmops"),
        description="Where the SQLite file lives when DATABASE_URL is unset.",
    )
    db_auto_migrate: bool = Field(
        default=True, description="Run the Alembic migrations to head at start-up."
    )
    mlflow_tracking_uri: str | None = Field(
        default=None, description="MLflow server whose REST API gives live run metrics."
    )
    mlflow_timeout_s: float = Field(default=2.0, gt=0, description="Timeout of MLflow calls.")
    relay_poll_interval_s: float = Field(
        default=0.5, gt=0, description="How often the outbox relay looks for unpublished rows."
    )
    relay_batch_size: int = Field(default=500, ge=1)
    relay_min_replicas: Annotated[int, Field(ge=0)] | Literal["auto"] = Field(
        default="auto",
        description="Redis replicas that must acknowledge (WAIT) a batch of outbox events before "
        "its rows are marked published; auto: the replicas the primary reports online (none on "
        "a single Redis: no wait).",
    )
    relay_wait_timeout_ms: int = Field(
        default=1000,
        ge=1,
        description="How long a batch waits for its replicas; short of them, the rows stay "
        "unpublished and are sent again.",
    )
    model_registry_enabled: bool = Field(
        default=True,
        description="Import catalog models through the registry worker (Hugging Face Hub); "
        "off: an import records the request's own facts, unverified. Overridden at run time "
        "by the integration_configs row of this gateway's ENVIRONMENT.",
    )
    model_registry_default: Literal["huggingface"] = "huggingface"
    # The other areas' flags as the workers' environment sets them: the defaults that
    # GET /integrations/configs shows until a row overrides them (the workers read their own).
    experiment_tracking_enabled: bool = True
    experiment_tracking_system: Literal["mlflow"] = "mlflow"
    serving_framework_enabled: bool = True
    serving_framework_default: Literal["kserve"] = "kserve"
    workflow_orchestration_enabled: bool = True
    workflow_orchestration_system: Literal["argo_workflows"] = "argo_workflows"
    data_versioning_enabled: bool = True
    data_versioning_system: Literal["dvc"] = "dvc"
    training_requires_dataset_version: bool = Field(
        default=True,
        description="A training job's dataset_ref must name a Succeeded version of a catalog "
        "dataset; false also accepts datasets the catalog does not know (checked when known).",
    )
    consume_status: bool = Field(
        default=True, description="Fold llmops.status into the read model in this process."
    )
    openlineage_url: LineageUrl = Field(
        default=None,
        description="Send OpenLineage run events of training jobs to this server (its base URL, "
        "e.g. Marquez's http://marquez:5000); unset: no events, nothing queued. Credentials in "
        "the URL are refused (OPENLINEAGE_API_KEY).",
    )
    openlineage_endpoint: str = Field(
        default="api/v1/lineage",
        min_length=1,
        description="Path of the lineage endpoint, joined to OPENLINEAGE_URL.",
    )
    openlineage_api_key: OptionalSecret = Field(
        default=None, description="Sent as a Bearer token with every event. Never logged."
    )
    openlineage_namespace: str = Field(
        default="llmops", min_length=1, description="The namespace of the training jobs."
    )
    openlineage_dataset_namespace: OptionalText = Field(
        default=None,
        description="The namespace of the input datasets; unset: their storage URI's scheme "
        "and authority (s3://bucket), else OPENLINEAGE_NAMESPACE.",
    )
    openlineage_timeout_s: float = Field(
        default=5.0, gt=0, description="Timeout of one event's HTTP request."
    )
    openlineage_output_grace_s: float = Field(
        default=30.0,
        ge=0,
        description="How long a COMPLETE waits for the job's registered model version (its "
        "output), which may be reported just after the job Succeeded; then sent without it.",
    )
    openlineage_poll_interval_s: float = Field(
        default=1.0, gt=0, description="How often the emitter looks for events to send."
    )
    openlineage_retry_initial_s: float = Field(
        default=1.0,
        gt=0,
        description="Delay before a failed event is sent again; doubles with every failure, "
        "up to 5 minutes.",
    )

    def environment_flag(self, area: IntegrationArea) -> IntegrationFlag:
        """The flag ``area`` has from the environment (revision 0), before any override."""
        return IntegrationFlag(
            enabled=bool(getattr(self, f"{area.value}_enabled")),
            system=str(getattr(self, SYSTEM_SETTINGS[area])),
        )

    def sqlalchemy_url(self) -> str:
        """DATABASE_URL, else a SQLite file under ``data_dir`` (created on demand)."""
        if self.database_url is not None:
            return self.database_url.get_secret_value()
        return f"sqlite:///{self.data_dir / 'gateway.db'}"
