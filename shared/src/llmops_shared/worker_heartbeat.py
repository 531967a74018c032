"""The worker's heartbeat (:mod:`llmops_shared.heartbeat`) and the backend probes it carries.

Split out of :mod:`llmops_shared.worker`, which runs the process: the gateway cannot reach a
cluster or a DVC remote itself, the workers can, so each runs the service's readiness checks
every heartbeat interval and its heartbeat carries the results, read by
``/health/integrations`` as the integration's reachability.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Mapping, Sequence

import redis.asyncio as aioredis

from llmops_shared.config import ServiceSettings
from llmops_shared.health import ReadinessCheck, run_checks
from llmops_shared.heartbeat import Heartbeat


def start_heartbeat(
    redis: aioredis.Redis,
    settings: ServiceSettings,
    *,
    consumer: str,
    streams: Sequence[str],
    readiness: Mapping[str, ReadinessCheck],
    facts: Callable[[], Mapping[str, str]],
    drained: asyncio.Event,
    stop: asyncio.Event,
) -> tuple[asyncio.Task[None], asyncio.Task[None]]:
    """Start the heartbeat (beating until ``drained``, then cleared) and the probes of
    ``readiness`` it carries besides ``facts`` (until ``stop``); (heartbeat, probes) tasks."""
    probes: dict[str, dict[str, object]] = {}
    heartbeat = Heartbeat(
        redis,
        namespace=settings.stream_namespace,
        service=settings.service_name,
        consumer=consumer,
        interval_s=settings.heartbeat_interval_s,
        identity={"streams": ",".join(streams), "environment": settings.environment},
        facts=lambda: {**facts(), **probe_facts(probes)},
    )
    beating = asyncio.create_task(heartbeat.run(drained), name="heartbeat")
    probing = asyncio.create_task(
        probe_backends(readiness, probes, interval_s=settings.heartbeat_interval_s, stop=stop),
        name="probe-backends",
    )
    return beating, probing


def probe_facts(results: Mapping[str, Mapping[str, object]]) -> dict[str, str]:
    """The last backend probes as heartbeat fields: ``probe.<check>.ok`` / ``.latency_ms`` /
    ``.error``, read by ``/health/integrations`` as the integration's reachability."""
    facts: dict[str, str] = {}
    for name, result in results.items():
        # every key every time: HSET merges, so a key left out would keep a stale value
        facts[f"probe.{name}.ok"] = str(bool(result.get("ok"))).lower()
        facts[f"probe.{name}.latency_ms"] = str(result.get("latency_ms") or "")
        facts[f"probe.{name}.error"] = str(result.get("error") or "")
    return facts


async def probe_backends(
    checks: Mapping[str, ReadinessCheck],
    results: dict[str, dict[str, object]],
    *,
    interval_s: float,
    stop: asyncio.Event,
) -> None:
    """Run the service's readiness checks every ``interval_s`` (at least 5 s) for the heartbeat:
    the gateway cannot reach a cluster or a DVC remote itself, the workers can."""
    while not stop.is_set():
        results.update(await run_checks(checks))
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=max(interval_s, 5.0))
