"""Building events: new_event, the status factory, typed payload access, dead-letter entries."""

from __future__ import annotations

import time
import uuid
from datetime import UTC, datetime
from typing import ClassVar

import pytest
from pydantic import ValidationError

from llmops_shared.events import (
    DEAD_LETTER_FIELDS,
    DeadLetterEntry,
    DeploymentStatusUpdated,
    EventPayload,
    JobStatusUpdated,
    ModelVersionRegistered,
    Phase,
    StatusEntity,
    StatusUpdated,
    Stream,
    TrainingJobCancelled,
    TrainingJobSubmitted,
    decode_event,
    encode_event,
    model_version_id,
    new_event,
    new_seq,
    status_updated,
)
from llmops_shared.events.examples import EXAMPLE_TRACEPARENT, example_payload

pytestmark = pytest.mark.unit

JOB_ID = "0b6f3c9e-6f1e-4c8e-9a51-3f1d2a7c9b10"


def test_new_event_fills_the_envelope_from_the_payload() -> None:
    payload = TrainingJobCancelled(job_id=JOB_ID, reason="user asked")
    before = datetime.now(UTC)
    envelope = new_event(
        payload, source="gateway", correlation_id="req-9", traceparent=EXAMPLE_TRACEPARENT
    )
    assert uuid.UUID(envelope.id).version == 4
    assert envelope.source == "gateway"
    assert envelope.type == "llmops.training.job.cancelled.v1"
    assert envelope.subject == JOB_ID
    assert envelope.specversion == "1.0"
    assert envelope.datacontenttype == "application/json"
    assert envelope.data == {"job_id": JOB_ID, "reason": "user asked"}
    assert before <= envelope.time <= datetime.now(UTC)
    assert envelope.time.tzinfo is not None
    assert envelope.correlationid == "req-9"
    assert envelope.traceparent == EXAMPLE_TRACEPARENT


def test_new_event_takes_a_given_id_and_time() -> None:
    at = datetime(2025, 1, 1, tzinfo=UTC)
    event_id = str(uuid.uuid4())
    envelope = new_event(
        TrainingJobCancelled(job_id=JOB_ID, reason="r"), source="s", event_id=event_id, time=at
    )
    assert (envelope.id, envelope.time) == (event_id, at)


def test_new_event_ids_are_unique() -> None:
    payload = TrainingJobCancelled(job_id=JOB_ID, reason="r")
    assert len({new_event(payload, source="s").id for _ in range(100)}) == 100


def test_new_event_refuses_a_naive_time() -> None:
    with pytest.raises(ValueError, match="timezone"):
        new_event(
            TrainingJobCancelled(job_id=JOB_ID, reason="r"),
            source="s",
            time=datetime(2025, 1, 1),  # naive on purpose
        )


def test_new_event_refuses_an_invalid_traceparent() -> None:
    with pytest.raises(ValueError, match="invalid traceparent"):
        new_event(TrainingJobCancelled(job_id=JOB_ID, reason="r"), source="s", traceparent="x")


def test_new_event_refuses_an_unregistered_payload() -> None:
    class Unregistered(EventPayload):
        event_type: ClassVar[str] = "llmops.training.job.exploded.v1"
        stream: ClassVar[Stream] = Stream.TRAINING
        subject_description: ClassVar[str] = "data.job_id"
        job_id: str

        def subject(self) -> str:
            return self.job_id

    with pytest.raises(ValueError, match="not a registered event payload"):
        new_event(Unregistered(job_id="j"), source="s")


def test_the_abstract_status_payload_cannot_be_published() -> None:
    payload = StatusUpdated(
        entity=StatusEntity.JOB, entity_id=JOB_ID, phase=Phase.RUNNING, seq=1, reporter="w"
    )
    with pytest.raises(ValueError, match="not a registered event payload"):
        new_event(payload, source="w")


def test_payloads_are_frozen_and_forbid_unknown_fields() -> None:
    payload = TrainingJobCancelled(job_id=JOB_ID, reason="r")
    with pytest.raises(ValidationError, match="frozen"):
        payload.reason = "other"  # type: ignore[misc]
    with pytest.raises(ValidationError, match="Extra inputs are not permitted"):
        TrainingJobCancelled.model_validate({"job_id": JOB_ID, "reason": "r", "by": "me"})


def test_status_updated_picks_the_type_of_the_entity() -> None:
    before = time.time_ns()
    payload = status_updated(
        "deployment",
        entity_id="5d0e8f2a-1c4b-4f7e-8a3d-9b2c6e1f0a47",
        phase="Ready",
        reporter="serving",
        details={"url": "http://x"},
    )
    assert isinstance(payload, DeploymentStatusUpdated)
    assert payload.entity is StatusEntity.DEPLOYMENT
    assert payload.phase is Phase.READY
    assert before <= payload.seq <= time.time_ns()
    envelope = new_event(payload, source="serving")
    assert envelope.type == "llmops.status.deployment.updated.v1"
    assert envelope.subject == payload.entity_id


def test_status_updated_keeps_a_given_seq_and_rejects_bad_input() -> None:
    payload = status_updated(
        StatusEntity.JOB,
        entity_id=JOB_ID,
        phase=Phase.FAILED,
        reporter="workflow",
        reason="OOMKilled",
        seq=42,
    )
    assert isinstance(payload, JobStatusUpdated)
    assert (payload.seq, payload.reason) == (42, "OOMKilled")
    assert payload.model_dump(mode="json")["details"] == {}
    with pytest.raises(ValueError, match="'robot' is not a valid StatusEntity"):
        status_updated("robot", entity_id="x", phase="Running", reporter="w")
    with pytest.raises(ValueError, match="phase"):
        status_updated("job", entity_id="x", phase="Exploded", reporter="w")


def test_new_seq_is_wall_clock_nanoseconds() -> None:
    assert abs(new_seq() - time.time_ns()) < 10**9


def test_model_version_subject_is_name_slash_version() -> None:
    payload = example_payload("llmops.models.model_version.registered.v1")
    assert isinstance(payload, ModelVersionRegistered)
    assert payload.subject() == model_version_id(payload.model_name, payload.version)
    assert payload.subject() == "llama-3-8b-sft/3"


def test_payload_as_gives_the_typed_payload() -> None:
    event = decode_event(
        encode_event(new_event(TrainingJobCancelled(job_id=JOB_ID, reason="r"), source="g"))
    )
    assert event.payload_as(TrainingJobCancelled).reason == "r"
    with pytest.raises(TypeError, match="carries TrainingJobCancelled, not TrainingJobSubmitted"):
        event.payload_as(TrainingJobSubmitted)


def test_payload_as_accepts_a_base_class() -> None:
    payload = status_updated("job", entity_id=JOB_ID, phase="Running", reporter="workflow")
    event = decode_event(encode_event(new_event(payload, source="workflow")))
    assert event.payload_as(StatusUpdated) == payload


def test_dead_letter_entry_round_trips_through_flat_fields() -> None:
    entry = DeadLetterEntry(
        event="not json",
        stream="llmops.training",
        group="workflow",
        message_id="1737979200000-0",
        reason="not JSON: expected ident at line 1 column 2",
        error_type="EventDecodeError",
        deliveries=1,
        cause="non_retryable",
        failed_at=datetime(2025, 1, 27, 12, 0, 1, tzinfo=UTC),
        consumer="workflow-1",
    )
    fields = entry.to_fields()
    assert list(fields) == list(DEAD_LETTER_FIELDS)
    assert all(isinstance(value, str) for value in fields.values())
    assert fields["deliveries"] == "1"
    assert fields["failed_at"] == "2025-01-27T12:00:01Z"
    as_redis_returns = {k.encode(): v.encode() for k, v in fields.items()}
    assert DeadLetterEntry.from_fields(as_redis_returns) == entry
    assert DeadLetterEntry.from_fields(fields) == entry


def test_dead_letter_entry_tolerates_new_fields_and_undecodable_bytes() -> None:
    fields = {
        b"event": b"\xff\xfe",
        b"stream": b"llmops.status",
        b"group": b"gateway",
        b"message_id": b"1-0",
        b"reason": b"not JSON: expected value at line 1 column 1",
        b"error_type": b"EventDecodeError",
        b"deliveries": b"5",
        b"failed_at": b"2025-01-27T12:00:01.123456+00:00",
        b"consumer": b"gateway-1",
        b"added_later": b"x",
    }
    entry = DeadLetterEntry.from_fields(fields)
    assert entry.event == "\ufffd\ufffd"
    assert entry.cause is None
    assert "cause" not in entry.to_fields()
