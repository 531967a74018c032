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
from typing import Any, cast

from kubernetes import client
from kubernetes.client.exceptions import ApiException

from llmops_shared.events import Phase
from llmops_workflow.adapters.kube import call, desired_from_live, is_not_found
from llmops_workflow.ports import Live, Manifest, WorkflowRejected
from llmops_workflow.render import names
from llmops_workflow.render.status import (
    CANCELLED_ANNOTATION,
    Observed,
    next_stage_to_resume,
    observe_jobs,
    sort_stages,
)

CONFLICT = 409


class JobBackend:
    """A :class:`~llmops_workflow.ports.WorkflowBackend` of plain Jobs, one per stage."""

    def __init__(self, api_client: client.ApiClient, *, request_timeout_s: float = 10.0) -> None:
        self._client = api_client
        self._batch = client.BatchV1Api(api_client)
        self._timeout = request_timeout_s

    @property
    def name(self) -> str:
        return "job"

    @property
    def observable(self) -> bool:
        return True

    async def apply(self, manifest: Manifest) -> Observed:
        items = manifest.get("items") if manifest.get("kind") == "List" else [manifest]
        created = 0
        namespace = ""
        job_id = ""
        for item in items or []:
            meta = item["metadata"]
            namespace = meta["namespace"]
            job_id = meta["labels"][names.JOB_ID_LABEL]
            try:
                await call(
                    f"creating Job {namespace}/{meta['name']}",
                    self._batch.create_namespaced_job,
                    namespace,
                    item,
                    field_manager=names.FIELD_MANAGER,
                    _request_timeout=self._timeout,
                )
                created += 1
            except WorkflowRejected as exc:
                cause = exc.__cause__
                if not (isinstance(cause, ApiException) and cause.status == CONFLICT):
                    raise
        if created == len(items or []):
            return Observed(Phase.PENDING, "submitted; the first stage's Job is runnable")
        jobs = await self._jobs(namespace, f"{names.JOB_ID_LABEL}={job_id}")
        return observe_jobs(jobs)

    async def terminate(self, namespace: str, name: str) -> Observed | None:
        job_id = name.removeprefix("train-")
        jobs = await self._jobs(namespace, f"{names.JOB_ID_LABEL}={job_id}")
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
            await call(
                f"suspending Job {namespace}/{job['metadata']['name']}",
                self._batch.patch_namespaced_job,
                job["metadata"]["name"],
                namespace,
                patch,
                field_manager=names.TERMINATE_MANAGER,
                _content_type="application/merge-patch+json",
                _request_timeout=self._timeout,
            )
        return observe_jobs(await self._jobs(namespace, f"{names.JOB_ID_LABEL}={job_id}"))

    async def observe(self, namespaces: Sequence[str]) -> list[Live]:
        found: list[Live] = []
        for namespace in namespaces:
            groups: dict[str, list[dict[str, Any]]] = defaultdict(list)
            for job in await self._jobs(namespace, names.MANAGED_SELECTOR):
                job_id = (job["metadata"].get("labels") or {}).get(names.JOB_ID_LABEL)
                if job_id:
                    groups[job_id].append(job)
            for job_id, jobs in sorted(groups.items()):
                resume = next_stage_to_resume(jobs)
                if resume is not None:
                    await self._resume(namespace, resume)
                    jobs = await self._jobs(namespace, f"{names.JOB_ID_LABEL}={job_id}")
                items = [desired_from_live(j) for j in sort_stages(jobs)]
                found.append(
                    Live(
                        name=names.workflow_name(job_id),
                        namespace=namespace,
                        job_id=job_id,
                        manifest={"apiVersion": "v1", "kind": "List", "items": items},
                        observed=observe_jobs(jobs),
                    )
                )
        return found

    async def ping(self) -> None:
        await call(
            "checking readiness", self._batch.get_api_resources, _request_timeout=self._timeout
        )

    async def _resume(self, namespace: str, name: str) -> None:
        await call(
            f"resuming Job {namespace}/{name}",
            self._batch.patch_namespaced_job,
            name,
            namespace,
            {"spec": {"suspend": False}},
            field_manager=names.FIELD_MANAGER,
            _content_type="application/merge-patch+json",
            _request_timeout=self._timeout,
        )

    async def _jobs(self, namespace: str, selector: str) -> list[dict[str, Any]]:
        try:
            listing = await call(
                f"listing Jobs in {namespace}",
                self._batch.list_namespaced_job,
                namespace,
                label_selector=selector,
                absent_ok=True,
                _request_timeout=self._timeout,
            )
        except Exception as exc:
            if is_not_found(exc):
                return []
            raise
        plain = cast(
            dict[str, Any],
            self._client.sanitize_for_serialization(listing),  # type: ignore[no-untyped-call]
        )
        jobs = list(plain.get("items") or [])
        for job in jobs:
            job.setdefault("apiVersion", "batch/v1")
            job.setdefault("kind", "Job")
        return jobs
