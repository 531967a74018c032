"""Payloads on ``llmops.models``: published by the MLflow webhook/poller, consumed by
github-sync."""

from __future__ import annotations

from typing import ClassVar

from pydantic import AwareDatetime, Field

from llmops_shared.events.base import EventPayload
from llmops_shared.events.fields import Name, Uri
from llmops_shared.events.names import Stream


def model_version_id(model_name: str, version: str) -> str:
    """The entity id of a registered model version: ``<model_name>/<version>``.

    Used as the subject of ModelVersionRegistered and as ``entity_id`` of model_version status
    events, so both name the same entity.
    """
    return f"{model_name}/{version}"


class ModelVersionRegistered(EventPayload):
    """A new version of a registered model appeared in MLflow."""

    event_type: ClassVar[str] = "llmops.models.model_version.registered.v1"
    stream: ClassVar[Stream] = Stream.MODELS
    subject_description: ClassVar[str] = "data.model_name + '/' + data.version"

    model_name: Name = Field(description="Registered model name in MLflow.")
    version: Name = Field(description="Model version, as MLflow reports it (e.g. '3').")
    run_id: Name | None = Field(default=None, description="MLflow run that logged the model.")
    experiment_id: Name | None = Field(default=None, description="MLflow experiment of the run.")
    source: Uri = Field(description="Artifact URI of the model version.")
    created_at: AwareDatetime = Field(description="When MLflow created the version (RFC 3339).")
    aliases: list[Name] = Field(default_factory=list, description="Aliases pointing at it.")
    tags: dict[str, str] = Field(default_factory=dict, description="Model version tags.")

    def subject(self) -> str:
        """``<model_name>/<version>``, see :func:`model_version_id`."""
        return model_version_id(self.model_name, self.version)
