"""Writing a version's files to a restore target, shared by both backends.

The target must be empty (or not exist): a restore never merges with other data, so what is
there afterwards is exactly the version. Every object is copied from a local content-addressed
store (DVC's cache or the built-in object store) and its md5 is checked on the way; a failure
removes what was written, so the target is empty again and the restore can be retried.

Crash safety (a worker killed mid-restore, the event redelivered):

* before the first byte, an in-progress marker ``<records>/<restore_id>.partial.json`` is
  written; the finished record ``<records>/<restore_id>.json`` replaces it at the end;
* a local target is written into a hidden sibling ``.<name>.llmops-restore-<restore_id>`` and
  renamed into place at the end (atomic; the target is never half-written). A target that is a
  mount point cannot be renamed onto, so it is written in place;
* on redelivery with the marker present, the staging directory is removed and the files this
  restore writes (the version's relpaths, nothing else) are deleted from the target, then the
  restore runs again. A restore whose record exists re-reports its facts.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import BinaryIO, Final

from llmops_shared.events.payloads.datasets import ManifestEntry, RestoreFacts
from llmops_versioning.adapters.storage import Location, S3Options, describe
from llmops_versioning.manifest import copy_hashing, hash_stream
from llmops_versioning.ports import Progress, ProgressCallback, VersioningFailed
from llmops_versioning.safety import LocalAccess, check_md5, check_name, check_relpath, safe_join

BATCH: Final = 64
"""Files per progress report (and per concurrent S3 upload)."""
STAGING_PREFIX: Final = ".llmops-restore-"


def record_path(records_dir: Path, restore_id: str) -> Path:
    """Where a finished restore is recorded."""
    return records_dir / f"{check_name(restore_id, what='restore id')}.json"


def marker_path(records_dir: Path, restore_id: str) -> Path:
    """The in-progress marker of a restore (present from its first byte to its record)."""
    return records_dir / f"{check_name(restore_id, what='restore id')}.partial.json"


def staging_path(target: Path, restore_id: str) -> Path:
    """The hidden sibling a local restore is written into before it is renamed into place."""
    return target.parent / f".{target.name}{STAGING_PREFIX}{restore_id}"


def write_version(
    files: Sequence[ManifestEntry],
    object_path: Callable[[str], Path],
    *,
    restore_id: str,
    version_id: str,
    target_uri: str,
    s3: S3Options,
    records_dir: Path,
    progress: ProgressCallback,
    access: LocalAccess | None = None,
) -> RestoreFacts:
    """Copy every ``(relpath, md5, size)`` from ``object_path(md5)`` to ``target_uri`` and
    record the restore (see the module docstring for crash safety)."""
    for relpath, md5, _ in files:  # before anything is written
        check_relpath(relpath, what=f"the manifest of version {version_id}: path")
        check_md5(md5, what=f"the manifest of version {version_id} ({relpath})")
    relpaths = [relpath for relpath, _, _ in files]
    target = Location(target_uri, s3, access=access, what="target", writing=True)
    marker = marker_path(records_dir, restore_id)
    resumed = marker.exists()
    staging: Path | None = None
    try:
        if target.local is not None and not os.path.ismount(target.local):
            staging = staging_path(target.local, restore_id)
            shutil.rmtree(staging, ignore_errors=True)
        if resumed:  # a crashed attempt of this restore: clear what it wrote
            target.remove_files(relpaths)
        empty = target.is_empty()
        existed = target.local is None or target.local.exists()
    except VersioningFailed:
        raise
    except Exception as exc:
        raise VersioningFailed(f"cannot inspect target {target.uri}: {describe(exc)}") from exc
    if not empty:
        marker.unlink(missing_ok=True)
        raise VersioningFailed(
            f"target {target.uri} is not empty; a restore only writes to an empty or new location"
        )
    write_json_atomically(marker, {"restore_id": restore_id, "target_uri": target.uri})
    try:
        facts = _write(files, object_path, target, staging, version_id, target_uri, progress)
        if staging is not None:
            assert target.local is not None
            _move_into_place(staging, target.local, target.uri)
            staging = None
    except Exception as exc:  # a crash (BaseException) leaves all for the redelivery's recovery
        with contextlib.suppress(Exception):  # best effort; the original error is the reason
            if staging is not None:
                shutil.rmtree(staging, ignore_errors=True)
            else:
                target.remove_files(relpaths)
                if not existed and target.local is not None:
                    target.local.rmdir()
        marker.unlink(missing_ok=True)
        if isinstance(exc, VersioningFailed):
            raise
        raise VersioningFailed(f"cannot write target {target.uri}: {describe(exc)}") from exc
    save_record(record_path(records_dir, restore_id), facts)
    marker.unlink(missing_ok=True)
    return facts


def _write(
    files: Sequence[ManifestEntry],
    object_path: Callable[[str], Path],
    target: Location,
    staging: Path | None,
    version_id: str,
    target_uri: str,
    progress: ProgressCallback,
) -> RestoreFacts:
    files_total = len(files)
    bytes_total = sum(size for _, _, size in files)
    bytes_done = 0
    progress(Progress("restoring", 0, files_total, 0, bytes_total))
    if staging is not None:
        staging.mkdir(parents=True)
    for start in range(0, files_total, BATCH):
        batch = files[start : start + BATCH]
        if target.local is not None:
            root = staging or target.local
            for relpath, md5, _ in batch:
                path = safe_join(root, relpath, what="manifest path")
                path.parent.mkdir(parents=True, exist_ok=True)
                with _object(object_path, md5, relpath) as handle, open(path, "wb") as sink:
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
    return RestoreFacts(
        version_id=version_id,
        target_uri=target_uri,
        files_done=files_total,
        files_total=files_total,
        bytes_done=bytes_done,
        bytes_total=bytes_total,
    )


def _move_into_place(staging: Path, target: Path, shown: str) -> None:
    """Rename the staging directory onto the target (missing or empty): atomic."""
    try:
        os.rename(staging, target)
    except OSError as exc:
        if target.is_dir() and any(target.iterdir()):
            raise VersioningFailed(
                f"target {shown} is not empty; a restore only writes to an empty or new location"
            ) from exc
        raise


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
