"""The workflow worker through the runtime: real Redis streams, the app's wiring (consumer and
watcher in one process), the Argo backend on the Kubernetes API test double, and the
manifests default writing real files."""

from __future__ import annotations

import asyncio
from contextlib import AbstractAsyncContextManager
from pathlib import Path

import pytest
import redis.asyncio as aioredis

from llmops_shared.events import JobStatusUpdated, Phase, PipelineStatusUpdated, Stream
from llmops_shared.manifest_files import load_documents
from llmops_shared.streams import Publisher
from llmops_shared.streams.commit import idempotency_key
from llmops_workflow.adapters.argo import ArgoBackend
from llmops_workflow.app import serve
from llmops_workflow.config import WorkflowSettings

from integration.workflow.helpers import (
    NS,
    WORKFLOWS,
    cancelled,
    delete_workflow,
    new_job_id,
    submitted,
    worker_settings,
)
from support.argo_schema import schema_errors
from support.k8s_server import KubeApiServer
from support.streams import details_of, read_events, wait_until
from support.workers import in_process

pytestmark = pytest.mark.integration

GROUP = "workflow"


class Streams:
    def __init__(self, redis: aioredis.Redis, namespace: str) -> None:
        self.redis = redis
        self.namespace = namespace
        self.training = f"{namespace}{Stream.TRAINING}"
        self.status = f"{namespace}{Stream.STATUS}"
        self.dlq = f"{self.training}.dlq"
        self.publisher = Publisher(redis, namespace=namespace)

    async def pipelines(self) -> list[PipelineStatusUpdated]:
        events = await read_events(self.redis, self.status)
        return [e.payload for e in events if isinstance(e.payload, PipelineStatusUpdated)]

    async def jobs(self) -> list[JobStatusUpdated]:
        events = await read_events(self.redis, self.status)
        return [e.payload for e in events if isinstance(e.payload, JobStatusUpdated)]

    async def pending(self) -> int:
        try:
            info = await self.redis.xpending(self.training, GROUP)
        except aioredis.ResponseError:
            return 0
        return int(info["pending"])

    async def dead_letters(self) -> list[dict[bytes, bytes]]:
        return [fields for _, fields in await self.redis.xrange(self.dlq)]


@pytest.fixture
def streams(redis: aioredis.Redis, names: object) -> Streams:
    return Streams(redis, f"test.{names.token}:")  # type: ignore[attr-defined]


def running(
    settings: WorkflowSettings, backend: ArgoBackend | None = None
) -> AbstractAsyncContextManager[None]:
    return in_process(lambda stop: serve(settings, stop=stop, backend=backend))


async def test_seed_job_becomes_a_workflow_and_status_events(
    redis_url: str, streams: Streams, kube: KubeApiServer, argo: ArgoBackend
) -> None:
    settings = worker_settings(redis_url, streams.namespace, workflow_backend="argo")
    job_id = new_job_id()
    name = f"train-{job_id}"
    async with running(settings, argo):
        await streams.publisher.publish(submitted(job_id))

        async def applied() -> bool:
            return kube.get(*WORKFLOWS, NS, name) is not None

        await wait_until(applied, timeout_s=10)
        kube.set_status(
            *WORKFLOWS, NS, name,
            {"phase": "Succeeded", "progress": "4/4", "startedAt": "2025-01-27T10:00:00Z",
             "finishedAt": "2025-01-27T11:00:00Z"},
        )  # fmt: skip

        async def succeeded() -> bool:
            return any(j.phase is Phase.SUCCEEDED for j in await streams.jobs())

        await wait_until(succeeded, timeout_s=10)
        await wait_until(lambda: _zero(streams), timeout_s=10)
    # the gateway orders by seq, not by stream position: the watcher may report Succeeded
    # before the handler's Pending (stamped before the apply) is committed
    pipelines = sorted(await streams.pipelines(), key=lambda s: s.seq)
    jobs = sorted(await streams.jobs(), key=lambda s: s.seq)
    assert pipelines[0].phase is jobs[0].phase is Phase.PENDING
    assert jobs[-1].phase is Phase.SUCCEEDED
    assert pipelines[-1].phase is Phase.SUCCEEDED
    assert {p.entity_id for p in pipelines} == {name}
    assert {j.entity_id for j in jobs} == {job_id}
    assert all(s.reporter == "workflow" for s in [*pipelines, *jobs])
    assert schema_errors(details_of(pipelines[0])["manifest"]) == []  # type: ignore[arg-type]
    assert await streams.dead_letters() == []


async def test_bad_event_is_dead_lettered_and_the_worker_keeps_serving(
    redis_url: str, streams: Streams, kube: KubeApiServer, argo: ArgoBackend
) -> None:
    settings = worker_settings(redis_url, streams.namespace, workflow_backend="argo")
    refused_id = new_job_id()
    good_id = new_job_id()
    kube.fail_next("PATCH", f"/workflows/train-{refused_id}", 422, reason="Invalid")
    async with running(settings, argo):
        await streams.redis.xadd(streams.training, {b"event": b"not json"})
        await streams.publisher.publish(submitted(refused_id))
        await streams.publisher.publish(submitted(good_id))

        async def done() -> bool:
            served = kube.get(*WORKFLOWS, NS, f"train-{good_id}") is not None
            return served and len(await streams.dead_letters()) == 2

        await wait_until(done, timeout_s=10)
    reasons = [letter[b"reason"] for letter in await streams.dead_letters()]
    assert any(b"not JSON" in r for r in reasons)
    assert any(b"Invalid" in r for r in reasons)
    jobs = await streams.jobs()
    assert [j.phase for j in jobs if j.entity_id == refused_id] == [Phase.FAILED]
    assert any(j.entity_id == good_id for j in jobs)


async def test_cluster_outage_keeps_the_entry_pending(
    redis_url: str, streams: Streams, kube: KubeApiServer, argo: ArgoBackend
) -> None:
    settings = worker_settings(redis_url, streams.namespace, workflow_backend="argo")
    job_id = new_job_id()
    name = f"train-{job_id}"
    kube.fail_next("PATCH", f"/workflows/{name}", 500, times=3)
    async with running(settings, argo):
        await streams.publisher.publish(submitted(job_id))

        async def waiting() -> bool:
            failures = [r for r in kube.requests if r[0] == "PATCH" and name in r[1]]
            return len(failures) >= 2

        await wait_until(waiting, timeout_s=10)
        assert await streams.pending() == 1
        assert await streams.dead_letters() == []

        async def applied() -> bool:
            return kube.get(*WORKFLOWS, NS, name) is not None

        await wait_until(applied, timeout_s=15)  # the outage ended: the entry went through
        await wait_until(lambda: _zero(streams), timeout_s=10)
    assert await streams.dead_letters() == []


async def _zero(streams: Streams) -> bool:
    return await streams.pending() == 0


async def test_manifests_default_writes_the_file(
    redis_url: str, streams: Streams, tmp_path: Path
) -> None:
    settings = worker_settings(redis_url, streams.namespace, manifests_dir=tmp_path)
    assert settings.workflow_backend.value == "manifests"
    job_id = new_job_id()
    async with running(settings):
        await streams.publisher.publish(submitted(job_id))

        async def reported() -> bool:
            return bool(await streams.jobs())

        await wait_until(reported, timeout_s=10)
    path = tmp_path / NS / f"train-{job_id}.yaml"
    [pipeline] = await streams.pipelines()
    [job] = await streams.jobs()
    assert pipeline.phase is job.phase is Phase.PENDING
    assert pipeline.reason == f"written to {path}"
    assert details_of(pipeline)["backend"] == "manifests"
    [workflow] = load_documents(path.read_text(encoding="utf-8"))
    assert workflow == details_of(pipeline)["manifest"]
    assert schema_errors(workflow) == []


# ---------------------------------------------------------------- issue 19, known gaps 2-4


def _latest(reports: list[JobStatusUpdated], job_id: str) -> JobStatusUpdated:
    """The job's report the gateway ends up with (it orders by seq)."""
    return max((j for j in reports if j.entity_id == job_id), key=lambda j: j.seq)


async def test_a_workflow_deleted_while_the_worker_was_down_fails_its_job(
    redis_url: str, streams: Streams, kube: KubeApiServer, argo: ArgoBackend
) -> None:
    """Gap 2: the restarted worker reconciles the pipelines it was watching with the cluster."""
    settings = worker_settings(redis_url, streams.namespace, workflow_backend="argo")
    job_id = new_job_id()
    name = f"train-{job_id}"
    async with running(settings, argo):
        await streams.publisher.publish(submitted(job_id))

        async def applied() -> bool:
            return kube.get(*WORKFLOWS, NS, name) is not None

        await wait_until(applied, timeout_s=10)
        kube.set_status(*WORKFLOWS, NS, name, {"phase": "Running", "progress": "1/4"})

        async def running_reported() -> bool:
            return any(j.phase is Phase.RUNNING for j in await streams.jobs())

        await wait_until(running_reported, timeout_s=10)
    delete_workflow(kube, name)  # while no worker watches
    async with running(settings, argo):

        async def failed() -> bool:
            return any(j.phase is Phase.FAILED for j in await streams.jobs())

        await wait_until(failed, timeout_s=10)
    job = _latest(await streams.jobs(), job_id)
    assert job.phase is Phase.FAILED
    assert job.reason == f"the workflow {name} was deleted while the workflow worker was down"
    pipeline = max(await streams.pipelines(), key=lambda p: p.seq)
    assert (pipeline.entity_id, pipeline.phase) == (name, Phase.DELETED)


async def test_a_replay_after_the_ttl_reports_the_outcome_and_does_not_rerun(
    redis_url: str, streams: Streams, kube: KubeApiServer, argo: ArgoBackend
) -> None:
    """Gap 3: a finished pipeline is remembered; a replayed submission re-reports it."""
    settings = worker_settings(redis_url, streams.namespace, workflow_backend="argo")
    job_id = new_job_id()
    name = f"train-{job_id}"
    event = submitted(job_id)
    async with running(settings, argo):
        await streams.publisher.publish(event)

        async def applied() -> bool:
            return kube.get(*WORKFLOWS, NS, name) is not None

        await wait_until(applied, timeout_s=10)
        kube.set_status(*WORKFLOWS, NS, name, {"phase": "Succeeded", "progress": "4/4"})

        async def deleted() -> bool:
            return any(p.phase is Phase.DELETED for p in await streams.pipelines())

        async def succeeded() -> bool:
            return any(j.phase is Phase.SUCCEEDED for j in await streams.jobs())

        await wait_until(succeeded, timeout_s=10)
        delete_workflow(kube, name)  # Argo's ttlStrategy
        await wait_until(deleted, timeout_s=10)
        [outcome] = [j for j in await streams.jobs() if j.phase is Phase.SUCCEEDED]
        # the same event again, once its idempotency mark is gone (a replay weeks later)
        await streams.redis.delete(idempotency_key(GROUP, event.id, streams.namespace))
        await streams.publisher.publish(event)

        async def answered() -> bool:
            return len(await streams.jobs()) >= 3 and await streams.pending() == 0

        await wait_until(answered, timeout_s=10)
    assert kube.get(*WORKFLOWS, NS, name) is None  # nothing ran again
    replayed = (await streams.jobs())[-1]
    assert (replayed.phase, replayed.seq) == (Phase.SUCCEEDED, outcome.seq)
    assert _latest(await streams.jobs(), job_id).phase is Phase.SUCCEEDED


async def test_a_cancel_that_overtakes_its_submission_keeps_the_workflow_from_being_created(
    redis_url: str, streams: Streams, kube: KubeApiServer, argo: ArgoBackend
) -> None:
    """Gap 4: two gateway relays publish the cancel before the submission."""
    settings = worker_settings(redis_url, streams.namespace, workflow_backend="argo")
    job_id = new_job_id()
    name = f"train-{job_id}"
    async with running(settings, argo):
        await streams.publisher.publish(cancelled(job_id))
        await streams.publisher.publish(submitted(job_id))

        async def answered() -> bool:
            return len(await streams.jobs()) >= 2 and await streams.pending() == 0

        await wait_until(answered, timeout_s=10)
        await asyncio.sleep(0.2)  # a few watcher rounds
    assert kube.get(*WORKFLOWS, NS, name) is None
    assert [j.phase for j in await streams.jobs()] == [Phase.CANCELLED, Phase.CANCELLED]
    assert {p.phase for p in await streams.pipelines()} == {Phase.CANCELLED}
    assert await streams.dead_letters() == []
