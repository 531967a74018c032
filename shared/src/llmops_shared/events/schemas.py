"""JSON Schemas of the events, generated from the models.

Each event type gets one self-contained schema of the *whole* event (the envelope, with ``type``
fixed and ``data`` the payload's schema), because that is what a publisher produces and what a
validator in another language checks. Built on call only; this is not the hot path.
"""

from __future__ import annotations

import json
from typing import Any, Final

from llmops_shared.events.codec import encode_event
from llmops_shared.events.envelope import Envelope
from llmops_shared.events.examples import example_envelope
from llmops_shared.events.registry import EVENT_TYPES

JSON_SCHEMA_DIALECT: Final = "https://json-schema.org/draft/2020-12/schema"

ENVELOPE_DESCRIPTION: Final = (
    "A CloudEvents 1.0 event in structured JSON mode, stored as the single field 'event' of a "
    "Redis stream entry. Consumers deduplicate on 'id'. Extension attributes other than "
    "'traceparent' and 'correlationid' are tolerated and kept when their names are lowercase "
    "letters and digits and their values are strings, integers, booleans or null; anything else "
    "makes the event invalid. An invalid 'traceparent' is ignored (a new trace starts)."
)


def base_envelope_schema() -> dict[str, Any]:
    """The envelope's schema for any event type (``data`` is any object)."""
    schema = Envelope.model_json_schema()
    schema["title"] = "CloudEvent"
    schema["description"] = ENVELOPE_DESCRIPTION
    return schema


def typed_envelope_properties(event_type: str, *, data_ref: str) -> dict[str, Any]:
    """What one event type fixes in the envelope: ``type``, ``data``, the subject's meaning."""
    payload_type = EVENT_TYPES[event_type]
    return {
        "type": {"const": event_type, "description": "Event type.", "type": "string"},
        "subject": {
            "description": f"Id of the entity the event is about: "
            f"{payload_type.subject_description}.",
            "maxLength": 512,
            "minLength": 1,
            "type": "string",
        },
        "data": {"$ref": data_ref, "description": "The payload."},
    }


def event_title(event_type: str) -> str:
    """Human title of an event type's schema."""
    return f"{EVENT_TYPES[event_type].__name__} event ({event_type})"


def envelope_schema(event_type: str, *, data_ref: str) -> dict[str, Any]:
    """The envelope's schema for one event type, flattened, ``data`` pointing at ``data_ref``."""
    schema = base_envelope_schema()
    schema["properties"].update(typed_envelope_properties(event_type, data_ref=data_ref))
    schema["title"] = event_title(event_type)
    return schema


def example_event_json(event_type: str) -> dict[str, Any]:
    """The example event of ``event_type`` exactly as it travels (encoded, then parsed)."""
    parsed: dict[str, Any] = json.loads(encode_event(example_envelope(event_type)))
    return parsed


def event_json_schema(event_type: str) -> dict[str, Any]:
    """Self-contained Draft 2020-12 schema of a whole event of ``event_type``."""
    payload_type = EVENT_TYPES[event_type]
    payload_schema = payload_type.model_json_schema(ref_template="#/$defs/{model}")
    defs: dict[str, Any] = payload_schema.pop("$defs", {})
    name = payload_type.__name__
    if name in defs:  # pragma: no cover - would need a nested model named like its payload
        raise ValueError(f"{event_type}: payload schema name {name!r} is also a nested model")
    defs[name] = payload_schema
    schema = envelope_schema(event_type, data_ref=f"#/$defs/{name}")
    schema["$schema"] = JSON_SCHEMA_DIALECT
    schema["$defs"] = defs
    schema["examples"] = [example_event_json(event_type)]
    return schema
