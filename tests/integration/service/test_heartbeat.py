"""Worker heartbeats on a real Redis: the hash a running worker writes (with what its service
describes), its removal on a clean stop, its expiry after a kill, and Redis outages."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Sequence

import pytest
import redis.asyncio as aioredis
from pydantic import SecretStr

from llmops_cli.embedded_redis import EmbeddedRedis
from llmops_shared.config import ServiceSettings
from llmops_shared.events import Envelope, Event, Stream
from llmops_shared.heartbeat import Heartbeat, heartbeat_index, read_heartbeats
from llmops_shared.streams.connection import async_redis
from llmops_shared.worker import Subscription, WorkerContext, run_worker

from support.streams import FAST_CONSUMER, wait_until

pytestmark = pytest.mark.integration

INTERVAL_S = 0.2


@pytest.fixture
def namespace(names: object) -> str:
    return f"test.{names.token}:"  # type: ignore[attr-defined]


def settings_for(redis_url: str, namespace: str, service: str = "beat-test") -> ServiceSettings:
    return ServiceSettings(
        service_name=service,
        redis_url=SecretStr(redis_url),
        stream_namespace=namespace,
        consumer=FAST_CONSUMER,
        health_port=0,
        heartbeat_interval_s=INTERVAL_S,
    )


async def _nothing(event: Event) -> list[Envelope]:
    return []


def subscriptions(_: WorkerContext[ServiceSettings]) -> Sequence[Subscription]:
    return [Subscription(Stream.TRAINING, _nothing)]


async def test_a_running_worker_beats_with_its_backend_and_clears_on_stop(
    redis_url: str, redis: aioredis.Redis, namespace: str
) -> None:
    stop = asyncio.Event()
    described: list[str] = []

    def describe(context: WorkerContext[ServiceSettings]) -> dict[str, str]:
        described.append(context.settings.service_name)
        return {"backend": "builtin", "enabled": "false"}

    settings = settings_for(redis_url, namespace)
    task = asyncio.create_task(
        run_worker(settings, subscriptions, consumer_name="c-1", stop=stop, describe=describe)
    )
    key = f"{namespace}llmops:workers:beat-test:c-1"

    async def beating() -> bool:
        return bool(await redis.exists(key))

    await wait_until(beating, timeout_s=10)
    fields = {k.decode(): v.decode() for k, v in (await redis.hgetall(key)).items()}
    assert fields["service"] == "beat-test"
    assert fields["consumer"] == "c-1"
    assert fields["backend"] == "builtin"
    assert fields["enabled"] == "false"
    assert fields["streams"] == "llmops.training"
    assert fields["pid"] == str(os.getpid())
    assert fields["healthy"] == "true"
    assert fields["interval_s"] == str(INTERVAL_S)
    assert {"host", "started_at", "last_seen", "health_port"} <= set(fields)
    assert 0 < await redis.pttl(key) <= 3 * INTERVAL_S * 1000
    first_seen = fields["last_seen"]

    async def refreshed() -> bool:
        return (await redis.hget(key, "last_seen")) != first_seen.encode()

    await wait_until(refreshed, timeout_s=5)
    assert len(described) >= 2  # asked before every beat

    [beat] = await read_heartbeats(redis, namespace=namespace, service="beat-test")
    assert beat.consumer == "c-1"
    assert beat.alive
    assert beat.facts == {"backend": "builtin", "enabled": "false"}

    stop.set()
    await asyncio.wait_for(task, timeout=10)
    assert not await redis.exists(key)
    assert await redis.zscore(heartbeat_index(namespace), "beat-test:c-1") is None
    assert await read_heartbeats(redis, namespace=namespace) == []


_KILLED_WORKER = textwrap.dedent(
    """
    import asyncio, sys
    from pydantic import SecretStr
    from llmops_shared.config import ServiceSettings
    from llmops_shared.events import Stream
    from llmops_shared.worker import Subscription, run_worker

    async def nothing(event):
        return []

    settings = ServiceSettings(
        service_name="beat-test", redis_url=SecretStr(sys.argv[1]), stream_namespace=sys.argv[2],
        health_port=0, heartbeat_interval_s=float(sys.argv[3]), log_json=False,
    )
    asyncio.run(run_worker(settings, [Subscription(Stream.TRAINING, nothing)],
                           consumer_name="killed", describe={"backend": "manifests"}))
    """
)


async def test_a_killed_worker_s_heartbeat_expires_within_three_intervals(
    redis_url: str, redis: aioredis.Redis, namespace: str
) -> None:
    process = subprocess.Popen(  # noqa: ASYNC220 - started once, killed below
        [sys.executable, "-c", _KILLED_WORKER, redis_url, namespace, str(INTERVAL_S)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    key = f"{namespace}llmops:workers:beat-test:killed"
    try:

        async def beating() -> bool:
            return await redis.hget(key, "backend") == b"manifests"

        await wait_until(beating, timeout_s=30)
    finally:
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=10)
    killed_at = time.monotonic()

    async def expired() -> bool:
        return not await redis.exists(key)

    await wait_until(expired, timeout_s=5, interval_s=0.02)
    assert time.monotonic() - killed_at <= 3 * INTERVAL_S + 0.2
    assert await read_heartbeats(redis, namespace=namespace) == []  # expired: not listed


async def test_beats_survive_a_redis_outage(namespace: str) -> None:
    """The heartbeat never raises while Redis is down and comes back with it; the worker keeps
    running through the outage."""
    server = EmbeddedRedis().start()
    client = async_redis(server.url)
    try:
        stop = asyncio.Event()
        settings = settings_for(server.url, namespace)
        task = asyncio.create_task(
            run_worker(
                settings, subscriptions, consumer_name="c-2", stop=stop,
                describe={"backend": "builtin"},
            )
        )  # fmt: skip
        key = f"{namespace}llmops:workers:beat-test:c-2"

        async def beating() -> bool:
            try:
                return bool(await client.exists(key))
            except Exception:  # noqa: BLE001 - Redis down during the check: not yet
                return False

        await wait_until(beating, timeout_s=10)
        server.stop()
        await asyncio.sleep(4 * INTERVAL_S)  # several failed beats
        assert not task.done()
        server.start()  # empty again (no persistence): the next beats write the hash anew
        await wait_until(beating, timeout_s=10)
        assert not task.done()
        stop.set()
        await asyncio.wait_for(task, timeout=10)
        assert not await client.exists(key)
    finally:
        await client.aclose()
        server.close()


async def test_a_heartbeat_against_no_redis_returns_on_stop() -> None:
    client = async_redis("redis://127.0.0.1:1/0")
    stop = asyncio.Event()
    heartbeat = Heartbeat(
        client, namespace="x:", service="svc", consumer="c", interval_s=0.05,
        facts=lambda: {"backend": "none"},
    )  # fmt: skip
    task = asyncio.create_task(heartbeat.run(stop))
    await asyncio.sleep(0.3)
    assert not task.done()
    stop.set()
    await asyncio.wait_for(task, timeout=5)  # the clear fails too, bounded, logged
    await client.aclose()


async def test_a_failing_describe_keeps_the_last_facts(
    redis: aioredis.Redis, namespace: str
) -> None:
    calls = 0

    def facts() -> dict[str, str]:
        nonlocal calls
        calls += 1
        if calls > 1:
            raise RuntimeError("boom")
        return {"backend": "dvc"}

    heartbeat = Heartbeat(
        redis, namespace=namespace, service="svc", consumer="c", interval_s=1, facts=facts
    )
    await heartbeat.beat()
    await heartbeat.beat()
    assert await redis.hget(heartbeat.key, "backend") == b"dvc"
    await heartbeat.clear()
