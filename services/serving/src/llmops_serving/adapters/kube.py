"""Cluster access of the serving worker: the shared Kubernetes helpers, with its own errors.

See :mod:`llmops_shared.adapters.kube` for how failures are classified.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Final

from llmops_serving.ports import Live, ServingRejected, ServingUnavailable
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

__all__ = [
    "NOT_FOUND",
    "api_client_from_config",
    "api_message",
    "call",
    "is_not_found",
    "translate",
]

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
