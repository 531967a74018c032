"""Payloads on ``llmops.datasets``: consumed by versioning (DVC)."""

from __future__ import annotations

from typing import ClassVar

from pydantic import Field

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
