"""Request and response bodies of ``/catalog/datasets``: datasets, versions, diffs, restores."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Annotated, Final

from pydantic import Field, field_validator
from pydantic_core import PydanticCustomError

from llmops_gateway.api.schemas.common import API_PREFIX, CamelModel, Items, Page
from llmops_gateway.db.models import CatalogDataset, DatasetRestore, DatasetVersion
from llmops_shared.events.fields import URI_PATTERN, VersionTag
from llmops_shared.manifest_diff import FileChange, ManifestDiff
from llmops_shared.specs import DatasetType
from llmops_shared.uris import NoCredentials

SEMVER: Final = re.compile(
    r"^v?(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)"
    r"(?:-((?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*)(?:\.(?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*))*))?"
    r"(?:\+([0-9a-zA-Z-]+(?:\.[0-9a-zA-Z-]+)*))?$"
)
"""Semantic Versioning 2.0.0, with an optional leading ``v`` (``v1.0.0``, ``1.2.3-rc.1``)."""


def _base(dataset_id: str) -> str:
    return f"{API_PREFIX}/catalog/datasets/{dataset_id}"


class DatasetRequest(CamelModel):
    """``POST /catalog/datasets``."""

    name: str = Field(min_length=1, max_length=256, pattern=r"^\S+$")
    type: DatasetType = Field(description="Record layout; decides which job types may use it.")
    storage_uri: Annotated[str, NoCredentials] = Field(
        max_length=2048,
        pattern=URI_PATTERN,
        description="Where the data is (s3://bucket/prefix or a local path); versions "
        "snapshot what is there when they are created.",
    )
    schema_ref: str | None = Field(default=None, min_length=1, max_length=512)
    description: str | None = Field(default=None, max_length=4000)


class DatasetOut(CamelModel):
    id: str
    name: str
    type: str | None
    storage_uri: str | None
    schema_ref: str | None
    description: str | None
    versions_url: str
    created_at: datetime

    @classmethod
    def of(cls, dataset: CatalogDataset) -> DatasetOut:
        return cls.from_row(dataset, versions_url=f"{_base(dataset.id)}/versions")


class DatasetList(Page[DatasetOut]):
    pass


class VersionRequest(CamelModel):
    """``POST /catalog/datasets/{id}/versions`` (the integration quickstart's dataset-version
    example)."""

    version_tag: VersionTag = Field(description="A semantic version, e.g. v1.0.0.")
    storage_uri: Annotated[str | None, NoCredentials] = Field(
        default=None,
        max_length=2048,
        pattern=URI_PATTERN,
        description="Snapshot this location instead of the dataset's storage_uri.",
    )

    @field_validator("version_tag", mode="before")
    @classmethod
    def _semver(cls, value: object) -> object:
        if isinstance(value, str) and SEMVER.match(value) is None:
            raise PydanticCustomError(
                "spec_rule",
                "version_tag '{tag}' is not a semantic version (e.g. v1.0.0 or 1.2.0-rc.1)",
                {"tag": value, "rule": "version_tag_semver"},
            )
        return value


class VersionOut(CamelModel):
    """A dataset version. ``status``: Pending, Running, Succeeded (usable), Failed."""

    id: str
    dataset_id: str
    version_tag: str
    status: str
    reason: str | None
    storage_uri: str | None
    backend: str | None
    parent_version_id: str | None
    digest: str | None
    revision: str | None = Field(description="Git commit of the version's tag (DVC backend).")
    tag: str | None
    remote_uri: str | None
    file_count: int | None
    total_bytes: int | None
    progress: dict[str, object] | None
    status_url: str
    created_at: datetime
    updated_at: datetime

    @classmethod
    def of(cls, version: DatasetVersion) -> VersionOut:
        return cls.from_row(
            version,
            version_tag=version.version,
            backend=version.system,
            status_url=f"{_base(version.dataset_id)}/versions/{version.id}",
        )


class VersionList(Items[VersionOut]):
    pass


class FileChangeOut(CamelModel):
    path: str
    base_size: int | None
    size: int | None

    @classmethod
    def of(cls, change: FileChange) -> FileChangeOut:
        return cls(path=change.path, base_size=change.base_size, size=change.size)


class DiffSummary(CamelModel):
    added: int
    modified: int
    deleted: int
    unchanged: int
    bytes_added: int
    bytes_deleted: int
    size_delta: int = Field(description="Total bytes of the version minus those of the base.")


class DiffOut(CamelModel):
    """What changed from ``baseVersionId`` to ``versionId``, file by file."""

    dataset_id: str
    base_version_id: str
    version_id: str
    added: list[FileChangeOut]
    modified: list[FileChangeOut]
    deleted: list[FileChangeOut]
    summary: DiffSummary

    @classmethod
    def of(cls, base: DatasetVersion, version: DatasetVersion, diff: ManifestDiff) -> DiffOut:
        return cls(
            dataset_id=version.dataset_id,
            base_version_id=base.id,
            version_id=version.id,
            added=[FileChangeOut.of(c) for c in diff.added],
            modified=[FileChangeOut.of(c) for c in diff.modified],
            deleted=[FileChangeOut.of(c) for c in diff.deleted],
            summary=DiffSummary(
                added=len(diff.added),
                modified=len(diff.modified),
                deleted=len(diff.deleted),
                unchanged=diff.unchanged,
                bytes_added=diff.bytes_added,
                bytes_deleted=diff.bytes_deleted,
                size_delta=diff.size_delta,
            ),
        )


class RestoreRequest(CamelModel):
    """``POST .../versions/{versionId}/restore``."""

    target_uri: Annotated[str, NoCredentials] = Field(
        max_length=2048,
        pattern=URI_PATTERN,
        description="Where to write the version's files (a local path or s3://); must be empty.",
    )


class RestoreOut(CamelModel):
    id: str
    version_id: str
    target_uri: str
    status: str
    reason: str | None
    files_done: int | None
    files_total: int | None
    bytes_done: int | None
    bytes_total: int | None
    status_url: str
    created_at: datetime
    updated_at: datetime

    @classmethod
    def of(cls, restore: DatasetRestore, dataset_id: str) -> RestoreOut:
        url = f"{_base(dataset_id)}/versions/{restore.version_id}/restores/{restore.id}"
        return cls.from_row(restore, status_url=url)
