"""The serving worker through the runtime: real Redis streams, the app's wiring (consumer and
watcher in one process), the KServe backend on the Kubernetes API test double."""

from __future__ import annotations

import asyncio
from contextlib import AbstractAsyncContextManager
from pathlib import Path

import pytest
import redis.asyncio as aioredis

from llmops_serving.adapters.kserve import KServeBackend
from llmops_serving.app import serve
from llmops_serving.config import ServingSettings
from llmops_shared.events import DeploymentStatusUpdated, Envelope, Phase, Stream, encode_event
from llmops_shared.streams import EVENT_FIELD, Publisher
from llmops_shared.streams.commit import idempotency_key

from integration.serving.helpers import (
    ISVC,
    deleted,
    new_endpoint,
    requested,
    worker_settings,
)
from support.k8s_server import KubeApiServer
from support.streams import details_of, read_events, wait_until
from support.workers import in_process

pytestmark = pytest.mark.integration

NS = "llm-ops-dev"
GROUP = "serving"


class Streams:
    def __init__(self, redis: aioredis.Redis, namespace: str) -> None:
        self.redis = redis
        self.namespace = namespace
        self.serving = f"{namespace}{Stream.SERVING}"
        self.status = f"{namespace}{Stream.STATUS}"
        self.dlq = f"{self.serving}.dlq"
        self.publisher = Publisher(redis, namespace=namespace)

    async def statuses(self) -> list[DeploymentStatusUpdated]:
        return [
            e.payload_as(DeploymentStatusUpdated)
            for e in await read_events(self.redis, self.status)
        ]

    async def pending(self) -> int:
        try:
            info = await self.redis.xpending(self.serving, GROUP)
        except aioredis.ResponseError:
            return 0
        return int(info["pending"])

    async def dead_letters(self) -> list[dict[bytes, bytes]]:
        return [fields for _, fields in await self.redis.xrange(self.dlq)]


@pytest.fixture
def streams(redis: aioredis.Redis, names: object) -> Streams:
    return Streams(redis, f"test.{names.token}:")  # type: ignore[attr-defined]


def running(
    settings: ServingSettings, backend: KServeBackend | None = None
) -> AbstractAsyncContextManager[None]:
    return in_process(lambda stop: serve(settings, stop=stop, backend=backend))


async def test_seed_deployment_becomes_ready_through_the_watcher(
    redis_url: str, streams: Streams, kube: KubeApiServer, kserve: KServeBackend
) -> None:
    settings = worker_settings(redis_url, streams.namespace, serving_backend="kserve")
    endpoint_id, name = new_endpoint()
    async with running(settings, kserve):
        await streams.publisher.publish(requested(endpoint_id, name))

        async def applied() -> bool:
            return kube.get(*ISVC, NS, name) is not None

        await wait_until(applied, timeout_s=10)
        kube.set_status(
            *ISVC, NS, name,
            {"url": "http://x.example.com", "conditions": [{"type": "Ready", "status": "True"}]},
        )  # fmt: skip

        async def ready() -> bool:
            """The newest report (by seq, as the gateway orders them) says Ready."""
            statuses = await streams.statuses()
            return bool(statuses) and max(statuses, key=lambda s: s.seq).phase is Phase.READY

        await wait_until(ready, timeout_s=10)
    # The handler's Pending and the watcher's reports race (the test flips the object to Ready
    # as soon as it exists); the gateway orders reports by seq, and the newest must be Ready.
    statuses = sorted(await streams.statuses(), key=lambda s: s.seq)
    assert Phase.PENDING in {s.phase for s in statuses}
    assert statuses[-1].phase is Phase.READY
    assert {s.entity_id for s in statuses} == {endpoint_id}
    assert all(s.reporter == "serving" for s in statuses)
    assert details_of(statuses[-1])["url"] == "http://x.example.com"
    assert await streams.pending() == 0


async def test_bad_event_is_dead_lettered_and_the_worker_keeps_serving(
    redis_url: str, streams: Streams, kube: KubeApiServer, kserve: KServeBackend
) -> None:
    settings = worker_settings(
        redis_url, streams.namespace, serving_backend="kserve",
        kserve_deployment_mode="RawDeployment",
    )  # fmt: skip
    bad_id, bad_name = new_endpoint()
    good_id, good_name = new_endpoint()
    async with running(settings, kserve):
        await streams.publisher.publish(requested(bad_id, bad_name))  # canary in RawDeployment
        await streams.redis.xadd(streams.serving, {b"event": b"not json"})
        await streams.publisher.publish(
            requested(good_id, good_name, rollout={"strategy": "blue-green"})
        )

        async def done() -> bool:
            served = kube.get(*ISVC, NS, good_name) is not None
            return served and len(await streams.dead_letters()) == 2

        await wait_until(done, timeout_s=10)
    reasons = sorted(letter[b"reason"] for letter in await streams.dead_letters())
    assert any(b"RawDeployment ignores canaryTrafficPercent" in r for r in reasons)
    assert any(b"not JSON" in r for r in reasons)
    statuses = await streams.statuses()
    failed = [s for s in statuses if s.entity_id == bad_id]
    assert [s.phase for s in failed] == [Phase.FAILED]
    assert any(s.entity_id == good_id for s in statuses)


async def test_cluster_outage_keeps_the_entry_pending(
    redis_url: str, streams: Streams, kube: KubeApiServer, kserve: KServeBackend
) -> None:
    settings = worker_settings(redis_url, streams.namespace, serving_backend="kserve")
    endpoint_id, name = new_endpoint()
    kube.fail_next("PATCH", f"/inferenceservices/{name}", 500, times=3)
    async with running(settings, kserve):
        await streams.publisher.publish(requested(endpoint_id, name))

        async def waiting() -> bool:
            failures = [r for r in kube.requests if r[0] == "PATCH" and name in r[1]]
            return len(failures) >= 2

        await wait_until(waiting, timeout_s=10)
        assert await streams.pending() == 1
        assert await streams.dead_letters() == []

        async def applied() -> bool:
            return kube.get(*ISVC, NS, name) is not None

        await wait_until(applied, timeout_s=15)  # the outage ended: the entry went through
        await wait_until(lambda: _zero(streams), timeout_s=10)
    assert await streams.dead_letters() == []


async def _zero(streams: Streams) -> bool:
    return await streams.pending() == 0


async def test_manifests_default_writes_files(
    redis_url: str, streams: Streams, tmp_path: Path
) -> None:
    settings = worker_settings(redis_url, streams.namespace, manifests_dir=tmp_path)
    endpoint_id, name = new_endpoint()
    async with running(settings):
        await streams.publisher.publish(requested(endpoint_id, name))

        async def was_reported() -> bool:
            return bool(await streams.statuses())

        await wait_until(was_reported, timeout_s=10)
    [status] = await streams.statuses()
    assert status.phase is Phase.READY
    assert (tmp_path / NS / f"{name}.yaml").is_file()


async def _replay(streams: Streams, envelope: Envelope) -> None:
    """Put ``envelope`` back on the serving stream once the worker's idempotency window for
    it has passed (the key is dropped here, as ``IDEMPOTENCY_TTL_S`` does after 7 days; a
    dead-letter replay or a consumer group recreated at ``0`` re-reads an old event the same
    way), and wait until a worker has handled it."""
    key = idempotency_key(GROUP, envelope.id, streams.namespace)
    await streams.redis.delete(key)
    await streams.redis.xadd(streams.serving, {EVENT_FIELD: encode_event(envelope)})

    async def handled() -> bool:
        return bool(await streams.redis.exists(key))

    await wait_until(handled, timeout_s=10)


def _isvc_applies(kube: KubeApiServer, name: str) -> int:
    return sum(1 for method, path, _ in kube.requests if method == "PATCH" and f"/{name}" in path)


@pytest.mark.parametrize("backend_kind", ["kserve", "manifests"])
async def test_a_replayed_request_of_a_deleted_endpoint_deploys_nothing(
    redis_url: str,
    streams: Streams,
    kube: KubeApiServer,
    kserve: KServeBackend,
    tmp_path: Path,
    backend_kind: str,
) -> None:
    """Issue 19, gap 1, on both backends: created, deleted to the end, then the original
    request replayed: nothing exists afterwards and nothing was applied or written again."""
    settings = worker_settings(
        redis_url, streams.namespace, serving_backend=backend_kind, manifests_dir=tmp_path
    )
    backend = kserve if backend_kind == "kserve" else None
    path = tmp_path / NS
    endpoint_id, name = new_endpoint()
    request = requested(endpoint_id, name)

    def exists() -> bool:
        if backend_kind == "kserve":
            return kube.get(*ISVC, NS, name) is not None
        return (path / f"{name}.yaml").exists()

    async with running(settings, backend):
        await streams.publisher.publish(request)
        await wait_until(lambda: _true(exists()), timeout_s=10)
        await streams.publisher.publish(deleted(endpoint_id, name))

        async def reported_deleted() -> bool:
            return any(s.phase is Phase.DELETED for s in await streams.statuses())

        await wait_until(reported_deleted, timeout_s=10)
        assert not exists()
        applies = _isvc_applies(kube, name)

        await _replay(streams, request)
        await asyncio.sleep(0.3)  # a few watcher rounds
        assert not exists()
        assert _isvc_applies(kube, name) == applies
    assert not path.exists() or list(path.iterdir()) == []
    last = max(await streams.statuses(), key=lambda s: s.seq)
    assert (last.entity_id, last.phase) == (endpoint_id, Phase.DELETED)
    assert "was deleted" in (last.reason or "")
    assert await streams.dead_letters() == []


async def test_the_tombstone_survives_a_worker_restart(
    redis_url: str, streams: Streams, kube: KubeApiServer, kserve: KServeBackend
) -> None:
    """The tombstone is in Redis (under the stream namespace, with the retention as its TTL),
    not in the worker's memory: a restarted worker still refuses the endpoint."""
    settings = worker_settings(
        redis_url, streams.namespace, serving_backend="kserve", tombstone_retention_days=30
    )
    endpoint_id, name = new_endpoint()
    request = requested(endpoint_id, name)
    async with running(settings, kserve):
        await streams.publisher.publish(request)
        await wait_until(lambda: _true(kube.get(*ISVC, NS, name) is not None), timeout_s=10)
        await streams.publisher.publish(deleted(endpoint_id, name))
        await wait_until(lambda: _true(kube.get(*ISVC, NS, name) is None), timeout_s=10)
        await wait_until(lambda: _zero(streams), timeout_s=10)
    applies = _isvc_applies(kube, name)
    async with running(settings, kserve):  # a new process, as after a restart
        await _replay(streams, request)
        await asyncio.sleep(0.3)
    assert kube.get(*ISVC, NS, name) is None
    assert _isvc_applies(kube, name) == applies
    assert await streams.dead_letters() == []
    tombstone = f"{streams.namespace}llmops:serving:tombstones:{endpoint_id}"
    assert 30 * 86_400 - 60 < await streams.redis.ttl(tombstone) <= 30 * 86_400


async def _true(value: bool) -> bool:
    return value
