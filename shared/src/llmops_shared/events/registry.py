"""Which payload class each event type has, and which stream each type travels on.

The list is explicit (no registration by subclassing): adding an event type is a reviewed change
to this file, and defining a payload class elsewhere (in a test, say) registers nothing.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from types import MappingProxyType
from typing import Final

from llmops_shared.events.base import EventPayload
from llmops_shared.events.names import Stream, stream_of_type_name
from llmops_shared.events.payloads.catalog import ModelImportRequested, ModelUpdateCheckRequested
from llmops_shared.events.payloads.config import IntegrationConfigChanged
from llmops_shared.events.payloads.datasets import DatasetRestoreRequested, DatasetVersionRequested
from llmops_shared.events.payloads.models import ModelVersionChanged, ModelVersionRegistered
from llmops_shared.events.payloads.serving import (
    DeploymentDeleted,
    DeploymentMigrationRequested,
    DeploymentPromoted,
    DeploymentRequested,
    DeploymentRolledBack,
)
from llmops_shared.events.payloads.status import STATUS_PAYLOADS
from llmops_shared.events.payloads.training import (
    ExperimentMigrationRequested,
    TrainingJobCancelled,
    TrainingJobSubmitted,
)

PAYLOAD_TYPES: Final[tuple[type[EventPayload], ...]] = (
    TrainingJobSubmitted,
    TrainingJobCancelled,
    ExperimentMigrationRequested,
    DeploymentRequested,
    DeploymentPromoted,
    DeploymentRolledBack,
    DeploymentDeleted,
    DeploymentMigrationRequested,
    ModelImportRequested,
    ModelUpdateCheckRequested,
    DatasetVersionRequested,
    DatasetRestoreRequested,
    ModelVersionRegistered,
    ModelVersionChanged,
    IntegrationConfigChanged,
    *STATUS_PAYLOADS.values(),
)
"""Every registered payload class, in documentation order (by stream, then lifecycle)."""


def _index(payload_types: Iterable[type[EventPayload]]) -> Mapping[str, type[EventPayload]]:
    """Map type names to classes, refusing duplicates and a stream the name contradicts."""
    index: dict[str, type[EventPayload]] = {}
    for cls in payload_types:
        if cls.event_type in index:
            raise ValueError(f"event type {cls.event_type!r} is registered twice")
        if stream_of_type_name(cls.event_type) is not cls.stream:
            raise ValueError(f"{cls.__name__}: type {cls.event_type!r} is not on {cls.stream}")
        index[cls.event_type] = cls
    return MappingProxyType(index)


EVENT_TYPES: Final[Mapping[str, type[EventPayload]]] = _index(PAYLOAD_TYPES)
"""Event type name -> payload class, for every type a consumer accepts."""


def stream_for(event_type: str) -> Stream:
    """The stream ``event_type`` is published on; ``KeyError`` if the type is not registered."""
    try:
        return EVENT_TYPES[event_type].stream
    except KeyError:
        raise KeyError(f"unknown event type {event_type!r}") from None


def event_types_for(stream: Stream | str) -> tuple[str, ...]:
    """The registered types published on ``stream``, in registration order."""
    return tuple(name for name, cls in EVENT_TYPES.items() if cls.stream == stream)
