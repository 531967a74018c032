"""Settings of the registry service (environment and ``.env``), on top of the shared base.

Names follow ``huggingface_hub``'s own variables where one exists (``HF_ENDPOINT``,
``HF_TOKEN`` (or the older ``HUGGINGFACE_HUB_TOKEN`` the integration quickstart uses),
``HF_HUB_OFFLINE``), so one ``.env`` configures the worker and any ``hf`` CLI run next
to it the same way. The cache is ``HUGGINGFACE_HUB_CACHE_DIR``, not the client's global
``HF_HUB_CACHE``, so a developer's personal cache is never written by the platform. The worker
passes every value to the client explicitly; it never relies on the client reading the
environment itself.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

from pydantic import AliasChoices, Field, SecretStr, field_validator

from llmops_shared.config import ServiceSettings, http_base_url_rule, local_data_dir

DEFAULT_HF_ENDPOINT = "https://huggingface.co"


def default_hf_cache_dir() -> Path:
    """``<data dir>/hf-cache``: a ``huggingface_hub`` cache private to the platform."""
    return local_data_dir() / "hf-cache"


def default_model_store_dir() -> Path:
    """``<data dir>/models``: where downloaded snapshots are materialised."""
    return local_data_dir() / "models"


class RegistrySettings(ServiceSettings):
    """Everything the registry service reads from its environment."""

    service_name: str = "registry"
    health_port: int = Field(default=8084, ge=0, le=65535)
    hf_endpoint: Annotated[
        str, http_base_url_rule(default=DEFAULT_HF_ENDPOINT, setting="HF_ENDPOINT")
    ] = Field(
        default=DEFAULT_HF_ENDPOINT,
        description="Base URL of the Hugging Face Hub (or a mirror / Hub-compatible server).",
    )
    hf_token: SecretStr | None = Field(
        default=None,
        validation_alias=AliasChoices("hf_token", "huggingface_hub_token"),
        description="Hub access token (HF_TOKEN, or HUGGINGFACE_HUB_TOKEN); needed for gated "
        "and private repositories. Never logged. Unset: requests are anonymous (a token saved "
        "by `hf auth login` is NOT picked up).",
    )
    hf_hub_offline: bool = Field(
        default=False,
        description="true: never contact the Hub; imports read the seeded cache in "
        "HUGGINGFACE_HUB_CACHE_DIR and update checks answer 'offline mode'.",
    )
    hf_cache_dir: Path = Field(
        default_factory=default_hf_cache_dir,
        validation_alias=AliasChoices("hf_cache_dir", "huggingface_hub_cache_dir"),
        description="huggingface_hub cache directory (HUGGINGFACE_HUB_CACHE_DIR): config.json "
        "and downloaded files land here; offline mode reads it. huggingface_hub's own "
        "HF_HUB_CACHE is deliberately not read: the platform's cache stays its own.",
    )
    model_store_dir: Path = Field(
        default_factory=default_model_store_dir,
        description="Where downloaded snapshots are written: <store>/<owner>--<name>/<sha>/.",
    )
    hub_retry_attempts: int = Field(
        default=4,
        ge=1,
        le=20,
        description="Tries of one Hub call when the Hub is unreachable or answers 5xx/429.",
    )
    hub_retry_wait_s: float = Field(
        default=1.0,
        ge=0,
        description="First wait between tries; doubles after each (capped at 30 s).",
    )
    hub_timeout_s: float = Field(
        default=30.0, gt=0, description="Seconds per metadata request (model info, HEAD)."
    )
    progress_interval_s: float = Field(
        default=0.5,
        ge=0,
        description="At most one Running progress report per this many seconds per import.",
    )

    @field_validator("hf_token")
    @classmethod
    def _token(cls, value: SecretStr | None) -> SecretStr | None:
        """An empty ``HF_TOKEN=`` line means no token."""
        if value is None or not value.get_secret_value().strip():
            return None
        return SecretStr(value.get_secret_value().strip())
