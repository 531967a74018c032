"""Cluster access of the serving worker: the shared Kubernetes engine with its errors, field
manager and view of the objects, and the removal of an endpoint's objects.

See :mod:`llmops_shared.kube.api` for how failures are classified and
:mod:`llmops_shared.kube.resources` for what every kind gets (server-side apply...).
"""

from __future__ import annotations

import copy
from collections.abc import Awaitable, Callable
from typing import Any, Final

from kubernetes import client

from llmops_serving.owners import created_for
from llmops_serving.ports import Removal, ServingRejected, ServingUnavailable
from llmops_serving.render import names
from llmops_serving.render.rollout import desired_from_live
from llmops_serving.render.status import Observed
from llmops_shared.kube.api import KubeCalls
from llmops_shared.kube.objects import View, items_of
from llmops_shared.kube.resources import Cluster, Deletion, KubeObjects, delete_if
from llmops_shared.logging import get_logger

CALLS: Final = KubeCalls(unavailable=ServingUnavailable, rejected=ServingRejected)
call = CALLS.call


def cluster(api_client: client.ApiClient, request_timeout_s: float) -> Cluster:
    """The serving worker's access to the cluster of ``api_client``."""
    return Cluster(api_client, CALLS, names.FIELD_MANAGER, request_timeout_s)


def view(observe: Callable[[dict[str, Any]], Observed]) -> View[Observed]:
    """How the worker sees its objects of one kind, ``observe`` reading their status."""
    return View(names.MANAGED_SELECTOR, names.ENDPOINT_ID_LABEL, desired_from_live, observe)


def without_move_mark(manifest: dict[str, Any]) -> dict[str, Any]:
    """``manifest`` (an object or a ``List``) without ``llm-ops.io/migrating-from``."""
    out = copy.deepcopy(manifest)
    for item in items_of(out):
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
    """Delete one object (``what``) if this platform created it for ``endpoint_id``, the way
    :func:`~llmops_shared.kube.resources.delete_if` deletes."""
    log = get_logger(__name__)
    removed: dict[str, Any] | None = None

    def ours(obj: dict[str, Any]) -> bool:
        nonlocal removed
        removed = obj
        return created_for(obj, endpoint_id)

    outcome = await delete_if(read, delete, ours, unavailable=ServingUnavailable, what=what)
    if outcome is Deletion.REFUSED:
        assert removed is not None
        labels = (removed.get("metadata") or {}).get("labels") or {}
        log.warning(
            "other_format_left_alone",
            object=what,
            endpoint_id=endpoint_id,
            owner=labels.get(names.ENDPOINT_ID_LABEL),
            managed_by=labels.get(names.MANAGED_BY_LABEL),
        )
        return Removal(left=(what,))
    if outcome is Deletion.DELETED:
        log.info("other_format_removed", object=what, endpoint_id=endpoint_id)
        return Removal(deleted=(what,))
    return Removal()


async def remove_owned_object(
    objects: KubeObjects, namespace: str, name: str, *, endpoint_id: str
) -> Removal:
    """:func:`remove_owned` of one object of ``objects``'s kind."""
    return await remove_owned(
        f"{objects.kind.kind} {namespace}/{name}",
        lambda: objects.get(namespace, name),
        lambda options: objects.delete_with(namespace, name, options),
        endpoint_id=endpoint_id,
    )
