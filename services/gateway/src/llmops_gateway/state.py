"""What the app's wiring hands to the routers: one object on ``app.state.gateway``.

The routers read it through the dependencies in ``api/deps.py``; nothing here is built at import
time. Fields filled in by the lifespan (Redis clients, the relay, the MLflow reader) are None
before start-up. The adapters the use cases are given (dead letters, health probes) are bound
here, to the clients in force when a request asks for them.
"""

from __future__ import annotations

import asyncio
import functools
from dataclasses import dataclass, field

import httpx
import redis.asyncio as aioredis
from prometheus_client import CollectorRegistry
from sqlalchemy import Engine

from llmops_gateway.adapters.http_probe import probe_mlflow
from llmops_gateway.adapters.mlflow_metrics import MlflowMetrics
from llmops_gateway.adapters.redis_dead_letters import RedisDeadLetters
from llmops_gateway.adapters.redis_health import redis_health
from llmops_gateway.config import GatewaySettings
from llmops_gateway.console.live import Changes
from llmops_gateway.db.session import SessionFactory
from llmops_gateway.operations.health_probes import HealthProbes
from llmops_gateway.security.authn import Authenticator
from llmops_shared.streams.outbox import OutboxRelay


@dataclass
class GatewayState:
    """The gateway's shared objects for one app instance."""

    settings: GatewaySettings
    engine: Engine
    sessions: SessionFactory
    registry: CollectorRegistry
    authenticator: Authenticator
    """Verifies a request's credential (configured and stored API keys, OIDC tokens)."""
    relay: OutboxRelay | None = None
    mlflow: MlflowMetrics | None = None
    redis: aioredis.Redis | None = None
    """The async client of the streams' Redis (health of integrations, dead letters)."""
    http: httpx.AsyncClient | None = None
    """The client MLflow is read with (``mlflow_timeout_s``); None without MLFLOW_TRACKING_URI."""
    consumer_name: str | None = None
    """This process's consumer name in the status group (None when it does not consume)."""
    tasks: list[asyncio.Task[None]] = field(default_factory=list)
    console_changes: Changes | None = None
    """Wakes the console's live pages after each fold (set when the console is mounted)."""

    def wake_relay(self) -> None:
        """A transaction with outbox rows committed: publish now rather than at the next poll."""
        if self.relay is not None:
            self.relay.wake()

    def dead_letters(self) -> RedisDeadLetters | None:
        """The dead-letter streams; None while Redis is not connected."""
        if self.redis is None:
            return None
        settings = self.settings
        return RedisDeadLetters(
            self.redis, namespace=settings.stream_namespace, maxlen=settings.stream_maxlen
        )

    def health_probes(self) -> HealthProbes:
        """Redis (PING and the streams) and, when configured, MLflow."""
        uri = self.settings.mlflow_tracking_uri
        return HealthProbes(
            redis=functools.partial(redis_health, self.redis, self.settings.stream_namespace),
            mlflow=None
            if self.http is None or not uri
            else functools.partial(probe_mlflow, self.http, uri),
        )
