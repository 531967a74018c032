"""Record files and their validation: each bad record is named by file, number and field."""

from __future__ import annotations

import io
import json

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from llmops_trainer.errors import Refused
from llmops_trainer.records import REQUIRED_FIELDS, parse_file, reads
from llmops_trainer.vocab import DatasetType

pytestmark = pytest.mark.unit

GOOD = {
    DatasetType.PRETRAIN_CORPUS: {"text": "a document"},
    DatasetType.SFT_PAIR: {"prompt": "p", "response": "r"},
    DatasetType.RAG_QA: {"question": "q", "context": "c", "answer": "a"},
    DatasetType.RLHF_PAIR: {"prompt": "p", "chosen": "c", "rejected": "r"},
    DatasetType.EMBEDDING_PAIR: {"query": "q", "positive": "p", "negative": "n"},
}


def jsonl(*rows: object) -> bytes:
    return "".join(json.dumps(row) + "\n" for row in rows).encode()


def refusal(relpath: str, data: bytes, dataset_type: DatasetType) -> str:
    with pytest.raises(Refused) as caught:
        parse_file(relpath, data, dataset_type)
    return str(caught.value)


@pytest.mark.parametrize("dataset_type", list(DatasetType))
def test_good_records_parse_with_their_fields_only(dataset_type: DatasetType) -> None:
    good = GOOD[dataset_type]
    parsed = parse_file("train.jsonl", jsonl({**good, "extra": 1}, good), dataset_type)
    assert parsed is not None
    assert parsed.records == [good, good]


@pytest.mark.parametrize(
    ("dataset_type", "field"),
    [(t, f) for t, fields in REQUIRED_FIELDS.items() for f in fields],
)
def test_a_missing_field_names_file_record_and_field(dataset_type: DatasetType, field: str) -> None:
    good = GOOD[dataset_type]
    bad = {k: v for k, v in good.items() if k != field}
    data = jsonl(good, good) + b"\n" + jsonl(bad)  # a blank line still counts: record 4
    assert refusal("data/train.jsonl", data, dataset_type) == (
        f"data/train.jsonl record 4: field '{field}' is missing"
    )


@pytest.mark.parametrize(
    ("dataset_type", "field"),
    [(t, f) for t, fields in REQUIRED_FIELDS.items() for f in fields],
)
@pytest.mark.parametrize("value", ["", "   ", 17, ["x"], {"a": "b"}])
def test_a_field_must_be_a_non_empty_string(
    dataset_type: DatasetType, field: str, value: object
) -> None:
    bad = {**GOOD[dataset_type], field: value}
    assert refusal("x.jsonl", jsonl(bad), dataset_type) == (
        f"x.jsonl record 1: field '{field}' must be a non-empty string"
    )


def test_null_counts_as_missing() -> None:
    bad = {"prompt": "p", "response": None}
    assert refusal("x.jsonl", jsonl(bad), DatasetType.SFT_PAIR) == (
        "x.jsonl record 1: field 'response' is missing"
    )


def test_an_optional_negative_is_checked_when_given() -> None:
    rows = jsonl({"query": "q", "positive": "p"}, {"query": "q", "positive": "p", "negative": ""})
    assert refusal("e.jsonl", rows, DatasetType.EMBEDDING_PAIR) == (
        "e.jsonl record 2: field 'negative' must be a non-empty string"
    )


def test_invalid_json_and_non_objects_are_named() -> None:
    good = GOOD[DatasetType.SFT_PAIR]
    message = refusal("t.jsonl", jsonl(good) + b"{oops\n", DatasetType.SFT_PAIR)
    assert message.startswith("t.jsonl record 2: is not valid JSON: ")
    assert refusal("t.jsonl", jsonl(good, [1, 2]), DatasetType.SFT_PAIR) == (
        "t.jsonl record 2: is not a JSON object (got list)"
    )


def test_a_json_file_may_hold_one_array() -> None:
    good = GOOD[DatasetType.RAG_QA]
    parsed = parse_file("all.json", json.dumps([good, good]).encode(), DatasetType.RAG_QA)
    assert parsed is not None
    assert len(parsed.records) == 2
    bad = json.dumps([good, {"question": "q"}]).encode()
    assert refusal("all.json", bad, DatasetType.RAG_QA) == (
        "all.json record 2: field 'context' is missing"
    )


def test_parquet_rows_are_records() -> None:
    good = GOOD[DatasetType.RLHF_PAIR]
    buffer = io.BytesIO()
    pq.write_table(pa.Table.from_pylist([good, {**good, "chosen": None}]), buffer)
    assert refusal("p.parquet", buffer.getvalue(), DatasetType.RLHF_PAIR) == (
        "p.parquet record 2: field 'chosen' is missing"
    )


def test_text_files_are_documents_of_a_pretrain_corpus_only() -> None:
    parsed = parse_file("books/one.txt", b"Once upon a time.", DatasetType.PRETRAIN_CORPUS)
    assert parsed is not None
    assert parsed.records == [{"text": "Once upon a time."}]
    assert parse_file("notes.txt", b"x", DatasetType.SFT_PAIR) is None
    assert refusal("e.txt", b"   \n", DatasetType.PRETRAIN_CORPUS) == (
        "e.txt record 1: field 'text' must be a non-empty string"
    )


def test_other_files_are_ignored() -> None:
    assert not reads("README.md", DatasetType.SFT_PAIR)
    assert not reads("data.csv", DatasetType.PRETRAIN_CORPUS)
    assert reads("DATA/Train.JSONL", DatasetType.SFT_PAIR)
    assert parse_file("README.md", b"# hi", DatasetType.SFT_PAIR) is None
