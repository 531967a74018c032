"""``GET /llm-ops/v1/health/integrations``: every integration's flag, backend and workers, the
consumer groups' lag and pending, dead letters, Redis and MLflow reachability.

Read-only and open like the other GETs. 200 when Redis answers (``status`` ok or degraded),
503 when it does not, with the body still describing what is known; never a 500. See
:mod:`llmops_gateway.domain.integrations` for the rules.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter
from fastapi.responses import JSONResponse
from sqlalchemy.exc import SQLAlchemyError

from llmops_gateway.api.deps import State
from llmops_gateway.api.schemas import API_PREFIX
from llmops_gateway.domain.integration_configs import list_configs
from llmops_gateway.domain.integrations import IntegrationsHealth, integrations_health

router = APIRouter(prefix=API_PREFIX, tags=["health"])

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
    try:
        configs = {
            c.area: c for c in list_configs(state.sessions, settings, [settings.environment])
        }
    except SQLAlchemyError:  # the database is not this report's subject: report without it
        configs = {}
    report = await integrations_health(
        settings, state.redis, state.http, now=datetime.now(UTC), configs=configs
    )
    code = 503 if report.status == "unavailable" else 200
    return JSONResponse(report.model_dump(mode="json", by_alias=True), status_code=code)
