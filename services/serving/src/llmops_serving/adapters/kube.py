"""Cluster access of the serving worker: the shared Kubernetes helpers, with its own errors.

See :mod:`llmops_shared.adapters.kube` for how failures are classified.
"""

from __future__ import annotations

import copy
from collections.abc import Awaitable, Callable
from typing import Any, Final

from kubernetes import client
from kubernetes.client.exceptions import ApiException

from llmops_serving.ports import Live, Removal, ServingRejected, ServingUnavailable
from llmops_serving.render import names
from llmops_serving.render.rollout import desired_from_live
from llmops_serving.render.status import Observed
from llmops_shared.adapters.kube import (
    NOT_FOUND,
    KubeCalls,
    api_client_from_config,
    api_message,
    is_not_found,
)
from llmops_shared.logging import get_logger

__all__ = [
    "NOT_FOUND",
    "api_client_from_config",
    "api_message",
    "call",
    "is_not_found",
    "translate",
]

CONFLICT: Final = 409
REMOVE_ATTEMPTS: Final = 3

_CALLS: Final = KubeCalls(unavailable=ServingUnavailable, rejected=ServingRejected)
call = _CALLS.call
translate = _CALLS.translate


def live_objects(
    listing: dict[str, Any],
    *,
    namespace: str,
    api_version: str,
    kind: str,
    observe: Callable[[dict[str, Any]], Observed],
) -> list[Live]:
    """The managed objects of one namespace's list answer, as the watcher sees them.

    List items come without ``apiVersion``/``kind``; they are filled in so that the manifest
    reported to the gateway is a complete object.
    """
    found = []
    for obj in listing.get("items") or []:
        obj.setdefault("apiVersion", api_version)
        obj.setdefault("kind", kind)
        meta = obj.get("metadata") or {}
        found.append(
            Live(
                name=str(meta.get("name")),
                namespace=str(meta.get("namespace") or namespace),
                endpoint_id=(meta.get("labels") or {}).get(names.ENDPOINT_ID_LABEL),
                manifest=desired_from_live(obj),
                observed=observe(obj),
            )
        )
    return found


def created_for(obj: dict[str, Any], endpoint_id: str) -> bool:
    """Whether this platform created ``obj`` for ``endpoint_id``: the labels the renderers write
    (``app.kubernetes.io/managed-by=llm-ops`` and ``llm-ops.io/endpoint-id``)."""
    labels = (obj.get("metadata") or {}).get("labels") or {}
    return (
        labels.get(names.MANAGED_BY_LABEL) == names.MANAGED_BY
        and labels.get(names.ENDPOINT_ID_LABEL) == endpoint_id
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


def without_migration_mark(manifest: dict[str, Any]) -> dict[str, Any]:
    """``manifest`` (an object or a ``List``) without ``llm-ops.io/migrating-from``."""
    out = copy.deepcopy(manifest)
    items = (out.get("items") or []) if out.get("kind") == "List" else [out]
    for item in items:
        annotations = (item.get("metadata") or {}).get("annotations") or {}
        annotations.pop(names.MIGRATING_FROM_ANNOTATION, None)
    return out


async def remove_owned(
    what: str,
    read: Callable[[], Awaitable[dict[str, Any] | None]],
    delete: Callable[[client.V1DeleteOptions], Awaitable[object]],
    *,
    endpoint_id: str,
) -> Removal:
    """Delete one object if this platform created it for ``endpoint_id``.

    The delete carries the uid that was checked as a precondition, so an object replaced
    between the check and the delete (by someone else, under the same name) is never deleted:
    the API answers 409 and the new object is checked again. Gone (404) counts as removed
    already, and an object already being deleted (``deletionTimestamp``, finalizers running) is
    not deleted twice.
    """
    log = get_logger(__name__)
    for _ in range(REMOVE_ATTEMPTS):
        obj = await read()
        if obj is None:
            return Removal()
        meta = obj.get("metadata") or {}
        if not created_for(obj, endpoint_id):
            log.warning(
                "other_format_left_alone",
                object=what,
                endpoint_id=endpoint_id,
                owner=(meta.get("labels") or {}).get(names.ENDPOINT_ID_LABEL),
                managed_by=(meta.get("labels") or {}).get(names.MANAGED_BY_LABEL),
            )
            return Removal(left=(what,))
        if meta.get("deletionTimestamp"):
            return Removal()
        options = client.V1DeleteOptions(preconditions=client.V1Preconditions(uid=meta.get("uid")))
        try:
            await delete(options)
        except ServingRejected as exc:
            cause = exc.__cause__
            if isinstance(cause, ApiException) and cause.status == CONFLICT:
                continue  # replaced since it was read: look again
            raise
        except ApiException as exc:
            if is_not_found(exc):
                return Removal()
            raise
        log.info("other_format_removed", object=what, endpoint_id=endpoint_id)
        return Removal(deleted=(what,))
    raise ServingUnavailable(f"{what} kept changing while being removed; retrying later")
