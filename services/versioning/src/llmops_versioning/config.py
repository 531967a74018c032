"""Settings of the versioning service (environment and ``.env``), on top of the shared base.

Names follow the integration quickstart's settings (``DATA_VERSIONING_ENABLED``), DVC's vocabulary
(``DVC_REMOTE_URL``, ``DVC_CACHE_DIR``) and the AWS SDK's own variables (``AWS_ACCESS_KEY_ID``,
``AWS_SECRET_ACCESS_KEY``, ``AWS_ENDPOINT_URL``), so one ``.env`` configures the worker and any
``aws``/``dvc`` command run next to it the same way. Credentials are ``SecretStr``: they never
appear in ``repr`` or logs, and reach DVC only through the repositories' untracked
``.dvc/config.local``.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Any, ClassVar, Literal

from pydantic import AliasChoices, Field, SecretStr, field_validator
from pydantic_settings import NoDecode

from llmops_shared.config import OptionalText, ServiceSettings, local_data_dir

REMOTE_NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$")


def data_dir() -> Path:
    """``$LLMOPS_DATA_DIR/versioning`` (the local stack's data dir), else ``.llmops/versioning``."""
    return local_data_dir() / "versioning"


class VersioningSettings(ServiceSettings):
    """Everything the versioning service reads from its environment."""

    service_name: str = "versioning"
    integration_area: ClassVar[str | None] = "data_versioning"
    integration_system_field: ClassVar[str | None] = "data_versioning_system"
    health_port: int = Field(default=8085, ge=0, le=65535)
    data_versioning_enabled: bool = Field(
        default=True,
        description="false: no DVC at all; versions are content-hash manifests over a local "
        "object store (the built-in backend).",
    )
    data_versioning_system: Literal["dvc"] = Field(
        default="dvc", description="The data versioning system when enabled; only 'dvc' exists."
    )
    dvc_repos_dir: Path = Field(
        default_factory=lambda: data_dir() / "repos",
        description="One git+DVC repository per dataset: <dir>/<dataset_id>.",
    )
    dvc_remote_name: str = Field(default="storage", description="Name of the DVC remote.")
    dvc_remote_url: str = Field(
        default_factory=lambda: str(data_dir() / "remote"),
        description="Where versions are pushed: a local directory or s3://bucket/prefix.",
    )
    dvc_cache_dir: Path | None = Field(
        default=None,
        description="DVC cache shared by every dataset repository; unset: <DVC_REPOS_DIR>/.cache.",
    )
    dvc_command_timeout_s: float = Field(
        default=3600.0, gt=0, description="Longest a single dvc/git command may run."
    )
    s3_endpoint_url: OptionalText = Field(
        default=None,
        validation_alias=AliasChoices("s3_endpoint_url", "aws_endpoint_url"),
        description="S3 API endpoint (MinIO, moto...); unset: AWS. Also read as AWS_ENDPOINT_URL.",
    )
    aws_access_key_id: SecretStr | None = Field(default=None, description="S3 access key.")
    aws_secret_access_key: SecretStr | None = Field(default=None, description="S3 secret key.")
    aws_region: OptionalText = Field(
        default=None,
        validation_alias=AliasChoices("aws_region", "aws_default_region"),
        description="S3 region (AWS_REGION or AWS_DEFAULT_REGION).",
    )
    builtin_store_dir: Path = Field(
        default_factory=lambda: data_dir() / "builtin",
        description="Object store and manifests of the built-in backend.",
    )
    git_author_name: str = Field(default="llmops-versioning", min_length=1)
    git_author_email: str = Field(default="versioning@llmops.local", min_length=3)
    progress_interval_s: float = Field(
        default=0.5, gt=0, description="Least time between two Running progress reports."
    )
    local_data_roots: Annotated[list[Path], NoDecode] = Field(
        default_factory=list,
        description="LOCAL_DATA_ROOTS, comma-separated absolute directories: local storage_uri "
        "and target_uri paths must resolve inside one of them (targets strictly below). Empty: "
        "any local path except /proc, /sys, /dev, /etc and the worker's own directories.",
    )

    @field_validator("dvc_remote_name")
    @classmethod
    def _remote_name(cls, value: str) -> str:
        if not REMOTE_NAME_PATTERN.match(value):
            raise ValueError(
                f"DVC_REMOTE_NAME {value!r} must be letters, digits, '_' or '-' (at most 64)"
            )
        return value

    @field_validator("dvc_remote_url")
    @classmethod
    def _remote_url(cls, value: str) -> str:
        value = value.strip()
        if not value:
            raise ValueError("DVC_REMOTE_URL is empty")
        return value

    @field_validator("local_data_roots", mode="before")
    @classmethod
    def _roots(cls, value: Any) -> Any:
        """``/data,/mnt/datasets`` (the environment) or a list; relative roots are refused."""
        if isinstance(value, str):
            value = [part.strip() for part in value.split(",") if part.strip()]
        if isinstance(value, list | tuple):
            for root in value:
                if not Path(root).is_absolute():
                    raise ValueError(f"LOCAL_DATA_ROOTS entry {str(root)!r} is not absolute")
        return value
