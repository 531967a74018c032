"""What Redis tells of the integrations: PING, the workers' heartbeats, each stream's consumer
groups and dead letters; the Redis half of ``/health/integrations``.

Bounded: the PING, then the reads (one pipeline), each under :data:`REDIS_TIMEOUT_S`; nothing
here raises on Redis being down, the failure is the answer.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import redis.asyncio as aioredis

from llmops_gateway.operations.health_probes import (
    ConsumerGroup,
    ProbeResult,
    StreamFacts,
    describe,
)
from llmops_shared.events import Stream, dead_letter_stream
from llmops_shared.heartbeat import read_heartbeats

REDIS_TIMEOUT_S = 1.0
"""Bound of the PING, and of the reads that follow it (one pipeline)."""


def _text(value: Any) -> str:
    return value.decode("utf-8", errors="replace") if isinstance(value, bytes) else str(value)


async def redis_health(
    redis: aioredis.Redis | None, namespace: str
) -> tuple[ProbeResult, StreamFacts | None]:
    """The PING's answer and, when it succeeded, what the streams hold (else None)."""
    if redis is None:
        return ProbeResult(
            ok=False, error="not connected (the gateway is starting or stopping)"
        ), None
    started = time.perf_counter()
    try:
        await asyncio.wait_for(redis.ping(), timeout=REDIS_TIMEOUT_S)
    except Exception as exc:  # noqa: BLE001 - any failure is the answer, never a 500
        return ProbeResult(ok=False, error=describe(exc)), None
    latency_ms = round((time.perf_counter() - started) * 1000, 2)
    try:
        facts = await asyncio.wait_for(_read(redis, namespace), timeout=REDIS_TIMEOUT_S)
    except Exception as exc:  # noqa: BLE001 - reported, never a 500
        return ProbeResult(ok=False, latency_ms=latency_ms, error=describe(exc)), None
    return ProbeResult(ok=True, latency_ms=latency_ms), facts


async def _read(redis: aioredis.Redis, namespace: str) -> StreamFacts:
    beats = await read_heartbeats(redis, namespace=namespace)
    streams = list(Stream)
    async with redis.pipeline(transaction=False) as pipe:
        for stream in streams:
            key = f"{namespace}{stream}"
            pipe.xinfo_groups(key)
            pipe.xlen(dead_letter_stream(key))
        replies = await pipe.execute(raise_on_error=False)
    groups: dict[Stream, dict[str, ConsumerGroup]] = {}
    dead: dict[Stream, int] = {}
    for index, stream in enumerate(streams):
        infos, length = replies[2 * index], replies[2 * index + 1]
        dead[stream] = int(length) if isinstance(length, int) else 0
        found: dict[str, ConsumerGroup] = {}
        if isinstance(infos, list):  # an error (no such stream yet) means no groups
            for info in infos:
                lag = info.get("lag")
                last = info.get("last-delivered-id")
                group = ConsumerGroup(
                    name=_text(info["name"]),
                    consumers=int(info.get("consumers", 0)),
                    pending=int(info.get("pending", 0)),
                    lag=int(lag) if lag is not None else None,
                    last_delivered_id=_text(last) if last is not None else None,
                )
                found[group.name] = group
        groups[stream] = found
    return StreamFacts(beats, groups, dead)
