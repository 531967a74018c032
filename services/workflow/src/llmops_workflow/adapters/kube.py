"""Cluster access of the workflow worker: the shared Kubernetes helpers, with its own errors.

See :mod:`llmops_shared.adapters.kube` for how failures are classified.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Final

from llmops_shared.adapters.kube import (
    NOT_FOUND,
    KubeCalls,
    api_client_from_config,
    api_message,
    is_not_found,
)
from llmops_workflow.ports import Live, WorkflowRejected, WorkflowUnavailable
from llmops_workflow.render import names
from llmops_workflow.render.status import Observed

__all__ = [
    "NOT_FOUND",
    "api_client_from_config",
    "api_message",
    "call",
    "is_not_found",
    "translate",
]

_CALLS: Final = KubeCalls(unavailable=WorkflowUnavailable, rejected=WorkflowRejected)
call = _CALLS.call
translate = _CALLS.translate

APPLY_CONTENT_TYPE: Final = "application/apply-patch+yaml"
MERGE_PATCH_CONTENT_TYPE: Final = "application/merge-patch+json"


def desired_from_live(obj: dict[str, Any]) -> dict[str, Any]:
    """The applied part of a live object: identity, our labels and annotations, spec.

    Status, managedFields, resourceVersion and labels others added (Argo adds
    ``workflows.argoproj.io/*``) are dropped, so the manifest reported to the gateway is the
    one this worker rendered (plus ``spec.shutdown`` when it was terminated).
    """
    meta = obj.get("metadata") or {}

    def ours(values: dict[str, str] | None) -> dict[str, str]:
        return {
            k: v
            for k, v in (values or {}).items()
            if k.startswith(names.PREFIX) or k.startswith("app.kubernetes.io/")
        }

    out: dict[str, Any] = {
        "apiVersion": obj.get("apiVersion"),
        "kind": obj.get("kind"),
        "metadata": {
            "name": meta.get("name"),
            "namespace": meta.get("namespace"),
            "labels": ours(meta.get("labels")),
            "annotations": ours(meta.get("annotations")),
        },
    }
    if "spec" in obj:
        out["spec"] = obj["spec"]
    return out


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
                job_id=(meta.get("labels") or {}).get(names.JOB_ID_LABEL),
                manifest=desired_from_live(obj),
                observed=observe(obj),
            )
        )
    return found
