"""The entries of the dead-letter streams (``<stream>.dlq``), as the streams runtime writes them.

A dead-letter entry is *not* a CloudEvent: it is a flat Redis stream entry whose fields are all
strings, so that ``XRANGE llmops.training.dlq - +`` is readable as is. :class:`DeadLetterEntry`
is the typed view for tools and tests; :func:`dead_letter_fields_schema` is the wire form that
goes into the AsyncAPI document.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

MESSAGE_ID_PATTERN: Final = r"^[0-9]+-[0-9]+$"

DeadLetterCause = Literal["non_retryable", "max_deliveries"]


class DeadLetterEntry(BaseModel):
    """Why a consumer gave up on one stream entry, and the entry itself.

    Unknown fields are ignored, so tools keep reading entries written by a newer runtime.
    """

    model_config = ConfigDict(frozen=True, extra="ignore")

    event: str = Field(
        description="The entry's original 'event' field, unchanged: usually CloudEvents JSON, "
        "but anything when the entry could not be decoded (the reason says why)."
    )
    stream: str = Field(min_length=1, description="Stream the entry was read from.")
    group: str = Field(min_length=1, description="Consumer group (service) that gave up.")
    message_id: str = Field(
        pattern=MESSAGE_ID_PATTERN, description="Stream entry id of the original entry."
    )
    reason: str = Field(description="Short reason: the decode error or the last handler error.")
    error_type: str = Field(
        min_length=1,
        description="Class name of the error, e.g. EventDecodeError, NonRetryableError.",
    )
    deliveries: int = Field(ge=0, description="How often the entry had been delivered.")
    cause: DeadLetterCause | None = Field(
        default=None,
        description="non_retryable: rejected at once (bad event, non-retryable error); "
        "max_deliveries: still failing after the maximum number of deliveries.",
    )
    failed_at: AwareDatetime = Field(description="When the consumer gave up (RFC 3339).")
    consumer: str = Field(min_length=1, description="Consumer name within the group.")

    def to_fields(self) -> dict[str, str]:
        """The flat string fields to XADD (``cause`` left out when unknown)."""
        dumped = self.model_dump(mode="json", exclude_none=True)
        return {name: str(dumped[name]) for name in DEAD_LETTER_FIELDS if name in dumped}

    @classmethod
    def from_fields(cls, fields: Mapping[bytes, bytes] | Mapping[str, str]) -> DeadLetterEntry:
        """Parse the fields of an entry as redis-py returns them (bytes or str)."""
        return cls.model_validate({_text(key): _text(value) for key, value in fields.items()})


DEAD_LETTER_FIELDS: Final[tuple[str, ...]] = tuple(DeadLetterEntry.model_fields)
"""The field names of a dead-letter entry, in the order they are written."""


def dead_letter_fields_schema() -> dict[str, Any]:
    """JSON Schema of a dead-letter entry on the wire: a map of string fields."""
    extra: dict[str, dict[str, Any]] = {
        "message_id": {"pattern": MESSAGE_ID_PATTERN},
        "deliveries": {"pattern": "^[0-9]+$"},
        "cause": {"enum": ["non_retryable", "max_deliveries"]},
        "failed_at": {"format": "date-time"},
    }
    properties = {
        name: {"type": "string", "description": field.description or "", **extra.get(name, {})}
        for name, field in DeadLetterEntry.model_fields.items()
    }
    return {
        "type": "object",
        "title": "DeadLetterEntry",
        "description": "Flat Redis stream fields of an entry in <stream>.dlq; every value is a "
        "string. Readers ignore fields they do not know.",
        "properties": properties,
        "required": [n for n, f in DeadLetterEntry.model_fields.items() if f.is_required()],
        "additionalProperties": {"type": "string"},
    }


def _text(value: bytes | str) -> str:
    return value.decode("utf-8", errors="replace") if isinstance(value, bytes) else value
