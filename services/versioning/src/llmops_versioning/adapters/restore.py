"""Writing a version's files to a restore target, shared by both backends.

The target must be empty (or not exist): a restore never merges with other data, so what is
there afterwards is exactly the version. Every object is copied from a local content-addressed
store (DVC's cache or the built-in object store) and its md5 is checked on the way; a failure
removes what was written, so the target is empty again and the restore can be retried.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import BinaryIO, Final

from llmops_shared.events.payloads.datasets import ManifestEntry, RestoreFacts
from llmops_versioning.adapters.storage import Location, S3Options, describe
from llmops_versioning.manifest import copy_hashing, hash_stream
from llmops_versioning.ports import Progress, ProgressCallback, VersioningFailed

BATCH: Final = 64
"""Files per progress report (and per concurrent S3 upload)."""


def write_version(
    files: Sequence[ManifestEntry],
    object_path: Callable[[str], Path],
    *,
    version_id: str,
    target_uri: str,
    s3: S3Options,
    progress: ProgressCallback,
) -> RestoreFacts:
    """Copy every ``(relpath, md5, size)`` from ``object_path(md5)`` to ``target_uri``."""
    target = Location(target_uri, s3)
    try:
        empty = target.is_empty()
        existed = target.local is None or target.local.exists()
    except Exception as exc:
        raise VersioningFailed(f"cannot inspect target {target_uri}: {describe(exc)}") from exc
    if not empty:
        raise VersioningFailed(
            f"target {target_uri} is not empty; a restore only writes to an empty or new location"
        )
    files_total = len(files)
    bytes_total = sum(size for _, _, size in files)
    bytes_done = 0
    progress(Progress("restoring", 0, files_total, 0, bytes_total))
    try:
        for start in range(0, files_total, BATCH):
            batch = files[start : start + BATCH]
            if target.local is not None:
                for relpath, md5, _ in batch:
                    with (
                        _object(object_path, md5, relpath) as handle,
                        target.open_write(relpath) as sink,
                    ):
                        got, size = copy_hashing(handle, sink)
                    _check(md5, got, relpath)
                    bytes_done += size
            else:  # verify first, then upload the batch concurrently
                for relpath, md5, _ in batch:
                    with _object(object_path, md5, relpath) as handle:
                        got, size = hash_stream(handle)
                    _check(md5, got, relpath)
                    bytes_done += size
                target.upload([object_path(md5) for _, md5, _ in batch], [r for r, _, _ in batch])
            done = start + len(batch)
            progress(Progress("restoring", done, files_total, bytes_done, bytes_total))
    except BaseException as exc:
        with contextlib.suppress(Exception):  # best effort; the original error is the reason
            target.remove_tree(keep_root=existed)
        if isinstance(exc, VersioningFailed) or not isinstance(exc, Exception):
            raise
        raise VersioningFailed(f"cannot write target {target_uri}: {describe(exc)}") from exc
    return RestoreFacts(
        version_id=version_id,
        target_uri=target_uri,
        files_done=files_total,
        files_total=files_total,
        bytes_done=bytes_done,
        bytes_total=bytes_total,
    )


def _object(object_path: Callable[[str], Path], md5: str, relpath: str) -> BinaryIO:
    try:
        return open(object_path(md5), "rb")
    except FileNotFoundError as exc:
        raise VersioningFailed(f"object {md5} of {relpath} is missing from the store") from exc


def _check(md5: str, got: str, relpath: str) -> None:
    if got != md5:
        raise VersioningFailed(f"object {md5} of {relpath} is corrupt (its md5 is {got})")


def load_record(path: Path) -> RestoreFacts | None:
    """The facts of a restore already done (redelivery), if recorded."""
    try:
        return RestoreFacts.model_validate_json(path.read_bytes())
    except FileNotFoundError:
        return None


def save_record(path: Path, facts: RestoreFacts) -> None:
    """Remember a finished restore, atomically."""
    write_json_atomically(path, facts.model_dump(mode="json"))


def write_json_atomically(path: Path, data: object) -> None:
    """Write ``data`` as JSON to a temporary file that then replaces ``path``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            json.dump(data, handle, separators=(",", ":"))
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
