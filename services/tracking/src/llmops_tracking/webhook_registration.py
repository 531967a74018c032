"""Registering the MLflow webhook at start-up, retried while MLflow is down.

Split out of :mod:`llmops_tracking.webhooks`: making MLflow call the receiver is a start-up task
of the worker, apart from receiving the deliveries.
"""

from __future__ import annotations

import asyncio
from typing import Protocol

from pydantic import SecretStr

from llmops_shared.logging import get_logger
from llmops_shared.streams.connection import redact_url
from llmops_tracking.model_versions import RegistryUnavailable

_log = get_logger(__name__)


class WebhookRegistrar(Protocol):
    """Creates or updates the MLflow webhook (the MLflow registry adapter is one)."""

    async def ensure_webhook(self, *, name: str, url: str, secret: str) -> str: ...


async def register_webhook(
    registrar: WebhookRegistrar,
    *,
    name: str,
    url: str,
    secret: SecretStr,
    stop: asyncio.Event,
    initial_backoff_s: float = 1.0,
    max_backoff_s: float = 300.0,
) -> None:
    """Make sure MLflow calls ``url``; retried with a growing backoff while MLflow is down.

    Returns once done (or on ``stop``); a start-up task, not a watcher: the worker runs on
    without it, and the poller publishes what webhooks would have.
    """
    delay = initial_backoff_s
    log = _log.bind(webhook=name, url=redact_url(url))
    while not stop.is_set():
        try:
            outcome = await registrar.ensure_webhook(
                name=name, url=url, secret=secret.get_secret_value()
            )
        except RegistryUnavailable as exc:
            log.warning("mlflow_webhook_registration_failed", error=str(exc), retry_in_s=delay)
        else:
            log.info("mlflow_webhook_registered", outcome=outcome)
            return
        try:
            await asyncio.wait_for(stop.wait(), timeout=delay)
        except TimeoutError:
            delay = min(delay * 2, max_backoff_s)
