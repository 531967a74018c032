"""Kubernetes objects as plain dicts, the way the workers look at them (pure: no client).

A worker renders a manifest (one object, or a ``v1 List`` of them), applies it, and reads it
back: :func:`desired_from_live` keeps of a live object what the worker applied (identity, its
own labels and annotations, the spec), so what it reports is what it rendered; a :class:`View`
turns the objects a list answer holds into :class:`Live` ones, what a watcher reports.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

Manifest = dict[str, Any]
"""A rendered object, or a ``v1 List`` of them."""

T = TypeVar("T")


@dataclass(frozen=True)
class Kind:
    """A kind of object as manifests name it."""

    api_version: str
    kind: str

    @property
    def group(self) -> str:
        """The API group of ``api_version`` (``""`` for the core group's ``v1``)."""
        return self.api_version.rpartition("/")[0]

    @property
    def version(self) -> str:
        """The version of ``api_version`` within its group."""
        return self.api_version.rpartition("/")[2]

    def fill(self, obj: dict[str, Any]) -> dict[str, Any]:
        """``obj`` with its ``apiVersion`` and ``kind`` (the items of a list answer come without
        them), so that a manifest reported from it is a complete object."""
        obj.setdefault("apiVersion", self.api_version)
        obj.setdefault("kind", self.kind)
        return obj


@dataclass(frozen=True)
class Live(Generic[T]):
    """One object a worker manages (or the group of objects of one pipeline), as it is now."""

    name: str
    namespace: str
    owner: str | None
    """The endpoint or job it was created for (its owner label), when it has one."""
    manifest: Manifest
    observed: T


def items_of(manifest: Manifest) -> list[Manifest]:
    """The objects of a manifest (themselves, not copies): the items of a ``List``, else the
    manifest itself."""
    if manifest.get("kind") == "List":
        return list(manifest.get("items") or [])
    return [manifest]


def primary(manifest: Manifest) -> Manifest:
    """The object that describes a manifest: the first item of a ``List``, else itself."""
    if manifest.get("kind") == "List":
        items: list[Manifest] = manifest.get("items") or [{}]
        return items[0]
    return manifest


def label(manifest: Manifest, key: str) -> str | None:
    """A label of the manifest's :func:`primary` object (``None`` when absent or empty)."""
    value = ((primary(manifest).get("metadata") or {}).get("labels") or {}).get(key)
    return str(value) if value else None


def annotation(manifest: Manifest, key: str) -> str | None:
    """An annotation of the manifest's :func:`primary` object (``None`` when absent or
    empty)."""
    value = ((primary(manifest).get("metadata") or {}).get("annotations") or {}).get(key)
    return str(value) if value else None


def desired_from_live(obj: Mapping[str, Any], ours: Callable[[str], bool]) -> Manifest:
    """The part of a live object the worker applies: identity, the labels and annotations whose
    keys are ``ours``, and the spec; never status, managedFields, resourceVersion or the labels
    others added (re-applying those would take their ownership)."""
    metadata = obj.get("metadata") or {}
    desired: Manifest = {
        "apiVersion": obj.get("apiVersion"),
        "kind": obj.get("kind"),
        "metadata": {
            "name": metadata.get("name"),
            "namespace": metadata.get("namespace"),
            "labels": {k: v for k, v in (metadata.get("labels") or {}).items() if ours(k)},
            "annotations": {
                k: v for k, v in (metadata.get("annotations") or {}).items() if ours(k)
            },
        },
    }
    if "spec" in obj:
        desired["spec"] = copy.deepcopy(obj["spec"])
    return desired


@dataclass(frozen=True)
class View(Generic[T]):
    """How a worker sees the objects of one kind: it lists those matching ``selector``, an
    object belongs to the value of its ``owner_label``, ``desired`` keeps what was applied and
    ``observe`` reads the status."""

    selector: str
    owner_label: str
    desired: Callable[[dict[str, Any]], Manifest]
    observe: Callable[[dict[str, Any]], T]

    def live(self, obj: dict[str, Any], namespace: str = "") -> Live[T]:
        """``obj`` (complete: see :meth:`Kind.fill`) as a watcher reports it; ``namespace``
        where the object does not say."""
        meta = obj.get("metadata") or {}
        return Live(
            name=str(meta.get("name")),
            namespace=str(meta.get("namespace") or namespace),
            owner=(meta.get("labels") or {}).get(self.owner_label),
            manifest=self.desired(obj),
            observed=self.observe(obj),
        )
