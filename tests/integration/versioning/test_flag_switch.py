"""A running worker switches backend on a ``llmops.config`` change, without a redeploy.

The versioning worker runs through ``serve_with_flags`` (what ``python -m llmops_versioning``
does) on real Redis, real DVC and the built-in store. Flag changes are published as the
gateway's outbox would; the worker's heartbeat and the facts of the versions it makes show which
backend it runs. Also: a worker that starts while an override is in force starts on it; an
older revision replayed, or another environment's change, switches nothing.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
import redis.asyncio as aioredis
from pydantic import SecretStr

from llmops_shared.events import IntegrationArea, IntegrationConfigChanged, StatusUpdated, Stream
from llmops_shared.events.codec import new_event
from llmops_shared.events.payloads.datasets import VersionFacts
from llmops_shared.heartbeat import WorkerBeat, read_heartbeats
from llmops_shared.streams import Publisher
from llmops_shared.worker import serve_with_flags
from llmops_versioning.app import serve
from llmops_versioning.config import VersioningSettings

from integration.versioning.helpers import generate_dataset, new_id, version_envelope
from support.streams import FAST_CONSUMER, details_of, read_events, wait_until

pytestmark = pytest.mark.integration


def _settings(redis_url: str, namespace: str, root: Path) -> VersioningSettings:
    return VersioningSettings(
        redis_url=SecretStr(redis_url),
        stream_namespace=namespace,
        environment="dev",
        consumer=FAST_CONSUMER,
        health_port=0,
        heartbeat_interval_s=0.2,
        dvc_repos_dir=root / "repos",
        dvc_remote_url=str(root / "remote"),
        builtin_store_dir=root / "builtin",
    )


class Platform:
    """What the test does as the gateway: publish config changes and version requests."""

    def __init__(self, redis: aioredis.Redis, namespace: str, data: Path) -> None:
        self.redis = redis
        self.namespace = namespace
        self.data = data
        self.publisher = Publisher(redis, namespace=namespace)

    async def set_flag(self, enabled: bool, revision: int, *, environment: str = "dev") -> None:
        change = IntegrationConfigChanged(
            environment=environment,  # type: ignore[arg-type]
            area=IntegrationArea.DATA_VERSIONING,
            enabled=enabled,
            system="dvc",
            revision=revision,
            changed_by="test",
        )
        await self.publisher.publish(new_event(change, source="gateway", correlation_id="flags"))

    async def beat(self) -> WorkerBeat | None:
        beats = [
            b
            for b in await read_heartbeats(self.redis, namespace=self.namespace)
            if b.service == "versioning" and b.alive
        ]
        return beats[0] if len(beats) == 1 else None

    async def wait_backend(self, backend: str, *, revision: int) -> WorkerBeat:
        async def running() -> bool:
            beat = await self.beat()
            return (
                beat is not None
                and beat.facts.get("backend") == backend
                and beat.facts.get("config_revision") == str(revision)
            )

        await wait_until(running, timeout_s=15)
        beat = await self.beat()
        assert beat is not None
        return beat

    async def version_backend(self, tag: str) -> str:
        """Version a small dataset; the backend its facts name."""
        request = version_envelope(new_id(), tag, str(self.data))
        await self.publisher.publish(request)
        version_id = request.data["version_id"]  # type: ignore[index]
        status = f"{self.namespace}{Stream.STATUS}"

        async def final() -> StatusUpdated | None:
            for event in await read_events(self.redis, status):
                report = event.payload_as(StatusUpdated)
                if report.entity_id == version_id and report.phase in {"Succeeded", "Failed"}:
                    return report
            return None

        async def done() -> bool:
            return await final() is not None

        await wait_until(done, timeout_s=60)
        report = await final()
        assert report is not None
        assert report.phase == "Succeeded", report.reason
        return VersionFacts.model_validate(details_of(report)["version"]).backend


@pytest.fixture
def platform(redis: aioredis.Redis, names: object, tmp_path: Path) -> Platform:
    data = tmp_path / "data"
    generate_dataset(data, 20)
    return Platform(redis, f"test.{names.token}:", data)  # type: ignore[attr-defined]


@asynccontextmanager
async def running(settings: VersioningSettings) -> AsyncIterator[asyncio.Task[None]]:
    stop = asyncio.Event()
    task = asyncio.create_task(serve_with_flags(serve, settings, stop=stop))
    try:
        yield task
    finally:
        stop.set()
        await asyncio.wait_for(task, timeout=30)  # drained and returned, not crashed


async def test_a_flag_change_switches_the_running_worker(
    platform: Platform, redis_url: str, tmp_path: Path
) -> None:
    settings = _settings(redis_url, platform.namespace, tmp_path)
    async with running(settings) as worker:
        beat = await platform.wait_backend("dvc", revision=0)
        assert (beat.facts["enabled"], beat.facts["config_source"]) == ("true", "environment")
        assert await platform.version_backend("v1.0.0") == "dvc"

        await platform.set_flag(False, revision=1)
        beat = await platform.wait_backend("builtin", revision=1)
        assert (beat.facts["enabled"], beat.facts["config_source"]) == ("false", "llmops.config")
        assert await platform.version_backend("v1.0.0") == "builtin"

        await platform.set_flag(True, revision=2)
        await platform.wait_backend("dvc", revision=2)
        # an older change replayed, and another environment's change, switch nothing
        await platform.set_flag(False, revision=1)
        await platform.set_flag(False, revision=3, environment="prod")
        await asyncio.sleep(1.5)
        beat = await platform.wait_backend("dvc", revision=2)
        assert await platform.version_backend("v2.0.0") == "dvc"
        assert not worker.done()


async def test_a_worker_starts_on_the_override_in_force(
    platform: Platform, redis_url: str, tmp_path: Path
) -> None:
    await platform.set_flag(True, revision=1)
    await platform.set_flag(False, revision=2)
    settings = _settings(redis_url, platform.namespace, tmp_path)  # DATA_VERSIONING_ENABLED=true
    async with running(settings):
        beat = await platform.wait_backend("builtin", revision=2)
        assert beat.facts["enabled"] == "false"
        assert await platform.version_backend("v1.0.0") == "builtin"
