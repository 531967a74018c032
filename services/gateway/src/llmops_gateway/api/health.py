"""``GET /llm-ops/v1/health``: a summary of the service and its dependencies for humans.

Probes use ``/healthz`` and ``/readyz`` at the root (the shared health app); this endpoint
gives the same checks under the API prefix, plus the outbox backlog, to any viewer (the probes
need no credential; this summary names the environment and the background tasks).
"""

from __future__ import annotations

import asyncio
from typing import Any

from fastapi import Request
from fastapi.responses import JSONResponse

from llmops_gateway.api.auth import guarded
from llmops_gateway.api.deps import State
from llmops_gateway.api.routes import api_router
from llmops_gateway.api.schemas.common import Responses
from llmops_gateway.security.access import VIEW_ANY
from llmops_shared.health import ReadinessCheck, run_checks

router = api_router("", tag="health")


_DEGRADED: Responses = {
    503: {
        "description": "Degraded: the same summary, with status 'degraded' and the failed "
        "check (or, when the OIDC issuer does not answer, {detail})"
    },
}


@router.get(
    "/health", summary="Service, database and Redis summary", **guarded(VIEW_ANY, _DEGRADED)
)
async def health(request: Request, state: State) -> JSONResponse:
    checks: dict[str, ReadinessCheck] = request.app.state.readiness
    results = await run_checks(checks)
    ok = all(result["ok"] for result in results.values())
    body: dict[str, Any] = {
        "service": state.settings.service_name,
        "status": "ok" if ok else "degraded",
        "environment": state.settings.environment,
        "checks": results,
        "backgroundTasks": {task.get_name(): not task.done() for task in state.tasks},
    }
    if state.relay is not None and results.get("db", {}).get("ok"):
        body["outboxPending"] = await asyncio.to_thread(state.relay.pending_count)
    return JSONResponse(body, status_code=200 if ok else 503)
