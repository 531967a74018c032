"""The Argo backend: Workflows through the Kubernetes API (CustomObjectsApi).

Submission is server-side apply (``PATCH`` with ``application/apply-patch+yaml``, field manager
``llm-ops-workflow``, ``force=True``): created if missing, unchanged if it exists, in one
idempotent call, so a redelivered ``TrainingJobSubmitted`` finds ``train-<job_id>`` and starts
nothing new. Cancellation is what ``argo terminate`` does: a JSON merge patch of
``spec.shutdown: Terminate`` (under its own field manager, so a later re-apply of the
submission, which does not carry ``shutdown``, cannot remove it).

Submitting through the Argo Server REST API instead (``ARGO_SUBMIT_VIA=argo_server``, the
seed's ``ARGO_WORKFLOWS_CONTROLLER_SERVICE``) is :mod:`.argo_server`; this adapter needs only
the Kubernetes API and the RBAC the cluster already has.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, cast

from kubernetes import client

from llmops_shared.events import Phase
from llmops_workflow.adapters.kube import (
    APPLY_CONTENT_TYPE,
    MERGE_PATCH_CONTENT_TYPE,
    call,
    is_not_found,
    live_objects,
)
from llmops_workflow.ports import Live, Manifest
from llmops_workflow.render import names
from llmops_workflow.render.status import Observed, observe_workflow

_FINISHED_PHASES = frozenset({"Succeeded", "Failed", "Error"})


class ArgoBackend:
    """A :class:`~llmops_workflow.ports.WorkflowBackend` on a cluster with Argo Workflows."""

    def __init__(self, api_client: client.ApiClient, *, request_timeout_s: float = 10.0) -> None:
        self._api = client.CustomObjectsApi(api_client)
        self._timeout = request_timeout_s

    @property
    def name(self) -> str:
        return "argo"

    @property
    def observable(self) -> bool:
        return True

    async def apply(self, manifest: Manifest) -> Observed:
        meta = manifest["metadata"]
        reply = await call(
            f"applying Workflow {meta['namespace']}/{meta['name']}",
            self._api.patch_namespaced_custom_object,
            names.ARGO_GROUP,
            names.ARGO_VERSION,
            meta["namespace"],
            names.WORKFLOW_PLURAL,
            meta["name"],
            manifest,
            field_manager=names.FIELD_MANAGER,
            force=True,
            _content_type=APPLY_CONTENT_TYPE,
            _request_timeout=self._timeout,
        )
        # A create answers 201, which the client returns as None; an existing workflow comes
        # back with its status: a redelivered submission reports what the controller did.
        if isinstance(reply, dict) and (reply.get("status") or {}).get("phase"):
            return observe_workflow(reply)
        return Observed(Phase.PENDING, "submitted; waiting for the Argo controller")

    async def terminate(self, namespace: str, name: str) -> Observed | None:
        try:
            current = await call(
                f"reading Workflow {namespace}/{name}",
                self._api.get_namespaced_custom_object,
                names.ARGO_GROUP,
                names.ARGO_VERSION,
                namespace,
                names.WORKFLOW_PLURAL,
                name,
                absent_ok=True,
                _request_timeout=self._timeout,
            )
        except Exception as exc:
            if is_not_found(exc):
                return None
            raise
        finished = cast(dict[str, Any], current) if isinstance(current, dict) else {}
        if (finished.get("status") or {}).get("phase") in _FINISHED_PHASES:
            # A workflow that already ended keeps its outcome: terminating it would relabel a
            # real failure as a cancellation.
            return observe_workflow(finished)
        try:
            reply = await call(
                f"terminating Workflow {namespace}/{name}",
                self._api.patch_namespaced_custom_object,
                names.ARGO_GROUP,
                names.ARGO_VERSION,
                namespace,
                names.WORKFLOW_PLURAL,
                name,
                {"spec": {"shutdown": "Terminate"}},
                field_manager=names.TERMINATE_MANAGER,
                absent_ok=True,
                _content_type=MERGE_PATCH_CONTENT_TYPE,
                _request_timeout=self._timeout,
            )
        except Exception as exc:
            if is_not_found(exc):
                return None
            raise
        obj = cast(dict[str, Any], reply) if isinstance(reply, dict) else {}
        return observe_workflow(obj)

    async def observe(self, namespaces: Sequence[str]) -> list[Live]:
        found: list[Live] = []
        for namespace in namespaces:
            try:
                listing = await call(
                    f"listing Workflows in {namespace}",
                    self._api.list_namespaced_custom_object,
                    names.ARGO_GROUP,
                    names.ARGO_VERSION,
                    namespace,
                    names.WORKFLOW_PLURAL,
                    label_selector=names.MANAGED_SELECTOR,
                    absent_ok=True,
                    _request_timeout=self._timeout,
                )
            except Exception as exc:
                if is_not_found(exc):
                    continue
                raise
            found += live_objects(
                cast(dict[str, Any], listing),
                namespace=namespace,
                api_version=names.ARGO_API_VERSION,
                kind="Workflow",
                observe=observe_workflow,
            )
        return found

    async def ping(self) -> None:
        """The API answers and the Workflow resource exists (a cheap list)."""
        await call(
            "checking readiness",
            self._api.list_cluster_custom_object,
            names.ARGO_GROUP,
            names.ARGO_VERSION,
            names.WORKFLOW_PLURAL,
            limit=1,
            _request_timeout=self._timeout,
        )
