"""Worker heartbeats: every process that consumes says, in Redis, that it is alive and what it runs.

Every ``interval_s`` a worker writes one hash, ``{namespace}llmops:workers:{service}:{consumer}``,
with its identity (service, consumer, host, pid, started_at, streams, health port), ``last_seen``
(ISO UTC), whether its loops are alive (``healthy``) and the facts its service describes (at
least ``backend``; an integration's ``enabled`` flag where it has one). The hash expires after
three intervals, so a killed worker disappears by itself; a clean stop deletes it at once.

The hashes are indexed by a sorted set, ``{namespace}llmops:workers`` (member
``{service}:{consumer}``, score = last beat, epoch seconds), so a reader never SCANs a keyspace
that holds millions of idempotency keys. A member whose hash has expired is ignored by readers
and pruned by writers once it is an hour old.

A Redis outage never stops a worker: a failed beat is logged and the next one tries again.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import redis.asyncio as aioredis

from llmops_shared.logging import get_logger

EXPIRY_INTERVALS = 3
"""A hash outlives its last beat by this many intervals; a worker older than that is dead."""
INDEX_RETENTION_S = 3_600
"""Index members whose last beat is older than this are pruned by the next writer."""

Facts = Mapping[str, str]


def heartbeat_index(namespace: str = "") -> str:
    """The sorted set of every worker's ``{service}:{consumer}``."""
    return f"{namespace}llmops:workers"


def heartbeat_key(namespace: str, service: str, consumer: str) -> str:
    """The hash one worker writes."""
    return f"{heartbeat_index(namespace)}:{service}:{consumer}"


def _text(value: bytes | str) -> str:
    return value.decode("utf-8", errors="replace") if isinstance(value, bytes) else value


def _now_iso() -> str:
    return datetime.now(UTC).isoformat()


class Heartbeat:
    """Writes one worker's hash every ``interval_s`` until stopped, then deletes it.

    ``identity`` are the fixed fields; ``facts`` is called before every beat (so a backend
    switched at run time shows at the next beat) and may fail: the last good facts are kept.
    """

    def __init__(
        self,
        redis: aioredis.Redis,
        *,
        namespace: str,
        service: str,
        consumer: str,
        interval_s: float,
        identity: Facts | None = None,
        facts: Callable[[], Facts] | None = None,
    ) -> None:
        self._redis = redis
        self._index = heartbeat_index(namespace)
        self._member = f"{service}:{consumer}"
        self.key = heartbeat_key(namespace, service, consumer)
        self._interval_s = interval_s
        self._facts = facts
        self._last_facts: dict[str, str] = {}
        self._fixed: dict[str, str] = {
            "service": service,
            "consumer": consumer,
            "host": socket.gethostname(),
            "pid": str(os.getpid()),
            "started_at": _now_iso(),
            "interval_s": str(interval_s),
            **(identity or {}),
        }
        self._log = get_logger(__name__).bind(service=service, consumer=consumer)
        self._failing = False

    def fields(self) -> dict[str, str]:
        """What the next beat writes."""
        if self._facts is not None:
            try:
                self._last_facts = {str(k): str(v) for k, v in self._facts().items()}
            except Exception:  # noqa: BLE001 - a describe() bug must not stop the beats
                self._log.warning("heartbeat_describe_failed", exc_info=True)
        return {**self._last_facts, **self._fixed, "last_seen": _now_iso()}

    async def beat(self) -> None:
        """One beat: HSET + PEXPIRE of the hash and ZADD to the index, in one MULTI/EXEC."""
        now = time.time()
        ttl_ms = max(1, int(self._interval_s * EXPIRY_INTERVALS * 1000))
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.hset(self.key, mapping=self.fields())  # type: ignore[arg-type]
            pipe.pexpire(self.key, ttl_ms)
            pipe.zadd(self._index, {self._member: now})
            pipe.zremrangebyscore(self._index, "-inf", now - INDEX_RETENTION_S)
            await pipe.execute()

    async def clear(self) -> None:
        """Delete the hash and the index member (a clean stop)."""
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.delete(self.key)
            pipe.zrem(self._index, self._member)
            await pipe.execute()

    async def run(self, stop: asyncio.Event) -> None:
        """Beat until ``stop``, then clear; Redis errors are logged, never raised."""
        while not stop.is_set():
            try:
                await asyncio.wait_for(self.beat(), timeout=max(self._interval_s, 1.0))
            except Exception as exc:  # noqa: BLE001 - Redis down or slow: retry at the next beat
                if not self._failing:
                    self._log.warning("heartbeat_failed", error=f"{type(exc).__name__}: {exc}")
                self._failing = True
            else:
                if self._failing:
                    self._log.info("heartbeat_recovered")
                self._failing = False
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=self._interval_s)
        try:
            await asyncio.wait_for(self.clear(), timeout=1.0)
        except Exception as exc:  # noqa: BLE001 - the hash then expires by itself
            self._log.warning("heartbeat_clear_failed", error=f"{type(exc).__name__}: {exc}")


@dataclass(frozen=True)
class WorkerBeat:
    """One live worker as its last heartbeat describes it."""

    service: str
    consumer: str
    fields: Mapping[str, str]
    ttl_s: float
    """Seconds until the hash expires (from PTTL, the server's clock)."""
    interval_s: float
    facts: Mapping[str, str] = field(default_factory=dict)

    @property
    def age_s(self) -> float:
        """Seconds since the last beat, from the server-side expiry: no clock skew between
        the worker's host and the reader's."""
        return max(0.0, round(self.interval_s * EXPIRY_INTERVALS - self.ttl_s, 3))

    @property
    def alive(self) -> bool:
        return self.age_s < self.interval_s * EXPIRY_INTERVALS

    @property
    def last_seen(self) -> datetime | None:
        raw = self.fields.get("last_seen")
        try:
            return datetime.fromisoformat(raw) if raw else None
        except ValueError:
            return None

    @property
    def started_at(self) -> datetime | None:
        raw = self.fields.get("started_at")
        try:
            return datetime.fromisoformat(raw) if raw else None
        except ValueError:
            return None


IDENTITY_FIELDS = frozenset(
    {"service", "consumer", "host", "pid", "started_at", "last_seen", "interval_s", "streams",
     "health_port", "healthy", "environment"}
)  # fmt: skip
"""Fields the host writes; the rest are the service's own facts (``describe``)."""


async def read_heartbeats(
    redis: aioredis.Redis, *, namespace: str = "", service: str | None = None
) -> list[WorkerBeat]:
    """Every worker with an unexpired hash (of ``service`` when given), oldest beat first."""
    members: list[Any] = await redis.zrange(heartbeat_index(namespace), 0, -1)
    names = [_text(m) for m in members]
    if service is not None:
        names = [n for n in names if n.split(":", 1)[0] == service]
    if not names:
        return []
    keys = [f"{heartbeat_index(namespace)}:{name}" for name in names]
    async with redis.pipeline(transaction=False) as pipe:
        for key in keys:
            pipe.hgetall(key)
            pipe.pttl(key)
        replies = await pipe.execute()
    beats: list[WorkerBeat] = []
    for index, name in enumerate(names):
        raw, pttl = replies[2 * index], replies[2 * index + 1]
        if not raw or not isinstance(pttl, int) or pttl < 0:
            continue  # expired (or deleted) since the index was read
        fields = {_text(k): _text(v) for k, v in raw.items()}
        try:
            interval = float(fields.get("interval_s", "5"))
        except ValueError:
            interval = 5.0
        svc, _, consumer = name.partition(":")
        beats.append(
            WorkerBeat(
                service=fields.get("service", svc),
                consumer=fields.get("consumer", consumer),
                fields=fields,
                ttl_s=pttl / 1000,
                interval_s=interval,
                facts={k: v for k, v in fields.items() if k not in IDENTITY_FIELDS},
            )
        )
    return beats
