"""Health summary, probes, metrics, correlation ids and JSON errors."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from integration.gateway.harness import API, Gateway

pytestmark = pytest.mark.integration


async def test_health_summary_and_probes(gateway: Gateway) -> None:
    summary = await gateway.client.get(f"{API}/health")
    assert summary.status_code == 200
    body = summary.json()
    assert body["service"] == "gateway"
    assert body["status"] == "ok"
    assert body["checks"]["db"]["ok"]
    assert body["checks"]["redis"]["ok"]
    assert body["backgroundTasks"] == {"outbox-relay": True, "consume:llmops.status": True}
    assert body["outboxPending"] == 0

    ready = await gateway.client.get("/readyz")
    assert ready.status_code == 200
    assert set(ready.json()["checks"]) == {"db", "redis"}
    live = await gateway.client.get("/healthz")
    assert live.status_code == 200
    assert live.json()["failed"] == []


async def test_unreachable_redis_makes_the_gateway_not_ready(
    start_gateway: Callable[..., Any],
) -> None:
    gateway: Gateway = await start_gateway(redis_url="redis://127.0.0.1:1/0")
    ready = await gateway.client.get("/readyz")
    assert ready.status_code == 503
    assert ready.json()["checks"]["redis"]["ok"] is False
    summary = await gateway.client.get(f"{API}/health")
    assert summary.status_code == 503
    assert summary.json()["status"] == "degraded"
    # Reads still work: the database is fine.
    assert (await gateway.client.get(f"{API}/training/jobs")).status_code == 200


async def test_metrics_count_requests_by_route_template(gateway: Gateway) -> None:
    await gateway.client.get(f"{API}/training/jobs/some-id")
    metrics = (await gateway.client.get("/metrics")).text
    assert (
        'llmops_http_requests_total{method="GET",route="/llm-ops/v1/training/jobs/{job_id}",'
        'status="404"} 1.0'
    ) in metrics
    assert "llmops_consumer_pending" in metrics or "llmops_events_consumed" in metrics


async def test_correlation_id_is_echoed_or_replaced_when_unusable(gateway: Gateway) -> None:
    echoed = await gateway.client.get(f"{API}/training/jobs", headers={"X-Correlation-ID": "abc"})
    assert echoed.headers["X-Correlation-ID"] == "abc"
    replaced = await gateway.client.get(
        f"{API}/training/jobs", headers={"X-Correlation-ID": "has spaces"}
    )
    assert replaced.headers["X-Correlation-ID"] != "has spaces"
    assert len(replaced.headers["X-Correlation-ID"]) == 36


async def test_unknown_paths_and_methods_answer_json(gateway: Gateway) -> None:
    missing = await gateway.client.get(f"{API}/nothing-here")
    assert missing.status_code == 404
    assert missing.json() == {"detail": "Not Found"}
    wrong_method = await gateway.client.delete(f"{API}/training/jobs")
    assert wrong_method.status_code == 405
    assert "detail" in wrong_method.json()
