"""Settings of the github-sync service (environment and ``.env``), on top of the shared base.

Names follow the variables of the MLflow GitHub sync service this one replaces
(``GITHUB_TOKEN``, ``GITHUB_REPO_OWNER``, ``GITHUB_REPO_NAME``, ``MLFLOW_TRACKING_URI``) so one
``.env`` moves over unchanged. Secrets are ``SecretStr``: they never appear in ``repr`` or a log
line.

Backend choice (``GIT_SYNC_BACKEND``): ``github`` when a token or GitHub App credentials are set,
else ``git``; the ``git`` backend with no ``GIT_REMOTE_URL`` uses a local bare repository under
the data dir (created on first use), so ``llmops up`` works offline.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

from pydantic import AliasChoices, Field, field_validator, model_validator

from llmops_shared.config import (
    ApiKeys,
    OptionalSecret,
    OptionalText,
    ServiceSettings,
    http_base_url_rule,
    local_data_dir,
)

DEFAULT_GITHUB_API = "https://api.github.com"


def default_work_dir() -> Path:
    """``<data dir>/github-sync``: the git backend's clone and the local bare repository."""
    return local_data_dir() / "github-sync"


class GithubSyncSettings(ServiceSettings):
    """Everything the github-sync service reads from its environment."""

    service_name: str = "github-sync"
    health_port: int = Field(
        default=8086,
        ge=0,
        le=65535,
        description="Health, metrics and the service API (/poll, /connections, /health, /docs). "
        "The MLflow GitHub sync service it replaces served on 8003.",
    )

    api_keys: ApiKeys = Field(
        default_factory=list,
        description="Bearer keys that may call POST /poll (the gateway's bootstrap API_KEYS, "
        "comma-separated); none: POST /poll is refused.",
    )

    # --- GitHub (the `github` backend) -------------------------------------------------------
    github_token: OptionalSecret = Field(default=None, description="Token auth. Never logged.")
    github_app_id: OptionalText = Field(default=None, description="GitHub App id (App auth).")
    github_app_private_key: OptionalSecret = Field(
        default=None, description="The App's PEM private key (or GITHUB_APP_PRIVATE_KEY_PATH)."
    )
    github_app_private_key_path: Path | None = Field(default=None)
    github_app_installation_id: int | None = Field(default=None)
    github_repo_owner: OptionalText = None
    github_repo_name: OptionalText = None
    github_branch: OptionalText = Field(
        default=None, description="Target branch; unset: the repository's default branch."
    )
    github_base_url: Annotated[
        str, http_base_url_rule(default=DEFAULT_GITHUB_API, setting="GITHUB_BASE_URL")
    ] = Field(
        default=DEFAULT_GITHUB_API,
        description="API base URL; GitHub Enterprise: https://<host>/api/v3.",
    )
    github_values_path: str = Field(
        default="", description="Directory in the repository for {run_id}.yaml; '' = the root."
    )
    github_timeout_s: int = Field(default=15, ge=1)
    github_seconds_between_writes: float = Field(
        default=1.0,
        ge=0,
        description="PyGithub's pause between write requests (GitHub's advice against secondary "
        "rate limits).",
    )
    github_max_rate_limit_wait_s: float = Field(
        default=60.0,
        ge=0,
        description="Longest total wait for a rate limit (Retry-After / X-RateLimit-Reset) within "
        "one sync; beyond it the consumer pauses (DependencyUnavailableError).",
    )
    github_conflict_retries: int = Field(
        default=5, ge=1, description="Re-reads after a 409 (sha moved) or a moved ref."
    )
    sync_mode: Literal["push", "pull_request"] = Field(
        default="push",
        description="push: commit to the branch; pull_request: commit to llmops/values-<run_id> "
        "and open (or reuse) a pull request (github backend only).",
    )

    # --- plain git (the `git` backend) -------------------------------------------------------
    git_sync_backend: Literal["github", "git"] | None = Field(
        default=None, description="Unset: github when a token or App auth is set, else git."
    )
    git_remote_url: OptionalText = Field(
        default=None,
        description="Any git remote (GitLab, Gitea, ssh, a bare repo path); unset: a local bare "
        "repository <work dir>/values.git.",
    )
    git_branch: str = Field(default="main", description="Branch of the git backend.")
    git_author_name: str = "llmops github-sync"
    git_author_email: str = "github-sync@llmops.local"
    git_push_retries: int = Field(default=5, ge=1, description="Tries after a rejected push.")
    git_timeout_s: float = Field(default=60.0, gt=0)
    work_dir: Path = Field(
        default_factory=default_work_dir,
        validation_alias=AliasChoices("work_dir", "github_sync_work_dir"),
        description="GITHUB_SYNC_WORK_DIR: the git backend's clone and the local bare repository.",
    )

    # --- values rendering --------------------------------------------------------------------
    values_template_path: Path | None = Field(
        default=None,
        description="A YAML values template; unset: the built-in one (the layout the replaced "
        "MLflow GitHub sync service wrote).",
    )
    vllm_max_model_len: int = Field(default=4096, ge=1)
    vllm_gpu_memory_utilization: float = Field(default=0.9, gt=0, le=1)
    vllm_trust_remote_code: bool = True
    vllm_served_model_name: OptionalText = Field(
        default=None, description="Unset: the registered model's name."
    )

    # --- MLflow (reconcile, experiment lookup) -----------------------------------------------
    mlflow_tracking_uri: OptionalText = Field(default=None)
    mlflow_page_size: int = Field(default=200, ge=1, le=10_000)

    @field_validator("github_values_path")
    @classmethod
    def _values_path(cls, value: str) -> str:
        value = value.strip().strip("/")
        if any(part in {"", ".", ".."} for part in value.split("/")) and value:
            raise ValueError(f"GITHUB_VALUES_PATH {value!r} is not a clean relative directory")
        return value

    @model_validator(mode="after")
    def _consistent(self) -> GithubSyncSettings:
        if self.backend == "github":
            if not (self.github_repo_owner and self.github_repo_name):
                raise ValueError("the github backend needs GITHUB_REPO_OWNER and GITHUB_REPO_NAME")
            if self.github_token is None and not self.app_auth_configured:
                raise ValueError(
                    "the github backend needs GITHUB_TOKEN, or GITHUB_APP_ID + "
                    "GITHUB_APP_PRIVATE_KEY(_PATH) + GITHUB_APP_INSTALLATION_ID"
                )
        elif self.sync_mode == "pull_request":
            raise ValueError("SYNC_MODE=pull_request needs the github backend")
        return self

    @property
    def app_auth_configured(self) -> bool:
        """GitHub App credentials are complete."""
        return bool(
            self.github_app_id
            and (self.github_app_private_key or self.github_app_private_key_path)
            and self.github_app_installation_id is not None
        )

    @property
    def backend(self) -> Literal["github", "git"]:
        """The backend in use (``GIT_SYNC_BACKEND``, else chosen from the credentials)."""
        if self.git_sync_backend is not None:
            return self.git_sync_backend
        return "github" if self.github_token is not None or self.app_auth_configured else "git"

    def app_private_key(self) -> str:
        """The App's PEM key (from the setting or the file)."""
        if self.github_app_private_key is not None:
            return self.github_app_private_key.get_secret_value()
        if self.github_app_private_key_path is None:
            raise ValueError("no GitHub App private key configured")
        return self.github_app_private_key_path.read_text()
