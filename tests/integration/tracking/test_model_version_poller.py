"""The reconciliation poller against the real MLflow server: every version, once, across
restarts, ties at the watermark's millisecond, and MLflow outages."""

from __future__ import annotations

import sqlite3
import time
from collections import Counter
from typing import Any

import pytest
import redis.asyncio as aioredis
from mlflow.tracking import MlflowClient

from llmops_shared.events import Event, ModelVersionRegistered, model_version_event_id
from llmops_shared.streams import Publisher
from llmops_tracking.adapters.mlflow_registry import MlflowModelRegistry
from llmops_tracking.config import TrackingSettings
from llmops_tracking.model_versions import state_key
from llmops_tracking.poller import ModelVersionPoller

from integration.tracking.helpers import worker_settings
from integration.tracking.model_versions import ModelStreams, Registry, running
from support.mlflow_server import MlflowServer, free_port
from support.streams import wait_until

pytestmark = pytest.mark.integration

INTERVAL_S = 0.5


@pytest.fixture
def streams(redis: aioredis.Redis, names: object) -> ModelStreams:
    return ModelStreams(redis, f"test.{names.token}:")  # type: ignore[attr-defined]


@pytest.fixture
def settings(
    redis_url: str, streams: ModelStreams, mlflow_server: MlflowServer
) -> TrackingSettings:
    """The worker with the webhook off (no secret, no URL): only the poller publishes."""
    return worker_settings(
        redis_url,
        streams.namespace,
        health_port=free_port(),
        mlflow_tracking_uri=mlflow_server.url,
        polling_interval=INTERVAL_S,
    )


def versions_of(events: list[Event]) -> list[str]:
    return sorted((e.payload_as(ModelVersionRegistered).version for e in events), key=int)


async def test_every_version_of_every_model_once_across_restarts(
    settings: TrackingSettings, streams: ModelStreams, mlflow_reader: MlflowClient
) -> None:
    registry = Registry(mlflow_reader)
    first, second = registry.model(), registry.model()
    for _ in range(2):
        registry.version(first)  # before the worker starts: the backfill publishes them

    async with running(settings) as http:
        await streams.wait_for(lambda found: len(found) == 2, model=first)
        created = time.monotonic()
        for _ in range(3):
            registry.version(second)
        registry.version(first)
        await streams.wait_for(lambda found: len(found) == 3, model=second, timeout_s=10)
        await streams.wait_for(lambda found: len(found) == 3, model=first, timeout_s=10)
        within = time.monotonic() - created
        status = (await http.get("/mlflow/poller")).json()

    assert within < INTERVAL_S + 2.0  # one interval plus the pass itself
    assert status["last_run"]["error"] is None
    assert status["watermark_ms"] > 0
    assert versions_of(await streams.events(first)) == ["1", "2", "3"]
    assert versions_of(await streams.events(second)) == ["1", "2", "3"]

    # a restart keeps the watermark: nothing is published twice, new versions still are
    async with running(settings) as http:
        registry.version(second)
        await streams.wait_for(lambda found: len(found) == 4, model=second, timeout_s=10)

        async def passes() -> bool:
            return int((await http.get("/mlflow/poller")).json()["passes"]) >= 3

        await wait_until(passes, timeout_s=10)

    every = await streams.events()
    assert max(Counter(e.id for e in every).values()) == 1
    assert versions_of(await streams.events(second)) == ["1", "2", "3", "4"]
    for event in await streams.events(first):
        payload = event.payload_as(ModelVersionRegistered)
        assert event.id == model_version_event_id(first, payload.version)
        assert payload.experiment_id == registry.experiment_id
        assert payload.run_id


async def test_versions_created_in_the_watermark_millisecond_are_not_lost(
    redis: aioredis.Redis,
    streams: ModelStreams,
    mlflow_reader: MlflowClient,
    mlflow_server: MlflowServer,
) -> None:
    def poller() -> ModelVersionPoller:  # a fresh instance is a restarted worker
        return ModelVersionPoller(
            registry=MlflowModelRegistry(mlflow_reader),
            redis=redis,
            publisher=Publisher(redis, namespace=streams.namespace),
            namespace=streams.namespace,
            interval_s=60,
            lookback_s=0,  # only the ties at the watermark's ms are re-read
        )

    registry = Registry(mlflow_reader)
    model = registry.model()
    v1 = registry.version(model)
    await poller().run_once()
    watermark = int(await redis.get(state_key(streams.namespace, "watermark")))
    assert watermark == v1.creation_timestamp

    # v2 and v3 land in the same millisecond as v1 (e.g. committed after the pass read v1)
    late = [registry.version(model), registry.version(model)]
    with sqlite3.connect(mlflow_server.root / "mlflow.db") as db:
        for version in late:
            db.execute(
                "UPDATE model_versions SET creation_time = ? WHERE name = ? AND version = ?",
                (v1.creation_timestamp, model, int(version.version)),
            )
    result = await poller().run_once()
    assert result.published == 2
    assert result.watermark == v1.creation_timestamp
    assert (await poller().run_once()).published == 0

    events = await streams.events(model)
    assert versions_of(events) == ["1", "2", "3"]
    assert max(Counter(e.id for e in events).values()) == 1


async def test_the_poller_survives_an_mlflow_outage(
    settings: TrackingSettings,
    streams: ModelStreams,
    mlflow_reader: MlflowClient,
    mlflow_server: MlflowServer,
) -> None:
    registry = Registry(mlflow_reader)
    model = registry.model()
    async with running(settings) as http:

        async def status() -> dict[str, Any]:
            return dict((await http.get("/mlflow/poller")).json())

        async def failing() -> bool:
            return (await status())["last_run"]["error"] is not None

        async def recovered() -> bool:
            return (await status())["last_run"]["error"] is None

        async def passed() -> bool:
            return int((await status())["passes"]) >= 1

        await wait_until(passed, timeout_s=10)
        mlflow_server.stop()
        try:
            await wait_until(failing, timeout_s=10)
            assert "MLflow at" in (await status())["last_run"]["error"]
            assert (await http.get("/healthz")).status_code == 200  # the task lives on
        finally:
            mlflow_server.start()
        registry.version(model)
        await streams.wait_for(lambda found: len(found) == 1, model=model, timeout_s=10)
        await wait_until(recovered, timeout_s=5)
        final = await status()
    assert final["failures"] >= 1
