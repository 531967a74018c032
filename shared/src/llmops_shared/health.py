"""Health endpoints every service exposes: ``/healthz`` (live), ``/readyz`` (ready), ``/metrics``.

Liveness answers whether the process is doing its job at all (its loops are running); readiness
answers whether it can do it now (Redis and its backends reachable). Kubernetes restarts on the
first and stops routing on the second, so the two must not be mixed up.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable, Iterator, Mapping

import uvicorn
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.types import ASGIApp

from llmops_shared.streams.errors import describe

ReadinessCheck = Callable[[], Awaitable[object]]
"""Raises (or times out) when the dependency is not usable; any return value means ready."""

LivenessCheck = Callable[[], bool]

_CHECK_TIMEOUT_S = 2.0


async def run_checks(checks: Mapping[str, ReadinessCheck]) -> dict[str, dict[str, object]]:
    """Run every check concurrently with a timeout; report ok, latency and error per check."""

    async def one(check: ReadinessCheck) -> dict[str, object]:
        started = time.perf_counter()
        try:
            await asyncio.wait_for(check(), timeout=_CHECK_TIMEOUT_S)
        except Exception as exc:  # noqa: BLE001 - any failure means "not ready", with its reason
            return {"ok": False, "error": describe(exc)}
        return {"ok": True, "latency_ms": round((time.perf_counter() - started) * 1000, 2)}

    results = await asyncio.gather(*(one(check) for check in checks.values()))
    return dict(zip(checks.keys(), results, strict=True))


def health_app(
    *,
    service: str,
    registry: CollectorRegistry,
    readiness: Mapping[str, ReadinessCheck],
    liveness: Mapping[str, LivenessCheck],
    extra: ASGIApp | None = None,
) -> Starlette:
    """The three endpoints as a small ASGI app (mounted by the gateway, served by workers);
    ``extra`` (a service's own API) answers every other path."""

    async def healthz(_: Request) -> JSONResponse:
        failed = [name for name, alive in liveness.items() if not alive()]
        body = {"status": "ok" if not failed else "failing", "service": service, "failed": failed}
        return JSONResponse(body, status_code=200 if not failed else 503)

    async def readyz(_: Request) -> JSONResponse:
        checks = await run_checks(readiness)
        ready = all(result["ok"] for result in checks.values())
        body = {"status": "ready" if ready else "not_ready", "service": service, "checks": checks}
        return JSONResponse(body, status_code=200 if ready else 503)

    async def metrics(_: Request) -> Response:
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)

    routes: list[BaseRoute] = [
        Route("/healthz", healthz),
        Route("/readyz", readyz),
        Route("/metrics", metrics),
    ]
    if extra is not None:
        routes.append(Mount("/", app=extra))
    return Starlette(routes=routes)


class _EmbeddedUvicorn(uvicorn.Server):
    """uvicorn without its own signal handling: the service's host owns SIGTERM."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


class HealthServer:
    """Serve ``health_app`` with uvicorn inside the service's event loop."""

    def __init__(self, app: Starlette, *, host: str, port: int) -> None:
        config = uvicorn.Config(app, host=host, port=port, log_config=None, access_log=False)
        self._server = _EmbeddedUvicorn(config)

    async def serve(self, stop: asyncio.Event) -> None:
        task = asyncio.create_task(self._server.serve())
        await stop.wait()
        self._server.should_exit = True
        await task

    @property
    def port(self) -> int | None:
        """The bound port (useful with port 0 in tests)."""
        servers = getattr(self._server, "servers", [])
        for server in servers:
            for sock in server.sockets:
                return int(sock.getsockname()[1])
        return None
