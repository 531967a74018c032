"""The wiring of the workflow worker: settings -> backend -> handler + watcher -> worker host.

The only module that chooses adapters and builds clients, and it does so when called, never at
import: importing the package opens no connection and does not import ``kubernetes`` for the
manifests backend.

``run_worker`` has no hook for extra background tasks, so :func:`serve` resolves the Redis URL
itself (starting the embedded server when ``REDIS_URL`` is unset, once), hands the resolved
URL to ``run_worker`` and runs the watcher beside it on its own client of the same server,
sharing the ``stop`` event: SIGTERM stops both, and a crashed watcher stops the worker (the
orchestrator restarts the process), as a crashed consumer loop does. (The serving worker's
wiring, deliberately the same.)
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
from functools import partial

from pydantic import SecretStr

from llmops_shared.events import Stream
from llmops_shared.logging import configure_logging, get_logger
from llmops_shared.specs import ImageTable
from llmops_shared.streams import Handler, Publisher
from llmops_shared.streams.connection import async_redis, resolve_redis_url
from llmops_shared.worker import Subscription, run_worker
from llmops_workflow.adapters.manifests import ManifestsBackend
from llmops_workflow.config import ArgoSubmitVia, BackendKind, RenderFormat, WorkflowSettings
from llmops_workflow.handlers import handle_training_event
from llmops_workflow.ports import (
    NoCache,
    ObservationCache,
    StatusSink,
    WorkflowBackend,
    WorkflowPorts,
)
from llmops_workflow.render.request import RenderOptions
from llmops_workflow.watcher import Watcher


def build_backend(settings: WorkflowSettings) -> WorkflowBackend:
    """The backend ``WORKFLOW_BACKEND`` names; cluster clients are built here, at start-up."""
    if settings.workflow_backend is BackendKind.MANIFESTS:
        return ManifestsBackend(settings.manifests_dir)
    if (
        settings.workflow_backend is BackendKind.ARGO
        and settings.argo_submit_via is ArgoSubmitVia.ARGO_SERVER
    ):
        # imported here too: only this backend needs httpx, and it needs no kubeconfig
        from llmops_workflow.adapters.argo_server import ArgoServerBackend

        if not settings.argo_server_url:  # WorkflowSettings refuses this already
            raise ValueError("ARGO_SUBMIT_VIA=argo_server needs ARGO_SERVER_URL")
        return ArgoServerBackend(
            settings.argo_server_url,
            namespace=settings.namespace,
            token=settings.argo_token,
            verify_tls=settings.argo_server_verify_tls,
            request_timeout_s=settings.kube_request_timeout_s,
        )
    # imported here: the manifests backend must not pay for (or need) the kubernetes client
    from llmops_workflow.adapters.kube import api_client_from_config

    api_client = api_client_from_config(settings.kubeconfig, settings.kube_context)
    timeout = settings.kube_request_timeout_s
    if settings.workflow_backend is BackendKind.ARGO:
        from llmops_workflow.adapters.argo import ArgoBackend

        return ArgoBackend(api_client, request_timeout_s=timeout)
    from llmops_workflow.adapters.jobs import JobBackend

    return JobBackend(api_client, request_timeout_s=timeout)


def render_options(settings: WorkflowSettings) -> RenderOptions:
    """The operator's render choices (the image table from ``IMAGE_TABLE_FILE`` if set)."""
    images = (
        ImageTable.from_yaml_file(settings.image_table_file)
        if settings.image_table_file
        else ImageTable()
    )
    return RenderOptions(
        images=images,
        gpu_available=settings.gpu_available,
        gpu_type_node_label=settings.gpu_type_node_label,
        step_image=settings.workflow_step_image,
        mlflow_tracking_uri=settings.mlflow_tracking_uri,
        mlflow_run_wait_s=settings.mlflow_run_wait_s,
        artifact_root=settings.artifact_root,
        active_deadline_seconds=settings.active_deadline_seconds,
        ttl_seconds_after_success=settings.ttl_seconds_after_success,
        ttl_seconds_after_failure=settings.ttl_seconds_after_failure,
        pod_gc_strategy=settings.pod_gc_strategy,
        retry_limit=settings.retry_limit,
        retry_backoff=settings.retry_backoff,
        retry_backoff_factor=settings.retry_backoff_factor,
        retry_backoff_max=settings.retry_backoff_max,
        service_account=settings.workflow_service_account,
        train_cpu=settings.train_cpu,
        train_memory=settings.train_memory,
        step_cpu=settings.step_cpu,
        step_memory=settings.step_memory,
    )


def build_handler(
    settings: WorkflowSettings,
    backend: WorkflowBackend,
    *,
    sink: StatusSink,
    cache: ObservationCache,
) -> Handler:
    """The ``llmops.training`` handler with its ports bound."""
    ports = WorkflowPorts(
        backend=backend,
        options=render_options(settings),
        jobs=settings.render_format is RenderFormat.JOBS,
        namespace=settings.namespace,
        sink=sink,
        cache=cache,
    )
    return partial(handle_training_event, ports=ports)


async def serve(
    settings: WorkflowSettings,
    *,
    stop: asyncio.Event | None = None,
    backend: WorkflowBackend | None = None,
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
                namespaces=[settings.namespace],
                interval_s=settings.watch_interval_s,
            )
            if backend.observable
            else None
        )
        cache: ObservationCache = watcher or NoCache()
        log.info(
            "workflow_backend",
            backend=backend.name,
            argo_submit_via=settings.argo_submit_via.value
            if settings.workflow_backend is BackendKind.ARGO
            else None,
            render_format=settings.render_format.value,
            namespace=settings.namespace,
            gpu_available=settings.gpu_available,
            manifests_dir=str(settings.manifests_dir)
            if settings.workflow_backend is BackendKind.MANIFESTS
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
                        Stream.TRAINING, build_handler(settings, backend, sink=sink, cache=cache)
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
    """``python -m llmops_workflow``: read the environment, log JSON, serve."""
    try:
        settings = WorkflowSettings()
    except ValueError as exc:  # pydantic's ValidationError: say what is wrong and stop
        print(f"workflow: invalid configuration:\n{exc}", file=sys.stderr)
        raise SystemExit(2) from exc
    configure_logging(
        service=settings.service_name, level=settings.log_level, json=settings.log_json
    )
    asyncio.run(serve(settings))
