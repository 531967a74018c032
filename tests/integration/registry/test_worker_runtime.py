"""The registry worker through the runtime: real Redis streams, the app's wiring (``serve``),
the real huggingface_hub client against the Hub test double."""

from __future__ import annotations

from contextlib import AbstractAsyncContextManager
from pathlib import Path

import pytest
import redis.asyncio as aioredis

from llmops_registry.app import serve
from llmops_registry.config import RegistrySettings
from llmops_shared.events import ModelStatusUpdated, Phase, Stream
from llmops_shared.streams import Publisher

from integration.registry.helpers import (
    check_requested,
    import_requested,
    model_facts,
    new_model_id,
    progress_of,
    tiny_llama,
    upstream_of,
    worker_settings,
)
from support.hf_hub_server import HubServer
from support.streams import read_events, wait_until
from support.workers import in_process

pytestmark = pytest.mark.integration

GROUP = "registry"
LLAMA = "acme/tiny-llama"


class Streams:
    def __init__(self, redis: aioredis.Redis, namespace: str) -> None:
        self.redis = redis
        self.namespace = namespace
        self.catalog = f"{namespace}{Stream.CATALOG}"
        self.status = f"{namespace}{Stream.STATUS}"
        self.dlq = f"{self.catalog}.dlq"
        self.publisher = Publisher(redis, namespace=namespace)

    async def statuses(self, model_id: str) -> list[ModelStatusUpdated]:
        """Reports about ``model_id``, in stream order."""
        events = await read_events(self.redis, self.status)
        return [
            s for s in (e.payload_as(ModelStatusUpdated) for e in events) if s.entity_id == model_id
        ]

    async def pending(self) -> int:
        try:
            info = await self.redis.xpending(self.catalog, GROUP)
        except aioredis.ResponseError:
            return 0
        return int(info["pending"])

    async def dead_letters(self) -> list[dict[bytes, bytes]]:
        return [fields for _, fields in await self.redis.xrange(self.dlq)]


@pytest.fixture
def streams(redis: aioredis.Redis, names: object) -> Streams:
    return Streams(redis, f"test.{names.token}:")  # type: ignore[attr-defined]


@pytest.fixture
def worker(redis_url: str, streams: Streams, tmp_path: Path, hub: HubServer) -> RegistrySettings:
    return worker_settings(redis_url, streams.namespace, tmp_path, hub.url)


def running(settings: RegistrySettings) -> AbstractAsyncContextManager[None]:
    return in_process(lambda stop: serve(settings, stop=stop))


async def test_import_through_the_worker_reports_progress_then_success(
    hub: HubServer, streams: Streams, worker: RegistrySettings
) -> None:
    sha = hub.add_repo(LLAMA, tiny_llama())
    model_id = new_model_id()
    async with running(worker):
        await streams.publisher.publish(import_requested(LLAMA, model_id=model_id, download=True))

        async def finished() -> bool:
            return any(s.phase is Phase.SUCCEEDED for s in await streams.statuses(model_id))

        async def drained() -> bool:
            return await streams.pending() == 0

        await wait_until(finished, timeout_s=15)
        await wait_until(drained, timeout_s=5)

    statuses = await streams.statuses(model_id)
    final = statuses[-1]
    assert final.phase is Phase.SUCCEEDED, final.reason
    assert final.reporter == "registry"
    facts = model_facts(final)
    assert (facts.revision, facts.family) == (sha, "llama")
    snapshot = worker.model_store_dir / "acme--tiny-llama" / sha
    assert facts.snapshot_uri == snapshot.resolve().as_uri()
    assert (snapshot / "config.json").is_file()
    progress = statuses[:-1]
    assert progress, "no Running report before the final one"
    assert all(s.phase is Phase.RUNNING for s in progress)
    assert {progress_of(s).stage for s in progress} == {"resolving", "downloading"}
    assert max(s.seq for s in progress) < final.seq  # the gateway keeps the final report


async def test_update_check_and_a_bad_event_through_the_worker(
    hub: HubServer, streams: Streams, worker: RegistrySettings
) -> None:
    first = hub.add_repo(LLAMA, tiny_llama())
    second = hub.push(LLAMA, {"tokenizer.json": b"{}"})
    model_id = new_model_id()
    async with running(worker):
        await streams.redis.xadd(streams.catalog, {b"event": b"not json"})
        await streams.publisher.publish(check_requested(LLAMA, first, model_id=model_id))

        async def done() -> bool:
            return bool(await streams.statuses(model_id)) and len(await streams.dead_letters()) == 1

        await wait_until(done, timeout_s=15)

    letter = (await streams.dead_letters())[0]
    assert b"not JSON" in letter[b"reason"]
    (status,) = await streams.statuses(model_id)
    assert status.phase is Phase.SUCCEEDED
    check = upstream_of(status)
    assert (check.upstream_revision, check.updated) == (second, True)
