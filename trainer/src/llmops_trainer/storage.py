"""Every URI the stages read or write, through fsspec: local paths, ``file://``, ``s3://``.

S3 credentials and endpoints come from the usual places (``AWS_*`` variables, or fsspec's
``FSSPEC_S3_*`` configuration, e.g. ``FSSPEC_S3_ENDPOINT_URL`` for MinIO).

Outputs are *published*: a stage writes a complete directory in a staging location and only
then puts it at its URI (a rename on a local filesystem; on object stores an upload whose
marker file, the directory's completion record, goes last). So a crash never leaves a
half-written directory that looks finished at an output URI.
"""

from __future__ import annotations

import json
import logging
import os
import posixpath
import shutil
import tempfile
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import fsspec  # type: ignore[import-untyped]
from fsspec.core import url_to_fs  # type: ignore[import-untyped]

_log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Location:
    """A URI resolved to its filesystem and the path that filesystem understands."""

    uri: str
    fs: fsspec.AbstractFileSystem
    path: str

    @property
    def local(self) -> bool:
        """Whether this is the machine's own filesystem (paths, ``file://``)."""
        return "file" in _protocols(self.fs)


def _protocols(fs: fsspec.AbstractFileSystem) -> tuple[str, ...]:
    protocol = fs.protocol
    return (protocol,) if isinstance(protocol, str) else tuple(protocol)


def locate(uri: str) -> Location:
    """Resolve ``uri`` (a path, ``file://...``, ``s3://...``, any fsspec URL)."""
    fs, path = url_to_fs(uri)
    return Location(uri, fs, path.rstrip("/") or path)


def is_local(uri: str) -> bool:
    """Whether ``uri`` is on the machine's own filesystem."""
    return locate(uri).local


def local_path(uri: str) -> Path:
    """The local path of a local ``uri``; ValueError for remote ones."""
    location = locate(uri)
    if not location.local:
        raise ValueError(f"{uri} is not a local path")
    return Path(location.path)


def join(uri: str, *parts: str) -> str:
    """``uri`` with path parts appended, keeping its scheme."""
    out = uri.rstrip("/")
    for part in parts:
        out = f"{out}/{part.strip('/')}"
    return out


def parent(uri: str) -> str:
    """The URI of the directory holding ``uri`` (``s3://b/jobs/1/model`` -> ``s3://b/jobs/1``)."""
    return posixpath.dirname(uri.rstrip("/"))


def exists(uri: str) -> bool:
    """Whether something exists at ``uri``."""
    location = locate(uri)
    return bool(location.fs.exists(location.path))


def read_bytes(uri: str) -> bytes:
    """The whole content of the file at ``uri``."""
    location = locate(uri)
    data: bytes = location.fs.cat_file(location.path)
    return data


def read_json(uri: str) -> Any:
    """The JSON document at ``uri``."""
    return json.loads(read_bytes(uri))


@contextmanager
def open_binary(location: Location) -> Iterator[IO[bytes]]:
    """Read ``location`` as a binary stream."""
    with location.fs.open(location.path, "rb") as stream:
        yield stream


def list_files(uri: str) -> list[tuple[str, Location]]:
    """Every file at or below ``uri`` as ``(relpath, location)``, sorted by relpath; a single
    file is listed under its own name. FileNotFoundError when nothing is there."""
    location = locate(uri)
    fs = location.fs
    if not fs.exists(location.path):
        raise FileNotFoundError(f"nothing at {uri}")
    if not fs.isdir(location.path):
        return [(posixpath.basename(location.path), location)]
    root = location.path.rstrip("/") + "/"
    found = []
    for path in fs.find(location.path):
        relpath = path[len(root) :] if path.startswith(root) else posixpath.basename(path)
        found.append((relpath, Location(join(uri, relpath), fs, path)))
    return sorted(found, key=lambda item: item[0])


def download_dir(uri: str, target: Path) -> None:
    """Copy every file below ``uri`` into the local directory ``target``."""
    target.mkdir(parents=True, exist_ok=True)
    for relpath, location in list_files(uri):
        destination = target / relpath
        destination.parent.mkdir(parents=True, exist_ok=True)
        location.fs.get_file(location.path, str(destination))


def upload_dir(source: Path, uri: str, *, last: Sequence[str] = ()) -> None:
    """Copy the local directory ``source`` to ``uri``, the relpaths in ``last`` at the end
    (a completion marker uploaded last means a reader never sees it before the rest)."""
    location = locate(uri)
    files = sorted(p for p in source.rglob("*") if p.is_file())
    relpaths = [p.relative_to(source).as_posix() for p in files]
    ordered = [r for r in relpaths if r not in last] + [r for r in last if r in relpaths]
    for relpath in ordered:
        destination = posixpath.join(location.path, relpath)
        location.fs.makedirs(posixpath.dirname(destination), exist_ok=True)
        location.fs.put_file(str(source / relpath), destination)


def staging_dir(uri: str, scratch: Path) -> Path:
    """A fresh empty directory to build the output of ``uri`` in: a hidden sibling of a local
    target (so publishing is a rename on one filesystem), else a directory under ``scratch``."""
    location = locate(uri)
    if location.local:
        target = Path(location.path)
        target.parent.mkdir(parents=True, exist_ok=True)
        staging = target.parent / f".{target.name}.staging-{uuid.uuid4().hex[:12]}"
    else:
        scratch.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix="staging-", dir=scratch))
    staging.mkdir(parents=True, exist_ok=True)
    return staging


def publish_dir(staging: Path, uri: str, *, marker: str) -> None:
    """Put the complete directory ``staging`` at ``uri``, replacing what was there.

    Local: two renames (the old directory aside, the new one in), then the old one removed;
    a crash in between leaves either the old complete directory or none, never a partial one.
    Remote: the old prefix removed, the files uploaded, ``marker`` last; readers check the
    marker. ``staging`` is consumed either way."""
    location = locate(uri)
    if location.local:
        target = Path(location.path)
        old = target.parent / f".{target.name}.old-{uuid.uuid4().hex[:12]}"
        if target.exists():
            os.replace(target, old)
        os.replace(staging, target)
        shutil.rmtree(old, ignore_errors=True)
        return
    if location.fs.exists(location.path):
        location.fs.rm(location.path, recursive=True)
    upload_dir(staging, uri, last=[marker])
    shutil.rmtree(staging, ignore_errors=True)
    _log.info("uploaded %s", uri)


def discard(staging: Path) -> None:
    """Remove a staging directory that will not be published."""
    shutil.rmtree(staging, ignore_errors=True)
