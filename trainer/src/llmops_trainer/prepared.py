"""The prepared-data directory prepare_data writes and train/evaluate read::

    <data-uri>/train.jsonl     training rows (see llmops_trainer.encode for their columns)
    <data-uri>/eval.jsonl      held-out rows, the same columns
    <data-uri>/prepared.json   what was prepared, from what (written last: the commit marker)

The split is deterministic: records are ordered by a hash of (fixed seed, position, content),
and the first ``round(n * eval_fraction)`` (at least 1 when there are 2 records or more, never
all of them) are the eval split. Retries and other jobs on the same dataset version hold out
the same records, so their eval metrics compare.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final, TypeVar

from llmops_trainer import storage
from llmops_trainer.errors import Refused
from llmops_trainer.vocab import JobType

TRAIN_FILE: Final = "train.jsonl"
EVAL_FILE: Final = "eval.jsonl"
MARKER_FILE: Final = "prepared.json"
FORMAT_VERSION: Final = 1
SPLIT_SEED: Final = "llmops-trainer-split-v1"

T = TypeVar("T")


def split(records: Sequence[T], eval_fraction: float) -> tuple[list[T], list[T]]:
    """``(train, eval)`` of ``records``, deterministic, each in the records' order."""
    n = len(records)
    if n < 2:
        return list(records), []
    n_eval = min(n - 1, max(1, round(n * eval_fraction)))

    def key(index: int) -> str:
        content = json.dumps(records[index], sort_keys=True, default=str)
        return hashlib.sha256(f"{SPLIT_SEED}:{index}:{content}".encode()).hexdigest()

    held_out = set(sorted(range(n), key=key)[:n_eval])
    train = [r for i, r in enumerate(records) if i not in held_out]
    evaluation = [r for i, r in enumerate(records) if i in held_out]
    return train, evaluation


def write_rows(path: Path, rows: Iterable[dict[str, Any]]) -> None:
    """Rows as JSON lines."""
    with path.open("w", encoding="utf-8") as out:
        for row in rows:
            out.write(json.dumps(row, ensure_ascii=False))
            out.write("\n")


@dataclass(frozen=True)
class Prepared:
    """A prepared-data directory, read back."""

    uri: str
    info: dict[str, Any]

    @classmethod
    def load(cls, uri: str) -> Prepared:
        """Read ``prepared.json``; :class:`Refused` when the directory was never completed."""
        marker = storage.join(uri, MARKER_FILE)
        try:
            info = storage.read_json(marker)
        except FileNotFoundError as exc:
            raise Refused(
                f"--data-uri {uri} holds no prepared data ({MARKER_FILE} is missing): run "
                "prepare_data first"
            ) from exc
        if not isinstance(info, dict) or info.get("format_version") != FORMAT_VERSION:
            raise Refused(f"{marker} is not a prepared-data record of format {FORMAT_VERSION}")
        return cls(uri, info)

    @property
    def job_type(self) -> JobType:
        return JobType(self.info["job_type"])

    @property
    def max_seq_len(self) -> int:
        return int(self.info["max_seq_len"])

    def check_job_type(self, job_type: JobType) -> None:
        """Refuse data prepared for another job type."""
        if self.job_type is not job_type:
            raise Refused(
                f"--data-uri {self.uri} was prepared for {self.job_type.value}, not "
                f"{job_type.value}"
            )

    def rows(self, which: str) -> list[dict[str, Any]]:
        """The rows of ``train`` or ``eval``."""
        name = TRAIN_FILE if which == "train" else EVAL_FILE
        text = storage.read_bytes(storage.join(self.uri, name)).decode("utf-8")
        return [json.loads(line) for line in text.splitlines() if line.strip()]
