"""The host every worker service runs in: Redis, consumers, background tasks, health, shutdown.

A service's ``app.py`` builds its adapters and hands its subscriptions (or a factory of them) and
its background tasks to :func:`run_worker`, and its ``main()`` is :func:`service_main`; this
module owns the rest of the process life cycle so that no service re-implements it:

* Redis from ``REDIS_URL``, else an embedded ``redis-server`` (logged loudly: not for production),
  resolved once: the consumers, the service's :class:`WorkerContext` publisher and its
  background tasks share one client of one server;
* one :class:`ConsumerRunner` per subscribed stream, consumer group = service name
  (:mod:`llmops_shared.worker_consumers`, which the gateway's status consumer runs on too);
* :class:`Background` tasks beside the consumers (a watcher, a start-up probe), supervised like
  the consumer loops when critical;
* ``/healthz`` (every consumer loop and critical background task alive), ``/readyz`` (Redis and
  the service's own checks), ``/metrics``;
* a heartbeat in Redis every ``heartbeat_interval_s`` (:mod:`llmops_shared.heartbeat`): who the
  worker is, whether its loops are alive, and what the service describes (its backend, its
  integration flag), read by the gateway's ``/health/integrations``;
* the integration flag of the service's area (:mod:`llmops_shared.integration_flags`): read from
  ``llmops.config`` before the consumers start and watched while they run; a change that selects
  another backend drains the worker and raises :class:`IntegrationFlagChanged`, which
  :func:`serve_with_flags` answers by serving again on the switched settings;
* SIGTERM/SIGINT: stop reading, finish and commit the batch in hand, exit 0.
"""

from __future__ import annotations

import asyncio
import gc
import os
import signal
import sys
from collections.abc import Awaitable, Callable, Coroutine, Mapping, Sequence
from contextlib import AsyncExitStack
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

import redis.asyncio as aioredis
from prometheus_client import CollectorRegistry
from pydantic import SecretStr
from starlette.types import ASGIApp

from llmops_shared.config import ServiceSettings
from llmops_shared.health import HealthServer, ReadinessCheck, health_app
from llmops_shared.integration_flags import IntegrationFlag
from llmops_shared.logging import configure_logging, get_logger
from llmops_shared.streams.connection import async_redis, redact_url, resolve_redis_url
from llmops_shared.streams.metrics import StreamMetrics
from llmops_shared.streams.publisher import Publisher
from llmops_shared.worker_consumers import HostedConsumers
from llmops_shared.worker_consumers import Subscription as Subscription  # re-exported
from llmops_shared.worker_flags import CONFIGURED, flag_facts, flag_watcher, load_flags

S = TypeVar("S", bound=ServiceSettings)


@dataclass(frozen=True)
class WorkerContext(Generic[S]):
    """What the host has built once Redis is resolved, for the service's handlers and tasks.

    ``settings`` carries the resolved ``redis_url`` (the embedded server's when ``REDIS_URL`` is
    unset), so anything that must reach the same server (a subprocess) can. ``publisher`` is on
    the worker's own client, namespace and stream cap: handlers report progress mid-event and
    watchers report observations through it without opening a second connection. A service that
    wants another retry window builds its own :class:`Publisher` on ``redis``.
    """

    settings: S
    redis: aioredis.Redis
    publisher: Publisher
    stop: asyncio.Event


@dataclass(frozen=True)
class Background(Generic[S]):
    """A task the worker runs beside its consumers, started once the context exists.

    ``critical``: the worker cannot do its job without it (a watcher), so it is supervised like
    a consumer loop: listed in ``/healthz``, and its end stops the worker, re-raising its error;
    returning before ``stop`` is set counts as an error too, since a watcher that ends quietly
    would leave a worker that looks healthy but no longer reports. A non-critical one (a
    start-up probe) may return or fail; a failure is logged and changes nothing else.
    """

    name: str
    run: Callable[[WorkerContext[S]], Awaitable[None]]
    critical: bool = True


class BackgroundTaskEnded(RuntimeError):
    """A critical background task returned while the worker was still running."""


class IntegrationFlagChanged(Exception):
    """The service's integration flag now selects another backend; serve again on ``flag``."""

    def __init__(self, area: str, flag: IntegrationFlag) -> None:
        super().__init__(f"{area} is now enabled={flag.enabled} system={flag.system}")
        self.area = area
        self.flag = flag


SubscriptionsFactory = Callable[[WorkerContext[S]], Sequence[Subscription]]
"""Builds the subscriptions from the context: the handlers get ``context.publisher``."""

Describe = Mapping[str, str] | Callable[[WorkerContext[S]], Mapping[str, str]]
"""The facts a worker's heartbeat carries besides its identity: at least ``backend``, and the
integration's ``enabled`` flag where the service has one. A callable is asked before every beat."""


def _stop_then_force(stop: asyncio.Event) -> None:
    """First signal: drain and stop. Second: the operator insists; exit at once (the pending
    entries are replayed or reclaimed later, nothing is lost)."""
    if stop.is_set():
        get_logger(__name__).warning("worker_forced_exit")
        os._exit(130)
    stop.set()


def _running(task: asyncio.Task[None]) -> Callable[[], bool]:
    """A liveness check: the loop has not returned or crashed."""
    return lambda: not task.done()


async def _supervised(task: Background[S], context: WorkerContext[S]) -> None:
    """Run one background task under its policy (see :class:`Background`)."""
    try:
        await task.run(context)
    except Exception:
        if task.critical:
            raise
        get_logger(__name__).warning("worker_background_failed", task=task.name, exc_info=True)
        return
    if task.critical and not context.stop.is_set():
        raise BackgroundTaskEnded(f"background task {task.name!r} returned while running")


def tune_garbage_collector(gen0_threshold: int = 10_000) -> None:
    """Freeze the objects built at start-up and run the young-generation collector less often.

    Decoding an event builds many short-lived objects; at CPython's default threshold (700
    allocations) the collector runs every few events. Measured on the 1 KB training event
    (bench/streams.py): decode 25 us -> 15 us per event, consumer throughput +30 %. Garbage that
    is not cyclic is still freed at once by reference counting.
    """
    gc.collect()  # a previous run's cycles (an in-process restart) must not be frozen forever
    gc.freeze()
    gc.set_threshold(gen0_threshold, 50, 100)


async def run_worker(
    settings: S,
    subscriptions: Sequence[Subscription] | SubscriptionsFactory[S],
    *,
    readiness: Mapping[str, ReadinessCheck] | None = None,
    consumer_name: str | None = None,
    stop: asyncio.Event | None = None,
    background: Sequence[Background[S]] = (),
    http: Callable[[WorkerContext[S]], ASGIApp] | None = None,
    describe: Describe[S] | None = None,
) -> None:
    """Run the service until SIGTERM/SIGINT (or ``stop``), then drain and return.

    ``http`` builds the service's own HTTP API (an MLflow webhook receiver, github-sync's
    ``/poll``), served on the health port behind ``/healthz``, ``/readyz`` and ``/metrics``.

    ``subscriptions`` is a list, or a factory the host calls with the :class:`WorkerContext`
    once Redis is resolved and before any background task starts, so a background task may use
    what the factory built (the watcher that is also the handler's cache). Any consumer loop or
    critical background task that crashes stops the whole worker and its error propagates: the
    orchestrator restarts the process. On the way out the consumers drain first, then the
    background tasks still running are cancelled and awaited.

    ``describe`` gives the facts the worker's heartbeat reports (``{"backend": "mlflow",
    "enabled": "true"}``); the heartbeat is written every ``settings.heartbeat_interval_s``,
    survives Redis outages (a failed beat is retried at the next one) and is deleted on the
    way out.
    """
    log = get_logger(__name__)
    requested = stop or asyncio.Event()  # the caller's (and the signals') stop
    stop = asyncio.Event()  # this run's: also set to restart on a flag change
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, _stop_then_force, requested)

    async with AsyncExitStack() as stack:
        forward = asyncio.create_task(requested.wait(), name="stop-requested")
        forward.add_done_callback(lambda _: stop.set())
        stack.callback(forward.cancel)
        url = resolve_redis_url(settings, stack)
        redis = async_redis(url)
        stack.push_async_callback(redis.aclose)
        flags = flag_watcher(settings, redis)
        switched: IntegrationFlag | None = None
        if flags is not None:
            switched = await load_flags(flags, requested)
            if requested.is_set():
                return
            if switched is not None:
                raise IntegrationFlagChanged(str(settings.integration_area), switched)
        context = WorkerContext(
            settings=settings.model_copy(update={"redis_url": SecretStr(url)}),
            redis=redis,
            publisher=Publisher(
                redis, namespace=settings.stream_namespace, maxlen=settings.stream_maxlen
            ),
            stop=stop,
        )
        subs = subscriptions(context) if callable(subscriptions) else subscriptions
        registry = CollectorRegistry()
        metrics = StreamMetrics(registry)
        consumers = HostedConsumers(
            redis, settings, subs, metrics=metrics, consumer=consumer_name, stop=stop
        )
        tune_garbage_collector()
        tasks = consumers.start()
        extras = [asyncio.create_task(_supervised(b, context), name=b.name) for b in background]
        critical = [t for t, b in zip(extras, background, strict=True) if b.critical]
        supervised = [*tasks, *critical]
        checks: dict[str, ReadinessCheck] = {"redis": redis.ping, **(readiness or {})}
        app = health_app(
            service=settings.service_name,
            registry=registry,
            readiness=checks,
            liveness={task.get_name(): _running(task) for task in supervised},
            extra=http(context) if http is not None else None,
        )
        server = HealthServer(app, host=settings.health_host, port=settings.health_port)
        # the health server and the heartbeat outlive the drain (a long batch in hand must not
        # look dead to a liveness probe); they stop once the consumers have committed
        health_task = asyncio.create_task(server.serve(consumers.drained), name="health")

        async def watch_flags() -> None:
            nonlocal switched
            assert flags is not None
            switched = await flags.changed(stop)
            if switched is not None:
                log.warning(
                    "integration_flag_changed",
                    area=settings.integration_area,
                    enabled=switched.enabled,
                    system=switched.system,
                    revision=switched.revision,
                    action="draining, then serving on the switched backend",
                )
                stop.set()

        flag_task = asyncio.create_task(watch_flags(), name="integration-flags") if flags else None

        def facts() -> Mapping[str, str]:
            described = describe(context) if callable(describe) else (describe or {})
            return {
                **described,
                **flag_facts(flags),
                "healthy": str(all(not t.done() for t in supervised)).lower(),
                "health_port": str(server.port or settings.health_port),
            }

        consumers.beat(facts, readiness)
        log.info(
            "worker_started",
            redis=redact_url(url),
            streams=consumers.streams,
            background=[b.name for b in background],
            consumer=consumers.name,
            health_port=settings.health_port,
        )
        stopping = asyncio.create_task(stop.wait(), name="stop")
        try:
            # the loops return only on ``stop`` and a critical task's early return raises, so the
            # first task to finish is either the stop signal or a failure
            watched = [stopping, *supervised, health_task, *([flag_task] if flag_task else [])]
            done, _ = await asyncio.wait(watched, return_when=asyncio.FIRST_COMPLETED)
        finally:  # also when the caller is cancelled: never leave tasks behind
            stop.set()  # one loop failing stops the rest: the orchestrator restarts the process
            await asyncio.gather(stopping, consumers.drain(), return_exceptions=True)
            for task in extras:
                task.cancel()  # a watcher returns on ``stop`` by itself; a probe may not
            await asyncio.gather(*extras, return_exceptions=True)
            heartbeat = consumers.finish()
            if flag_task is not None:
                flag_task.cancel()
            tail = [health_task, *heartbeat, *([flag_task] if flag_task else [])]
            await asyncio.gather(*tail, return_exceptions=True)  # the beat is cleared
        # the task that stopped the worker first, then any that failed while draining
        crashable = [*supervised, health_task, *([flag_task] if flag_task else [])]
        for ended in (*done, *crashable):
            error = None if ended.cancelled() else ended.exception()
            if error is not None:
                log.error("worker_loop_crashed", task=ended.get_name(), exc_info=error)
                raise error
        if switched is not None and not requested.is_set():
            log.info("worker_stopped", restart="integration flag changed")
            raise IntegrationFlagChanged(str(settings.integration_area), switched)
        log.info("worker_stopped")


Serve = Callable[..., Coroutine[Any, Any, None]]
"""A service's ``serve(settings, *, stop=None)``."""


async def serve_with_flags(serve: Serve, settings: S, *, stop: asyncio.Event | None = None) -> None:
    """Run ``serve`` and run it again on switched settings whenever the integration flag changes.

    The switch is always applied to ``settings`` (what the process started with), so turning a
    flag off and on returns to exactly the configured backend. A flag the settings cannot
    switch to (a validator refuses the combination) is never applied: the worker logs it,
    reports it in its heartbeat (``config_error``) and stays on what it runs.
    """
    log = get_logger(__name__)
    stop = stop or asyncio.Event()  # one for every run: a SIGTERM between two runs is kept
    CONFIGURED.set(settings)
    current = settings
    while True:
        try:
            await serve(current, stop=stop)
            return
        except IntegrationFlagChanged as change:
            if stop.is_set():
                return
            # the watcher checked the flag against these settings before it drained
            current = settings.with_integration_flag(change.flag.enabled, change.flag.system)
            log.info(
                "integration_flag_applied",
                area=change.area,
                enabled=change.flag.enabled,
                system=change.flag.system,
                revision=change.flag.revision,
            )


def service_main(name: str, settings_factory: Callable[[], S], serve: Serve) -> None:
    """A worker's ``main()``: read the environment, configure logging, serve until stopped.

    Invalid settings print pydantic's explanation and exit 2 before anything starts, so a
    misconfigured deployment fails loudly at once instead of crash-looping on a traceback.
    """
    try:
        settings = settings_factory()
    except ValueError as exc:  # pydantic's ValidationError: say what is wrong and stop
        print(f"{name}: invalid configuration:\n{exc}", file=sys.stderr)
        raise SystemExit(2) from exc
    configure_logging(
        service=settings.service_name, level=settings.log_level, json=settings.log_json
    )
    asyncio.run(serve_with_flags(serve, settings))
