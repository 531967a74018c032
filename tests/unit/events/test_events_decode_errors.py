"""decode_event rejects every kind of bad entry with a short reason naming the fault, and
tolerates what CloudEvents and W3C Trace Context tell a receiver to tolerate."""

from __future__ import annotations

import json
from typing import Any

import pytest

from llmops_shared.events import (
    Envelope,
    EventDecodeError,
    Stream,
    decode_event,
    encode_event,
)
from llmops_shared.events.errors import MAX_REASON_LENGTH
from llmops_shared.events.schemas import example_event_json

pytestmark = pytest.mark.unit

SUBMITTED = "llmops.training.job.submitted.v1"
JOB_STATUS = "llmops.status.job.updated.v1"


def _event(event_type: str = SUBMITTED, **attributes: Any) -> dict[str, Any]:
    """The example event of ``event_type`` with attributes replaced (``None`` removes one)."""
    event = example_event_json(event_type)
    for name, value in attributes.items():
        if value is None:
            event.pop(name, None)
        else:
            event[name] = value
    return event


def _reason(raw: str | bytes | dict[str, Any], **kwargs: Any) -> str:
    if isinstance(raw, dict):
        raw = json.dumps(raw)
    with pytest.raises(EventDecodeError) as caught:
        decode_event(raw, **kwargs)
    return caught.value.reason


def test_decode_error_is_a_value_error_with_reason_as_message() -> None:
    error = EventDecodeError("unknown event type 'x'", event_id="e", event_type="x")
    assert isinstance(error, ValueError)
    assert str(error) == error.reason == "unknown event type 'x'"
    assert (error.event_id, error.event_type) == ("e", "x")


def test_long_reasons_are_truncated() -> None:
    error = EventDecodeError("x" * (MAX_REASON_LENGTH * 2))
    assert len(error.reason) == MAX_REASON_LENGTH
    assert error.reason.endswith("...")


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (b"not json", "not JSON: expected ident at line 1 column 2"),
        (b"", "not JSON: EOF while parsing a value at line 1 column 0"),
        (b"\xff\xfe", "not JSON: expected value at line 1 column 1"),
        ('{"id": ', "not JSON: EOF while parsing a value at line 1 column 7"),
        ("[1, 2]", "not a JSON object"),
        ("42", "not a JSON object"),
    ],
)
def test_not_a_json_object(raw: str | bytes, reason: str) -> None:
    assert _reason(raw) == reason


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        ({"id": None}, "invalid envelope: id: Field required"),
        ({"id": "42"}, "invalid envelope: id: String should match pattern"),
        ({"source": ""}, "invalid envelope: source: String should have at least 1 character"),
        ({"time": "2025-01-27T12:00:00"}, "invalid envelope: time: Input should have timezone"),
        ({"time": "yesterday"}, "invalid envelope: time: Input should be a valid datetime"),
        ({"specversion": "0.3"}, "invalid envelope: specversion: Input should be '1.0'"),
        ({"specversion": None}, "invalid envelope: specversion: Field required"),
        (
            {"datacontenttype": "text/plain"},
            "invalid envelope: datacontenttype: Input should be 'application/json'",
        ),
        ({"data": None}, "invalid envelope: data: Field required"),
        ({"data": [1]}, "invalid envelope: data: Input should be an object"),
        (
            {"correlationId": "req-1"},
            "invalid envelope: attribute name 'correlationId' is not a CloudEvents name",
        ),
        (
            {"data_base64": "AAAA"},
            "invalid envelope: attribute name 'data_base64' is not a CloudEvents name",
        ),
        (
            {"tenant": {"id": 1}},
            "invalid envelope: extension attribute 'tenant' must be a string, integer or boolean",
        ),
    ],
)
def test_invalid_envelope(changes: dict[str, Any], reason: str) -> None:
    assert _reason(_event(**changes)).startswith(reason)


def test_several_envelope_errors_are_listed_briefly() -> None:
    reason = _reason({"type": SUBMITTED, "data": {}})
    assert reason == (
        "invalid envelope: id: Field required; source: Field required; "
        "specversion: Field required (+2 more)"
    )


def test_unknown_type() -> None:
    event = _event(type="llmops.training.job.exploded.v1")
    with pytest.raises(EventDecodeError) as caught:
        decode_event(json.dumps(event))
    assert caught.value.reason == "unknown event type 'llmops.training.job.exploded.v1'"
    assert caught.value.event_id == event["id"]
    assert caught.value.event_type == "llmops.training.job.exploded.v1"


@pytest.mark.parametrize("expected", [Stream.SERVING, "llmops.serving"])
def test_type_of_another_stream(expected: str) -> None:
    assert _reason(_event(), expected_stream=expected) == (
        "event type 'llmops.training.job.submitted.v1' belongs to stream llmops.training, "
        "not llmops.serving"
    )


def test_expected_stream_accepts_its_own_types() -> None:
    assert decode_event(json.dumps(_event()), expected_stream="llmops.training").type == SUBMITTED


def test_invalid_payload_names_the_field() -> None:
    event = _event()
    event["data"]["spec"]["hyperparams"]["lr"] = 0
    assert _reason(event) == (
        "invalid payload for llmops.training.job.submitted.v1: "
        "data.spec.hyperparams.lr: Input should be greater than 0"
    )


def test_unknown_payload_field_is_rejected() -> None:
    event = _event()
    event["data"]["priority"] = "high"
    assert _reason(event) == (
        "invalid payload for llmops.training.job.submitted.v1: "
        "data.priority: Extra inputs are not permitted"
    )


def test_spec_rule_violations_are_reported_with_their_location() -> None:
    event = _event()
    event["data"]["spec"]["method"] = "qlora"
    event["data"]["spec"]["job_type"] = "PRETRAIN"
    reason = _reason(event)
    assert reason.startswith("invalid payload for llmops.training.job.submitted.v1: data.spec.")
    assert "data.spec.method: PRETRAIN only supports method 'full'" in reason


def test_missing_payload_fields() -> None:
    assert _reason(_event(data={})) == (
        "invalid payload for llmops.training.job.submitted.v1: "
        "data.job_id: Field required; data.spec: Field required"
    )


def test_status_entity_must_agree_with_the_type() -> None:
    event = _event(JOB_STATUS)
    event["data"]["entity"] = "deployment"
    assert _reason(event) == (
        "invalid payload for llmops.status.job.updated.v1: data.entity: Input should be 'job'"
    )


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("seq", -1, "data.seq: Input should be greater than or equal to 0"),
        ("seq", 2**63, "data.seq: Input should be less than or equal to"),
        ("phase", "Exploded", "data.phase: Input should be 'Pending', 'Running'"),
        ("details", [1], "data.details: Input should be a valid dictionary"),
    ],
)
def test_invalid_status_fields(field: str, value: Any, message: str) -> None:
    event = _event(JOB_STATUS)
    event["data"][field] = value
    assert _reason(event).startswith(f"invalid payload for {JOB_STATUS}: {message}")


@pytest.mark.parametrize(
    "name", ["1-starts-with-digit", "Upper", "ends-with-dash-", "a" * 64, "dots.not.allowed"]
)
def test_inference_service_name_must_be_acceptable_to_kserve(name: str) -> None:
    event = _event("llmops.serving.deployment.requested.v1")
    event["data"]["name"] = name
    assert "data.name: String should" in _reason(event)


def test_job_id_must_make_a_valid_workflow_name() -> None:
    event = _event(subject="Job_1")
    event["data"]["job_id"] = "Job_1"
    assert "data.job_id: String should match pattern" in _reason(event)


def test_subject_must_be_the_payload_entity() -> None:
    assert _reason(_event(subject="someone-else")) == (
        "subject 'someone-else' does not match data.job_id ('0b6f3c9e-6f1e-4c8e-9a51-3f1d2a7c9b10')"
    )


def test_invalid_traceparent_is_ignored_not_rejected() -> None:
    for bad in ["garbage", "00-" + "0" * 32 + "-00f067aa0ba902b7-01", 7]:
        event = decode_event(json.dumps(_event(traceparent=bad)))
        assert event.envelope.traceparent is None


def test_unknown_extension_attributes_are_kept() -> None:
    event = {**_event(), "tenant": "team-a", "priority": 3, "urgent": True, "gone": None}
    envelope = decode_event(json.dumps(event)).envelope
    assert envelope.extensions == {"tenant": "team-a", "priority": 3, "urgent": True, "gone": None}
    reencoded = json.loads(encode_event(envelope))
    assert (reencoded["tenant"], reencoded["priority"], reencoded["urgent"]) == ("team-a", 3, True)
    assert "gone" not in reencoded


def test_null_optional_attributes_mean_absent() -> None:
    envelope = decode_event(json.dumps(_event(traceparent=None, correlationid=None))).envelope
    assert envelope.traceparent is None
    assert envelope.correlationid is None
    raw = json.dumps({**_event(), "traceparent": None, "correlationid": None})
    assert decode_event(raw).envelope.correlationid is None


def test_envelope_is_immutable() -> None:
    envelope = decode_event(json.dumps(_event())).envelope
    assert isinstance(envelope, Envelope)
    with pytest.raises(ValueError, match="frozen"):
        envelope.subject = "x"  # type: ignore[misc]
