"""The worker host's side of run-time integration flags, on a real Redis: a flag the settings
refuse is not applied (the worker keeps serving and says why), the health server and the
heartbeat stay up while a switch drains a slow batch, and a stop requested before the first
run ends it without a restart."""

from __future__ import annotations

import asyncio
from contextlib import AbstractAsyncContextManager
from typing import Any, ClassVar

import httpx
import pytest
import redis.asyncio as aioredis
from pydantic import SecretStr, model_validator

from llmops_shared.config import ServiceSettings
from llmops_shared.events import (
    Envelope,
    Event,
    IntegrationArea,
    IntegrationConfigChanged,
    Stream,
    new_event,
)
from llmops_shared.heartbeat import WorkerBeat, read_heartbeats
from llmops_shared.streams import Publisher
from llmops_shared.worker import Subscription, WorkerContext, run_worker, serve_with_flags

from support.streams import FAST_CONSUMER, cancel_event, wait_until
from support.workers import in_process

pytestmark = pytest.mark.integration


class FlagSettings(ServiceSettings):
    """A service on the data-versioning flag whose settings refuse "on" without a remote."""

    service_name: str = "flagged"
    integration_area: ClassVar[str | None] = "data_versioning"
    integration_system_field: ClassVar[str | None] = "data_versioning_system"
    data_versioning_enabled: bool = False
    data_versioning_system: str = "dvc"
    remote_url: str | None = None

    @model_validator(mode="after")
    def _remote_when_enabled(self) -> FlagSettings:
        if self.data_versioning_enabled and not self.remote_url:
            raise ValueError("DATA_VERSIONING_ENABLED=true needs REMOTE_URL")
        return self


class Service:
    """``serve(settings, stop=)`` of the fake service; its handler can be made slow."""

    def __init__(self) -> None:
        self.handler_delay_s = 0.0
        self.handled = 0

    async def handle(self, event: Event) -> list[Envelope]:
        await asyncio.sleep(self.handler_delay_s)
        self.handled += 1
        return []

    async def serve(self, settings: FlagSettings, *, stop: asyncio.Event | None = None) -> None:
        def subscriptions(_: WorkerContext[FlagSettings]) -> list[Subscription]:
            return [Subscription(Stream.TRAINING, self.handle)]

        backend = "dvc" if settings.data_versioning_enabled else "builtin"
        await run_worker(settings, subscriptions, stop=stop, describe={"backend": backend})


@pytest.fixture
def namespace(names: object) -> str:
    return f"test.{names.token}:"  # type: ignore[attr-defined]


def flagged(service: Service, settings: FlagSettings) -> AbstractAsyncContextManager[None]:
    """``serve_with_flags`` over ``service`` until the block ends (then it must stop in 10 s,
    and its exception, had it crashed, is raised)."""
    return in_process(lambda stop: serve_with_flags(service.serve, settings, stop=stop))


def settings_for(redis_url: str, namespace: str, **changes: Any) -> FlagSettings:
    return FlagSettings(
        redis_url=SecretStr(redis_url),
        stream_namespace=namespace,
        consumer=FAST_CONSUMER,
        health_port=0,
        heartbeat_interval_s=0.2,
        **changes,
    )


async def set_flag(redis: aioredis.Redis, namespace: str, enabled: bool, revision: int) -> None:
    change = IntegrationConfigChanged(
        environment="dev",
        area=IntegrationArea.DATA_VERSIONING,
        enabled=enabled,
        system="dvc",
        revision=revision,
    )
    envelope = new_event(change, source="tests", correlation_id="flags")
    await Publisher(redis, namespace=namespace).publish(envelope)


async def beat(redis: aioredis.Redis, namespace: str) -> WorkerBeat | None:
    beats = [b for b in await read_heartbeats(redis, namespace=namespace) if b.alive]
    return beats[0] if len(beats) == 1 else None


async def wait_beat(redis: aioredis.Redis, namespace: str, **facts: str) -> WorkerBeat:
    async def showing() -> bool:
        found = await beat(redis, namespace)
        return found is not None and all(found.facts.get(k) == v for k, v in facts.items())

    await wait_until(showing, timeout_s=10)
    found = await beat(redis, namespace)
    assert found is not None
    return found


async def test_a_flag_the_settings_refuse_is_not_applied(
    redis: aioredis.Redis, redis_url: str, namespace: str
) -> None:
    async with flagged(Service(), settings_for(redis_url, namespace)):
        await wait_beat(redis, namespace, backend="builtin", config_error="")
        await set_flag(redis, namespace, True, revision=1)
        refused = await wait_beat(redis, namespace, backend="builtin", enabled="false")

        async def reported() -> bool:
            found = await beat(redis, namespace)
            return found is not None and found.facts.get("config_error", "") != ""

        await wait_until(reported, timeout_s=10)
        refused = await beat(redis, namespace)  # type: ignore[assignment]
        assert refused.facts["config_error"] == (
            "revision 1 not applied: Value error, DATA_VERSIONING_ENABLED=true needs REMOTE_URL"
        )
        started = refused.started_at
        await asyncio.sleep(0.5)
        again = await beat(redis, namespace)
        assert again is not None  # still serving, not crash-looping
        assert again.started_at == started  # and not restarting either
        # a later, applicable change clears the error
        await set_flag(redis, namespace, False, revision=2)
        cleared = await wait_beat(redis, namespace, config_error="", config_revision="2")
        assert cleared.facts["backend"] == "builtin"


async def test_a_worker_starting_under_a_refused_override_starts_on_its_own_flag(
    redis: aioredis.Redis, redis_url: str, namespace: str
) -> None:
    await set_flag(redis, namespace, True, revision=1)
    async with flagged(Service(), settings_for(redis_url, namespace)):
        found = await wait_beat(redis, namespace, backend="builtin", enabled="false")
        assert found.facts["config_error"].startswith("revision 1 not applied")


async def test_health_and_heartbeat_stay_up_while_a_switch_drains(
    redis: aioredis.Redis, redis_url: str, namespace: str
) -> None:
    service = Service()
    service.handler_delay_s = 2.0
    settings = settings_for(redis_url, namespace, remote_url="s3://bucket/dvc")
    async with flagged(service, settings):
        await wait_beat(redis, namespace, backend="builtin")

        async def bound() -> bool:  # the first beat may come before the server has its port
            found = await beat(redis, namespace)
            return found is not None and found.fields.get("health_port", "0") != "0"

        await wait_until(bound, timeout_s=10)
        first = await beat(redis, namespace)
        assert first is not None
        port = int(first.fields["health_port"])
        await Publisher(redis, namespace=namespace).publish(cancel_event("slow"))
        await asyncio.sleep(0.3)  # the slow batch is in hand
        await set_flag(redis, namespace, True, revision=1)
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as client:
            for _ in range(5):  # over a second of the drain
                await asyncio.sleep(0.25)
                assert (await client.get("/healthz")).status_code == 200
                assert service.handled == 0
        await wait_beat(redis, namespace, backend="dvc", config_revision="1")
        assert service.handled == 1  # the batch in hand was finished, then the switch


async def test_a_stop_before_the_first_run_ends_it_without_a_restart(
    redis: aioredis.Redis, redis_url: str, namespace: str
) -> None:
    await set_flag(redis, namespace, True, revision=1)  # an override that would restart it
    stop = asyncio.Event()
    stop.set()
    settings = settings_for(redis_url, namespace, remote_url="s3://bucket/dvc")
    await asyncio.wait_for(serve_with_flags(Service().serve, settings, stop=stop), timeout=5)
    assert await beat(redis, namespace) is None
