"""The wiring of the tracking worker: settings -> backend -> handler -> the shared worker host.

The only module that chooses adapters and builds clients, and it does so when called, never at
import: importing the package (tests, tools) opens no connection and does not even import
mlflow, which the built-in backend never needs.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from functools import partial
from typing import TYPE_CHECKING, Any, Final

import redis.asyncio as aioredis
from starlette.types import ASGIApp

from llmops_shared.events import Stream
from llmops_shared.logging import get_logger
from llmops_shared.streams import Handler
from llmops_shared.streams.connection import redact_url
from llmops_shared.streams.publisher import Publisher
from llmops_shared.worker import Background, Subscription, WorkerContext, run_worker, service_main
from llmops_tracking.adapters.builtin import BuiltinTracking
from llmops_tracking.adapters.redis_locks import RedisRunLocks
from llmops_tracking.config import TrackingSettings
from llmops_tracking.handlers import handle_training_event
from llmops_tracking.poller import ModelVersionPoller
from llmops_tracking.ports import RunLocks, TrackingBackend, TrackingPorts
from llmops_tracking.webhook_app import build_webhook_app
from llmops_tracking.webhook_registration import register_webhook
from llmops_tracking.webhooks import WebhookReceiver

if TYPE_CHECKING:
    from mlflow.tracking import MlflowClient

    from llmops_tracking.adapters.mlflow_registry import MlflowModelRegistry

RECEIVER_PUBLISH_RETRY_S: Final = 10.0
"""How long the receiver retries a lost Redis before answering 503: below MLflow's 30 s
delivery timeout, so MLflow sees the failure and retries instead of timing out."""

DISABLED_REASON: Final = (
    "model-version events need experiment tracking on MLflow "
    "(EXPERIMENT_TRACKING_ENABLED=false: the built-in backend has no model registry)"
)


def build_client(settings: TrackingSettings) -> MlflowClient:
    """The service's MLflow client, configured to fail fast."""
    from llmops_tracking.adapters.mlflow import mlflow_client

    return mlflow_client(
        settings.mlflow_tracking_uri,
        max_retries=settings.mlflow_http_request_max_retries,
        timeout_s=settings.mlflow_http_request_timeout,
    )


def build_backend(settings: TrackingSettings, client: Any = None) -> TrackingBackend:
    """MLflow when experiment tracking is enabled, else the built-in backend."""
    if not settings.experiment_tracking_enabled:
        return BuiltinTracking()
    # imported here: the built-in backend must not pay for (or need) importing mlflow
    from llmops_tracking.adapters.mlflow import MlflowTracking

    return MlflowTracking(
        client or build_client(settings),
        ui_url=settings.mlflow_ui_url,
        create_margin_s=settings.mlflow_call_budget_s,
    )


def build_locks(settings: TrackingSettings, redis: aioredis.Redis) -> RunLocks:
    """The per-job run locks every replica shares, on the worker's Redis client."""
    return RedisRunLocks(redis, namespace=settings.stream_namespace, ttl_s=settings.run_lock_ttl)


@dataclass
class ModelVersionEvents:
    """The webhook receiver, its registration and the poller, sharing one registry adapter.

    ``registry`` is ``None`` with the built-in backend: the HTTP routes then answer 503 and no
    task runs. The poller is built on first use, once the worker's Redis exists.
    """

    settings: TrackingSettings
    registry: MlflowModelRegistry | None
    _poller: ModelVersionPoller | None = field(default=None, init=False)

    def background(self) -> list[Background[TrackingSettings]]:
        if self.registry is None:
            return []
        tasks = [Background("model-version-poller", self._poll, critical=True)]
        settings = self.settings
        if settings.mlflow_webhook_url and settings.mlflow_webhook_secret:
            tasks.append(Background("mlflow-webhook-registration", self._register, critical=False))
        return tasks

    def http(self, context: WorkerContext[TrackingSettings]) -> ASGIApp:
        if self.registry is None:
            return build_webhook_app(None, poller_status=None, disabled_reason=DISABLED_REASON)
        settings = self.settings
        receiver = WebhookReceiver(
            secret=settings.mlflow_webhook_secret,
            tolerance_s=settings.mlflow_webhook_tolerance_s,
            registry=self.registry,
            redis=context.redis,
            publisher=Publisher(
                context.redis,
                namespace=settings.stream_namespace,
                maxlen=settings.stream_maxlen,
                retry_for_s=RECEIVER_PUBLISH_RETRY_S,
            ),
            namespace=settings.stream_namespace,
        )
        return build_webhook_app(
            receiver, poller_status=lambda: self.poller(context).status.as_dict()
        )

    def poller(self, context: WorkerContext[TrackingSettings]) -> ModelVersionPoller:
        if self._poller is None:
            assert self.registry is not None
            settings = self.settings
            self._poller = ModelVersionPoller(
                registry=self.registry,
                redis=context.redis,
                publisher=context.publisher,
                namespace=settings.stream_namespace,
                interval_s=settings.polling_interval,
                backfill=settings.model_versions_backfill,
                lookback_s=settings.model_versions_lookback_s,
            )
        return self._poller

    async def _poll(self, context: WorkerContext[TrackingSettings]) -> None:
        await self.poller(context).run(context.stop)

    async def _register(self, context: WorkerContext[TrackingSettings]) -> None:
        settings = self.settings
        assert self.registry is not None
        assert settings.mlflow_webhook_url
        assert settings.mlflow_webhook_secret
        await register_webhook(
            self.registry,
            name=settings.mlflow_webhook_name,
            url=settings.mlflow_webhook_url,
            secret=settings.mlflow_webhook_secret,
            stop=context.stop,
        )


def build_model_version_events(
    settings: TrackingSettings, client: MlflowClient | None
) -> ModelVersionEvents:
    """The model-version event source; inert without MLflow."""
    if client is None:
        return ModelVersionEvents(settings, None)
    from llmops_tracking.adapters.mlflow_registry import MlflowModelRegistry

    return ModelVersionEvents(settings, MlflowModelRegistry(client))


def build_handler(settings: TrackingSettings, backend: TrackingBackend, locks: RunLocks) -> Handler:
    """The ``llmops.training`` handler with its ports bound."""
    ports = TrackingPorts(
        backend=backend,
        locks=locks,
        environment=settings.environment,
        experiment_name_template=settings.experiment_name_template,
    )
    return partial(handle_training_event, ports=ports)


async def serve(settings: TrackingSettings, *, stop: asyncio.Event | None = None) -> None:
    """Run the worker until SIGTERM/SIGINT (or ``stop``); tests call this in process."""
    enabled = settings.experiment_tracking_enabled
    client = build_client(settings) if enabled else None
    backend = build_backend(settings, client)
    events = build_model_version_events(settings, client)
    readiness = {"mlflow": backend.ping} if enabled else {}
    log = get_logger(__name__)
    log.info(
        "tracking_backend",
        backend=backend.name,
        mlflow=redact_url(settings.mlflow_tracking_uri) if enabled else None,
        experiment_name_template=settings.experiment_name_template,
    )
    if enabled:
        log.info(
            "model_version_events",
            webhook_receiver=settings.mlflow_webhook_secret is not None,
            webhook_url=redact_url(settings.mlflow_webhook_url)
            if settings.mlflow_webhook_url
            else None,
            polling_interval_s=settings.polling_interval,
            backfill=settings.model_versions_backfill,
        )
        if settings.mlflow_webhook_url and settings.mlflow_webhook_secret is None:
            log.warning(
                "mlflow_webhook_not_registered",
                reason="MLFLOW_WEBHOOK_URL is set but MLFLOW_WEBHOOK_SECRET is not; only the "
                "poller publishes model versions",
            )

    def subscriptions(context: WorkerContext[TrackingSettings]) -> list[Subscription]:
        locks = build_locks(settings, context.redis)
        return [Subscription(Stream.TRAINING, build_handler(settings, backend, locks))]

    await run_worker(
        settings,
        subscriptions,
        readiness=readiness,
        stop=stop,
        background=events.background(),
        http=events.http,
        describe={"backend": backend.name, "enabled": str(enabled).lower()},
    )


def main() -> None:
    """``python -m llmops_tracking``: read the environment, log JSON, serve."""
    service_main("tracking", TrackingSettings, serve)
