"""The built-in backend: one ``batch/v1`` Job per stage, no Argo (see render/jobs.py).

Jobs are *created* (``POST``; 409 AlreadyExists counts as done), not server-side applied: a
Job's pod template is immutable, and a re-apply would also put back ``suspend: true`` on a
stage the sequencer has already resumed. A redelivered submission therefore changes nothing
and reports what it observes.

The watcher's list round is also the sequencer: :meth:`JobBackend.observe` resumes
(``suspend: false``) the next stage once the previous one has succeeded. Cancellation
suspends every Job (Kubernetes deletes the active pods of a suspended Job) and marks them
``llm-ops.io/cancelled``.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from typing import Any

from kubernetes import client

from llmops_shared.events import Phase
from llmops_shared.kube.objects import items_of
from llmops_workflow.adapters.kinds import Jobs
from llmops_workflow.adapters.kube import cluster
from llmops_workflow.adapters.objects import desired_from_live
from llmops_workflow.ports import Live, Manifest
from llmops_workflow.render import names
from llmops_workflow.render.status import (
    CANCELLED_ANNOTATION,
    Observed,
    next_stage_to_resume,
    observe_jobs,
    sort_stages,
)


class JobBackend:
    """A :class:`~llmops_workflow.ports.WorkflowBackend` of plain Jobs, one per stage."""

    name = "job"
    observable = True

    def __init__(self, api_client: client.ApiClient, *, request_timeout_s: float = 10.0) -> None:
        self._jobs = cluster(api_client, request_timeout_s).objects(Jobs(api_client))

    async def apply(self, manifest: Manifest) -> Observed:
        items = items_of(manifest)
        created = 0
        namespace = ""
        job_id = ""
        for item in items:
            meta = item["metadata"]
            namespace = meta["namespace"]
            job_id = meta["labels"][names.JOB_ID_LABEL]
            created += await self._jobs.create(item)
        if created == len(items):
            return Observed(Phase.PENDING, "submitted; the first stage's Job is runnable")
        return observe_jobs(await self._of(namespace, job_id))

    async def terminate(self, namespace: str, name: str) -> Observed | None:
        job_id = name.removeprefix("train-")
        jobs = await self._of(namespace, job_id)
        if not jobs:
            return None
        current = observe_jobs(jobs)
        if current.phase in (Phase.SUCCEEDED, Phase.FAILED):
            return current  # it already ended: a real failure stays a failure
        patch = {
            "metadata": {"annotations": {CANCELLED_ANNOTATION: "true"}},
            "spec": {"suspend": True},
        }
        for job in jobs:
            await self._jobs.merge_patch(
                namespace,
                job["metadata"]["name"],
                patch,
                doing="suspending",
                field_manager=names.TERMINATE_MANAGER,
            )
        return observe_jobs(await self._of(namespace, job_id))

    async def observe(self, namespaces: Sequence[str]) -> list[Live]:
        found: list[Live] = []
        for namespace in namespaces:
            groups: dict[str, list[dict[str, Any]]] = defaultdict(list)
            for job in await self._jobs.select(namespace, names.MANAGED_SELECTOR):
                job_id = (job["metadata"].get("labels") or {}).get(names.JOB_ID_LABEL)
                if job_id:
                    groups[job_id].append(job)
            for job_id, jobs in sorted(groups.items()):
                resume = next_stage_to_resume(jobs)
                if resume is not None:
                    await self._jobs.merge_patch(
                        namespace, resume, {"spec": {"suspend": False}}, doing="resuming"
                    )
                    jobs = await self._of(namespace, job_id)
                items = [desired_from_live(j) for j in sort_stages(jobs)]
                found.append(
                    Live(
                        name=names.workflow_name(job_id),
                        namespace=namespace,
                        owner=job_id,
                        manifest={"apiVersion": "v1", "kind": "List", "items": items},
                        observed=observe_jobs(jobs),
                    )
                )
        return found

    async def ping(self) -> None:
        await self._jobs.ping()

    async def _of(self, namespace: str, job_id: str) -> list[dict[str, Any]]:
        """The stage Jobs of one job."""
        return await self._jobs.select(namespace, f"{names.JOB_ID_LABEL}={job_id}")
