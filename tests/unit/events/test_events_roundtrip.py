"""Every registered event type survives new_event -> encode -> decode unchanged, and the
registry, names and streams agree with one another."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime

import pytest
from pydantic import TypeAdapter, ValidationError

from llmops_shared.events import (
    DEAD_LETTER_SUFFIX,
    EVENT_TYPE_PATTERN,
    EVENT_TYPES,
    PAYLOAD_TYPES,
    STATUS_PAYLOADS,
    DatasetRestoreStatusUpdated,
    DatasetVersionStatusUpdated,
    Envelope,
    EventPayload,
    StatusEntity,
    Stream,
    dead_letter_stream,
    decode_event,
    encode_event,
    event_types_for,
    is_valid_event_type,
    new_event,
    stream_for,
)
from llmops_shared.events.examples import example_data, example_envelope, example_payload
from llmops_shared.events.fields import HfRepoId, VersionTag
from llmops_shared.events.names import stream_of_type_name
from llmops_shared.events.payloads.datasets import RestoreFacts, VersionFacts

pytestmark = pytest.mark.unit

ALL_TYPES = sorted(EVENT_TYPES)


def test_stream_names_are_the_architecture_ones() -> None:
    assert {s.name: s.value for s in Stream} == {
        "TRAINING": "llmops.training",
        "SERVING": "llmops.serving",
        "CATALOG": "llmops.catalog",
        "DATASETS": "llmops.datasets",
        "MODELS": "llmops.models",
        "STATUS": "llmops.status",
        "CONFIG": "llmops.config",  # integration flag changes (issue 9), read without groups
    }


def test_dead_letter_stream_appends_dlq() -> None:
    assert dead_letter_stream("llmops.training") == "llmops.training.dlq"
    assert dead_letter_stream(Stream.STATUS) == "llmops.status.dlq"
    assert DEAD_LETTER_SUFFIX == ".dlq"


def test_every_registered_type_follows_the_naming_rule() -> None:
    for event_type in ALL_TYPES:
        match = re.match(EVENT_TYPE_PATTERN, event_type)
        assert match, event_type
        assert is_valid_event_type(event_type)
        # <past-tense-verb>: the first word of the verb part ends in -ed (rolled_back, updated)
        assert match["verb"].split("_")[0].endswith("ed"), event_type


@pytest.mark.parametrize(
    "name",
    ["llmops.training.job.submitted", "training.job.submitted.v1", "llmops.Training.job.x.v1"],
)
def test_malformed_type_names_are_recognised(name: str) -> None:
    assert not is_valid_event_type(name)
    with pytest.raises(ValueError, match="does not match"):
        stream_of_type_name(name)


def test_registry_is_consistent() -> None:
    assert len(EVENT_TYPES) == len(PAYLOAD_TYPES) == 23
    for event_type, cls in EVENT_TYPES.items():
        assert cls.event_type == event_type
        assert stream_for(event_type) is cls.stream
        assert stream_of_type_name(event_type) is cls.stream
        assert issubclass(cls, EventPayload)
        assert cls.model_config.get("extra") == "forbid"
    covered = [t for stream in Stream for t in event_types_for(stream)]
    assert sorted(covered) == ALL_TYPES
    assert all(event_types_for(stream) for stream in Stream), "a stream without events"


def test_one_status_type_per_entity() -> None:
    assert set(STATUS_PAYLOADS) == set(StatusEntity)
    for entity, cls in STATUS_PAYLOADS.items():
        assert cls.event_type == f"llmops.status.{entity}.updated.v1"
        assert EVENT_TYPES[cls.event_type] is cls


def test_stream_for_unknown_type_raises_key_error() -> None:
    with pytest.raises(KeyError, match="unknown event type"):
        stream_for("llmops.training.job.exploded.v1")


def test_examples_cover_every_type() -> None:
    assert sorted(example_data()) == ALL_TYPES


@pytest.mark.parametrize("event_type", ALL_TYPES)
def test_round_trip(event_type: str) -> None:
    payload = example_payload(event_type)
    envelope = new_event(payload, source="gateway", correlation_id="req-1")
    raw = encode_event(envelope)

    event = decode_event(raw, expected_stream=stream_for(event_type))

    assert event.payload == payload
    assert type(event.payload) is EVENT_TYPES[event_type]
    assert event.envelope == envelope
    assert event.id == envelope.id
    assert event.type == event_type
    assert event.stream is stream_for(event_type)
    assert event.envelope.subject == payload.subject()
    assert event.envelope.correlationid == "req-1"
    assert encode_event(event.envelope) == raw  # re-encoding is stable
    assert decode_event(raw.encode()).payload == payload  # bytes, as redis-py returns them


@pytest.mark.parametrize("event_type", ALL_TYPES)
def test_encoding_is_compact_cloudevents_json(event_type: str) -> None:
    raw = encode_event(example_envelope(event_type))
    parsed = json.loads(raw)
    assert raw == json.dumps(parsed, separators=(",", ":"), ensure_ascii=False)
    assert parsed["specversion"] == "1.0"
    assert parsed["datacontenttype"] == "application/json"
    assert parsed["type"] == event_type
    assert parsed["time"] == "2025-01-27T12:00:00Z"


def test_unset_optional_attributes_are_left_out() -> None:
    envelope = new_event(example_payload(ALL_TYPES[0]), source="gateway")
    parsed = json.loads(encode_event(envelope))
    assert "traceparent" not in parsed
    assert "correlationid" not in parsed


def test_time_keeps_its_offset_and_round_trips() -> None:
    from datetime import timedelta, timezone

    seoul = datetime(2025, 1, 27, 21, 0, tzinfo=timezone(timedelta(hours=9)))
    envelope = new_event(example_payload(ALL_TYPES[0]), source="gateway", time=seoul)
    raw = encode_event(envelope)
    assert '"time":"2025-01-27T21:00:00+09:00"' in raw
    assert decode_event(raw).envelope.time == datetime(2025, 1, 27, 12, 0, tzinfo=UTC)


def test_envelope_model_is_the_cloudevents_attribute_set() -> None:
    assert set(Envelope.model_fields) == {
        "id",
        "source",
        "type",
        "specversion",
        "time",
        "subject",
        "datacontenttype",
        "data",
        "traceparent",
        "correlationid",
    }


def test_example_report_details_parse_as_the_typed_facts() -> None:
    """The documented examples of the versioning reports are what the gateway folds."""
    version = example_payload("llmops.status.dataset_version.updated.v1")
    assert isinstance(version, DatasetVersionStatusUpdated)
    facts = version.details.version
    assert isinstance(facts, VersionFacts)
    assert facts.file_count == len(facts.files) == 2
    assert facts.total_bytes == sum(size for _, _, size in facts.files)
    restore = example_payload("llmops.status.dataset_restore.updated.v1")
    assert isinstance(restore, DatasetRestoreStatusUpdated)
    assert isinstance(restore.details.restore, RestoreFacts)
    assert restore.details.restore.files_done == 2


@pytest.mark.parametrize(
    ("tag", "valid"),
    [("v1.0.0", True), ("1.2.3-rc.1+build.5", True), ("v1.", False), ("a..b", False),
     (".v1", False), ("x.lock", False), ("HEAD", False), ("ORIG_HEAD", False)],
)  # fmt: skip
def test_version_tags_are_names_git_keeps_as_tags(tag: str, valid: bool) -> None:
    adapter = TypeAdapter(VersionTag)
    if valid:
        assert adapter.validate_python(tag) == tag
    else:
        with pytest.raises(ValidationError):
            adapter.validate_python(tag)


@pytest.mark.parametrize(
    ("repo", "valid"),
    [("sentence-transformers/all-MiniLM-L6-v2", True), ("Qwen/Qwen3-0.6B", True),
     ("gpt2", True), ("a--b", False), ("org/a..b", False), ("-org/x", False),
     ("org/x.", False), ("a/b/c", False)],
)  # fmt: skip
def test_repo_ids_follow_the_hubs_rule(repo: str, valid: bool) -> None:
    """'a--b' must not be accepted: the Hub's cache maps 'a/b' to 'models--a--b' too."""
    adapter = TypeAdapter(HfRepoId)
    if valid:
        assert adapter.validate_python(repo) == repo
    else:
        with pytest.raises(ValidationError):
            adapter.validate_python(repo)
