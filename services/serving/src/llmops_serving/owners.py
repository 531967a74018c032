"""Whose an object is (pure): this platform's, and for which endpoint.

An object is an endpoint's when it carries the labels the renderers write
(``app.kubernetes.io/managed-by=llm-ops`` and ``llm-ops.io/endpoint-id``). Deploys, deletes
and moves between formats take over, or remove, nothing else. Each function takes an object or
a manifest (a ``List`` is described by its first object).
"""

from __future__ import annotations

from typing import Any

from llmops_serving.render import names
from llmops_shared.kube.objects import Manifest, label


def owner_of(manifest: Manifest) -> str | None:
    """The endpoint id an object is labelled with."""
    return label(manifest, names.ENDPOINT_ID_LABEL)


def created_for(manifest: Manifest, endpoint_id: str) -> bool:
    """Whether this platform created the object for ``endpoint_id``."""
    return (
        label(manifest, names.MANAGED_BY_LABEL) == names.MANAGED_BY
        and owner_of(manifest) == endpoint_id
    )


def foreign(obj: dict[str, Any], endpoint_id: str) -> str | None:
    """Why ``obj`` is not this platform's object for ``endpoint_id`` (``None`` when it is)."""
    if created_for(obj, endpoint_id):
        return None
    meta = obj.get("metadata") or {}
    labels = meta.get("labels") or {}
    owners = [
        f"{ref.get('kind')} {ref.get('name')}"
        for ref in meta.get("ownerReferences") or []
        if isinstance(ref, dict)
    ]
    if owners:
        return "owned by " + ", ".join(owners)
    if labels.get(names.MANAGED_BY_LABEL) != names.MANAGED_BY:
        return f"no {names.MANAGED_BY_LABEL}={names.MANAGED_BY} label"
    return f"belongs to endpoint {labels.get(names.ENDPOINT_ID_LABEL)}"


def owned_by(obj: dict[str, Any], owner: dict[str, Any] | None) -> bool:
    """Whether ``obj`` has an ownerReference to ``owner`` (same uid): it is garbage-collected
    once ``owner`` is deleted."""
    if owner is None:
        return False
    uid = (owner.get("metadata") or {}).get("uid")
    refs = (obj.get("metadata") or {}).get("ownerReferences") or []
    return uid is not None and any(isinstance(r, dict) and r.get("uid") == uid for r in refs)
