"""The wiring of the serving worker: settings -> backend -> handler + watcher -> worker host.

The only module that chooses adapters and builds clients, and it does so when called, never at
import: importing the package opens no connection and does not import ``kubernetes`` for the
manifests backend.

``run_worker`` has no hook for extra background tasks, so :func:`serve` resolves the Redis URL
itself (starting the embedded server when ``REDIS_URL`` is unset, once), hands the resolved
URL to ``run_worker`` and runs the watcher beside it on its own client of the same server,
sharing the ``stop`` event: SIGTERM stops both, and a crashed watcher stops the worker (the
orchestrator restarts the process), as a crashed consumer loop does.
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
from functools import partial

from pydantic import SecretStr

from llmops_serving.adapters.manifests import ManifestsBackend
from llmops_serving.config import BackendKind, RenderFormat, ServingSettings
from llmops_serving.handlers import handle_serving_event
from llmops_serving.ports import NoCache, ObservationCache, ServingBackend, ServingPorts, StatusSink
from llmops_serving.render.request import RenderOptions
from llmops_serving.watcher import Watcher
from llmops_shared.events import Stream
from llmops_shared.logging import configure_logging, get_logger
from llmops_shared.specs import ImageTable
from llmops_shared.streams import Handler, Publisher
from llmops_shared.streams.connection import async_redis, resolve_redis_url
from llmops_shared.worker import Subscription, run_worker


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
    log = get_logger(__name__)
    stop = stop or asyncio.Event()
    backend = backend or build_backend(settings)
    async with contextlib.AsyncExitStack() as stack:
        url = resolve_redis_url(settings, stack)
        settings = settings.model_copy(update={"redis_url": SecretStr(url)})
        redis = async_redis(url)
        stack.push_async_callback(redis.aclose)
        sink = Publisher(redis, namespace=settings.stream_namespace, maxlen=settings.stream_maxlen)
        watcher = (
            Watcher(
                backend,
                sink,
                namespaces=settings.watch_namespaces,
                interval_s=settings.watch_interval_s,
            )
            if backend.observable
            else None
        )
        cache: ObservationCache = watcher or NoCache()
        log.info(
            "serving_backend",
            backend=backend.name,
            render_format=settings.render_format.value,
            deployment_mode=settings.kserve_deployment_mode.value,
            gpu_available=settings.gpu_available,
            manifests_dir=str(settings.manifests_dir)
            if settings.serving_backend is BackendKind.MANIFESTS
            else None,
            watcher=watcher is not None,
        )
        tasks: list[asyncio.Task[None]] = []
        if watcher is not None:
            watch = asyncio.create_task(watcher.run(stop), name="watcher")
            watch.add_done_callback(lambda _: stop.set())
            tasks.append(watch)
        try:
            await run_worker(
                settings,
                [
                    Subscription(
                        Stream.SERVING, build_handler(settings, backend, sink=sink, cache=cache)
                    )
                ],
                readiness={backend.name: backend.ping},
                stop=stop,
            )
        finally:
            stop.set()
            for task in tasks:
                with contextlib.suppress(asyncio.CancelledError):
                    await task


def main() -> None:
    """``python -m llmops_serving``: read the environment, log JSON, serve."""
    try:
        settings = ServingSettings()
    except ValueError as exc:  # pydantic's ValidationError: say what is wrong and stop
        print(f"serving: invalid configuration:\n{exc}", file=sys.stderr)
        raise SystemExit(2) from exc
    configure_logging(
        service=settings.service_name, level=settings.log_level, json=settings.log_json
    )
    asyncio.run(serve(settings))
