"""The wiring of a watched worker (serving, workflow): a consumer whose handler submits through
one backend, and a watcher beside it that reports what becomes of the submissions.

The watcher runs as a critical background task of the worker host, on the host's Redis client
and publisher, sharing its ``stop`` event: SIGTERM stops both, and a crashed (or quietly ended)
watcher stops the worker (the orchestrator restarts the process), as a crashed consumer loop
does. The watcher is also the handler's observation cache, so both are built in one place, the
subscription factory, which the host calls before it starts the watcher. A backend that cannot
be observed (files) gets no watcher and a handler on :class:`~.watcher.NoCache`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping, Sequence
from typing import Any, TypeVar

from llmops_shared.config import ServiceSettings
from llmops_shared.kube.settings import KubeSettings
from llmops_shared.kube.watcher import NoCache, ObservationCache, PollingWatcher, Watched
from llmops_shared.streams import Handler, StatusSink
from llmops_shared.worker import Background, Subscription, WorkerContext, run_worker

S = TypeVar("S", bound=ServiceSettings)
B = TypeVar("B")


def on_cluster(settings: KubeSettings, backend: Callable[..., B]) -> B:
    """``backend(api_client, request_timeout_s=...)`` on the cluster the settings name
    (``KUBECONFIG``, ``KUBE_CONTEXT``), built at start-up. The kubernetes client is imported
    here: a worker on the manifests backend must not pay for (or need) it."""
    from llmops_shared.kube.api import api_client_from_config

    api_client = api_client_from_config(settings.kubeconfig, settings.kube_context)
    return backend(api_client, request_timeout_s=settings.kube_request_timeout_s)


async def run_watched_worker(
    settings: S,
    *,
    stream: str,
    backend: Watched[Any],
    watcher: Callable[[StatusSink], PollingWatcher[Any, Any, Any]],
    handler: Callable[[StatusSink, ObservationCache], Handler],
    stop: asyncio.Event | None = None,
    background: Sequence[Background[S]] = (),
    describe: Mapping[str, str],
    prepare: Callable[[WorkerContext[S]], None] | None = None,
) -> None:
    """Consume ``stream`` with ``handler(sink, cache)`` and run ``watcher(sink)`` beside it
    (when the backend is observable) and ``background``, until SIGTERM/SIGINT or ``stop``.

    ``prepare(context)`` is called once Redis is resolved, before the watcher and the handler
    are built: what both need from the host besides the sink (the workflow worker's ledger on
    ``context.redis``) is built there."""
    built: PollingWatcher[Any, Any, Any] | None = None

    def subscriptions(context: WorkerContext[S]) -> list[Subscription]:
        nonlocal built
        if prepare is not None:
            prepare(context)
        if backend.observable:
            built = watcher(context.publisher)
        cache: ObservationCache = built or NoCache()
        return [Subscription(stream, handler(context.publisher, cache))]

    async def watch(context: WorkerContext[S]) -> None:
        assert built is not None  # built by subscriptions(), which the host calls first
        await built.run(context.stop)

    tasks: list[Background[S]] = [Background("watcher", watch)] if backend.observable else []
    await run_worker(
        settings,
        subscriptions,
        readiness={backend.name: backend.ping},
        stop=stop,
        background=[*tasks, *background],
        describe=describe,
    )
