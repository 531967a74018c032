"""Payloads on ``llmops.datasets`` (consumed by versioning), and the facts versioning reports.

The versioning worker answers with status reports whose ``details`` hold the typed facts below:

* ``llmops.status.dataset_version.updated.v1`` (entity id = version id): ``details.progress``
  (:class:`VersionProgress`) while Running, ``details.version`` (:class:`VersionFacts`) on
  Succeeded. A Failed version left nothing behind (no tag, no commit, no manifest).
* ``llmops.status.dataset_restore.updated.v1`` (entity id = restore id): ``details.restore``
  (:class:`RestoreFacts`) with progress while Running and the totals on Succeeded.
"""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field

from llmops_shared.events.base import EventPayload
from llmops_shared.events.fields import ResourceId, Uri, VersionTag
from llmops_shared.events.names import Stream
from llmops_shared.specs import DatasetType


class DatasetVersionRequested(EventPayload):
    """A new version of a dataset should be recorded (a DVC commit and tag ``version_tag``)."""

    event_type: ClassVar[str] = "llmops.datasets.dataset_version.requested.v1"
    stream: ClassVar[Stream] = Stream.DATASETS
    subject_description: ClassVar[str] = "data.version_id"

    dataset_id: ResourceId = Field(description="Catalog id of the dataset.")
    version_id: ResourceId = Field(description="Id of the new dataset version.")
    version_tag: VersionTag
    dataset_type: DatasetType = Field(description="Record layout of the dataset.")
    storage_uri: Uri = Field(description="Where the data to version is.")
    parent_version_id: ResourceId | None = Field(
        default=None, description="Version this one derives from, for lineage and diffs."
    )

    def subject(self) -> str:
        """The dataset version id (the entity the versioning worker creates)."""
        return self.version_id


class DatasetRestoreRequested(EventPayload):
    """Materialise a recorded dataset version, file for file, at ``target_uri``."""

    event_type: ClassVar[str] = "llmops.datasets.dataset_restore.requested.v1"
    stream: ClassVar[Stream] = Stream.DATASETS
    subject_description: ClassVar[str] = "data.restore_id"

    restore_id: ResourceId = Field(description="Id of this restore (its status entity id).")
    dataset_id: ResourceId = Field(description="Catalog id of the dataset.")
    version_id: ResourceId = Field(description="The version to restore.")
    version_tag: VersionTag
    target_uri: Uri = Field(description="Where to write the files (local path or s3://).")

    def subject(self) -> str:
        """The restore id."""
        return self.restore_id


class _Facts(BaseModel):
    """Report details: unknown keys are ignored so a newer worker can add facts."""

    model_config = ConfigDict(extra="ignore")


ManifestEntry = tuple[str, str, int]
"""One file of a version: (path relative to the dataset root with '/', md5 hex, size in bytes)."""


class VersionFacts(_Facts):
    """A recorded version (``details.version`` of the Succeeded report)."""

    backend: Literal["dvc", "builtin"]
    digest: str = Field(
        max_length=128, description="DVC '.dir' md5 (dvc) or the manifest's content hash."
    )
    file_count: int = Field(ge=0)
    total_bytes: int = Field(ge=0)
    revision: str | None = Field(
        default=None, max_length=256, description="Git commit of the version's tag (dvc)."
    )
    tag: str | None = Field(default=None, max_length=256, description="Git tag (dvc).")
    remote_uri: str | None = Field(
        default=None, max_length=2048, description="Where the data was pushed."
    )
    parent_version_id: str | None = Field(default=None, max_length=64)
    files: list[ManifestEntry] = Field(
        default_factory=list, description="The manifest, sorted by path: what diffs compare."
    )


class VersionProgress(_Facts):
    """How far a long add/push is (``details.progress`` of Running reports)."""

    stage: Literal["fetching", "hashing", "committing", "pushing"]
    files_done: int = Field(default=0, ge=0)
    files_total: int = Field(default=0, ge=0)
    bytes_done: int = Field(default=0, ge=0)
    bytes_total: int = Field(default=0, ge=0)


class RestoreFacts(_Facts):
    """A restore's target and counts (``details.restore``)."""

    version_id: str = Field(max_length=64)
    target_uri: str = Field(max_length=2048)
    files_done: int = Field(default=0, ge=0)
    files_total: int = Field(default=0, ge=0)
    bytes_done: int = Field(default=0, ge=0)
    bytes_total: int = Field(default=0, ge=0)
