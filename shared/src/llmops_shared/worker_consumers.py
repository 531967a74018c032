"""The consumer loops of the worker host and their heartbeat, for any process that consumes.

:func:`llmops_shared.worker.run_worker` runs a worker's consumers with :class:`HostedConsumers`;
a process that serves something else and consumes beside it (the gateway's status consumer,
next to uvicorn) runs them with :func:`consumers_beside`, on the same code: one
:class:`~llmops_shared.streams.ConsumerRunner` per subscribed stream (retries, dead letters,
pending-entry replay and reclaim, metrics), consumer group = the service's name, the worker's
heartbeat (with the backend probes it carries), and the same drain on the way out: stop reading,
finish and commit the batch in hand, then clear the heartbeat.

Split out of :mod:`llmops_shared.worker`, which owns the rest of a worker's life cycle (signals,
the health server, background tasks, integration flags).
"""

from __future__ import annotations

import asyncio
import os
import socket
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass

import redis.asyncio as aioredis

from llmops_shared.config import ServiceSettings
from llmops_shared.health import ReadinessCheck
from llmops_shared.streams.consumer import ConsumerRunner
from llmops_shared.streams.metrics import StreamMetrics
from llmops_shared.streams.processing import Handler
from llmops_shared.worker_heartbeat import start_heartbeat


@dataclass(frozen=True)
class Subscription:
    """One stream a service consumes and the handler for its events."""

    stream: str
    handler: Handler


def default_consumer_name(service: str) -> str:
    """Stable across container restarts in one pod (the hostname), so own-PEL replay works."""
    return f"{service}-{socket.gethostname()}-{os.getpid()}"


class HostedConsumers:
    """A service's consumer loops in this process (``consume:<stream>`` tasks) and its heartbeat.

    :meth:`start` the loops, :meth:`beat`, then on the way out :meth:`drain` (the loops stop
    reading and commit the batch in hand) and :meth:`finish` (the heartbeat is cleared: it
    outlives the drain, so a long batch does not look like a dead worker).
    """

    def __init__(
        self,
        redis: aioredis.Redis,
        settings: ServiceSettings,
        subscriptions: Sequence[Subscription],
        *,
        metrics: StreamMetrics,
        consumer: str | None = None,
        stop: asyncio.Event | None = None,
    ) -> None:
        self.redis = redis
        self.settings = settings
        self.name = consumer or default_consumer_name(settings.service_name)
        self.streams = [sub.stream for sub in subscriptions]
        self.stop = stop or asyncio.Event()
        self.drained = asyncio.Event()
        """Set once the loops have committed their last batch (the heartbeat then clears)."""
        self.runners = [
            ConsumerRunner(
                redis,
                stream=sub.stream,
                group=settings.service_name,
                consumer=self.name,
                handler=sub.handler,
                settings=settings.consumer,
                metrics=metrics,
                namespace=settings.stream_namespace,
                output_maxlen=settings.stream_maxlen,
            )
            for sub in subscriptions
        ]
        self.tasks: list[asyncio.Task[None]] = []
        self._heartbeat: tuple[asyncio.Task[None], asyncio.Task[None]] | None = None

    def start(self) -> list[asyncio.Task[None]]:
        """Start one loop per stream, each running until :attr:`stop`."""
        self.tasks = [
            asyncio.create_task(runner.run(self.stop), name=f"consume:{runner.stream}")
            for runner in self.runners
        ]
        return self.tasks

    def beat(
        self,
        facts: Callable[[], Mapping[str, str]],
        readiness: Mapping[str, ReadinessCheck] | None = None,
    ) -> None:
        """Start the heartbeat: ``facts`` (asked before every beat) and the last results of the
        ``readiness`` probes (run every heartbeat interval until :attr:`stop`)."""
        self._heartbeat = start_heartbeat(
            self.redis,
            self.settings,
            consumer=self.name,
            streams=self.streams,
            readiness=readiness or {},
            facts=facts,
            drained=self.drained,
            stop=self.stop,
        )

    async def drain(self) -> None:
        """Stop reading; return once every loop has committed the batch in hand."""
        self.stop.set()
        await asyncio.gather(*self.tasks, return_exceptions=True)

    def finish(self) -> list[asyncio.Task[None]]:
        """After :meth:`drain`: the heartbeat clears itself and its probes stop; the tasks to
        await for that."""
        self.drained.set()
        if self._heartbeat is None:
            return []
        beating, probing = self._heartbeat
        probing.cancel()
        return [beating, probing]


@asynccontextmanager
async def consumers_beside(
    redis: aioredis.Redis,
    settings: ServiceSettings,
    subscriptions: Sequence[Subscription],
    *,
    metrics: StreamMetrics,
    describe: Callable[[], Mapping[str, str]],
    consumer: str | None = None,
) -> AsyncIterator[HostedConsumers]:
    """Run the consumers and their heartbeat (``describe``: its facts) inside another server's
    life cycle; leaving drains them, then clears the heartbeat. The caller supervises
    :attr:`HostedConsumers.tasks` (a crashed loop is not restarted here)."""
    consumers = HostedConsumers(redis, settings, subscriptions, metrics=metrics, consumer=consumer)
    consumers.start()
    consumers.beat(describe)
    try:
        yield consumers
    finally:
        await consumers.drain()
        await asyncio.gather(*consumers.finish(), return_exceptions=True)
