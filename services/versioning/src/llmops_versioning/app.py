"""The wiring of the versioning worker: settings -> backend -> handler -> the shared worker host.

The only module that chooses adapters and builds clients, and it does so when called, never at
import. Progress reports are published mid-handler, so :func:`serve` resolves the Redis URL
itself (starting the embedded server when ``REDIS_URL`` is unset, once), builds its own
:class:`~llmops_shared.streams.Publisher` on it and hands the resolved URL to ``run_worker``.
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
from functools import partial

from pydantic import SecretStr

from llmops_shared.events import Stream
from llmops_shared.logging import configure_logging, get_logger
from llmops_shared.streams import Handler, Publisher
from llmops_shared.streams.connection import async_redis, redact_url, resolve_redis_url
from llmops_shared.worker import Subscription, run_worker
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
        return BuiltinBackend(settings.builtin_store_dir, s3=s3_options(settings))
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
    log = get_logger(__name__)
    stop = stop or asyncio.Event()
    backend = backend or build_backend(settings)
    async with contextlib.AsyncExitStack() as stack:
        url = resolve_redis_url(settings, stack)
        settings = settings.model_copy(update={"redis_url": SecretStr(url)})
        redis = async_redis(url)
        stack.push_async_callback(redis.aclose)
        sink = Publisher(redis, namespace=settings.stream_namespace, maxlen=settings.stream_maxlen)
        log.info(
            "versioning_backend",
            backend=backend.name,
            repos_dir=str(settings.dvc_repos_dir) if backend.name == "dvc" else None,
            remote=redact_url(settings.dvc_remote_url) if backend.name == "dvc" else None,
            store_dir=str(settings.builtin_store_dir) if backend.name == "builtin" else None,
            s3_endpoint=settings.s3_endpoint_url,
        )
        await run_worker(
            settings,
            [Subscription(Stream.DATASETS, build_handler(settings, backend, sink=sink))],
            readiness={backend.name: backend.ping},
            stop=stop,
        )


def main() -> None:
    """``python -m llmops_versioning``: read the environment, log JSON, serve."""
    try:
        settings = VersioningSettings()
    except ValueError as exc:  # pydantic's ValidationError: say what is wrong and stop
        print(f"versioning: invalid configuration:\n{exc}", file=sys.stderr)
        raise SystemExit(2) from exc
    configure_logging(
        service=settings.service_name, level=settings.log_level, json=settings.log_json
    )
    asyncio.run(serve(settings))
