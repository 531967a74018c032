"""Build, encode and decode events: the hot path of every publisher and consumer.

Decoding is two validations done by pydantic-core with schemas built once at import: the envelope
straight from the JSON bytes, then the payload class its ``type`` selects from the parsed
``data``. No per-call schema or adapter is built.
"""

from __future__ import annotations

from datetime import UTC, datetime
from uuid import uuid4

from pydantic import ValidationError

from llmops_shared.events.base import EventPayload
from llmops_shared.events.envelope import (
    CONTENT_TYPE,
    SPEC_VERSION,
    Envelope,
    Event,
    is_valid_traceparent,
)
from llmops_shared.events.errors import EventDecodeError, describe_validation_error
from llmops_shared.events.names import Stream
from llmops_shared.events.registry import EVENT_TYPES


def new_event(
    payload: EventPayload,
    *,
    source: str,
    correlation_id: str | None = None,
    traceparent: str | None = None,
    event_id: str | None = None,
    time: datetime | None = None,
) -> Envelope:
    """Wrap ``payload`` in a new envelope: a fresh UUID, now (UTC), subject and type from it.

    Raises ``ValueError`` when the payload class is not registered (no consumer could decode
    it), when ``traceparent`` is not a valid W3C value, or when ``time`` is naive.
    """
    cls = type(payload)
    event_type = getattr(cls, "event_type", None)
    if event_type is None or EVENT_TYPES.get(event_type) is not cls:
        raise ValueError(f"{cls.__name__} is not a registered event payload")
    if traceparent is not None and not is_valid_traceparent(traceparent):
        raise ValueError(f"invalid traceparent {traceparent!r}")
    return Envelope(
        id=event_id or str(uuid4()),
        source=source,
        type=event_type,
        specversion=SPEC_VERSION,
        time=time or datetime.now(UTC),
        subject=payload.subject(),
        datacontenttype=CONTENT_TYPE,
        data=payload.model_dump(mode="json"),
        traceparent=traceparent,
        correlationid=correlation_id,
    )


def encode_event(envelope: Envelope) -> str:
    """Compact CloudEvents JSON; unset optional attributes are left out (not ``null``)."""
    return envelope.model_dump_json(exclude_none=True)


def decode_event(
    raw: bytes | bytearray | str, *, expected_stream: Stream | str | None = None
) -> Event:
    """Parse and validate one event; ``EventDecodeError`` with a short reason if it is not one.

    Checks, in order: JSON, envelope, known ``type``, that the type belongs to
    ``expected_stream`` (when given), the payload, and that ``subject`` is the payload's entity.
    """
    try:
        envelope = Envelope.model_validate_json(raw)
    except ValidationError as exc:
        raise EventDecodeError(_envelope_reason(exc)) from exc
    event_type = envelope.type
    payload_type = EVENT_TYPES.get(event_type)
    if payload_type is None:
        raise EventDecodeError(
            f"unknown event type {event_type!r}", event_id=envelope.id, event_type=event_type
        )
    if expected_stream is not None and payload_type.stream != expected_stream:
        raise EventDecodeError(
            f"event type {event_type!r} belongs to stream {payload_type.stream}, "
            f"not {expected_stream}",
            event_id=envelope.id,
            event_type=event_type,
        )
    try:
        payload = payload_type.model_validate(envelope.data)
    except ValidationError as exc:
        raise EventDecodeError(
            f"invalid payload for {event_type}: {describe_validation_error(exc, prefix='data')}",
            event_id=envelope.id,
            event_type=event_type,
        ) from exc
    subject = payload.subject()
    if envelope.subject != subject:
        raise EventDecodeError(
            f"subject {envelope.subject!r} does not match "
            f"{payload_type.subject_description} ({subject!r})",
            event_id=envelope.id,
            event_type=event_type,
        )
    return Event(envelope=envelope, payload=payload)


def _envelope_reason(exc: ValidationError) -> str:
    """Tell 'not JSON' and 'not an object' apart from an invalid attribute."""
    first = exc.errors(include_url=False, include_context=False, include_input=False)[0]
    if first["type"] == "json_invalid":
        return "not JSON: " + first["msg"].removeprefix("Invalid JSON: ")
    if first["type"] == "model_type" and not first["loc"]:
        return "not a JSON object"
    return f"invalid envelope: {describe_validation_error(exc)}"
