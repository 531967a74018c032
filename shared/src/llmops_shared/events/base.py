"""The base class of every event payload (the ``data`` of an envelope)."""

from __future__ import annotations

from abc import abstractmethod
from typing import ClassVar

from pydantic import BaseModel, ConfigDict

from llmops_shared.events.names import Stream


class EventPayload(BaseModel):
    """What an event says, validated.

    Unknown fields are errors (``extra="forbid"``): events are a public API that other systems
    publish too, and a misspelt optional field must be rejected rather than silently dropped.
    Payloads are frozen because an event is a fact; a handler must not edit what it received.

    Each concrete payload declares ``event_type`` (the CloudEvents ``type``), the ``stream`` it
    travels on, and :meth:`subject`, the id of the entity it is about (the envelope's
    ``subject``). ``subject_description`` says in words where the subject comes from, for the
    generated documents.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    event_type: ClassVar[str]
    stream: ClassVar[Stream]
    subject_description: ClassVar[str]

    @abstractmethod
    def subject(self) -> str:
        """The id of the entity this event is about; becomes the envelope's ``subject``."""
