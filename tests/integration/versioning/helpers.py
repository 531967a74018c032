"""Datasets, events and look-ups shared by the versioning tests (fixtures are in conftest.py)."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from llmops_shared.events import (
    DatasetRestoreRequested,
    DatasetVersionRequested,
    Envelope,
    Event,
    StatusUpdated,
    decode_event,
    encode_event,
    new_event,
)
from llmops_shared.events.payloads.datasets import ManifestEntry
from llmops_versioning.adapters import restore
from llmops_versioning.ports import (
    Progress,
    ProgressCallback,
    VersioningBackend,
    VersioningPorts,
    VersionRequest,
)

from support.streams import details_of

CORRELATION_ID = "req-versioning-test"


def new_id() -> str:
    return str(uuid.uuid4())


def content(i: int, salt: str = "") -> bytes:
    """Deterministic JSONL records of varying size (0 to ~1.5 KB); file 0 is empty."""
    if i == 0 and not salt:
        return b""
    line = f'{{"id": {i}, "text": "record {i}{salt}", "pad": "{"x" * (i % 97)}"}}\n'
    return (line * (1 + i % 13)).encode()


def generate_dataset(root: Path, count: int = 1000) -> dict[str, bytes]:
    """``count`` small files in nested directories; relpath -> bytes."""
    files: dict[str, bytes] = {}
    for i in range(count):
        rel = f"shard-{i % 10}/part-{i % 7}/rec-{i:05d}.jsonl"
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        data = content(i)
        path.write_bytes(data)
        files[rel] = data
    return files


@dataclass
class Changes:
    """What :func:`mutate` did: path -> size (modified: (old size, new size))."""

    added: dict[str, int] = field(default_factory=dict)
    modified: dict[str, tuple[int, int]] = field(default_factory=dict)
    deleted: dict[str, int] = field(default_factory=dict)


def mutate(root: Path) -> Changes:
    """Change 25 files, add 15 (one in a new directory), delete 10."""
    changes = Changes()
    files = sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file())
    for rel in files[5:130:5]:
        path = root / rel
        old = path.stat().st_size
        path.write_bytes(path.read_bytes() + b'{"edited": true}\n')
        changes.modified[rel] = (old, path.stat().st_size)
    for rel in files[3:400:40]:
        if rel in changes.modified:
            continue
        changes.deleted[rel] = (root / rel).stat().st_size
        (root / rel).unlink()
    for i in range(15):
        rel = f"new-shard/extra-{i:02d}.jsonl" if i == 0 else f"shard-{i % 10}/added-{i:02d}.jsonl"
        data = content(5000 + i, salt="-new")
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(data)
        changes.added[rel] = len(data)
    return changes


def read_tree(root: Path) -> dict[str, bytes]:
    """Every file under ``root``: relpath -> bytes."""
    return {
        p.relative_to(root).as_posix(): p.read_bytes()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def manifest_of(root: Path) -> list[ManifestEntry]:
    """The expected manifest of a directory (md5 and size of every file)."""
    return [
        (rel, hashlib.md5(data).hexdigest(), len(data)) for rel, data in read_tree(root).items()
    ]


def copy_dataset(source: Path, target: Path) -> Path:
    shutil.copytree(source, target)
    return target


def as_event(envelope: Envelope) -> Event:
    """What a consumer hands to the handler: the envelope after a round trip."""
    return decode_event(encode_event(envelope))


def version_envelope(
    dataset_id: str,
    tag: str,
    storage_uri: str,
    *,
    version_id: str | None = None,
    parent_version_id: str | None = None,
) -> Envelope:
    payload = DatasetVersionRequested(
        dataset_id=dataset_id,
        version_id=version_id or new_id(),
        version_tag=tag,
        dataset_type="sft_pair",
        storage_uri=storage_uri,
        parent_version_id=parent_version_id,
    )
    return new_event(payload, source="tests", correlation_id=CORRELATION_ID)


def restore_envelope(
    dataset_id: str, version_id: str, tag: str, target_uri: str, *, restore_id: str | None = None
) -> Envelope:
    payload = DatasetRestoreRequested(
        restore_id=restore_id or new_id(),
        dataset_id=dataset_id,
        version_id=version_id,
        version_tag=tag,
        target_uri=target_uri,
    )
    return new_event(payload, source="tests", correlation_id=CORRELATION_ID)


class RecordingSink:
    """A status sink that keeps what it is given (progress reports)."""

    def __init__(self) -> None:
        self.envelopes: list[Envelope] = []

    async def publish(self, envelope: Envelope) -> str:
        self.envelopes.append(envelope)
        return f"0-{len(self.envelopes)}"

    def statuses(self) -> list[StatusUpdated]:
        return [as_event(e).payload_as(StatusUpdated) for e in self.envelopes]


def recording_ports(backend: VersioningBackend) -> tuple[VersioningPorts, RecordingSink]:
    sink = RecordingSink()
    return VersioningPorts(backend=backend, sink=sink, progress_interval_s=0.0), sink


def only_status(envelopes: list[Envelope]) -> StatusUpdated:
    [envelope] = envelopes
    return as_event(envelope).payload_as(StatusUpdated)


def git(repo: Path, *args: str) -> str:
    """Plain git output in a dataset repository (for assertions)."""
    return subprocess.run(
        ["git", *args], cwd=repo, check=True, capture_output=True, text=True, env=os.environ
    ).stdout.strip()


def repo_state(repo: Path) -> tuple[str, str, str]:
    """Tags, log and working-tree status of a repository: a failed version changes none."""
    return git(repo, "tag", "-l"), git(repo, "log", "--format=%H %s"), git(repo, "status", "-s")


def version_facts(status: StatusUpdated) -> dict[str, Any]:
    version = details_of(status)["version"]
    assert isinstance(version, dict)
    return version


class Crash(BaseException):
    """A worker killed mid-operation: no ``except Exception`` clean-up runs."""


def version_request(dataset_id: str, tag: str, uri: str) -> VersionRequest:
    """A backend-level version request with a fresh version id."""
    return VersionRequest(dataset_id, new_id(), tag, "jsonl", uri)


def crash_after(batches: int) -> ProgressCallback:
    """A progress callback that kills the operation after ``batches`` written batches."""

    def progress(report: Progress) -> None:
        if report.files_done >= batches * restore.BATCH and report.files_done:
            raise Crash

    return progress
