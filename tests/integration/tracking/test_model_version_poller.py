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
from llmops_tracking.model_versions import ModelVersionRecord, VersionUnreadable, state_key
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
        created = mlflow_reader.get_model_version(first, payload.version).creation_timestamp
        assert event.id == model_version_event_id(first, payload.version, created)
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


class StubRegistry:
    """Versions given by the test; reading ``unreadable`` ones is refused by MLflow."""

    def __init__(self, records: list[ModelVersionRecord], unreadable: set[str]) -> None:
        self.records = records
        self.unreadable = unreadable

    async def versions_since(self, min_timestamp: int | None) -> list[ModelVersionRecord]:
        low = min_timestamp if min_timestamp is not None else -1
        found = [r for r in self.records if r.creation_timestamp >= low]
        return sorted(found, key=lambda r: r.creation_timestamp, reverse=True)

    async def get_version(self, name: str, version: str) -> ModelVersionRecord | None:
        if f"{name}/{version}" in self.unreadable:
            raise VersionUnreadable(f"MLflow refused reading {name}/{version}: PERMISSION_DENIED")
        return next((r for r in self.records if (r.name, r.version) == (name, version)), None)

    async def newest_timestamp(self) -> int | None:
        return max((r.creation_timestamp for r in self.records), default=None)


def stub(name: str, version: str, created: int, **fields: Any) -> ModelVersionRecord:
    return ModelVersionRecord(
        name=name, version=version, source="s3://b/k", creation_timestamp=created, **fields
    )


async def test_one_bad_version_does_not_stop_the_poller(
    redis: aioredis.Redis, streams: ModelStreams
) -> None:
    now = int(time.time() * 1000)
    records = [
        stub("m", "1", now - 3000),
        stub("m", "2", now - 2000),  # MLflow refuses to read it
        stub("m", "3", now - 1500, run_id="../../etc"),  # not expressible as an event
        stub("m", "4", now - 1000),
    ]
    poller = ModelVersionPoller(
        registry=StubRegistry(records, unreadable={"m/2"}),
        redis=redis,
        publisher=Publisher(redis, namespace=streams.namespace),
        namespace=streams.namespace,
        interval_s=60,
    )
    result = await poller.run_once_reported()
    assert result is not None
    assert (result.published, result.skipped, result.watermark) == (2, 2, now - 1000)
    assert versions_of(await streams.events("m")) == ["1", "4"]
    shown = poller.status.as_dict()
    assert shown["last_run"]["error"] is None  # type: ignore[index]
    assert shown["skipped_total"] == 2
    assert [s["model_version"] for s in shown["last_skipped"]] == ["m/2", "m/3"]  # type: ignore[attr-defined]
    assert "run_id" in shown["last_skipped"][1]["reason"]  # type: ignore[index]
    assert (await poller.run_once()).published == 0  # skipped once, not retried every pass


async def test_a_version_from_the_future_does_not_push_the_watermark_past_later_ones(
    redis: aioredis.Redis, streams: ModelStreams
) -> None:
    now = int(time.time() * 1000)
    records = [stub("m", "1", now + 3_600_000)]  # MLflow's clock an hour ahead
    registry = StubRegistry(records, unreadable=set())
    poller = ModelVersionPoller(
        registry=registry,
        redis=redis,
        publisher=Publisher(redis, namespace=streams.namespace),
        namespace=streams.namespace,
        interval_s=60,
        lookback_s=300,
        clock=lambda: now / 1000,
    )
    first = await poller.run_once()
    assert first.watermark == now + 300_000  # local now + look-back, not an hour ahead
    records.append(stub("m", "2", now + 1000))  # created later, stamped right
    second = await poller.run_once()
    assert second.published == 1
    assert versions_of(await streams.events("m")) == ["1", "2"]


async def test_a_model_registered_again_is_published_again(
    redis: aioredis.Redis, streams: ModelStreams
) -> None:
    """Deleted with its model and registered again: version 1 again, a new version."""
    now = int(time.time() * 1000)
    records = [stub("m", "1", now - 2000)]
    poller = ModelVersionPoller(
        registry=StubRegistry(records, unreadable=set()),
        redis=redis,
        publisher=Publisher(redis, namespace=streams.namespace),
        namespace=streams.namespace,
        interval_s=60,
    )
    assert (await poller.run_once()).published == 1
    records[0] = stub("m", "1", now - 1000)
    assert (await poller.run_once()).published == 1
    events = await streams.events("m")
    assert len({e.id for e in events}) == 2
