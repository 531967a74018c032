"""The wiring of the versioning worker: settings -> backend -> handler -> the shared worker host.

The only module that chooses adapters and builds clients, and it does so when called, never at
import. Progress reports are published mid-handler, through the worker host's publisher
(``WorkerContext.publisher``, on the same Redis client as the consumers), so the handler is
built by a subscription factory the host calls once Redis is resolved.
"""

from __future__ import annotations

import asyncio
from functools import partial

from llmops_shared.events import Stream
from llmops_shared.logging import get_logger
from llmops_shared.streams import Handler
from llmops_shared.streams.connection import redact_url
from llmops_shared.worker import Subscription, WorkerContext, run_worker, service_main
from llmops_versioning.adapters.builtin import BuiltinBackend
from llmops_versioning.adapters.storage import S3Options
from llmops_versioning.config import VersioningSettings
from llmops_versioning.handlers import handle_datasets_event
from llmops_versioning.ports import StatusSink, VersioningBackend, VersioningPorts


def s3_options(settings: VersioningSettings) -> S3Options:
    """Endpoint and credentials for s3:// data, targets and DVC remotes."""
    return S3Options(
        endpoint_url=settings.s3_endpoint_url,
        access_key_id=settings.aws_access_key_id,
        secret_access_key=settings.aws_secret_access_key,
        region=settings.aws_region,
    )


def build_backend(settings: VersioningSettings) -> VersioningBackend:
    """DVC when data versioning is enabled, else the built-in object store."""
    if not settings.data_versioning_enabled:
        return BuiltinBackend(
            settings.builtin_store_dir,
            s3=s3_options(settings),
            local_data_roots=settings.local_data_roots,
        )
    from llmops_versioning.adapters.dvc import DvcBackend, DvcOptions

    return DvcBackend(
        DvcOptions(
            repos_dir=settings.dvc_repos_dir,
            remote_name=settings.dvc_remote_name,
            remote_url=settings.dvc_remote_url,
            cache_dir=settings.dvc_cache_dir,
            s3=s3_options(settings),
            author_name=settings.git_author_name,
            author_email=settings.git_author_email,
            command_timeout_s=settings.dvc_command_timeout_s,
            local_data_roots=settings.local_data_roots,
        )
    )


def build_handler(
    settings: VersioningSettings, backend: VersioningBackend, *, sink: StatusSink | None
) -> Handler:
    """The ``llmops.datasets`` handler with its ports bound."""
    ports = VersioningPorts(
        backend=backend, sink=sink, progress_interval_s=settings.progress_interval_s
    )
    return partial(handle_datasets_event, ports=ports)


async def serve(
    settings: VersioningSettings,
    *,
    stop: asyncio.Event | None = None,
    backend: VersioningBackend | None = None,
) -> None:
    """Run the worker until SIGTERM/SIGINT (or ``stop``); tests call this in process."""
    backend = backend or build_backend(settings)
    get_logger(__name__).info(
        "versioning_backend",
        backend=backend.name,
        repos_dir=str(settings.dvc_repos_dir) if backend.name == "dvc" else None,
        remote=redact_url(settings.dvc_remote_url) if backend.name == "dvc" else None,
        store_dir=str(settings.builtin_store_dir) if backend.name == "builtin" else None,
        s3_endpoint=settings.s3_endpoint_url,
    )

    def subscriptions(context: WorkerContext[VersioningSettings]) -> list[Subscription]:
        handler = build_handler(settings, backend, sink=context.publisher)
        return [Subscription(Stream.DATASETS, handler)]

    await run_worker(
        settings,
        subscriptions,
        readiness={backend.name: backend.ping},
        stop=stop,
        describe={"backend": backend.name},  # the host adds the flag in force
    )


def main() -> None:
    """``python -m llmops_versioning``: read the environment, log JSON, serve."""
    service_main("versioning", VersioningSettings, serve)
