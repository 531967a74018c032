"""The versioning worker through the runtime: real Redis streams, real DVC, the app's wiring.

``llmops_versioning.app.serve`` runs in process on its own stream namespace with settings only
(the DVC backend is built from them, as ``python -m llmops_versioning`` does); the test
publishes a version request and a restore as the gateway would and reads the status stream.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
import redis.asyncio as aioredis
from pydantic import SecretStr

from llmops_shared.events import StatusUpdated, Stream
from llmops_shared.events.payloads.datasets import VersionFacts, VersionProgress
from llmops_shared.streams import Publisher
from llmops_versioning.app import serve
from llmops_versioning.config import VersioningSettings

from integration.versioning.conftest import Datasets
from integration.versioning.helpers import (
    manifest_of,
    new_id,
    read_tree,
    restore_envelope,
    version_envelope,
)
from support.streams import FAST_CONSUMER, details_of, read_events, wait_until

pytestmark = pytest.mark.integration


async def test_version_and_restore_through_the_streams(
    redis_url: str, redis: aioredis.Redis, names: object, datasets: Datasets, tmp_path: Path
) -> None:
    namespace = f"test.{names.token}:"  # type: ignore[attr-defined]
    settings = VersioningSettings(
        redis_url=SecretStr(redis_url),
        stream_namespace=namespace,
        consumer=FAST_CONSUMER.model_copy(update={"claim_idle_ms": 600_000}),
        health_port=0,
        dvc_repos_dir=tmp_path / "repos",
        dvc_remote_url=str(tmp_path / "remote"),
        builtin_store_dir=tmp_path / "builtin",
        progress_interval_s=0.05,
    )
    status_stream = f"{namespace}{Stream.STATUS}"
    publisher = Publisher(redis, namespace=namespace)

    async def statuses() -> list[StatusUpdated]:
        return [e.payload_as(StatusUpdated) for e in await read_events(redis, status_stream)]

    async def final(entity_id: str) -> StatusUpdated:
        async def done() -> bool:
            return any(
                s.entity_id == entity_id and s.phase in {"Succeeded", "Failed"}
                for s in await statuses()
            )

        await wait_until(done, timeout_s=60)
        [last] = [s for s in await statuses() if s.entity_id == entity_id and s.phase != "Running"]
        return last

    dataset_id = new_id()
    stop = asyncio.Event()
    worker = asyncio.create_task(serve(settings, stop=stop))
    try:
        request = version_envelope(dataset_id, "v1.0.0", str(datasets.v1))
        await publisher.publish(request)
        version_id = request.data["version_id"]  # type: ignore[index]
        succeeded = await final(version_id)
        assert succeeded.phase == "Succeeded", succeeded.reason
        assert succeeded.reporter == "versioning"
        facts = VersionFacts.model_validate(details_of(succeeded)["version"])
        assert facts.backend == "dvc"
        assert [tuple(f) for f in facts.files] == manifest_of(datasets.v1)

        reports = await statuses()
        running = [s for s in reports if s.entity_id == version_id and s.phase == "Running"]
        assert running, "no progress report"
        stages = {VersionProgress.model_validate(details_of(s)["progress"]).stage for s in running}
        assert "fetching" in stages
        assert all(s.seq < succeeded.seq for s in running)

        target = tmp_path / "restored"
        restore = restore_envelope(dataset_id, version_id, "v1.0.0", str(target))
        await publisher.publish(restore)
        restored = await final(restore.data["restore_id"])  # type: ignore[index]
        assert restored.phase == "Succeeded", restored.reason
        assert read_tree(target) == read_tree(datasets.v1)
    finally:
        stop.set()
        await asyncio.wait_for(worker, timeout=30)
    assert await redis.xpending(f"{namespace}{Stream.DATASETS}", "versioning") == {
        "pending": 0,
        "min": None,
        "max": None,
        "consumers": [],
    }
