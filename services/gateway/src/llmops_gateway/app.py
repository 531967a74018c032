"""The only wiring of the gateway: settings in, a FastAPI app out.

:func:`create_app` builds the database engine (lazy: no connection yet), the metrics registry
and the routes; the lifespan migrates the database, connects to Redis and runs the two
background loops next to the web server:

* the outbox relay, which publishes committed outbox rows to the streams (before it starts, every
  ``integration_configs`` row whose current change ``llmops.config`` lost is queued again);
* the status consumer, which folds ``llmops.status`` into the read model, with its heartbeat
  (``llmops:workers:gateway:<consumer>``, as every worker writes one).

Both stop cleanly on shutdown (the consumer finishes and commits the batch in hand).
"""

from __future__ import annotations

import asyncio
import functools
import os
import socket
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager

import httpx
import redis.asyncio as aioredis
from fastapi import FastAPI
from prometheus_client import CollectorRegistry
from sqlalchemy import Engine, text

from llmops_gateway.adapters.mlflow_metrics import MlflowMetrics
from llmops_gateway.api import (
    catalog,
    datasets,
    dead_letters,
    health,
    integration_configs,
    integrations,
    serving,
    training,
    workflows,
)
from llmops_gateway.api.errors import install_error_handlers
from llmops_gateway.api.middleware import HttpMetrics, RequestContextMiddleware
from llmops_gateway.config import GatewaySettings
from llmops_gateway.db.migrate import upgrade
from llmops_gateway.db.models import OUTBOX
from llmops_gateway.db.session import build_engine, session_factory
from llmops_gateway.domain.integration_configs import resync_stream
from llmops_gateway.domain.status import handle_status_event
from llmops_gateway.state import GatewayState
from llmops_shared.events import Stream
from llmops_shared.health import LivenessCheck, ReadinessCheck, health_app
from llmops_shared.heartbeat import Heartbeat
from llmops_shared.logging import get_logger
from llmops_shared.streams import (
    ConsumerRunner,
    OutboxRelay,
    StreamMetrics,
    async_redis,
    redact_url,
    resolve_redis_url,
    sync_redis,
)

_log = get_logger(__name__)


class ConfigurationError(RuntimeError):
    """The settings would make an unsafe or unusable gateway; it refuses to start."""


def check_settings(settings: GatewaySettings) -> None:
    """Refuse to serve mutating endpoints unauthenticated unless explicitly told to."""
    if not settings.api_keys and not settings.auth_disabled:
        raise ConfigurationError(
            "no API keys configured: set API_KEYS (comma-separated) or AUTH_DISABLED=true"
        )
    if settings.auth_disabled:
        _log.warning("auth_disabled", note="mutating endpoints accept unauthenticated requests")


def create_app(settings: GatewaySettings) -> FastAPI:
    """The gateway app for ``settings``; raises :class:`ConfigurationError` on unsafe auth."""
    check_settings(settings)
    engine = build_engine(settings.sqlalchemy_url())
    state = GatewayState(
        settings=settings,
        engine=engine,
        sessions=session_factory(engine),
        registry=CollectorRegistry(),
    )
    # Filled in by the lifespan; the health app reads these dicts on every probe.
    readiness: dict[str, ReadinessCheck] = {
        "db": functools.partial(asyncio.to_thread, _ping_database, engine),
    }
    liveness: dict[str, LivenessCheck] = {}

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        async with AsyncExitStack() as stack:
            stack.callback(engine.dispose)
            await _start(state, stack, readiness, liveness)
            yield
            # leaving the stack: stop the loops, close clients, dispose the engine

    app = FastAPI(
        title="LLM-Ops gateway",
        version="1.0.0",
        description="Validates training and deployment specs, stores them and publishes events "
        "on Redis Streams; folds worker status reports into its read model.",
        docs_url="/docs",
        openapi_url="/openapi.json",
        lifespan=lifespan,
    )
    app.state.gateway = state
    app.state.readiness = readiness
    # Routers carry the full prefix themselves, so route templates (metrics labels) are whole.
    app.include_router(training.router)
    app.include_router(serving.router)
    app.include_router(workflows.router)
    app.include_router(catalog.router)
    app.include_router(datasets.router)
    app.include_router(health.router)
    app.include_router(integrations.router)
    app.include_router(integration_configs.router)
    app.include_router(dead_letters.router)
    install_error_handlers(app)
    app.add_middleware(RequestContextMiddleware, metrics=HttpMetrics(state.registry))
    probes = health_app(
        service=settings.service_name,
        registry=state.registry,
        readiness=readiness,
        liveness=liveness,
    )
    app.router.routes.extend(probes.routes)  # /healthz, /readyz, /metrics at the root
    return app


def _alive(task: asyncio.Task[None]) -> bool:
    return not task.done()


def _ping_database(engine: Engine) -> None:
    with engine.connect() as conn:
        conn.execute(text("SELECT 1"))


def _consumer_name(service: str) -> str:
    """Stable per pod (hostname) so the consumer replays its own pending entries on restart."""
    return f"{service}-{socket.gethostname()}-{os.getpid()}"


async def _start(
    state: GatewayState,
    stack: AsyncExitStack,
    readiness: dict[str, ReadinessCheck],
    liveness: dict[str, LivenessCheck],
) -> None:
    """Migrate, connect, start the relay and the status consumer; register their cleanup."""
    settings = state.settings
    if settings.db_auto_migrate:
        await asyncio.to_thread(upgrade, state.engine)
        _log.info("database_migrated", url=state.engine.url.render_as_string(hide_password=True))
    url = resolve_redis_url(settings, stack)
    redis_sync = sync_redis(url)
    stack.callback(redis_sync.close)
    redis_async = async_redis(url)
    stack.push_async_callback(redis_async.aclose)
    readiness["redis"] = redis_async.ping
    state.redis = redis_async
    await _resync_integration_configs(state, redis_async)

    if settings.mlflow_tracking_uri:
        http = httpx.AsyncClient(timeout=settings.mlflow_timeout_s)
        stack.push_async_callback(http.aclose)
        state.mlflow = MlflowMetrics(http, settings.mlflow_tracking_uri)
        state.http = http

    stop = asyncio.Event()
    state.relay = OutboxRelay(
        state.engine,
        OUTBOX,
        redis_sync,
        batch_size=settings.relay_batch_size,
        poll_interval_s=settings.relay_poll_interval_s,
        namespace=settings.stream_namespace,
        maxlen=settings.stream_maxlen,
    )
    tasks = [asyncio.create_task(state.relay.run(stop), name="outbox-relay")]
    if settings.consume_status:
        consumer = _consumer_name(settings.service_name)
        runner = ConsumerRunner(
            redis_async,
            stream=Stream.STATUS,
            group=settings.service_name,
            consumer=consumer,
            handler=functools.partial(
                handle_status_event, sessions=state.sessions, consumer=settings.service_name
            ),
            settings=settings.consumer,
            metrics=StreamMetrics(state.registry),
            namespace=settings.stream_namespace,
            output_maxlen=settings.stream_maxlen,
        )
        tasks.append(asyncio.create_task(runner.run(stop), name="consume:llmops.status"))
        state.consumer_name = consumer
        heartbeat = Heartbeat(
            redis_async,
            namespace=settings.stream_namespace,
            service=settings.service_name,
            consumer=consumer,
            interval_s=settings.heartbeat_interval_s,
            identity={"streams": Stream.STATUS.value, "environment": settings.environment},
            facts=lambda: {
                "backend": state.engine.dialect.name,
                "healthy": str(all(not t.done() for t in tasks)).lower(),
            },
        )
        beating = asyncio.create_task(heartbeat.run(stop), name="heartbeat")
    else:
        beating = None
    for task in tasks:
        task.add_done_callback(_log_crash)
        liveness[task.get_name()] = functools.partial(_alive, task)
    state.tasks = tasks

    async def stop_loops() -> None:
        stop.set()
        await asyncio.gather(*tasks, return_exceptions=True)
        if beating is not None:
            await asyncio.gather(beating, return_exceptions=True)  # clears the heartbeat
        state.relay = None
        state.mlflow = None
        state.redis = None
        state.http = None

    stack.push_async_callback(stop_loops)
    _log.info(
        "gateway_started",
        redis=redact_url(url),
        namespace=settings.stream_namespace,
        consume_status=settings.consume_status,
    )


async def _resync_integration_configs(state: GatewayState, redis: aioredis.Redis) -> None:
    """Queue (for the relay, which starts next) each ``integration_configs`` row's current change
    that ``llmops.config`` lost, so workers restarted after a Redis data loss follow the table.
    A failure (the database does not answer) is logged, not fatal: the next start tries again."""
    try:
        await resync_stream(state.sessions, redis, namespace=state.settings.stream_namespace)
    except Exception:  # noqa: BLE001 - never keeps the gateway from serving
        _log.exception("integration_configs_resync_failed")


def _log_crash(task: asyncio.Task[None]) -> None:
    if not task.cancelled() and task.exception() is not None:
        _log.error("background_loop_crashed", task=task.get_name(), exc_info=task.exception())
