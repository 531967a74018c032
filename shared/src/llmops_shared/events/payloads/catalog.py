"""Payloads on ``llmops.catalog`` (consumed by registry), and the facts registry reports back.

The registry worker answers with ``llmops.status.model.updated.v1`` reports whose ``details``
hold the typed facts below under fixed keys, so the gateway can validate what it folds:

* ``details.model``: :class:`ImportedModel`, on the ``Succeeded`` report of an import;
* ``details.progress``: :class:`ImportProgress`, on ``Running`` reports while importing;
* ``details.upstream``: :class:`UpstreamCheck`, on the answer to a
  :class:`ModelUpdateCheckRequested` (it does not change the model's phase).
"""

from __future__ import annotations

from datetime import datetime
from typing import ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field

from llmops_shared.events.base import EventPayload
from llmops_shared.events.fields import HfRepoId, Name, ResourceId
from llmops_shared.events.names import Stream

RegistryType = Literal["huggingface"]
"""The external registries the platform imports from."""


class ModelImportRequested(EventPayload):
    """A model from an external registry should be imported into the catalog entry ``model_id``."""

    event_type: ClassVar[str] = "llmops.catalog.model_import.requested.v1"
    stream: ClassVar[Stream] = Stream.CATALOG
    subject_description: ClassVar[str] = "data.model_id"

    model_id: ResourceId = Field(description="Catalog id the imported model gets.")
    registry_type: RegistryType = Field(description="External registry kind.")
    registry_model_id: HfRepoId
    revision: Name | None = Field(
        default=None, description="Branch, tag or commit to import; null means the default branch."
    )
    download: bool = Field(
        default=False,
        description="Also download a snapshot of the files into the registry's model store.",
    )

    def subject(self) -> str:
        """The catalog model id."""
        return self.model_id


class ModelUpdateCheckRequested(EventPayload):
    """Compare an imported model's pinned commit with the registry's current one."""

    event_type: ClassVar[str] = "llmops.catalog.model_update_check.requested.v1"
    stream: ClassVar[Stream] = Stream.CATALOG
    subject_description: ClassVar[str] = "data.model_id"

    model_id: ResourceId = Field(description="Catalog id of the imported model.")
    registry_type: RegistryType = Field(description="External registry kind.")
    registry_model_id: HfRepoId
    revision: Name | None = Field(
        default=None,
        description="The branch or tag the import followed (null: the default branch); the "
        "check resolves it again.",
    )
    pinned_revision: Name = Field(description="Commit sha the catalog entry is pinned to.")

    def subject(self) -> str:
        """The catalog model id."""
        return self.model_id


class _Facts(BaseModel):
    """Report details: unknown keys are ignored so a newer worker can add facts."""

    model_config = ConfigDict(extra="ignore")


class ModelFile(_Facts):
    """One file of the model repository at the pinned commit."""

    path: str = Field(min_length=1, max_length=1024)
    size: int | None = Field(default=None, ge=0, description="Bytes; null when not reported.")


class ImportedModel(_Facts):
    """What an import learned about the model (``details.model`` of the Succeeded report)."""

    registry_type: RegistryType
    repo_id: str = Field(max_length=96)
    revision: str = Field(max_length=256, description="Commit sha the import is pinned to.")
    url: str = Field(max_length=2048, description="Where a person can look at the model.")
    architectures: list[str] = Field(default_factory=list)
    model_type: str | None = Field(default=None, max_length=128)
    family: str = Field(max_length=64, description="Whitelisted family of the architecture.")
    max_position_embeddings: int = Field(ge=1, le=2**31 - 1)
    license: str | None = Field(default=None, max_length=256)
    gated: bool = False
    private: bool = False
    safetensors: bool = Field(description="Whether the weights come as safetensors.")
    files: list[ModelFile] = Field(default_factory=list)
    total_bytes: int = Field(default=0, ge=0)
    last_modified: datetime | None = None
    snapshot_uri: str | None = Field(
        default=None, max_length=2048, description="Where the downloaded snapshot is, if any."
    )


class ImportProgress(_Facts):
    """How far an import is (``details.progress`` of Running reports)."""

    stage: Literal["resolving", "downloading"]
    files_done: int = Field(default=0, ge=0)
    files_total: int = Field(default=0, ge=0)
    bytes_done: int = Field(default=0, ge=0)
    bytes_total: int = Field(default=0, ge=0)


class UpstreamCheck(_Facts):
    """The answer to a check-updates request (``details.upstream``)."""

    pinned_revision: str = Field(max_length=256)
    upstream_revision: str | None = Field(
        default=None, max_length=256, description="The registry's current commit; null on error."
    )
    updated: bool = Field(description="Whether upstream moved past the pinned commit.")
    checked_at: datetime
    error: str | None = Field(default=None, max_length=2000)
