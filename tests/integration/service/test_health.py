"""Health endpoints: liveness from loops, readiness from real dependency checks, metrics."""

from __future__ import annotations

import httpx
import pytest
import redis.asyncio as aioredis
from prometheus_client import CollectorRegistry

from llmops_shared.health import health_app
from llmops_shared.streams import StreamMetrics, async_redis

pytestmark = pytest.mark.integration


def client_for(**kwargs: object) -> httpx.AsyncClient:
    app = health_app(service="tracking", **kwargs)  # type: ignore[arg-type]
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://svc")


async def test_ready_when_redis_answers_and_not_when_it_does_not(
    redis: aioredis.Redis,
) -> None:
    unreachable = async_redis("redis://127.0.0.1:1/0")
    registry = CollectorRegistry()
    async with client_for(
        registry=registry, readiness={"redis": redis.ping}, liveness={}
    ) as client:
        ready = await client.get("/readyz")
    assert ready.status_code == 200
    assert ready.json()["checks"]["redis"]["ok"] is True

    async with client_for(
        registry=registry,
        readiness={"redis": redis.ping, "mlflow": unreachable.ping},
        liveness={},
    ) as client:
        not_ready = await client.get("/readyz")
    assert not_ready.status_code == 503
    body = not_ready.json()
    assert body["status"] == "not_ready"
    assert body["checks"]["redis"]["ok"] is True
    assert body["checks"]["mlflow"]["ok"] is False
    assert "ConnectionError" in body["checks"]["mlflow"]["error"]
    await unreachable.aclose()


async def test_liveness_fails_when_a_loop_died() -> None:
    alive = {"consume:llmops.training": lambda: True}
    dead = {**alive, "consume:llmops.status": lambda: False}
    async with client_for(registry=CollectorRegistry(), readiness={}, liveness=alive) as client:
        assert (await client.get("/healthz")).status_code == 200
    async with client_for(registry=CollectorRegistry(), readiness={}, liveness=dead) as client:
        response = await client.get("/healthz")
    assert response.status_code == 503
    assert response.json()["failed"] == ["consume:llmops.status"]


async def test_metrics_expose_the_runtime_counters() -> None:
    registry = CollectorRegistry()
    StreamMetrics(registry).bind("llmops.training", "tracking").acked.inc(3)
    async with client_for(registry=registry, readiness={}, liveness={}) as client:
        response = await client.get("/metrics")
    assert response.status_code == 200
    assert (
        'llmops_events_acked_total{group="tracking",stream="llmops.training"} 3.0' in response.text
    )
