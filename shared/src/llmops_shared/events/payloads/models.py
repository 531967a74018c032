"""Payloads on ``llmops.models``: published by the MLflow webhook receiver and the
reconciliation poller (tracking service), consumed by github-sync.

Both paths may see the same model version; they publish it under the same event id
(:func:`model_version_event_id`), so consumers' idempotency drops the second copy.
"""

from __future__ import annotations

import uuid
from typing import Annotated, ClassVar, Final, Literal

from pydantic import AwareDatetime, Field

from llmops_shared.events.base import EventPayload
from llmops_shared.events.fields import Name, Uri
from llmops_shared.events.names import Stream

_EVENT_ID_NAMESPACE: Final = uuid.UUID("6f1c7f4e-2b1a-4f2e-9a57-4c1d3b2e8a90")

RUN_ID_PATTERN: Final = r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$"
TAG_VALUE_MAX_LENGTH: Final = 100_000
"""MLflow's own limit on a model-version tag value (``MAX_MODEL_REGISTRY_TAG_VALUE_LENGTH``)."""

RunId = Annotated[
    str,
    Field(
        pattern=RUN_ID_PATTERN,
        description="MLflow run id (32 hex characters in practice): letters, digits, '_' and "
        "'-', starting with a letter or digit, at most 64 characters; consumers use it in file "
        "names, so nothing path-like is accepted.",
        examples=["0f1e2d3c4b5a69788796a5b4c3d2e1f0"],
    ),
]


def model_version_event_id(
    model_name: str, version: str, created_ms: int, change: str = "created"
) -> str:
    """The deterministic event id of "``change`` happened to ``model_name``/``version``".

    ``created_ms`` is the version's ``creation_timestamp`` (ms, as MLflow reports it): a model
    deleted and registered again restarts at version 1, and the new version 1 must not share
    the old one's id. The webhook receiver and the poller both read it from MLflow, so they
    mint the same id for the same version. ``change`` is ``"created"`` for the registration;
    for a later change it names the occurrence (the tracking service uses
    ``"<change>:<key>:<webhook delivery id>"``), so an alias moved away and back, or a tag set
    to a value it had before, is a new event.
    """
    return str(uuid.uuid5(_EVENT_ID_NAMESPACE, f"{model_name}/{version}@{created_ms}/{change}"))


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
    run_id: RunId | None = Field(default=None, description="MLflow run that logged the model.")
    experiment_id: Name | None = Field(default=None, description="MLflow experiment of the run.")
    source: Uri = Field(description="Artifact URI of the model version.")
    created_at: AwareDatetime = Field(description="When MLflow created the version (RFC 3339).")
    aliases: list[Name] = Field(default_factory=list, description="Aliases pointing at it.")
    tags: dict[str, str] = Field(default_factory=dict, description="Model version tags.")

    def subject(self) -> str:
        """``<model_name>/<version>``, see :func:`model_version_id`."""
        return model_version_id(self.model_name, self.version)


class ModelVersionChanged(ModelVersionRegistered):
    """An alias was set on, or a tag set for, a registered model version in MLflow.

    Carries the version's current state (as :class:`ModelVersionRegistered`) plus what changed.
    """

    event_type: ClassVar[str] = "llmops.models.model_version.changed.v1"

    change: Literal["alias_created", "tag_set"] = Field(description="What happened.")
    key: Name = Field(description="The alias (alias_created) or the tag key (tag_set).")
    value: str | None = Field(
        default=None,
        max_length=TAG_VALUE_MAX_LENGTH,
        description="The tag value (tag_set), up to MLflow's own limit of 100,000 characters; "
        "null for aliases.",
    )
