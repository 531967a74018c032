"""``GET /llm-ops/v1/health/integrations``: every integration's flag, backend and workers, the
consumer groups' lag and pending, dead letters, Redis and MLflow reachability.

Read-only and open like the other GETs. 200 when Redis answers (``status`` ok or degraded),
503 when it does not, with the body still describing what is known; never a 500. See
:mod:`llmops_gateway.domain.integrations` for the rules.

The flags asked for (``integration_configs``) are read in a worker thread under
:data:`CONFIGS_TIMEOUT_S`, so a slow or unreachable database neither blocks the event loop nor
the answer: the environment's flags stand in, and ``configsError`` says why.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from llmops_gateway.api.deps import State
from llmops_gateway.api.schemas import API_PREFIX
from llmops_gateway.domain.integration_configs import (
    EffectiveConfig,
    environment_configs,
    list_configs,
)
from llmops_gateway.domain.integrations import IntegrationsHealth, describe, integrations_health
from llmops_gateway.state import GatewayState
from llmops_shared.events import IntegrationArea
from llmops_shared.logging import get_logger

router = APIRouter(prefix=API_PREFIX, tags=["health"])
_log = get_logger(__name__)

CONFIGS_TIMEOUT_S = 1.0
"""Bound of the ``integration_configs`` read (it runs next to the Redis and MLflow probes)."""

_RESPONSES: dict[int | str, dict[str, Any]] = {
    503: {"model": IntegrationsHealth, "description": "Redis unavailable (status: unavailable)"},
}


@router.get(
    "/health/integrations",
    response_model=IntegrationsHealth,
    responses=_RESPONSES,
    summary="Integrations: flags, backends, workers, consumer lag, dead letters",
)
async def integrations(state: State) -> JSONResponse:
    """Per integration area (experiment_tracking, serving, workflow_orchestration,
    model_registry, data_versioning, github_sync, status_consumer): the enabled flag and backend
    the live workers report, each worker's last heartbeat, the service's consumer group on its
    stream (lag, pending), the stream's dead letters; plus Redis (PING) and MLflow
    reachability and latency. Answers within about two seconds even when Redis is down."""
    settings = state.settings
    configs, configs_error = await _configs(state)
    report = await integrations_health(
        settings,
        state.redis,
        state.http,
        now=datetime.now(UTC),
        configs=configs,
        configs_error=configs_error,
    )
    code = 503 if report.status == "unavailable" else 200
    return JSONResponse(report.model_dump(mode="json", by_alias=True), status_code=code)


async def _configs(
    state: GatewayState,
) -> tuple[dict[IntegrationArea, EffectiveConfig], str | None]:
    """The flags asked for in the gateway's environment, and why the table's could not be read
    (then the environment's stand in, so ``MODEL_REGISTRY_ENABLED=false`` still holds)."""
    settings = state.settings
    environment = settings.environment
    try:
        configs = await asyncio.wait_for(
            asyncio.to_thread(list_configs, state.sessions, settings, [environment]),
            timeout=CONFIGS_TIMEOUT_S,
        )
    except Exception as exc:  # noqa: BLE001 - the database is not this report's subject
        error = f"integration_configs unreadable ({describe(exc)}); showing the environment's flags"
        _log.warning("integration_configs_unreadable", error=describe(exc))
        return {c.area: c for c in environment_configs(settings, environment)}, error
    return {c.area: c for c in configs}, None
