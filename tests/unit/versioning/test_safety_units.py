"""Pure logic of the worker's guards: relative paths, local access, redaction, LOCAL_DATA_ROOTS,
and unexpected backend errors turned into Failed reports."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Literal

import pytest

from llmops_shared.events import (
    DatasetRestoreRequested,
    DatasetVersionRequested,
    Envelope,
    StatusUpdated,
    decode_event,
    encode_event,
    new_event,
)
from llmops_shared.events.payloads.datasets import RestoreFacts, VersionFacts
from llmops_versioning.config import VersioningSettings
from llmops_versioning.handlers import handle_datasets_event
from llmops_versioning.ports import (
    ProgressCallback,
    RestoreRequest,
    VersioningFailed,
    VersioningPorts,
    VersionRequest,
)
from llmops_versioning.safety import (
    LocalAccess,
    check_md5,
    redact_uri,
    safe_join,
    unsafe_relpath,
)

pytestmark = pytest.mark.unit

ID = "0b6f3c9e-6f1e-4c8e-9a51-3f1d2a7c9b10"


def test_unsafe_relpaths() -> None:
    for bad in ["", "/tmp/x", "../x", "a/../../x", "a//b", "./a", "a/.", "a/", "a\\b", "a\x00b"]:
        assert unsafe_relpath(bad), bad
    for good in ["a", "a/b.jsonl", "..a/b", "a..b/.hidden", "sp ace/ü.txt"]:
        assert not unsafe_relpath(good), good


def test_safe_join_follows_symlinks(tmp_path: Path) -> None:
    root = tmp_path / "root"
    root.mkdir()
    (root / "link").symlink_to(tmp_path, target_is_directory=True)
    assert safe_join(root, "a/b") == root.resolve() / "a/b"
    with pytest.raises(VersioningFailed, match="resolves outside"):
        safe_join(root, "link/escape.txt")
    with pytest.raises(VersioningFailed, match="is not a safe relative path"):
        safe_join(root, "../x")


def test_md5_names() -> None:
    assert check_md5("0" * 32, what="x") == "0" * 32
    assert check_md5("a" * 32 + ".dir", what="x")
    with pytest.raises(VersioningFailed, match="is not an md5 digest"):
        check_md5("../../../etc/passwd", what="x")


def test_redact_uri() -> None:
    assert redact_uri("s3://AKIA:secret@bucket/p") == "s3://AKIA:***@bucket/p"
    assert redact_uri("https://u:p@host:9000/a@b") == "https://u:***@host:9000/a@b"
    assert redact_uri("s3://bucket/key@with-at") == "s3://bucket/key@with-at"
    assert redact_uri("/data/x@y") == "/data/x@y"


def test_local_access(tmp_path: Path) -> None:
    own = tmp_path / "repos"
    anywhere = LocalAccess.of(denied=[own])
    assert anywhere.check(tmp_path / "data", what="storage_uri", uri="u") == tmp_path / "data"
    for bad in [Path("/proc/self/environ"), Path("/sys"), Path("/etc/passwd"), own / "d", tmp_path]:
        with pytest.raises(VersioningFailed, match="is not allowed"):
            anywhere.check(bad, what="storage_uri", uri=str(bad))
    rooted = LocalAccess.of(roots=[tmp_path / "data"], denied=[own])
    assert rooted.check(tmp_path / "data", what="s", uri="u") == tmp_path / "data"
    with pytest.raises(VersioningFailed, match="not below LOCAL_DATA_ROOTS"):
        rooted.check(tmp_path / "data", what="target", uri="u", writing=True)
    with pytest.raises(VersioningFailed, match="not inside LOCAL_DATA_ROOTS"):
        rooted.check(tmp_path / "other", what="s", uri="u")


def test_local_data_roots_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LOCAL_DATA_ROOTS", "/data, /mnt/datasets,")
    settings = VersioningSettings(_env_file=None)  # type: ignore[call-arg]
    assert settings.local_data_roots == [Path("/data"), Path("/mnt/datasets")]
    monkeypatch.setenv("LOCAL_DATA_ROOTS", "")
    assert VersioningSettings(_env_file=None).local_data_roots == []  # type: ignore[call-arg]
    monkeypatch.setenv("LOCAL_DATA_ROOTS", "relative/dir")
    with pytest.raises(ValueError, match="is not absolute"):
        VersioningSettings(_env_file=None)  # type: ignore[call-arg]


class Exploding:
    """A backend whose calls raise ``error``."""

    def __init__(self, error: BaseException) -> None:
        self.error = error

    @property
    def name(self) -> Literal["dvc"]:
        return "dvc"

    async def create_version(
        self, request: VersionRequest, progress: ProgressCallback
    ) -> VersionFacts:
        raise self.error

    async def restore(self, request: RestoreRequest, progress: ProgressCallback) -> RestoreFacts:
        raise self.error

    async def ping(self) -> None:
        return None


def _status(envelopes: list[Envelope]) -> StatusUpdated:
    [envelope] = envelopes
    return decode_event(encode_event(envelope)).payload_as(StatusUpdated)


async def test_unexpected_errors_are_failed_reports() -> None:
    ports = VersioningPorts(Exploding(ValueError("while parsing a block mapping\n  in data.dvc")))
    version = new_event(
        DatasetVersionRequested(
            dataset_id=ID, version_id=ID, version_tag="v1.0.0", dataset_type="sft_pair",
            storage_uri="/data/x",
        ),
        source="tests",
    )  # fmt: skip
    event = decode_event(encode_event(version))
    status = _status(await handle_datasets_event(event, ports))
    assert status.phase == "Failed"
    assert status.reason == (
        "version v1.0.0 failed unexpectedly: ValueError: while parsing a block mapping in data.dvc"
    )
    assert status.details.model_dump(mode="json") == {"backend": "dvc"}

    restore = new_event(
        DatasetRestoreRequested(
            restore_id=ID, dataset_id=ID, version_id=ID, version_tag="v1.0.0",
            target_uri="/data/out",
        ),
        source="tests",
    )  # fmt: skip
    event = decode_event(encode_event(restore))
    status = _status(await handle_datasets_event(event, ports))
    assert status.phase == "Failed"
    assert status.reason == (
        "restore of version v1.0.0 failed unexpectedly: ValueError: while parsing a block "
        "mapping in data.dvc"
    )

    cancelled = VersioningPorts(Exploding(asyncio.CancelledError()))
    with pytest.raises(asyncio.CancelledError):  # shutdown is not a Failed report
        await handle_datasets_event(event, cancelled)
