"""The AsyncAPI 3.0.0 document of the streams, generated from the models.

One channel per stream (address = the Redis stream name) with the messages its event types
make, and one channel per dead-letter stream. Schemas live in ``components.schemas`` and use
only JSON Schema keywords that AsyncAPI's default schema format (a superset of Draft 07)
understands, so generic AsyncAPI tooling reads the document without extra schema parsers.
"""

from __future__ import annotations

import inspect
import json
from datetime import timedelta
from typing import Any, Final

from pydantic.json_schema import models_json_schema

from llmops_shared.events.codec import decode_event
from llmops_shared.events.dead_letter import DeadLetterEntry, dead_letter_fields_schema
from llmops_shared.events.errors import EventDecodeError
from llmops_shared.events.examples import EXAMPLE_TIME
from llmops_shared.events.names import Stream, dead_letter_stream
from llmops_shared.events.registry import EVENT_TYPES, PAYLOAD_TYPES, event_types_for
from llmops_shared.events.schemas import (
    base_envelope_schema,
    event_title,
    example_event_json,
    typed_envelope_properties,
)

ASYNCAPI_VERSION: Final = "3.0.0"
CONTRACT_VERSION: Final = "1.0.0"
"""Version of the event contract as a whole; bump it when a type is added or replaced."""

SCHEMA_REF: Final = "#/components/schemas/{model}"
DEAD_LETTER_MESSAGE: Final = "DeadLetterEntry"
ENVELOPE_SCHEMA: Final = "CloudEvent"

STREAM_DESCRIPTIONS: Final[dict[Stream, str]] = {
    Stream.TRAINING: "Training job requests from the gateway. Consumed by tracking (MLflow) "
    "and workflow (Argo Workflows), one consumer group each: every event reaches both.",
    Stream.SERVING: "Deployment requests and rollout decisions from the gateway. Consumed by "
    "serving (KServe).",
    Stream.CATALOG: "Model import requests from the gateway. Consumed by registry "
    "(Hugging Face Hub).",
    Stream.DATASETS: "Dataset version requests from the gateway. Consumed by versioning (DVC).",
    Stream.MODELS: "New model versions seen in MLflow (webhook or poller). Consumed by "
    "github-sync.",
    Stream.STATUS: "Status reports from the workers. Consumed by the gateway, which folds them "
    "into its read model and ignores a report whose seq is not newer than the last applied "
    "for that entity.",
    Stream.CONFIG: "Integration flag changes from the gateway (its integration_configs table). "
    "Read by every worker process without a consumer group, so every replica sees every change; "
    "a worker keeps the highest revision per environment and area and switches backend when "
    "the flag of its area changes.",
}

_ENTRY_NOTE: Final = (
    " Each stream entry has one field, 'event', holding the CloudEvents JSON described by the "
    "message payload; the consumer group is the consuming service's name."
)


def _channel_id(stream: Stream) -> str:
    return stream.value.removeprefix("llmops.")


def _dead_letter_channel_id(stream: Stream) -> str:
    return f"{_channel_id(stream)}DeadLetters"


def _summary(cls: type) -> str:
    return (inspect.getdoc(cls) or cls.__name__).split("\n\n")[0].replace("\n", " ")


def _schemas() -> dict[str, Any]:
    """Payload models (and their nested models), the envelope, and per event type the envelope
    narrowed to that type (``allOf``, so the envelope is written down once)."""
    refs, top = models_json_schema(
        [(cls, "validation") for cls in PAYLOAD_TYPES], ref_template=SCHEMA_REF
    )
    schemas: dict[str, Any] = dict(top.get("$defs", {}))
    for cls in PAYLOAD_TYPES:
        name = f"{cls.__name__}Event"
        if name in schemas:  # pragma: no cover - a payload model named '<Payload>Event'
            raise ValueError(f"schema name {name!r} is taken")
        overrides = typed_envelope_properties(
            cls.event_type, data_ref=refs[(cls, "validation")]["$ref"]
        )
        schemas[name] = {
            "title": event_title(cls.event_type),
            "allOf": [
                {"$ref": SCHEMA_REF.format(model=ENVELOPE_SCHEMA)},
                {"type": "object", "properties": overrides},
            ],
        }
    if ENVELOPE_SCHEMA in schemas:  # pragma: no cover - a payload model named like it
        raise ValueError(f"schema name {ENVELOPE_SCHEMA!r} is taken")
    schemas[ENVELOPE_SCHEMA] = base_envelope_schema()
    schemas[DEAD_LETTER_MESSAGE] = dead_letter_fields_schema()
    return schemas


def _messages() -> dict[str, Any]:
    messages: dict[str, Any] = {}
    for event_type, cls in EVENT_TYPES.items():
        messages[cls.__name__] = {
            "name": event_type,
            "title": cls.__name__,
            "summary": _summary(cls),
            "description": inspect.getdoc(cls) or "",
            "contentType": "application/json",
            "payload": {"$ref": SCHEMA_REF.format(model=f"{cls.__name__}Event")},
            "examples": [{"name": "example", "payload": example_event_json(event_type)}],
        }
    messages[DEAD_LETTER_MESSAGE] = {
        "name": "dead-letter-entry",
        "title": DEAD_LETTER_MESSAGE,
        "summary": "An entry a consumer gave up on, with the reason.",
        "description": "Written by the streams runtime, as flat string fields, when an entry "
        "cannot be decoded or a handler fails with a non-retryable error (cause "
        "non_retryable), or when it keeps failing after the maximum number of deliveries "
        "(cause max_deliveries). The original entry is acknowledged in the same transaction. "
        "Replaying a dead letter means publishing its 'event' again.",
        "contentType": "application/json",
        "payload": {"$ref": SCHEMA_REF.format(model=DEAD_LETTER_MESSAGE)},
        "examples": [{"name": "invalid-payload", "payload": _dead_letter_example()}],
    }
    return messages


def _dead_letter_example() -> dict[str, str]:
    """A real rejection: the reason is what :func:`decode_event` says about the event."""
    example = example_event_json("llmops.training.job.submitted.v1")
    example["data"]["spec"]["hyperparams"]["lr"] = 0
    raw = json.dumps(example, separators=(",", ":"))
    try:
        decode_event(raw, expected_stream=Stream.TRAINING)
    except EventDecodeError as exc:
        reason = exc.reason
    else:  # pragma: no cover - the example is broken on purpose
        raise AssertionError("the dead-letter example decoded")
    entry = DeadLetterEntry(
        event=raw,
        stream=Stream.TRAINING.value,
        group="workflow",
        message_id="1737979200000-0",
        reason=reason,
        error_type=EventDecodeError.__name__,
        deliveries=1,
        cause="non_retryable",
        failed_at=EXAMPLE_TIME + timedelta(seconds=1),
        consumer="workflow-7d9f-1",
    )
    return entry.to_fields()


def _channels_and_operations() -> tuple[dict[str, Any], dict[str, Any]]:
    channels: dict[str, Any] = {}
    operations: dict[str, Any] = {}
    for stream in Stream:
        names = [EVENT_TYPES[t].__name__ for t in event_types_for(stream)]
        channel_id = _channel_id(stream)
        channels[channel_id] = {
            "address": stream.value,
            "title": stream.value,
            "description": STREAM_DESCRIPTIONS[stream] + _ENTRY_NOTE,
            "messages": {n: {"$ref": f"#/components/messages/{n}"} for n in names},
        }
        dlq_id = _dead_letter_channel_id(stream)
        channels[dlq_id] = {
            "address": dead_letter_stream(stream.value),
            "title": dead_letter_stream(stream.value),
            "description": f"Dead letters of {stream.value}: entries its consumers gave up on.",
            "messages": {
                DEAD_LETTER_MESSAGE: {"$ref": f"#/components/messages/{DEAD_LETTER_MESSAGE}"}
            },
        }
        for cid, message_names, what in (
            (channel_id, names, f"events on {stream.value}"),
            (dlq_id, [DEAD_LETTER_MESSAGE], f"dead letters of {stream.value}"),
        ):
            for action in ("send", "receive"):
                operations[f"{action}{cid[0].upper()}{cid[1:]}"] = {
                    "action": action,
                    "summary": f"{action.capitalize()} {what}.",
                    "channel": {"$ref": f"#/channels/{cid}"},
                    "messages": [{"$ref": f"#/channels/{cid}/messages/{n}"} for n in message_names],
                }
    return channels, operations


def asyncapi_document() -> dict[str, Any]:
    """The whole AsyncAPI 3.0.0 document as plain data."""
    channels, operations = _channels_and_operations()
    return {
        "asyncapi": ASYNCAPI_VERSION,
        "info": {
            "title": "LLM-Ops integration plane events",
            "version": CONTRACT_VERSION,
            "description": "Events on the platform's Redis Streams. Every event is a CloudEvents "
            "1.0 event in structured JSON mode; type names follow "
            "llmops.<domain>.<entity>.<past-tense-verb>.v<N> and the domain names the stream. "
            "Delivery is at least once: consumers deduplicate on the event id. Generated by "
            "`python -m llmops_shared.events.export`; do not edit.",
        },
        "defaultContentType": "application/json",
        "channels": channels,
        "operations": operations,
        "components": {"schemas": _schemas(), "messages": _messages()},
    }
