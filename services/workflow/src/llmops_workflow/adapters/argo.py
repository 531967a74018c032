"""The Argo backend: Workflows through the Kubernetes API (CustomObjectsApi).

Submission is server-side apply under the field manager ``llm-ops-workflow``
(:mod:`llmops_shared.kube.resources`): created if missing, unchanged if it exists, in one
idempotent call, so a redelivered ``TrainingJobSubmitted`` finds ``train-<job_id>`` and starts
nothing new. Cancellation is what ``argo terminate`` does: a JSON merge patch of
``spec.shutdown: Terminate`` (under its own field manager, so a later re-apply of the
submission, which does not carry ``shutdown``, cannot remove it).

Submitting through the Argo Server REST API instead (``ARGO_SUBMIT_VIA=argo_server``, the
integration quickstart's ``ARGO_WORKFLOWS_CONTROLLER_SERVICE``) is :mod:`.argo_server`; this adapter
needs only the Kubernetes API and the RBAC the cluster already has.
"""

from __future__ import annotations

from collections.abc import Sequence

from kubernetes import client

from llmops_shared.events import Phase
from llmops_shared.kube.custom import CustomObjects
from llmops_workflow.adapters.kinds import ARGO_WORKFLOWS
from llmops_workflow.adapters.kube import cluster
from llmops_workflow.adapters.objects import WORKFLOWS
from llmops_workflow.ports import Live, Manifest
from llmops_workflow.render import names
from llmops_workflow.render.status import Observed, observe_workflow

_FINISHED_PHASES = frozenset({"Succeeded", "Failed", "Error"})


class ArgoBackend:
    """A :class:`~llmops_workflow.ports.WorkflowBackend` on a cluster with Argo Workflows."""

    name = "argo"
    observable = True

    def __init__(self, api_client: client.ApiClient, *, request_timeout_s: float = 10.0) -> None:
        self._workflows = cluster(api_client, request_timeout_s).objects(
            CustomObjects(api_client, ARGO_WORKFLOWS)
        )

    async def apply(self, manifest: Manifest) -> Observed:
        reply = await self._workflows.apply(manifest)
        # A create answers 201, which the client returns as None; an existing workflow comes
        # back with its status: a redelivered submission reports what the controller did.
        if isinstance(reply, dict) and (reply.get("status") or {}).get("phase"):
            return observe_workflow(reply)
        return Observed(Phase.PENDING, "submitted; waiting for the Argo controller")

    async def terminate(self, namespace: str, name: str) -> Observed | None:
        current = await self._workflows.get(namespace, name)
        if current is None:
            return None
        if (current.get("status") or {}).get("phase") in _FINISHED_PHASES:
            # A workflow that already ended keeps its outcome: terminating it would relabel a
            # real failure as a cancellation.
            return observe_workflow(current)
        stopped = await self._workflows.merge_patch(
            namespace,
            name,
            {"spec": {"shutdown": "Terminate"}},
            doing="terminating",
            field_manager=names.TERMINATE_MANAGER,
            absent_ok=True,
        )
        return observe_workflow(stopped) if stopped is not None else None

    async def observe(self, namespaces: Sequence[str]) -> list[Live]:
        return await self._workflows.observe(namespaces, WORKFLOWS)

    async def ping(self) -> None:
        """The API answers and the Workflow resource exists (a cheap list)."""
        await self._workflows.ping()
