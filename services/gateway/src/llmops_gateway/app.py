"""The only wiring of the gateway: settings in, a FastAPI app out.

:func:`create_app` builds the database engine (lazy: no connection yet), the metrics registry
and the routes; the lifespan migrates the database, connects to Redis and runs the two
background loops next to the web server:

* the outbox relay, which publishes committed outbox rows to the streams (before it starts, every
  ``integration_configs`` row whose current change ``llmops.config`` lost is queued again);
* the status consumer, which folds ``llmops.status`` into the read model, on the workers' own
  consumer host (:func:`llmops_shared.worker_consumers.consumers_beside`: the same runner,
  metrics, retries, dead letters, heartbeat ``llmops:workers:gateway:<consumer>`` and drain).

With ``OPENLINEAGE_URL`` set, a third loop sends the training jobs' OpenLineage run events the
fold queued (:mod:`llmops_gateway.openlineage`).

All stop cleanly on shutdown (the consumer finishes and commits the batch in hand, then the
emitter and the relay stop).

It is also the composition root: the adapters (Redis, MLflow over HTTP) are built here and
reach the use cases through :class:`~llmops_gateway.state.GatewayState`.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import AsyncIterator, Sequence
from contextlib import AsyncExitStack, asynccontextmanager
from urllib.parse import urlsplit

import httpx
import redis.asyncio as aioredis
from fastapi import FastAPI
from prometheus_client import CollectorRegistry
from sqlalchemy import Engine, text

from llmops_gateway.adapters.mlflow_metrics import MlflowMetrics
from llmops_gateway.adapters.redis_config_stream import config_revisions
from llmops_gateway.api import (
    catalog,
    datasets,
    health,
    lineage,
    model_versions,
    serving,
    training,
    workflows,
)
from llmops_gateway.api.audit_trail import AuditTrail
from llmops_gateway.api.errors import install_error_handlers
from llmops_gateway.api.middleware import HttpMetrics, RequestContextMiddleware
from llmops_gateway.api.operations import (
    audit,
    dead_letters,
    integration_configs,
    integrations,
    keys,
)
from llmops_gateway.config import GatewaySettings
from llmops_gateway.console.mount import install_console
from llmops_gateway.db.migrate import upgrade
from llmops_gateway.db.models import OUTBOX
from llmops_gateway.db.session import build_engine, session_factory
from llmops_gateway.domain.audit import record_audit
from llmops_gateway.domain.keys import stored_key
from llmops_gateway.domain.status import handle_status_event
from llmops_gateway.openlineage.service import start_emitter
from llmops_gateway.operations.integration_configs import resync_stream
from llmops_gateway.security.authn import Authenticator
from llmops_gateway.security.oidc import OidcConfig, OidcVerifier
from llmops_gateway.state import GatewayState
from llmops_shared.events import Envelope, Event, Stream
from llmops_shared.health import LivenessCheck, ReadinessCheck, health_app
from llmops_shared.logging import get_logger
from llmops_shared.streams import (
    StreamMetrics,
    async_redis,
    redact_url,
    resolve_redis_url,
    sync_redis,
)
from llmops_shared.streams.outbox import OutboxRelay
from llmops_shared.worker_consumers import Subscription, consumers_beside

_log = get_logger(__name__)


class ConfigurationError(RuntimeError):
    """The settings would make an unsafe or unusable gateway; it refuses to start."""


def check_settings(settings: GatewaySettings) -> None:
    """Refuse to serve without a way to authenticate unless explicitly told to. A stored key
    cannot be the only way: making one needs an admin (a bootstrap key or an OIDC admin)."""
    if not settings.api_keys and settings.oidc_issuer is None and not settings.auth_disabled:
        raise ConfigurationError(
            "no way to authenticate: set API_KEYS (comma-separated), or OIDC_ISSUER, or "
            "AUTH_DISABLED=true"
        )
    if settings.auth_disabled and settings.environment == "prod":
        raise ConfigurationError("AUTH_DISABLED=true is refused with ENVIRONMENT=prod")
    if settings.auth_disabled:
        _log.warning("auth_disabled", note="every request is accepted as an admin")


def oidc_verifier(settings: GatewaySettings) -> OidcVerifier | None:
    """The OIDC token verifier, when ``OIDC_ISSUER`` is set (no request is made yet)."""
    if settings.oidc_issuer is None:
        return None
    if not settings.oidc_audience:
        raise ConfigurationError("OIDC_ISSUER needs OIDC_AUDIENCE (the tokens' aud)")
    for name in ("oidc_issuer", "oidc_jwks_url"):
        url = getattr(settings, name)
        if url is not None and not _trusted_transport(url):
            raise ConfigurationError(
                f"{name.upper()} {url!r} must be https (the signing keys come from there; "
                "plain http is accepted on loopback only)"
            )
    try:
        config = OidcConfig(
            issuer=settings.oidc_issuer,
            audience=settings.oidc_audience,
            jwks_url=settings.oidc_jwks_url,
            roles_claim=settings.oidc_roles_claim,
            role_map={claim: tuple(roles) for claim, roles in settings.oidc_role_map.items()},
            subject_claim=settings.oidc_subject_claim,
            algorithms=tuple(settings.oidc_algorithms),
        )
    except ValueError as exc:
        raise ConfigurationError(f"OIDC settings: {exc}") from exc
    return OidcVerifier(config)


def _trusted_transport(url: str) -> bool:
    parts = urlsplit(url)
    return parts.scheme == "https" or (
        parts.scheme == "http" and parts.hostname in {"127.0.0.1", "localhost", "::1"}
    )


def create_app(settings: GatewaySettings) -> FastAPI:
    """The gateway app for ``settings``; raises :class:`ConfigurationError` on unsafe auth."""
    check_settings(settings)
    engine = build_engine(settings.sqlalchemy_url())
    sessions = session_factory(engine)
    state = GatewayState(
        settings=settings,
        engine=engine,
        sessions=sessions,
        registry=CollectorRegistry(),
        authenticator=Authenticator(
            configured_keys=settings.api_keys,
            stored_key=functools.partial(stored_key, sessions),
            oidc=oidc_verifier(settings),
            disabled=settings.auth_disabled,
        ),
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
    app.include_router(model_versions.router)
    app.include_router(lineage.router)
    app.include_router(datasets.router)
    app.include_router(health.router)
    app.include_router(integrations.router)
    app.include_router(integration_configs.router)
    app.include_router(dead_letters.router)
    app.include_router(keys.router)
    app.include_router(audit.router)
    state.console_changes = install_console(app)
    install_error_handlers(app)
    # The last added is the outermost: the audit trail sees the correlation id.
    app.add_middleware(AuditTrail, record=functools.partial(record_audit, sessions))
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
        min_replicas=settings.relay_min_replicas,
        wait_timeout_ms=settings.relay_wait_timeout_ms,
        registry=state.registry,
    )
    relay = asyncio.create_task(state.relay.run(stop), name="outbox-relay")

    async def stop_relay() -> None:
        stop.set()
        await asyncio.gather(relay, return_exceptions=True)
        state.relay = None
        state.mlflow = None
        state.redis = None
        state.http = None

    stack.push_async_callback(stop_relay)  # after the consumer has drained (the stack is LIFO)
    tasks = [relay]
    # stops after the consumer has drained too; its rows are sent by the next start
    lineage = start_emitter(settings, state.sessions, state.registry, stack)
    if lineage is not None:
        tasks.append(lineage)
    if settings.consume_status:
        handler = functools.partial(fold_and_notify, state=state, consumer=settings.service_name)
        consumers = await stack.enter_async_context(
            consumers_beside(
                redis_async,
                settings,
                [Subscription(Stream.STATUS, handler)],
                metrics=StreamMetrics(state.registry),
                describe=lambda: {
                    "backend": state.engine.dialect.name,
                    "healthy": str(all(not t.done() for t in state.tasks)).lower(),
                },
            )
        )
        (loop,) = consumers.tasks
        loop.set_name(f"consume:{Stream.STATUS}")  # the contract stream's name, not its key
        tasks.append(loop)
        state.consumer_name = consumers.name
    for task in tasks:
        task.add_done_callback(_log_crash)
        liveness[task.get_name()] = functools.partial(_alive, task)
    state.tasks = tasks
    if state.console_changes is not None:  # pushed last: the first thing a stop does
        stack.callback(state.console_changes.close)  # end the console's live streams
    _log.info(
        "gateway_started",
        redis=redact_url(url),
        namespace=settings.stream_namespace,
        consume_status=settings.consume_status,
    )


async def fold_and_notify(
    event: Event, *, state: GatewayState, consumer: str
) -> Sequence[Envelope]:
    """The status consumer's handler: fold the report, then wake the console's live pages."""
    emitted = await handle_status_event(
        event,
        sessions=state.sessions,
        consumer=consumer,
        openlineage=state.settings.openlineage_url is not None,
    )
    if state.console_changes is not None:
        state.console_changes.notify()
    return emitted


async def _resync_integration_configs(state: GatewayState, redis: aioredis.Redis) -> None:
    """Queue (for the relay, which starts next) each ``integration_configs`` row's current change
    that ``llmops.config`` lost, so workers restarted after a Redis data loss follow the table.
    A failure (the database does not answer) is logged, not fatal: the next start tries again."""
    revisions = functools.partial(
        config_revisions, redis, namespace=state.settings.stream_namespace
    )
    try:
        await resync_stream(state.sessions, revisions)
    except Exception:  # noqa: BLE001 - never keeps the gateway from serving
        _log.exception("integration_configs_resync_failed")


def _log_crash(task: asyncio.Task[None]) -> None:
    if not task.cancelled() and task.exception() is not None:
        _log.error("background_loop_crashed", task=task.get_name(), exc_info=task.exception())
