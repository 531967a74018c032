"""The wiring of the workflow worker: settings -> backend -> handler + watcher -> worker host
(:func:`llmops_shared.kube.worker.run_watched_worker`, the serving worker's wiring too).

The only module that chooses adapters and builds clients, and it does so when called, never at
import: importing the package opens no connection and does not import ``kubernetes`` for the
manifests backend. The local backend runs its pipelines in a background task beside the
watcher. The pipeline ledger (:mod:`llmops_workflow.ledger`) lives in the worker host's Redis,
under ``STREAM_NAMESPACE``; the handler and the watcher share it.
"""

from __future__ import annotations

import asyncio
import os
from functools import partial

from llmops_shared.events import Stream
from llmops_shared.kube.settings import image_table
from llmops_shared.kube.watcher import ObservationCache
from llmops_shared.kube.worker import on_cluster, run_watched_worker
from llmops_shared.logging import get_logger
from llmops_shared.streams import Handler
from llmops_shared.worker import Background, WorkerContext, service_main
from llmops_workflow.adapters.ledger import RedisLedger
from llmops_workflow.adapters.local import LocalBackend
from llmops_workflow.adapters.manifests import ManifestsBackend
from llmops_workflow.config import ArgoSubmitVia, BackendKind, RenderFormat, WorkflowSettings
from llmops_workflow.handlers import handle_training_event
from llmops_workflow.local.logs import log_output, print_output
from llmops_workflow.local.runner import LocalRunner
from llmops_workflow.local.state import StateStore
from llmops_workflow.ports import PipelineLedger, StatusSink, WorkflowBackend, WorkflowPorts
from llmops_workflow.render.request import RenderOptions
from llmops_workflow.watcher import Watcher


def build_local_backend(settings: WorkflowSettings) -> LocalBackend:
    """The local backend and its runner (records under ``LOCAL_WORKDIR``)."""
    runner = LocalRunner(
        StateStore(settings.local_workdir.resolve()),
        python=settings.local_python,
        output=log_output if settings.log_json else print_output,
        environ=os.environ,
        passthrough=settings.local_stage_env,
        max_running=settings.local_max_running,
        stop_grace_s=settings.local_stop_grace_s,
        ttl_success_s=settings.ttl_seconds_after_success,
        ttl_failure_s=settings.ttl_seconds_after_failure,
    )
    return LocalBackend(runner, workdir=settings.local_workdir, python=settings.local_python)


def build_backend(settings: WorkflowSettings) -> WorkflowBackend:
    """The backend ``WORKFLOW_BACKEND`` names; cluster clients are built here, at start-up."""
    if settings.workflow_backend is BackendKind.MANIFESTS:
        return ManifestsBackend(settings.manifests_dir)
    if settings.workflow_backend is BackendKind.LOCAL:
        return build_local_backend(settings)
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
    if settings.workflow_backend is BackendKind.ARGO:
        from llmops_workflow.adapters.argo import ArgoBackend

        return on_cluster(settings, ArgoBackend)
    from llmops_workflow.adapters.jobs import JobBackend

    return on_cluster(settings, JobBackend)


def render_options(settings: WorkflowSettings) -> RenderOptions:
    """The operator's render choices (the image table from ``IMAGE_TABLE_FILE`` if set)."""
    return RenderOptions(
        images=image_table(settings.image_table_file),
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
        pretrain_init_uri=settings.pretrain_init_uri,
        mlflow_artifacts_destination=settings.mlflow_artifacts_destination,
    )


def build_handler(
    settings: WorkflowSettings,
    backend: WorkflowBackend,
    *,
    sink: StatusSink,
    cache: ObservationCache,
    ledger: PipelineLedger,
) -> Handler:
    """The ``llmops.training`` handler with its ports bound."""
    ports = WorkflowPorts(
        backend=backend,
        options=render_options(settings),
        jobs=settings.render_format is RenderFormat.JOBS,
        namespace=settings.namespace,
        sink=sink,
        cache=cache,
        ledger=ledger,
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
    chosen = backend or build_backend(settings)
    get_logger(__name__).info(
        "workflow_backend",
        backend=chosen.name,
        argo_submit_via=settings.argo_submit_via.value
        if settings.workflow_backend is BackendKind.ARGO
        else None,
        render_format=settings.render_format.value,
        namespace=settings.namespace,
        gpu_available=settings.gpu_available,
        manifests_dir=str(settings.manifests_dir)
        if settings.workflow_backend is BackendKind.MANIFESTS
        else None,
        watcher=chosen.observable,
    )
    background: list[Background[WorkflowSettings]] = []
    local = chosen if isinstance(chosen, LocalBackend) else None
    if local is not None:

        async def run_pipelines(context: WorkerContext[WorkflowSettings]) -> None:
            await local.runner.run(context.stop)

        background.append(Background("local-pipelines", run_pipelines))
    ledgers: list[PipelineLedger] = []  # built by prepare(), on the host's Redis client

    def prepare(context: WorkerContext[WorkflowSettings]) -> None:
        ledgers.append(
            RedisLedger(
                context.redis,
                namespace=settings.stream_namespace,
                ttl_s=settings.pipeline_record_ttl_s,
            )
        )

    # A flag change (IntegrationFlagChanged) or a crash propagates past the shutdown below: the
    # stages go on, and the next runner (in this process, or the restarted one) adopts them.
    await run_watched_worker(
        settings,
        stream=Stream.TRAINING,
        backend=chosen,
        watcher=lambda sink: Watcher(
            chosen,
            sink,
            namespaces=[settings.namespace],
            interval_s=settings.watch_interval_s,
            ledger=ledgers[-1],
        ),
        handler=lambda sink, cache: build_handler(
            settings, chosen, sink=sink, cache=cache, ledger=ledgers[-1]
        ),
        stop=stop,
        background=background,
        describe={"backend": chosen.name, "namespace": settings.namespace},
        prepare=prepare,
    )
    if local is not None:  # the worker stops for good: pause the stages (resumed at next start)
        await local.runner.shutdown()


def main() -> None:
    """``python -m llmops_workflow``: read the environment, log JSON, serve."""
    service_main("workflow", WorkflowSettings, serve)
