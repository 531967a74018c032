"""Manifests: the ``(relpath, md5, size)`` triples a version reports, and their digest.

The digest is DVC's own ``.dir`` hash: the md5 of the JSON list of ``{"md5", "relpath"}``
objects sorted by path (``json.dumps(..., sort_keys=True)``, DVC's ``Tree.as_bytes``) plus the
``.dir`` suffix. The built-in backend computes it the same way, so one dataset content has one
digest whichever backend recorded it, and the DVC backend checks its manifest against the
``.dir`` object DVC wrote.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Sequence
from typing import BinaryIO

from llmops_shared.events.payloads.datasets import ManifestEntry

CHUNK_SIZE = 1 << 20
IGNORED_DIRS = frozenset({".git", ".dvc", ".hg"})
"""Directory names never versioned (DVC ignores them in any tracked directory too)."""


def new_md5() -> hashlib._Hash:
    """An md5 for content addressing, not security."""
    return hashlib.md5(usedforsecurity=False)


def sorted_manifest(entries: Iterable[ManifestEntry]) -> list[ManifestEntry]:
    """The entries sorted by path, as reports carry them."""
    return sorted(entries, key=lambda entry: entry[0])


def dir_digest(entries: Sequence[ManifestEntry]) -> str:
    """DVC's ``.dir`` hash of a manifest (``<md5>.dir``)."""
    tree = [{"md5": md5, "relpath": path} for path, md5, _ in sorted_manifest(entries)]
    data = json.dumps(tree, sort_keys=True).encode("utf-8")
    return new_md5_of(data) + ".dir"


def new_md5_of(data: bytes) -> str:
    """md5 hex of ``data``."""
    digest = new_md5()
    digest.update(data)
    return digest.hexdigest()


def copy_hashing(source: BinaryIO, target: BinaryIO) -> tuple[str, int]:
    """Stream ``source`` into ``target`` chunk by chunk; the content's md5 and size."""
    digest = new_md5()
    size = 0
    while chunk := source.read(CHUNK_SIZE):
        digest.update(chunk)
        target.write(chunk)
        size += len(chunk)
    return digest.hexdigest(), size


def hash_stream(source: BinaryIO) -> tuple[str, int]:
    """md5 and size of a stream, read chunk by chunk."""
    digest = new_md5()
    size = 0
    while chunk := source.read(CHUNK_SIZE):
        digest.update(chunk)
        size += len(chunk)
    return digest.hexdigest(), size


def one_line(text: str, limit: int = 1500) -> str:
    """``text`` on one line, bounded (a status reason allows 2,000 characters)."""
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 3] + "..."
