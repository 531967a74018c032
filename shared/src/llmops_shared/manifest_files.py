"""Kubernetes manifests as files: deterministic YAML and atomic, change-only writes.

The serving and workflow workers both render manifests for golden tests and write them for
their ``manifests`` backends (the local default and a GitOps mode). Sorted keys, block style and
no aliases make golden files and GitOps diffs change only when the manifest does; a write goes
to a temporary file that replaces the target, so a crash never leaves half a manifest, and
identical content is not rewritten, so redeliveries leave the file's mtime alone.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml


class _NoAliases(yaml.SafeDumper):
    """The same label dict appears in several places; YAML anchors would hide that."""

    def ignore_aliases(self, data: Any) -> bool:
        return True


def dump_yaml(obj: Mapping[str, Any]) -> str:
    """One manifest as YAML with sorted keys."""
    return yaml.dump(dict(obj), Dumper=_NoAliases, sort_keys=True, default_flow_style=False)


def dump_documents(objs: Sequence[Mapping[str, Any]]) -> str:
    """Several manifests as one multi-document YAML stream (``kubectl apply -f`` reads it)."""
    return "---\n".join(dump_yaml(o) for o in objs)


def load_documents(text: str) -> list[dict[str, Any]]:
    """The manifests of a (multi-document) YAML stream; empty documents are skipped."""
    return [doc for doc in yaml.safe_load_all(text) if doc]


def write_atomically(path: Path, text: str) -> bool:
    """Replace ``path`` with ``text`` atomically; False when it already held exactly that.

    Raises ``OSError`` (full disk, read-only, permissions): callers decide what that means.
    """
    if path.exists() and path.read_text(encoding="utf-8") == text:
        return False
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return True


class ManifestLayoutError(ValueError):
    """A manifest that cannot be a file of Kubernetes objects (services map it to a rejection)."""


def manifest_objects(manifest: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The objects of ``manifest`` (one object or a ``List``) after the checks every file needs.

    Schema validation of the content is the renderers' job (and the tests'); this guards the
    file layout: identity present, a namespace and name for the file's path, and a YAML round
    trip that gives the same data back.
    """
    items = manifest.get("items") if manifest.get("kind") == "List" else [manifest]
    if not items:
        raise ManifestLayoutError("empty manifest")
    for item in items:
        meta = item.get("metadata") or {}
        missing = [k for k in ("apiVersion", "kind") if not item.get(k)]
        missing += [f"metadata.{k}" for k in ("name", "namespace") if not meta.get(k)]
        if missing:
            raise ManifestLayoutError(f"manifest lacks {', '.join(missing)}")
    if load_documents(dump_documents(items)) != items:
        raise ManifestLayoutError("manifest does not survive a YAML round trip")
    return [dict(item) for item in items]
