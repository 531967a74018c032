"""Per-request context: the correlation id (header, logs, events) and HTTP metrics.

A plain ASGI middleware rather than ``BaseHTTPMiddleware``: it adds no task per request, and
the structlog context variables it binds are visible to the endpoint (sync endpoints run in a
thread that copies the context).
"""

from __future__ import annotations

import re
import time
import uuid
from typing import Final

import structlog
from prometheus_client import CollectorRegistry, Counter, Histogram
from starlette.datastructures import Headers, MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

CORRELATION_HEADER: Final = "X-Correlation-ID"
_VALID_CORRELATION_ID: Final = re.compile(r"^[\x21-\x7e]{1,256}$")  # visible ASCII, as in events


def correlation_id_from(headers: Headers) -> str:
    """The caller's id when it is usable in an event envelope, else a fresh UUID."""
    value = headers.get(CORRELATION_HEADER)
    if value is not None and _VALID_CORRELATION_ID.match(value):
        return value
    return str(uuid.uuid4())


class HttpMetrics:
    """Request count and latency by method, route template and status."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.requests = Counter(
            "llmops_http_requests",
            "HTTP requests handled by the gateway",
            ("method", "route", "status"),
            registry=registry,
        )
        self.seconds = Histogram(
            "llmops_http_request_seconds",
            "HTTP request latency",
            ("method", "route"),
            registry=registry,
        )


class RequestContextMiddleware:
    """Bind the correlation id, echo it in the response, count the request."""

    def __init__(self, app: ASGIApp, metrics: HttpMetrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        correlation_id = correlation_id_from(Headers(scope=scope))
        scope.setdefault("state", {})["correlation_id"] = correlation_id
        status_code = 500
        started = time.perf_counter()

        async def send_with_header(message: Message) -> None:
            nonlocal status_code
            if message["type"] == "http.response.start":
                status_code = message["status"]
                MutableHeaders(scope=message)[CORRELATION_HEADER] = correlation_id
            await send(message)

        try:
            with structlog.contextvars.bound_contextvars(correlation_id=correlation_id):
                await self.app(scope, receive, send_with_header)
        finally:
            route = scope.get("route")
            template = getattr(route, "path", None) or "unmatched"
            method = scope.get("method", "")
            self.metrics.requests.labels(method, template, str(status_code)).inc()
            self.metrics.seconds.labels(method, template).observe(time.perf_counter() - started)
