"""What an MLflow webhook delivery means: its payload, the model version it is about, the event.

Split out of :mod:`llmops_tracking.webhooks`, whose receiver verifies, de-duplicates and
publishes; this module only reads payloads (pydantic models of the deliveries handled) and
builds the ``llmops.models`` envelope of a version read back from MLflow.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from llmops_shared.events import Envelope
from llmops_tracking.model_versions import (
    Change,
    ModelVersionRecord,
    changed_event,
    registered_event,
)


class Delivery(BaseModel):
    entity: str
    action: str
    timestamp: str | None = None
    data: dict[str, Any]


class VersionRef(BaseModel):
    model_config = ConfigDict(extra="ignore")

    name: str = Field(min_length=1)
    version: str = Field(min_length=1)

    @field_validator("version", mode="before")
    @classmethod
    def _text(cls, value: object) -> object:
        return str(value) if isinstance(value, int) and not isinstance(value, bool) else value


class _AliasCreated(VersionRef):
    alias: str = Field(min_length=1)


class _TagSet(VersionRef):
    key: str = Field(min_length=1)
    value: str


@dataclass(frozen=True)
class VersionChange:
    change: Change
    key: str
    value: str | None


def interpret(event: str, data: dict[str, Any]) -> tuple[VersionRef | None, VersionChange | None]:
    """The version a delivery of ``event`` is about and what changed (None: a creation);
    ``(None, None)`` for events this service does not handle."""
    if event == "model_version.created":
        return VersionRef.model_validate(data), None
    if event == "model_version_alias.created":
        alias = _AliasCreated.model_validate(data)
        return alias, VersionChange("alias_created", alias.alias, None)
    if event == "model_version_tag.set":
        tag = _TagSet.model_validate(data)
        return tag, VersionChange("tag_set", tag.key, tag.value)
    return None, None


def version_envelope(
    record: ModelVersionRecord, change: VersionChange | None, delivery_id: str
) -> Envelope:
    if change is None:
        return registered_event(record, correlation_id=delivery_id)
    return changed_event(record, change.change, change.key, change.value, delivery_id=delivery_id)


def error_text(exc: ValueError) -> str:
    if isinstance(exc, ValidationError):
        return first_error(exc)
    return " ".join(str(exc).split())[:500]


def first_error(exc: ValidationError) -> str:
    error = exc.errors()[0]
    where = ".".join(str(p) for p in error.get("loc", ())) or "body"
    return f"{where}: {error.get('msg')}"
