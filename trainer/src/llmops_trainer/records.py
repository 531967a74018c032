"""Dataset records: which files hold them, how they are parsed, what each type requires.

Files: ``*.jsonl`` and ``*.json`` are JSON lines (a ``.json`` file holding one JSON array is
accepted too), ``*.parquet`` are tables (one row per record) and, for ``pretrain_corpus`` only,
``*.txt`` files are one document each. Anything else is ignored, with a log line.

Validation stops at the first bad record, naming the file, the record number (the 1-based
line of a JSON-lines file, the element of a JSON array, the row of a parquet file) and the
field, e.g. ``data/train.jsonl record 17: field 'response' is missing``: a dataset with one
bad record is refused as a whole, since training on "whatever parsed" hides data bugs.
"""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Final

from llmops_trainer.errors import Refused
from llmops_trainer.vocab import DatasetType

_log = logging.getLogger(__name__)

REQUIRED_FIELDS: Final = MappingProxyType(
    {
        DatasetType.PRETRAIN_CORPUS: ("text",),
        DatasetType.SFT_PAIR: ("prompt", "response"),
        DatasetType.RAG_QA: ("question", "context", "answer"),
        DatasetType.RLHF_PAIR: ("prompt", "chosen", "rejected"),
        DatasetType.EMBEDDING_PAIR: ("query", "positive"),
    }
)
"""String fields every record of a dataset type must have (non-empty)."""

OPTIONAL_FIELDS: Final = MappingProxyType(
    {
        DatasetType.PRETRAIN_CORPUS: (),
        DatasetType.SFT_PAIR: (),
        DatasetType.RAG_QA: (),
        DatasetType.RLHF_PAIR: (),
        DatasetType.EMBEDDING_PAIR: ("negative",),
    }
)
"""String fields a record may have (null or absent means "not given")."""

JSON_SUFFIXES: Final = (".jsonl", ".json")
TABLE_SUFFIXES: Final = (".parquet",)
TEXT_SUFFIXES: Final = (".txt",)

Record = dict[str, str]


@dataclass(frozen=True)
class FileRecords:
    """The validated records of one file."""

    relpath: str
    records: list[Record]


def reads(relpath: str, dataset_type: DatasetType) -> bool:
    """Whether a file called ``relpath`` holds records of ``dataset_type``."""
    name = relpath.lower()
    if name.endswith(JSON_SUFFIXES + TABLE_SUFFIXES):
        return True
    return dataset_type is DatasetType.PRETRAIN_CORPUS and name.endswith(TEXT_SUFFIXES)


def parse_file(relpath: str, data: bytes, dataset_type: DatasetType) -> FileRecords | None:
    """The validated records of a file, or None when the file is not a record file (logged).
    :class:`Refused` at the first bad record."""
    if not reads(relpath, dataset_type):
        _log.info("ignoring %s: not a record file of a %s dataset", relpath, dataset_type)
        return None
    name = relpath.lower()
    if name.endswith(TEXT_SUFFIXES):
        raw: Iterator[tuple[int, object]] = iter([(1, {"text": _text(relpath, data)})])
    elif name.endswith(TABLE_SUFFIXES):
        raw = _parquet_rows(relpath, data)
    else:
        raw = _json_records(relpath, data)
    records = [validate(record, dataset_type, relpath=relpath, number=n) for n, record in raw]
    return FileRecords(relpath, records)


def validate(record: object, dataset_type: DatasetType, *, relpath: str, number: int) -> Record:
    """The record's known fields, checked; :class:`Refused` naming the record and field."""
    where = f"{relpath} record {number}"
    if not isinstance(record, Mapping):
        raise Refused(f"{where}: is not a JSON object (got {type(record).__name__})")
    out: Record = {}
    for field in REQUIRED_FIELDS[dataset_type]:
        if field not in record or record[field] is None:
            raise Refused(f"{where}: field '{field}' is missing")
        out[field] = _string(record[field], where=where, field=field)
    for field in OPTIONAL_FIELDS[dataset_type]:
        if record.get(field) is not None:
            out[field] = _string(record[field], where=where, field=field)
    return out


def _string(value: object, *, where: str, field: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise Refused(f"{where}: field '{field}' must be a non-empty string")
    return value


def _text(relpath: str, data: bytes) -> str:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise Refused(f"{relpath}: is not valid UTF-8 text: {exc}") from exc


def _json_records(relpath: str, data: bytes) -> Iterator[tuple[int, object]]:
    """``(record number, value)`` of a JSON-lines file, or of a file holding one array."""
    text = _text(relpath, data)
    if text.lstrip().startswith("["):
        try:
            values = json.loads(text)
        except json.JSONDecodeError as exc:
            raise Refused(f"{relpath}: is not valid JSON: {exc}") from exc
        if isinstance(values, list):
            yield from enumerate(values, start=1)
            return
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            yield number, json.loads(line)
        except json.JSONDecodeError as exc:
            raise Refused(f"{relpath} record {number}: is not valid JSON: {exc.msg}") from exc


def _parquet_rows(relpath: str, data: bytes) -> Iterator[tuple[int, object]]:
    import pyarrow as pa  # type: ignore[import-untyped]
    import pyarrow.parquet as pq  # type: ignore[import-untyped]

    try:
        table = pq.read_table(io.BytesIO(data))
    except (pa.ArrowException, OSError) as exc:
        raise Refused(f"{relpath}: is not a readable parquet file: {exc}") from exc
    yield from enumerate(table.to_pylist(), start=1)
