"""The wiring of the registry worker: settings -> Hub backend -> handler -> the shared worker host.

The only module that builds clients, and it does so when called, never at import: importing the
package (tests, tools) opens no connection and does not import huggingface_hub.

Progress reports are published while a handler runs, so the handler is built by a subscription
factory the worker host calls once Redis is resolved, with a
:class:`~llmops_shared.streams.Publisher` of its own on the host's client (a short retry window:
progress is best effort).

Readiness: Redis only. The Hub is not a readiness check on purpose: a Hub outage must not take
the worker out of service (imports then fail with a clear reason after the retries, update checks
answer with an error), and an offline worker never needs it. Reachability is logged at start-up
instead (one cheap request, never fatal).
"""

from __future__ import annotations

import asyncio
from functools import partial

from llmops_registry.config import RegistrySettings
from llmops_registry.handlers import handle_catalog_event
from llmops_registry.ports import RegistryBackend, RegistryPorts, StatusSink
from llmops_shared.events import Stream
from llmops_shared.logging import get_logger
from llmops_shared.streams import Handler, Publisher
from llmops_shared.worker import (
    Background,
    Subscription,
    WorkerContext,
    run_worker,
    service_main,
)


def build_backend(settings: RegistrySettings) -> RegistryBackend:
    """The Hugging Face Hub backend (online, or on the seeded cache when offline)."""
    # imported here: importing the package must not import huggingface_hub
    from llmops_registry.adapters.huggingface import HubBackend
    from llmops_registry.adapters.store import SnapshotStore

    return HubBackend(
        endpoint=settings.hf_endpoint,
        token=settings.hf_token,
        cache_dir=settings.hf_cache_dir,
        store=SnapshotStore(settings.model_store_dir),
        offline=settings.hf_hub_offline,
        retry_attempts=settings.hub_retry_attempts,
        retry_wait_s=settings.hub_retry_wait_s,
        timeout_s=settings.hub_timeout_s,
    )


def build_handler(
    settings: RegistrySettings, backend: RegistryBackend, *, sink: StatusSink | None
) -> Handler:
    """The ``llmops.catalog`` handler with its ports bound."""
    ports = RegistryPorts(
        backend=backend, sink=sink, progress_interval_s=settings.progress_interval_s
    )
    return partial(handle_catalog_event, ports=ports)


async def probe_hub(settings: RegistrySettings, backend: RegistryBackend) -> None:
    """Log whether the Hub answers (one cheap request); never raises, never fails the worker."""
    log = get_logger(__name__)
    if settings.hf_hub_offline:
        log.info("hub_offline", cache_dir=str(settings.hf_cache_dir))
        return
    try:
        await backend.ping()
        log.info("hub_reachable", endpoint=settings.hf_endpoint)
    except Exception as exc:  # noqa: BLE001 - informative only
        log.warning(
            "hub_unreachable",
            endpoint=settings.hf_endpoint,
            error=f"{type(exc).__name__}: {exc}",
            note="not a readiness check: imports retry, then fail with a clear reason",
        )


async def serve(
    settings: RegistrySettings,
    *,
    stop: asyncio.Event | None = None,
    backend: RegistryBackend | None = None,
) -> None:
    """Run the worker until SIGTERM/SIGINT (or ``stop``).

    Tests call this in process; ``backend`` lets them pass one of their own.
    """
    backend = backend or build_backend(settings)
    get_logger(__name__).info(
        "registry_backend",
        backend=backend.name,
        endpoint=settings.hf_endpoint,
        token_configured=settings.hf_token is not None,
        offline=settings.hf_hub_offline,
        cache_dir=str(settings.hf_cache_dir),
        model_store_dir=str(settings.model_store_dir),
    )

    def subscriptions(context: WorkerContext[RegistrySettings]) -> list[Subscription]:
        sink = Publisher(
            context.redis,
            namespace=settings.stream_namespace,
            maxlen=settings.stream_maxlen,
            retry_for_s=2.0,  # progress is best effort: never hold an import for long
        )
        return [Subscription(Stream.CATALOG, build_handler(settings, backend, sink=sink))]

    async def probe(_: WorkerContext[RegistrySettings]) -> None:
        await probe_hub(settings, backend)

    await run_worker(
        settings,
        subscriptions,
        stop=stop,
        background=[Background("hub-probe", probe, critical=False)],
        describe={
            "backend": backend.name,
            "offline": str(settings.hf_hub_offline).lower(),
            "endpoint": settings.hf_endpoint,
        },
    )


def main() -> None:
    """``python -m llmops_registry``: read the environment, log JSON, serve."""
    service_main("registry", RegistrySettings, serve)
