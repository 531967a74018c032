"""The wiring of the serving worker: settings -> backend -> handler + watcher -> worker host.

The only module that chooses adapters and builds clients, and it does so when called, never at
import: importing the package opens no connection and does not import ``kubernetes`` for the
manifests backend.

The watcher runs as a critical background task of the worker host, on the host's Redis client
and publisher, sharing its ``stop`` event: SIGTERM stops both, and a crashed (or quietly ended)
watcher stops the worker (the orchestrator restarts the process), as a crashed consumer loop
does. The watcher is also the handler's observation cache, so both are built in one place, the
subscription factory, which the host calls before it starts the watcher.
"""

from __future__ import annotations

import asyncio
from functools import partial

from llmops_serving.adapters.manifests import ManifestsBackend
from llmops_serving.config import BackendKind, RenderFormat, ServingSettings
from llmops_serving.handlers import handle_serving_event
from llmops_serving.ports import NoCache, ObservationCache, ServingBackend, ServingPorts, StatusSink
from llmops_serving.render.request import RenderOptions
from llmops_serving.watcher import Watcher
from llmops_shared.events import Stream
from llmops_shared.logging import get_logger
from llmops_shared.specs import ImageTable
from llmops_shared.streams import Handler
from llmops_shared.worker import (
    Background,
    Subscription,
    WorkerContext,
    run_worker,
    service_main,
)


def build_backend(settings: ServingSettings) -> ServingBackend:
    """The backend ``SERVING_BACKEND`` names; cluster clients are built here, at start-up."""
    if settings.serving_backend is BackendKind.MANIFESTS:
        return ManifestsBackend(settings.manifests_dir)
    # imported here: the manifests backend must not pay for (or need) the kubernetes client
    from llmops_serving.adapters.kube import api_client_from_config

    api_client = api_client_from_config(settings.kubeconfig, settings.kube_context)
    timeout = settings.kube_request_timeout_s
    if settings.serving_backend is BackendKind.KSERVE:
        from llmops_serving.adapters.kserve import KServeBackend

        return KServeBackend(api_client, request_timeout_s=timeout)
    from llmops_serving.adapters.deployment import DeploymentBackend

    return DeploymentBackend(api_client, request_timeout_s=timeout)


def render_options(settings: ServingSettings) -> RenderOptions:
    """The operator's render choices (the image table from ``IMAGE_TABLE_FILE`` if set)."""
    images = (
        ImageTable.from_yaml_file(settings.image_table_file)
        if settings.image_table_file
        else ImageTable()
    )
    return RenderOptions(
        deployment_mode=settings.kserve_deployment_mode,
        gpu_available=settings.gpu_available,
        images=images,
        cpu=settings.serving_cpu,
        memory=settings.serving_memory,
    )


def build_handler(
    settings: ServingSettings,
    backend: ServingBackend,
    *,
    sink: StatusSink,
    cache: ObservationCache,
) -> Handler:
    """The ``llmops.serving`` handler with its ports bound."""
    ports = ServingPorts(
        backend=backend,
        options=render_options(settings),
        builtin=settings.render_format is RenderFormat.BUILTIN,
        storage_uri_template=settings.storage_uri_template,
        sink=sink,
        cache=cache,
    )
    return partial(handle_serving_event, ports=ports)


async def serve(
    settings: ServingSettings,
    *,
    stop: asyncio.Event | None = None,
    backend: ServingBackend | None = None,
) -> None:
    """Run the worker and its watcher until SIGTERM/SIGINT (or ``stop``).

    Tests call this in process; ``backend`` lets them pass one built on a test API client.
    """
    backend = backend or build_backend(settings)
    get_logger(__name__).info(
        "serving_backend",
        backend=backend.name,
        render_format=settings.render_format.value,
        deployment_mode=settings.kserve_deployment_mode.value,
        gpu_available=settings.gpu_available,
        manifests_dir=str(settings.manifests_dir)
        if settings.serving_backend is BackendKind.MANIFESTS
        else None,
        watcher=backend.observable,
    )
    watcher: Watcher | None = None

    def subscriptions(context: WorkerContext[ServingSettings]) -> list[Subscription]:
        nonlocal watcher
        if backend.observable:
            watcher = Watcher(
                backend,
                context.publisher,
                namespaces=settings.watch_namespaces,
                interval_s=settings.watch_interval_s,
            )
        cache: ObservationCache = watcher or NoCache()
        handler = build_handler(settings, backend, sink=context.publisher, cache=cache)
        return [Subscription(Stream.SERVING, handler)]

    async def watch(context: WorkerContext[ServingSettings]) -> None:
        assert watcher is not None  # built by subscriptions(), which the host calls first
        await watcher.run(context.stop)

    await run_worker(
        settings,
        subscriptions,
        readiness={backend.name: backend.ping},
        stop=stop,
        background=[Background("watcher", watch)] if backend.observable else [],
        describe={
            "backend": backend.name,
            "deployment_mode": settings.kserve_deployment_mode.value,
        },
    )


def main() -> None:
    """``python -m llmops_serving``: read the environment, log JSON, serve."""
    service_main("serving", ServingSettings, serve)
