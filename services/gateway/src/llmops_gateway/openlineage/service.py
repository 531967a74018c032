"""Start the emitter beside the web server (called by the app's lifespan) and stop it cleanly."""

from __future__ import annotations

import asyncio
from contextlib import AsyncExitStack

from prometheus_client import CollectorRegistry

from llmops_gateway.config import GatewaySettings
from llmops_gateway.db.session import SessionFactory
from llmops_gateway.openlineage.emitter import LineageEmitter, LineageMetrics
from llmops_gateway.openlineage.events import Naming
from llmops_gateway.openlineage.sender import lineage_client
from llmops_shared.logging import get_logger

TASK_NAME = "openlineage-emitter"

_log = get_logger(__name__)


def start_emitter(
    settings: GatewaySettings,
    sessions: SessionFactory,
    registry: CollectorRegistry,
    stack: AsyncExitStack,
) -> asyncio.Task[None] | None:
    """The emitter's task when ``OPENLINEAGE_URL`` is set (None otherwise); leaving ``stack``
    stops it (the event in flight is finished) and closes its HTTP client."""
    if settings.openlineage_url is None:
        return None
    client = lineage_client(settings)
    if client is None:
        _log.warning(
            "openlineage_disabled",
            note="OPENLINEAGE_DISABLED=true: run events are queued, not sent, until it is unset",
        )
        return None
    stack.callback(client.close)
    emitter = LineageEmitter(
        sessions,
        client.emit,
        Naming.of(settings),
        LineageMetrics(registry),
        output_grace_s=settings.openlineage_output_grace_s,
        poll_interval_s=settings.openlineage_poll_interval_s,
        retry_initial_s=settings.openlineage_retry_initial_s,
        # a send takes at most a connect and a read timeout; the rest is the database
        lease_s=2 * settings.openlineage_timeout_s + 30,
    )
    stop = asyncio.Event()
    task = asyncio.create_task(emitter.run(stop), name=TASK_NAME)

    async def stop_emitter() -> None:
        stop.set()
        await asyncio.gather(task, return_exceptions=True)

    stack.push_async_callback(stop_emitter)
    _log.info(
        "openlineage_emitter_started",
        url=settings.openlineage_url,
        endpoint=settings.openlineage_endpoint,
        namespace=settings.openlineage_namespace,
    )
    return task
