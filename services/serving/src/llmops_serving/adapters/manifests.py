"""The manifests backend: validated YAML files, ``<dir>/<namespace>/<name>.yaml``.

The local stack's default (no cluster needed) and a GitOps mode: point ``MANIFESTS_DIR`` at a
repository checkout that Argo CD or Flux syncs. Files are written atomically (a temporary file
in the same directory, fsync, rename), so a reader never sees half a manifest and a crash
leaves the old file; a file system error (full, read-only, permissions) is an outage of this
backend, not the event's fault, so it waits like a cluster outage. Re-writing identical
content is skipped, so redeliveries do not touch the file's mtime (a GitOps diff stays empty).

An endpoint moved to the other format (``DeploymentMigrationRequested``) gets its file replaced
by the other format's objects in one atomic write: nothing else is left to remove.

Nothing observes the cluster here: after a write the endpoint is reported ``Ready`` with the
reason "written to <path>", because no later event would ever move it out of ``Pending``.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml

from llmops_serving.config import RenderFormat
from llmops_serving.ports import (
    Live,
    Manifest,
    Removal,
    ServingBackend,
    ServingRejected,
    ServingUnavailable,
)
from llmops_serving.render.names import ENDPOINT_ID_LABEL
from llmops_serving.render.status import Observed
from llmops_shared.events import Phase
from llmops_shared.manifest_files import (
    ManifestLayoutError,
    dump_documents,
    load_documents,
    manifest_objects,
    write_atomically,
)


def check_manifest(manifest: Manifest) -> list[dict[str, Any]]:
    """The objects of ``manifest``; a layout no file can hold is a rejection."""
    try:
        return manifest_objects(manifest)
    except ManifestLayoutError as exc:
        raise ServingRejected(str(exc)) from exc


class ManifestsBackend:
    """A :class:`~llmops_serving.ports.ServingBackend` writing files under ``root``."""

    def __init__(self, root: Path) -> None:
        self._root = root

    @property
    def name(self) -> str:
        return "manifests"

    @property
    def observable(self) -> bool:
        return False

    def path_of(self, namespace: str, name: str) -> Path:
        """Where an endpoint's manifest lives."""
        return self._root / namespace / f"{name}.yaml"

    async def apply(self, manifest: Manifest) -> Observed:
        items = check_manifest(manifest)
        meta = items[0]["metadata"]
        path = self.path_of(meta["namespace"], meta["name"])
        await asyncio.to_thread(_write_atomically, path, dump_documents(items))
        return Observed(Phase.READY, f"written to {path}")

    async def read(self, namespace: str, name: str) -> Manifest | None:
        path = self.path_of(namespace, name)
        try:
            text = await asyncio.to_thread(path.read_text, encoding="utf-8")
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise ServingUnavailable(f"cannot read {path}: {exc}") from exc
        try:
            items = load_documents(text)
        except yaml.YAMLError as exc:
            raise ServingRejected(f"{path} is not valid YAML: {exc}") from exc
        if len(items) == 1:
            return items[0]
        return {"apiVersion": "v1", "kind": "List", "items": items}

    async def delete(self, namespace: str, name: str) -> bool:
        path = self.path_of(namespace, name)
        try:
            await asyncio.to_thread(path.unlink, missing_ok=True)
        except OSError as exc:
            raise ServingUnavailable(f"cannot delete {path}: {exc}") from exc
        return True

    async def observe(self, namespaces: Sequence[str]) -> list[Live]:
        return []

    def for_format(self, target: RenderFormat) -> ServingBackend:
        """Either format goes into the endpoint's one file."""
        return self

    async def remove_other_format(
        self, namespace: str, name: str, *, keep: RenderFormat, endpoint_id: str
    ) -> Removal:
        """Nothing: ``apply`` of the other format replaced the endpoint's file already."""
        return Removal()

    async def status(self, namespace: str, name: str) -> Live | None:
        manifest = await self.read(namespace, name)
        if manifest is None:
            return None
        first = (manifest.get("items") or [{}])[0] if manifest.get("kind") == "List" else manifest
        labels = (first.get("metadata") or {}).get("labels") or {}
        return Live(
            name=name,
            namespace=namespace,
            endpoint_id=labels.get(ENDPOINT_ID_LABEL),
            manifest=manifest,
            observed=Observed(Phase.READY, f"written to {self.path_of(namespace, name)}"),
        )

    async def conflicts(self, namespace: str, name: str, *, endpoint_id: str) -> tuple[str, ...]:
        """Nothing: the endpoint's file is the platform's."""
        return ()

    async def complete(
        self, manifest: Manifest, *, endpoint_id: str
    ) -> tuple[Manifest, str | None]:
        """Nothing: a move between formats is one write here."""
        return manifest, None

    async def ping(self) -> None:
        """Ready when the directory exists (or can be made) and is writable."""
        await asyncio.to_thread(self._root.mkdir, parents=True, exist_ok=True)
        if not os.access(self._root, os.W_OK):
            raise PermissionError(f"{self._root} is not writable")


def _write_atomically(path: Path, text: str) -> None:
    try:
        write_atomically(path, text)
    except OSError as exc:
        raise ServingUnavailable(f"cannot write {path}: {exc}") from exc
