"""What the probes of ``/health/integrations`` bring, and the probes themselves as the use case
is given them (:class:`HealthProbes`): Redis in :mod:`llmops_gateway.adapters.redis_health`,
MLflow in :mod:`llmops_gateway.adapters.http_probe`. A probe never raises: a dependency that is
down is its answer (``ok`` false, ``error`` saying why).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from llmops_shared.events import Stream
from llmops_shared.heartbeat import WorkerBeat


def describe(exc: BaseException) -> str:
    if isinstance(exc, TimeoutError):
        return "timed out"
    return f"{type(exc).__name__}: {exc}"[:300]


@dataclass(frozen=True)
class ProbeResult:
    """One reachability probe; ``url`` and ``status_code`` for an HTTP one (MLflow)."""

    ok: bool
    latency_ms: float | None = None
    error: str | None = None
    url: str | None = None
    status_code: int | None = None


@dataclass(frozen=True)
class ConsumerGroup:
    """A consumer group of a stream, as ``XINFO GROUPS`` gives it."""

    name: str
    consumers: int
    pending: int
    lag: int | None
    last_delivered_id: str | None


@dataclass(frozen=True)
class StreamFacts:
    """What Redis holds: the live heartbeats, every stream's groups and dead letters."""

    beats: list[WorkerBeat]
    groups: dict[Stream, dict[str, ConsumerGroup]]
    dead_letters: dict[Stream, int]


@dataclass(frozen=True)
class HealthProbes:
    """The probes the report is made of, bound to the gateway's clients by its wiring."""

    redis: Callable[[], Awaitable[tuple[ProbeResult, StreamFacts | None]]]
    """PING, then (None when it failed) what the streams hold."""
    mlflow: Callable[[float], Awaitable[ProbeResult]] | None = None
    """MLflow within the given seconds; None when no tracking URI (or client) is configured."""
