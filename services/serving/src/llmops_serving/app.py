"""The wiring of the serving worker: settings -> backends and their router -> handler + watcher
-> worker host (:func:`llmops_shared.kube.worker.run_watched_worker`).

The only module that chooses adapters and builds clients, and it does so when called, never at
import: importing the package opens no connection and does not import ``kubernetes`` for the
manifests backend.
"""

from __future__ import annotations

import asyncio
from functools import partial

from llmops_serving.adapters.manifests import ManifestsBackend
from llmops_serving.config import BackendKind, RenderFormat, ServingSettings
from llmops_serving.handlers import handle_serving_event
from llmops_serving.ports import ServingBackend, ServingPorts, StatusSink
from llmops_serving.render.request import RenderOptions
from llmops_serving.router import FormatRouter
from llmops_serving.tombstones import RedisTombstones, Tombstones
from llmops_serving.watcher import Watcher
from llmops_shared.events import Stream
from llmops_shared.kube.settings import image_table
from llmops_shared.kube.watcher import ObservationCache
from llmops_shared.kube.worker import on_cluster, run_watched_worker
from llmops_shared.logging import get_logger
from llmops_shared.streams import Handler
from llmops_shared.worker import WorkerContext, service_main


def build_backend(settings: ServingSettings) -> ServingBackend:
    """The backend ``SERVING_BACKEND`` names; cluster clients are built here, at start-up."""
    if settings.serving_backend is BackendKind.MANIFESTS:
        return ManifestsBackend(settings.manifests_dir)
    # imported here: the manifests backend must not pay for (or need) the kubernetes client
    if settings.serving_backend is BackendKind.KSERVE:
        from llmops_serving.adapters.kserve import KServeBackend

        return on_cluster(settings, KServeBackend)
    from llmops_serving.adapters.deployment import DeploymentBackend

    return on_cluster(settings, DeploymentBackend)


def router_for(backend: ServingBackend, own: RenderFormat) -> FormatRouter:
    """The router of a worker rendering ``own`` with ``backend``: on a cluster, the backend of
    the other format is built on the same API client (and request timeout)."""
    if isinstance(backend, ManifestsBackend):  # one file per endpoint holds either format
        return FormatRouter.single(own, backend)
    from llmops_serving.adapters.deployment import DeploymentBackend
    from llmops_serving.adapters.kserve import KServeBackend

    if not isinstance(backend, KServeBackend | DeploymentBackend):
        raise TypeError(f"no backend of the other format beside a {type(backend).__name__}")
    api_client, timeout = backend.cluster.api_client, backend.cluster.request_timeout_s
    if isinstance(backend, KServeBackend):
        builtin = DeploymentBackend(api_client, request_timeout_s=timeout)
        return FormatRouter(own, {RenderFormat.KSERVE: backend, RenderFormat.BUILTIN: builtin})
    kserve = KServeBackend(api_client, request_timeout_s=timeout)
    return FormatRouter(own, {RenderFormat.KSERVE: kserve, RenderFormat.BUILTIN: backend})


def render_options(settings: ServingSettings) -> RenderOptions:
    """The operator's render choices (the image table from ``IMAGE_TABLE_FILE`` if set)."""
    return RenderOptions(
        deployment_mode=settings.kserve_deployment_mode,
        gpu_available=settings.gpu_available,
        images=image_table(settings.image_table_file),
        cpu=settings.serving_cpu,
        memory=settings.serving_memory,
    )


def build_handler(
    settings: ServingSettings,
    router: FormatRouter,
    *,
    sink: StatusSink,
    cache: ObservationCache,
    tombstones: Tombstones,
) -> Handler:
    """The ``llmops.serving`` handler with its ports bound."""
    ports = ServingPorts(
        router=router,
        options=render_options(settings),
        storage_uri_template=settings.storage_uri_template,
        sink=sink,
        cache=cache,
        tombstones=tombstones,
    )
    return partial(handle_serving_event, ports=ports)


def tombstones_of(context: WorkerContext[ServingSettings]) -> RedisTombstones:
    """The deleted endpoints, in the worker's Redis under its stream namespace."""
    settings = context.settings
    return RedisTombstones(
        context.redis,
        namespace=settings.stream_namespace,
        retention_s=settings.tombstone_retention_s,
    )


async def serve(
    settings: ServingSettings,
    *,
    stop: asyncio.Event | None = None,
    backend: ServingBackend | None = None,
) -> None:
    """Run the worker and its watcher until SIGTERM/SIGINT (or ``stop``).

    Tests call this in process; ``backend`` lets them pass one built on a test API client.
    """
    router = router_for(backend or build_backend(settings), settings.render_format)
    backend = router.backend
    tombstones: list[Tombstones] = []  # on the host's Redis client, once it is resolved
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
    await run_watched_worker(
        settings,
        stream=Stream.SERVING,
        backend=backend,
        prepare=lambda context: tombstones.append(tombstones_of(context)),
        watcher=lambda sink: Watcher(
            router, sink, namespaces=settings.watch_namespaces, interval_s=settings.watch_interval_s
        ),
        handler=lambda sink, cache: build_handler(
            settings, router, sink=sink, cache=cache, tombstones=tombstones[0]
        ),
        stop=stop,
        describe={
            "backend": backend.name,
            "deployment_mode": settings.kserve_deployment_mode.value,
        },
    )


def main() -> None:
    """``python -m llmops_serving``: read the environment, log JSON, serve."""
    service_main("serving", ServingSettings, serve)
