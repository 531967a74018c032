"""Whether MLflow answers: the HTTP probe of ``/health/integrations``."""

from __future__ import annotations

import asyncio
import time

import httpx

from llmops_gateway.operations.health_probes import ProbeResult, describe
from llmops_shared.streams.connection import redact_url


async def probe_mlflow(http: httpx.AsyncClient, tracking_uri: str, timeout_s: float) -> ProbeResult:
    """``GET /api/2.0/mlflow/experiments/search?max_results=1``: ok on a 200; never raises."""
    url = tracking_uri.rstrip("/") + "/api/2.0/mlflow/experiments/search"
    started = time.perf_counter()
    try:
        response = await asyncio.wait_for(
            http.get(url, params={"max_results": 1}, timeout=timeout_s), timeout_s + 0.1
        )
    except Exception as exc:  # noqa: BLE001 - unreachable is an answer
        return ProbeResult(ok=False, url=redact_url(tracking_uri), error=describe(exc))
    latency = round((time.perf_counter() - started) * 1000, 2)
    ok = response.status_code == httpx.codes.OK
    return ProbeResult(
        ok=ok,
        url=redact_url(tracking_uri),
        latency_ms=latency,
        status_code=response.status_code,
        error=None if ok else f"MLflow answered {response.status_code}",
    )
