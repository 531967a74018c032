"""The committed event documents (docs/events/) match the models, validate the examples, and
describe every stream; the streams runtime writes only documented dead-letter fields."""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from jsonschema import Draft202012Validator

from llmops_shared.events import (
    DEAD_LETTER_FIELDS,
    EVENT_TYPES,
    EventDecodeError,
    Stream,
    dead_letter_stream,
    decode_event,
    event_types_for,
)
from llmops_shared.events.export import REGENERATE_COMMAND, drift, main, render_documents
from llmops_shared.events.schemas import example_event_json

pytestmark = pytest.mark.contract

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs" / "events"
SCHEMAS = DOCS / "schemas"
ALL_TYPES = sorted(EVENT_TYPES)


def _committed_schema(event_type: str) -> dict[str, Any]:
    schema: dict[str, Any] = json.loads((SCHEMAS / f"{event_type}.json").read_text("utf-8"))
    return schema


def _validator(event_type: str) -> Draft202012Validator:
    return Draft202012Validator(
        _committed_schema(event_type), format_checker=Draft202012Validator.FORMAT_CHECKER
    )


@pytest.fixture(scope="module")
def asyncapi() -> dict[str, Any]:
    document: dict[str, Any] = yaml.safe_load((DOCS / "asyncapi.yaml").read_text("utf-8"))
    return document


def test_committed_documents_match_the_models() -> None:
    problems = drift(DOCS)
    assert not problems, (
        "docs/events/ is out of date with llmops_shared.events; regenerate with "
        f"`{REGENERATE_COMMAND}` and commit the result:\n" + "\n".join(problems)
    )


def test_generation_is_deterministic() -> None:
    assert render_documents() == render_documents()


def test_export_check_exits_1_on_drift_and_0_after_writing(tmp_path: Path) -> None:
    assert main(["--check", "--out", str(tmp_path)]) == 1
    assert main(["--out", str(tmp_path)]) == 0
    assert main(["--check", "--out", str(tmp_path)]) == 0
    (tmp_path / "schemas" / "llmops.training.job.retired.v1.json").write_text("{}")
    schema = tmp_path / "schemas" / "llmops.training.job.submitted.v1.json"
    schema.write_text(schema.read_text().replace("Event type.", "Type of event."))
    problems = drift(tmp_path)
    assert any(
        p.startswith("changed: schemas/llmops.training.job.submitted.v1.json") for p in problems
    )
    assert "stale: schemas/llmops.training.job.retired.v1.json (no such event type)" in problems
    assert main(["--check", "--out", str(tmp_path)]) == 1
    assert main(["--out", str(tmp_path)]) == 0
    assert not (tmp_path / "schemas" / "llmops.training.job.retired.v1.json").exists()
    assert drift(tmp_path) == []


def test_one_schema_file_per_event_type() -> None:
    assert sorted(p.name for p in SCHEMAS.glob("*.json")) == [f"{t}.json" for t in ALL_TYPES]


@pytest.mark.parametrize("event_type", ALL_TYPES)
def test_schema_is_a_valid_2020_12_schema_of_the_whole_event(event_type: str) -> None:
    schema = _committed_schema(event_type)
    Draft202012Validator.check_schema(schema)
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert schema["properties"]["type"]["const"] == event_type
    assert set(schema["required"]) >= {"id", "source", "type", "specversion", "time", "data"}


@pytest.mark.parametrize("event_type", ALL_TYPES)
def test_example_event_validates_against_its_committed_schema(event_type: str) -> None:
    example = example_event_json(event_type)
    _validator(event_type).validate(example)
    assert example in _committed_schema(event_type)["examples"]
    decode_event(json.dumps(example), expected_stream=EVENT_TYPES[event_type].stream)


def _broken_variants(event: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    """Events that break the contract in ways both the schema and decode_event must catch."""
    for name, change in [
        ("other type", lambda e: e.update(type="llmops.training.job.exploded.v1")),
        ("no data", lambda e: e.pop("data")),
        ("no id", lambda e: e.pop("id")),
        ("id not a uuid", lambda e: e.update(id="42")),
        ("bad specversion", lambda e: e.update(specversion="0.3")),
        ("camelCase attribute", lambda e: e.update(correlationId="x")),
        ("object extension", lambda e: e.update(tenant={"id": 1})),
        ("unknown data field", lambda e: e["data"].update(unexpected=1)),
        ("data not an object", lambda e: e.update(data=[])),
    ]:
        broken = copy.deepcopy(event)
        change(broken)
        yield name, broken


@pytest.mark.parametrize("event_type", ALL_TYPES)
def test_broken_events_fail_the_schema_and_the_decoder(event_type: str) -> None:
    validator = _validator(event_type)
    for name, broken in _broken_variants(example_event_json(event_type)):
        assert not validator.is_valid(broken), f"schema accepted: {name}"
        with pytest.raises(EventDecodeError):
            decode_event(json.dumps(broken))


def test_payload_constraints_are_in_the_schema() -> None:
    event = example_event_json("llmops.training.job.submitted.v1")
    event["data"]["spec"]["hyperparams"]["lr"] = 0
    errors = list(_validator("llmops.training.job.submitted.v1").iter_errors(event))
    assert [list(e.absolute_path) for e in errors] == [["data", "spec", "hyperparams", "lr"]]

    status = example_event_json("llmops.status.job.updated.v1")
    status["data"]["entity"] = "deployment"
    assert not _validator("llmops.status.job.updated.v1").is_valid(status)


def test_asyncapi_is_3_0_0_with_a_channel_per_stream_and_dead_letter_stream(
    asyncapi: dict[str, Any],
) -> None:
    assert asyncapi["asyncapi"] == "3.0.0"
    addresses = {channel["address"] for channel in asyncapi["channels"].values()}
    streams = {s.value for s in Stream}
    assert addresses == streams | {dead_letter_stream(s) for s in streams}
    for channel_id in asyncapi["channels"]:
        assert re.fullmatch(r"[A-Za-z0-9_\-]+", channel_id), channel_id


def test_asyncapi_channels_carry_exactly_their_streams_messages(asyncapi: dict[str, Any]) -> None:
    messages = asyncapi["components"]["messages"]
    by_address = {c["address"]: c for c in asyncapi["channels"].values()}
    for stream in Stream:
        refs = by_address[stream.value]["messages"].values()
        names = {messages[r["$ref"].rsplit("/", 1)[1]]["name"] for r in refs}
        assert names == set(event_types_for(stream)), stream
        dlq_refs = by_address[dead_letter_stream(stream)]["messages"].values()
        assert [r["$ref"] for r in dlq_refs] == ["#/components/messages/DeadLetterEntry"]


def test_asyncapi_references_every_event_type(asyncapi: dict[str, Any]) -> None:
    messages = asyncapi["components"]["messages"]
    assert {m["name"] for m in messages.values()} == set(ALL_TYPES) | {"dead-letter-entry"}
    referenced = {
        ref["$ref"].rsplit("/", 1)[1]
        for channel in asyncapi["channels"].values()
        for ref in channel["messages"].values()
    }
    assert referenced == set(messages)
    operated = {
        ref["$ref"].rsplit("/", 1)[1]
        for operation in asyncapi["operations"].values()
        for ref in operation["messages"]
    }
    assert operated == set(messages)


def _refs(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "$ref" and isinstance(value, str):
                yield value
            else:
                yield from _refs(value)
    elif isinstance(node, list):
        for item in node:
            yield from _refs(item)


def test_asyncapi_references_all_resolve(asyncapi: dict[str, Any]) -> None:
    for ref in set(_refs(asyncapi)):
        assert ref.startswith("#/"), ref
        node: Any = asyncapi
        for part in ref[2:].split("/"):
            assert part in node, f"dangling $ref {ref}"
            node = node[part]


def test_asyncapi_examples_validate_against_their_message_schema(
    asyncapi: dict[str, Any],
) -> None:
    components = asyncapi["components"]
    for message in components["messages"].values():
        schema = {"$ref": message["payload"]["$ref"], "components": components}
        validator = Draft202012Validator(schema)
        for example in message["examples"]:
            errors = [e.message for e in validator.iter_errors(example["payload"])]
            assert not errors, (message["name"], errors)


def test_dead_letter_schema_documents_every_field_the_runtime_writes(
    asyncapi: dict[str, Any],
) -> None:
    documented = asyncapi["components"]["schemas"]["DeadLetterEntry"]["properties"]
    assert set(documented) == set(DEAD_LETTER_FIELDS)
    assert set(DEAD_LETTER_FIELDS) >= {
        "event",
        "stream",
        "group",
        "message_id",
        "reason",
        "error_type",
        "deliveries",
        "failed_at",
        "consumer",
    }
    streams_runtime = pytest.importorskip("llmops_shared.streams.dead_letters")
    letter = streams_runtime.DeadLetter(
        message_id=b"1-0",
        raw_event=b"{}",
        reason="r",
        error_type="EventDecodeError",
        deliveries=1,
        cause="non_retryable",
    )
    written = letter.fields(stream="llmops.training", group="g", consumer="c")
    assert set(written) <= set(DEAD_LETTER_FIELDS), "the streams runtime writes undocumented fields"


def test_events_md_lists_every_event_type() -> None:
    text = (ROOT / "docs" / "events.md").read_text("utf-8")
    missing = [t for t in ALL_TYPES if f"`{t}`" not in text]
    assert not missing, f"docs/events.md does not mention: {missing}"
