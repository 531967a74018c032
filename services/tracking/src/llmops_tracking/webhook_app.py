"""The tracking service's own HTTP API: ``POST /mlflow/webhook`` and ``GET /mlflow/poller``.

Split out of :mod:`llmops_tracking.webhooks`: the routes (and the capped body read) are served
on the worker's health port and hand deliveries to the :class:`WebhookReceiver`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Final

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from starlette.requests import ClientDisconnect

from llmops_shared.logging import get_logger
from llmops_tracking.webhooks import MAX_BODY_BYTES, WebhookError, WebhookReceiver

WEBHOOK_PATH: Final = "/mlflow/webhook"
POLLER_PATH: Final = "/mlflow/poller"

_log = get_logger(__name__)


def build_webhook_app(
    receiver: WebhookReceiver | None,
    *,
    poller_status: Callable[[], dict[str, object]] | None,
    disabled_reason: str | None = None,
) -> FastAPI:
    """The tracking service's own HTTP API, served on its health port.

    ``receiver`` and ``poller_status`` are ``None`` when experiment tracking does not use
    MLflow; the routes then answer 503 with ``disabled_reason``.
    """
    app = FastAPI(title="llmops tracking", docs_url=None, redoc_url=None, openapi_url=None)
    reason = disabled_reason or "model-version events need experiment tracking on MLflow"

    @app.post(WEBHOOK_PATH)
    async def mlflow_webhook(request: Request) -> JSONResponse:
        if receiver is None:
            return JSONResponse({"detail": reason}, status_code=503)
        try:
            body = await _read_body(request, MAX_BODY_BYTES)
            result = await receiver.receive(request.headers, body)
        except WebhookError as exc:
            if exc.status in (401, 400, 413):
                _log.warning("mlflow_webhook_refused", status=exc.status, detail=exc.detail)
            return JSONResponse({"detail": exc.detail}, status_code=exc.status)
        return JSONResponse(result)

    @app.get(POLLER_PATH)
    async def poller() -> JSONResponse:
        if poller_status is None:
            return JSONResponse({"detail": reason}, status_code=503)
        return JSONResponse(poller_status())

    return app


async def _read_body(request: Request, limit: int) -> bytes:
    """The body, refused with 413 once it is over ``limit`` bytes: a declared
    ``Content-Length`` before reading anything, then while streaming (chunked bodies)."""
    declared = request.headers.get("content-length")
    if declared is not None:
        try:
            size = int(declared)
        except ValueError:
            raise WebhookError(400, "Content-Length is not a number") from None
        if size > limit:
            raise WebhookError(413, f"body larger than {limit} bytes")
    chunks: list[bytes] = []
    received = 0
    try:
        async for chunk in request.stream():
            received += len(chunk)
            if received > limit:
                raise WebhookError(413, f"body larger than {limit} bytes")
            chunks.append(chunk)
    except ClientDisconnect:
        raise WebhookError(400, "the client went away before sending the body") from None
    return b"".join(chunks)
