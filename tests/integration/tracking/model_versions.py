"""Helpers of the model-version event tests: a running worker, the models stream, MLflow data."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import httpx
import redis.asyncio as aioredis
from mlflow.entities.model_registry import ModelVersion
from mlflow.tracking import MlflowClient

from llmops_shared.events import Event, Stream
from llmops_tracking.app import serve
from llmops_tracking.config import TrackingSettings

from support.streams import read_events, wait_until

SECRET = "test-webhook-secret"


class ModelStreams:
    """The namespaced ``llmops.models`` stream of one test."""

    def __init__(self, redis: aioredis.Redis, namespace: str) -> None:
        self.redis = redis
        self.namespace = namespace
        self.key = f"{namespace}{Stream.MODELS}"

    async def events(self, model: str | None = None) -> list[Event]:
        found = await read_events(self.redis, self.key)
        if model is None:
            return found
        return [e for e in found if (e.envelope.subject or "").startswith(f"{model}/")]

    async def wait_for(
        self, predicate: Callable[[list[Event]], bool], *, model: str, timeout_s: float = 15.0
    ) -> list[Event]:
        async def met() -> bool:
            return predicate(await self.events(model))

        await wait_until(met, timeout_s=timeout_s, interval_s=0.005)
        return await self.events(model)


@asynccontextmanager
async def running(settings: TrackingSettings) -> AsyncIterator[httpx.AsyncClient]:
    """The worker in process until the block ends; yields a client of its HTTP port."""
    stop = asyncio.Event()
    task = asyncio.create_task(serve(settings, stop=stop))
    base = f"http://127.0.0.1:{settings.health_port}"
    async with httpx.AsyncClient(base_url=base, timeout=5) as client:
        try:

            async def up() -> bool:
                if task.done():
                    task.result()  # raise the worker's error
                try:
                    return (await client.get("/healthz")).status_code == 200
                except httpx.HTTPError:
                    return False

            await wait_until(up, timeout_s=20)
            yield client
        finally:
            stop.set()
            await asyncio.wait_for(task, timeout=30)


def new_name(prefix: str = "mv") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


class Registry:
    """Creates runs, models and versions the way a training job would."""

    def __init__(self, client: MlflowClient) -> None:
        self.client = client
        self.experiment_id = client.create_experiment(new_name("exp"))

    def run(self) -> tuple[str, str]:
        """A new run: (run id, artifact URI)."""
        run = self.client.create_run(self.experiment_id)
        return run.info.run_id, str(run.info.artifact_uri)

    def model(self, name: str | None = None) -> str:
        name = name or new_name()
        self.client.create_registered_model(name)
        return name

    def version(self, model: str, **tags: str) -> ModelVersion:
        run_id, artifacts = self.run()
        return self.client.create_model_version(
            model, source=f"{artifacts}/model", run_id=run_id, tags=tags or None
        )


def webhook_of(client: MlflowClient, name: str) -> Any:
    for hook in client.list_webhooks(max_results=100):
        if hook.name == name:
            return hook
    return None


async def wait_for_webhook(client: MlflowClient, name: str, url: str) -> None:
    async def registered() -> bool:
        hook = await asyncio.to_thread(webhook_of, client, name)
        return hook is not None and hook.url == url

    await wait_until(registered, timeout_s=15, interval_s=0.1)


def delete_webhook(client: MlflowClient, name: str) -> None:
    hook = webhook_of(client, name)
    if hook is not None:
        client.delete_webhook(hook.webhook_id)


def ms_now() -> int:
    return int(time.time() * 1000)
