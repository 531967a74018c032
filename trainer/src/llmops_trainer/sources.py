"""Where a dataset's bytes come from: a pinned version by content address, or a URI as is.

A pinned version (``--dataset-store``/``--dataset-remote``/``--dataset-digest``) is read from
its content-addressed objects, so what sits at the dataset's ``storage_uri`` today does not
matter and every byte is checked against the md5 the version recorded:

* ``dvc``: the DVC 3 remote layout. The manifest is the ``.dir`` object
  ``<remote>/files/md5/<d[:2]>/<d[2:]>`` (``d`` is the digest, ``.dir`` suffix included), a
  JSON list of ``{"md5", "relpath"}`` whose own md5 is the digest; each file is
  ``<remote>/files/md5/<m[:2]>/<m[2:]>``.
* ``builtin``: the versioning service's built-in store. The manifest is
  ``<remote>/versions/<dataset_id>/<version>.json`` (its ``facts.files`` are
  ``[relpath, md5, size]``), whose DVC ``.dir`` digest is recomputed and must equal the pin;
  each file is ``<remote>/objects/<m[:2]>/<m[2:]>``.

Any mismatch, an unsafe relpath or a missing object is a refusal naming the file.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, Final

from llmops_trainer import storage
from llmops_trainer.errors import Refused
from llmops_trainer.records import reads
from llmops_trainer.vocab import DatasetStore, DatasetType

_log = logging.getLogger(__name__)

MD5: Final = re.compile(r"^[0-9a-f]{32}$")
DIGEST: Final = re.compile(r"^[0-9a-f]{32}\.dir$")
IGNORED_DIRS: Final = frozenset({".git", ".dvc", ".hg"})


def md5_hex(data: bytes) -> str:
    """md5 of ``data`` (content addressing, not security)."""
    return hashlib.md5(data, usedforsecurity=False).hexdigest()


def dir_digest(entries: list[tuple[str, str]]) -> str:
    """DVC's ``.dir`` digest of ``(relpath, md5)`` entries: the md5 of the JSON list of
    ``{"md5", "relpath"}`` sorted by relpath (``json.dumps(..., sort_keys=True)``) + ``.dir``.
    The versioning service computes the same for both of its backends."""
    tree = [{"md5": md5, "relpath": relpath} for relpath, md5 in sorted(entries)]
    return md5_hex(json.dumps(tree, sort_keys=True).encode("utf-8")) + ".dir"


def check_relpath(relpath: object, *, where: str) -> str:
    """A manifest's relpath, refused unless it is a safe relative POSIX path."""
    if not isinstance(relpath, str) or not relpath:
        raise Refused(f"{where}: a manifest entry has no relpath")
    parts = relpath.split("/")
    if (
        relpath.startswith("/")
        or "\\" in relpath
        or re.match(r"^[A-Za-z]:", relpath)
        or any(part in ("", ".", "..") for part in parts)
    ):
        raise Refused(f"{where}: unsafe relpath {relpath!r} in the manifest")
    return relpath


@dataclass(frozen=True)
class Pin:
    """A recorded dataset version, by content address."""

    store: DatasetStore
    remote: str
    digest: str
    dataset_id: str | None = None

    def object_uri(self, md5: str) -> str:
        """Where the object with content hash ``md5`` is."""
        if self.store is DatasetStore.DVC:
            return storage.join(self.remote, "files", "md5", md5[:2], md5[2:])
        return storage.join(self.remote, "objects", md5[:2], md5[2:])


@dataclass(frozen=True)
class SourceFile:
    """One record file's bytes, with their md5 (checked against the pin when pinned)."""

    relpath: str
    data: bytes
    md5: str


@dataclass
class DatasetSource:
    """What prepare_data reads, and how MLflow should describe it."""

    digest: str | None
    """The pinned digest; for an unpinned read, filled in once every file was read."""
    source_type: str
    source: dict[str, Any]
    pinned: bool
    files: list[tuple[str, str]] = field(default_factory=list)
    """``(relpath, md5)`` of the files read so far."""


def read_pinned(
    pin: Pin, *, version: str, dataset_type: DatasetType
) -> tuple[DatasetSource, Iterator[SourceFile]]:
    """The pinned version's description and its record files, each checked."""
    if not DIGEST.match(pin.digest):
        raise Refused(f"--dataset-digest {pin.digest!r} is not an md5 followed by '.dir'")
    if pin.store is DatasetStore.DVC:
        manifest_uri = pin.object_uri(pin.digest)
        entries = _dvc_manifest(manifest_uri, pin.digest)
    else:
        if not pin.dataset_id:
            raise Refused("--dataset-store=builtin needs --dataset-id (the catalog dataset id)")
        _path_name(pin.dataset_id, flag="--dataset-id")
        _path_name(version, flag="--dataset-version")
        manifest_uri = storage.join(pin.remote, "versions", pin.dataset_id, f"{version}.json")
        entries = _builtin_manifest(manifest_uri, pin.digest)
    source = DatasetSource(
        digest=pin.digest,
        source_type=pin.store.value,
        source={"remote": pin.remote, "manifest": manifest_uri, "store": pin.store.value},
        pinned=True,
    )
    return source, _pinned_files(pin, entries, dataset_type, source)


def _path_name(value: str, *, flag: str) -> None:
    """One path component of the built-in store's layout (no '/', no '..'): the manifest's
    location is built from it, and must stay inside the store."""
    if not value or value in (".", "..") or any(c in value for c in "/\\\0"):
        raise Refused(f"{flag} {value!r} cannot name a manifest in the built-in store")


def _dvc_manifest(uri: str, digest: str) -> list[tuple[str, str]]:
    data = _fetch(uri, what=f"the manifest of version {digest}")
    if md5_hex(data) != digest.removesuffix(".dir"):
        raise Refused(f"the manifest {uri} does not match its digest {digest}")
    try:
        tree = json.loads(data)
    except json.JSONDecodeError as exc:
        raise Refused(f"the manifest {uri} is not valid JSON: {exc}") from exc
    if not isinstance(tree, list):
        raise Refused(f"the manifest {uri} is not a JSON list")
    entries = []
    for entry in tree:
        if not isinstance(entry, dict):
            raise Refused(f"the manifest {uri} holds an entry that is not an object")
        entries.append(_entry(entry.get("relpath"), entry.get("md5"), where=uri))
    return entries


def _builtin_manifest(uri: str, digest: str) -> list[tuple[str, str]]:
    data = _fetch(uri, what="the built-in store's version manifest")
    try:
        files = json.loads(data)["facts"]["files"]
    except (json.JSONDecodeError, KeyError, TypeError) as exc:
        raise Refused(f"the manifest {uri} is not a built-in version record: {exc}") from exc
    if not isinstance(files, list):
        raise Refused(f"the manifest {uri} has no file list")
    entries = []
    for entry in files:
        if not isinstance(entry, list | tuple) or len(entry) < 2:
            raise Refused(f"the manifest {uri} holds an entry that is not [relpath, md5, size]")
        entries.append(_entry(entry[0], entry[1], where=uri))
    recomputed = dir_digest(entries)
    if recomputed != digest:
        raise Refused(
            f"the manifest {uri} does not match --dataset-digest {digest} (its digest is "
            f"{recomputed})"
        )
    return entries


def _entry(relpath: object, md5: object, *, where: str) -> tuple[str, str]:
    path = check_relpath(relpath, where=where)
    if not isinstance(md5, str) or not MD5.match(md5):
        raise Refused(f"{where}: {path} has no valid md5 in the manifest")
    return path, md5


def _pinned_files(
    pin: Pin, entries: list[tuple[str, str]], dataset_type: DatasetType, source: DatasetSource
) -> Iterator[SourceFile]:
    for relpath, md5 in sorted(entries):
        if not reads(relpath, dataset_type):
            _log.info("ignoring %s: not a record file of a %s dataset", relpath, dataset_type)
            continue
        data = _fetch(pin.object_uri(md5), what=relpath)
        actual = md5_hex(data)
        if actual != md5:
            raise Refused(
                f"{relpath}: content does not match its recorded md5 {md5} (got {actual}): "
                f"the object {pin.object_uri(md5)} was changed"
            )
        source.files.append((relpath, md5))
        yield SourceFile(relpath, data, md5)


def read_unpinned(
    uri: str, *, dataset_type: DatasetType
) -> tuple[DatasetSource, Iterator[SourceFile]]:
    """``uri`` (a directory or one file) as it is now; the digest is computed from what was
    read (DVC's ``.dir`` formula over the record files), once the iterator is exhausted."""
    _log.warning(
        "the dataset content is not pinned: reading %s as it is now (no --dataset-digest)", uri
    )
    source = DatasetSource(digest=None, source_type="uri", source={"uri": uri}, pinned=False)
    return source, _unpinned_files(uri, dataset_type, source)


def _unpinned_files(
    uri: str, dataset_type: DatasetType, source: DatasetSource
) -> Iterator[SourceFile]:
    try:
        listed = storage.list_files(uri)
    except FileNotFoundError as exc:
        raise Refused(f"--dataset-uri {uri}: no such file or directory") from exc
    for relpath, location in listed:
        if IGNORED_DIRS.intersection(relpath.split("/")[:-1]):
            continue
        if not reads(relpath, dataset_type):
            _log.info("ignoring %s: not a record file of a %s dataset", relpath, dataset_type)
            continue
        with storage.open_binary(location) as stream:
            data = stream.read()
        md5 = md5_hex(data)
        source.files.append((relpath, md5))
        yield SourceFile(relpath, data, md5)
    source.digest = dir_digest(source.files)


def _fetch(uri: str, *, what: str) -> bytes:
    try:
        return storage.read_bytes(uri)
    except FileNotFoundError as exc:
        raise Refused(f"{what}: object {uri} not found") from exc
