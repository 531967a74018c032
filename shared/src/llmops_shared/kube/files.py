"""The manifests backends' files: validated YAML under ``<root>/<namespace>/<name>.yaml``.

The local stack's default (no cluster needed) and a GitOps mode: point ``MANIFESTS_DIR`` at a
repository checkout that Argo CD or Flux syncs. Files are written atomically (a temporary file
in the same directory, fsync, rename), so a reader never sees half a manifest and a crash
leaves the old file; a file system error (full, read-only, permissions) is an outage of the
backend, not the event's fault, so it waits like a cluster outage (the worker's *unavailable*
error). Re-writing identical content is skipped, so redeliveries do not touch the file's mtime
(a GitOps diff stays empty). A manifest no file can hold, or a file that is not YAML, is the
worker's *rejected* error.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Generic, TypeVar

import yaml

from llmops_shared.kube.objects import Live, Manifest
from llmops_shared.manifest_files import (
    ManifestLayoutError,
    dump_documents,
    load_documents,
    manifest_objects,
    write_atomically,
)

T = TypeVar("T")


class ManifestFiles:
    """One file per object (or pipeline) under ``root``, with one worker's two errors."""

    def __init__(
        self,
        root: Path,
        *,
        unavailable: Callable[[str], Exception],
        rejected: Callable[[str], Exception],
    ) -> None:
        self.root = root
        self._unavailable = unavailable
        self._rejected = rejected

    def path_of(self, namespace: str, name: str) -> Path:
        """Where the manifest of ``namespace/name`` lives."""
        return self.root / namespace / f"{name}.yaml"

    def objects(self, manifest: Manifest) -> list[dict[str, Any]]:
        """The objects of ``manifest``; a layout no file can hold is a rejection."""
        try:
            return manifest_objects(manifest)
        except ManifestLayoutError as exc:
            raise self._rejected(str(exc)) from exc

    async def write(self, path: Path, objects: list[dict[str, Any]]) -> None:
        """Replace ``path`` with ``objects`` (unchanged content is not rewritten)."""
        await asyncio.to_thread(self._write, path, dump_documents(objects))

    async def read(self, path: Path) -> list[dict[str, Any]] | None:
        """The objects in ``path``, or ``None`` when there is no such file."""
        try:
            text = await asyncio.to_thread(path.read_text, encoding="utf-8")
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise self._unavailable(f"cannot read {path}: {exc}") from exc
        try:
            return load_documents(text)
        except yaml.YAMLError as exc:
            raise self._rejected(f"{path} is not valid YAML: {exc}") from exc

    async def delete(self, path: Path) -> None:
        """Remove ``path`` (a missing file counts as removed)."""
        try:
            await asyncio.to_thread(path.unlink, missing_ok=True)
        except OSError as exc:
            raise self._unavailable(f"cannot delete {path}: {exc}") from exc

    async def ping(self) -> None:
        """Ready when the directory exists (or can be made) and is writable."""
        await asyncio.to_thread(self.root.mkdir, parents=True, exist_ok=True)
        if not os.access(self.root, os.W_OK):
            raise PermissionError(f"{self.root} is not writable")

    def _write(self, path: Path, text: str) -> None:
        try:
            write_atomically(path, text)
        except OSError as exc:
            raise self._unavailable(f"cannot write {path}: {exc}") from exc


class FilesBackend(Generic[T]):
    """The part of a worker's manifests backend that is the same for every worker: its name,
    nothing to observe (no cluster: no watcher), and readiness (a writable directory)."""

    name = "manifests"
    observable = False

    def __init__(
        self,
        root: Path,
        *,
        unavailable: Callable[[str], Exception],
        rejected: Callable[[str], Exception],
    ) -> None:
        self.files = ManifestFiles(root, unavailable=unavailable, rejected=rejected)

    def path_of(self, namespace: str, name: str) -> Path:
        """Where the manifest of ``namespace/name`` lives."""
        return self.files.path_of(namespace, name)

    async def observe(self, namespaces: Sequence[str]) -> list[Live[T]]:
        return []

    async def ping(self) -> None:
        """Ready when the directory exists (or can be made) and is writable."""
        await self.files.ping()
