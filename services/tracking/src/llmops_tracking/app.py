"""The wiring of the tracking worker: settings -> backend -> handler -> the shared worker host.

The only module that chooses adapters and builds clients, and it does so when called, never at
import: importing the package (tests, tools) opens no connection and does not even import
mlflow, which the built-in backend never needs.
"""

from __future__ import annotations

import asyncio
from functools import partial

from llmops_shared.events import Stream
from llmops_shared.logging import get_logger
from llmops_shared.streams import Handler
from llmops_shared.streams.connection import redact_url
from llmops_shared.worker import Subscription, run_worker, service_main
from llmops_tracking.adapters.builtin import BuiltinTracking
from llmops_tracking.config import TrackingSettings
from llmops_tracking.handlers import handle_training_event
from llmops_tracking.ports import TrackingBackend, TrackingPorts


def build_backend(settings: TrackingSettings) -> TrackingBackend:
    """MLflow when experiment tracking is enabled, else the built-in backend."""
    if not settings.experiment_tracking_enabled:
        return BuiltinTracking()
    # imported here: the built-in backend must not pay for (or need) importing mlflow
    from llmops_tracking.adapters.mlflow import MlflowTracking, mlflow_client

    client = mlflow_client(
        settings.mlflow_tracking_uri,
        max_retries=settings.mlflow_http_request_max_retries,
        timeout_s=settings.mlflow_http_request_timeout,
    )
    return MlflowTracking(client, ui_url=settings.mlflow_ui_url)


def build_handler(settings: TrackingSettings, backend: TrackingBackend) -> Handler:
    """The ``llmops.training`` handler with its ports bound."""
    ports = TrackingPorts(
        backend=backend,
        environment=settings.environment,
        experiment_name_template=settings.experiment_name_template,
    )
    return partial(handle_training_event, ports=ports)


async def serve(settings: TrackingSettings, *, stop: asyncio.Event | None = None) -> None:
    """Run the worker until SIGTERM/SIGINT (or ``stop``); tests call this in process."""
    backend = build_backend(settings)
    readiness = {"mlflow": backend.ping} if settings.experiment_tracking_enabled else {}
    get_logger(__name__).info(
        "tracking_backend",
        backend=backend.name,
        mlflow=redact_url(settings.mlflow_tracking_uri)
        if settings.experiment_tracking_enabled
        else None,
        experiment_name_template=settings.experiment_name_template,
    )
    await run_worker(
        settings,
        [Subscription(Stream.TRAINING, build_handler(settings, backend))],
        readiness=readiness,
        stop=stop,
    )


def main() -> None:
    """``python -m llmops_tracking``: read the environment, log JSON, serve."""
    service_main("tracking", TrackingSettings, serve)
