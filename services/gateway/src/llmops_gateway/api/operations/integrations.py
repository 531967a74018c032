"""``GET /llm-ops/v1/health/integrations``: every integration's flag, backend and workers, the
consumer groups' lag and pending, dead letters, Redis and MLflow reachability.

Read-only; any viewer may look. 200 when Redis answers (``status`` ok or degraded),
503 when it does not, with the body still describing what is known; never a 500. See
:mod:`llmops_gateway.operations.integrations_health` for the rules.
"""

from __future__ import annotations

from datetime import UTC, datetime

from fastapi.responses import JSONResponse

from llmops_gateway.api.auth import guarded
from llmops_gateway.api.deps import Probes, State
from llmops_gateway.api.routes import api_router
from llmops_gateway.api.schemas.common import ErrorMessage, Responses
from llmops_gateway.api.schemas.integrations import IntegrationsHealth
from llmops_gateway.operations.integrations_health import integrations_health
from llmops_gateway.security.access import VIEW_ANY

router = api_router("", tag="health")

_RESPONSES: Responses = {
    503: {
        "model": IntegrationsHealth | ErrorMessage,
        "description": "Redis unavailable (status: unavailable); {detail} when the OIDC issuer "
        "does not answer",
    },
}


@router.get(
    "/health/integrations",
    response_model=IntegrationsHealth,
    **guarded(VIEW_ANY, _RESPONSES),
    summary="Integrations: flags, backends, workers, consumer lag, dead letters",
)
async def integrations(state: State, probes: Probes) -> JSONResponse:
    """Per integration area (experiment_tracking, serving, workflow_orchestration,
    model_registry, data_versioning, github_sync, status_consumer): the enabled flag and backend
    the live workers report, each worker's last heartbeat, the service's consumer group on its
    stream (lag, pending), the stream's dead letters; plus Redis (PING) and MLflow
    reachability and latency. Answers within about two seconds even when Redis is down."""
    report = await integrations_health(
        state.settings, state.sessions, probes, now=datetime.now(UTC)
    )
    code = 503 if report.status == "unavailable" else 200
    body = IntegrationsHealth.of(report).model_dump(mode="json", by_alias=True)
    return JSONResponse(body, status_code=code)
