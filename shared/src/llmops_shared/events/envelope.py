"""The CloudEvents 1.0 envelope (structured JSON mode) and the decoded event a handler gets."""

from __future__ import annotations

import builtins
import re
from dataclasses import dataclass
from typing import Annotated, Any, Final, Literal, TypeVar

from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    WithJsonSchema,
    field_validator,
    model_validator,
)

from llmops_shared.events.base import EventPayload
from llmops_shared.events.names import Stream

SPEC_VERSION: Final = "1.0"
CONTENT_TYPE: Final = "application/json"

UUID_PATTERN: Final = (
    r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$"
)
TRACEPARENT_PATTERN: Final = r"^[0-9a-f]{2}-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}$"
EXTENSION_NAME_PATTERN: Final = r"^[a-z0-9]+$"

_TRACEPARENT_RE: Final = re.compile(TRACEPARENT_PATTERN)
_EXTENSION_NAME_RE: Final = re.compile(EXTENSION_NAME_PATTERN)

P = TypeVar("P", bound=EventPayload)


def is_valid_traceparent(value: str) -> bool:
    """W3C Trace Context ``traceparent``: known shape, version not ``ff``, ids not all zero."""
    if _TRACEPARENT_RE.match(value) is None:
        return False
    version, trace_id, parent_id, _flags = value.split("-")
    return version != "ff" and trace_id != "0" * 32 and parent_id != "0" * 16


class Envelope(BaseModel):
    """One event on the wire: a CloudEvents 1.0 event in structured JSON mode.

    Tolerance rules, decided here once for every consumer:

    * An invalid ``traceparent`` is dropped (set to ``None``), not rejected: W3C Trace Context
      tells a receiver to ignore a header it cannot parse and start a new trace, and a tracing
      glitch must not dead-letter a business event. :func:`new_event` still refuses one.
    * Unknown extension attributes are accepted and kept (CloudEvents tells consumers to
      tolerate them; keeping them lets a relay or a dead letter pass them on); read them with
      :attr:`extensions`. Their names must follow CloudEvents (lowercase letters and digits
      only) and their values must be strings, integers, booleans or null, else the envelope is
      invalid. This also catches the likely typo ``correlationId``.
    """

    model_config = ConfigDict(
        extra="allow",
        frozen=True,
        json_schema_extra={
            "additionalProperties": {"type": ["string", "integer", "boolean", "null"]},
            "propertyNames": {"pattern": EXTENSION_NAME_PATTERN},
        },
    )

    id: str = Field(
        pattern=UUID_PATTERN,
        description="Unique event id (a UUID); consumers deduplicate on it.",
    )
    source: str = Field(
        min_length=1, max_length=256, description="Service (or system) that published the event."
    )
    type: str = Field(min_length=1, max_length=256, description="Event type.")
    specversion: Literal["1.0"] = Field(description="CloudEvents version; always 1.0.")
    time: AwareDatetime = Field(description="When the event happened (RFC 3339, with offset).")
    subject: str = Field(
        min_length=1, max_length=512, description="Id of the entity the event is about."
    )
    datacontenttype: Literal["application/json"] = Field(
        default=CONTENT_TYPE, description="Media type of data."
    )
    data: dict[str, Any] = Field(description="The payload; its schema depends on type.")
    traceparent: (
        Annotated[str, WithJsonSchema({"type": "string", "pattern": TRACEPARENT_PATTERN})] | None
    ) = Field(
        default=None,
        description="W3C Trace Context traceparent of the publishing span (distributed tracing "
        "extension); an invalid value is ignored.",
    )
    correlationid: str | None = Field(
        default=None,
        min_length=1,
        max_length=256,
        description="Id of the originating request (e.g. the gateway's request id); copied from "
        "an event to the events published because of it.",
    )

    @field_validator("traceparent", mode="before")
    @classmethod
    def _drop_invalid_traceparent(cls, value: object) -> object:
        if value is None or (isinstance(value, str) and is_valid_traceparent(value)):
            return value
        return None

    @model_validator(mode="after")
    def _check_extensions(self) -> Envelope:
        for name, value in (self.__pydantic_extra__ or {}).items():
            if _EXTENSION_NAME_RE.match(name) is None:
                raise ValueError(
                    f"attribute name {name!r} is not a CloudEvents name (lowercase a-z, 0-9)"
                )
            if value is not None and not isinstance(value, str | int):  # bool is an int
                raise ValueError(
                    f"extension attribute {name!r} must be a string, integer or boolean"
                )
        return self

    @property
    def extensions(self) -> dict[str, Any]:
        """Extension attributes other than ``traceparent`` and ``correlationid``."""
        return dict(self.__pydantic_extra__ or {})


@dataclass(frozen=True, slots=True)
class Event:
    """A decoded event: the envelope as received and its validated payload."""

    envelope: Envelope
    payload: EventPayload

    @property
    def id(self) -> str:
        """The event id, the idempotency key of handlers."""
        return self.envelope.id

    @property
    def type(self) -> str:
        """The event type."""
        return self.envelope.type

    @property
    def stream(self) -> Stream:
        """The stream this type of event travels on."""
        return self.payload.stream

    def payload_as(self, payload_type: builtins.type[P]) -> P:
        """The payload, typed; raises ``TypeError`` if it is not a ``payload_type``.

        For handlers registered for one type: ``job = event.payload_as(TrainingJobSubmitted)``.
        """
        if not isinstance(self.payload, payload_type):
            raise TypeError(
                f"{self.envelope.type} carries {type(self.payload).__name__}, "
                f"not {payload_type.__name__}"
            )
        return self.payload
