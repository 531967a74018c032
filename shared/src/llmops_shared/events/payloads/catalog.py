"""Payloads on ``llmops.catalog``: consumed by registry (Hugging Face Hub)."""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import Field

from llmops_shared.events.base import EventPayload
from llmops_shared.events.fields import HfRepoId, Name, ResourceId
from llmops_shared.events.names import Stream


class ModelImportRequested(EventPayload):
    """A model from an external registry should be imported into the catalog entry ``model_id``."""

    event_type: ClassVar[str] = "llmops.catalog.model_import.requested.v1"
    stream: ClassVar[Stream] = Stream.CATALOG
    subject_description: ClassVar[str] = "data.model_id"

    model_id: ResourceId = Field(description="Catalog id the imported model gets.")
    registry_type: Literal["huggingface"] = Field(description="External registry kind.")
    registry_model_id: HfRepoId
    revision: Name | None = Field(
        default=None, description="Branch, tag or commit to import; null means the default branch."
    )

    def subject(self) -> str:
        """The catalog model id."""
        return self.model_id
