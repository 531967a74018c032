"""The tracking worker through the runtime: real Redis streams, real MLflow, the app's wiring.

Each test runs ``llmops_tracking.app.serve`` in process on its own stream namespace, publishes
events as the gateway would, and reads the status events and dead letters back from Redis.
"""

from __future__ import annotations

import asyncio
import json
from contextlib import AbstractAsyncContextManager

import pytest
import redis.asyncio as aioredis
from mlflow.tracking import MlflowClient

from llmops_shared.events import Event, ExperimentRunStatusUpdated, Stream, encode_event
from llmops_shared.streams import EVENT_FIELD, Publisher
from llmops_tracking.app import serve
from llmops_tracking.config import TrackingSettings

from integration.tracking.helpers import (
    cancelled,
    new_job_id,
    runs_of_job,
    submitted,
    worker_settings,
)
from support.mlflow_server import MlflowServer
from support.streams import details_of, read_events, wait_until
from support.workers import in_process

pytestmark = pytest.mark.integration

GROUP = "tracking"


class Streams:
    """The namespaced streams one test uses, and what it reads back from them."""

    def __init__(self, redis: aioredis.Redis, namespace: str) -> None:
        self.redis = redis
        self.namespace = namespace
        self.training = f"{namespace}{Stream.TRAINING}"
        self.status = f"{namespace}{Stream.STATUS}"
        self.dlq = f"{self.training}.dlq"
        self.publisher = Publisher(redis, namespace=namespace)

    async def statuses(self) -> list[ExperimentRunStatusUpdated]:
        events: list[Event] = await read_events(self.redis, self.status)
        return [e.payload_as(ExperimentRunStatusUpdated) for e in events]

    async def pending(self) -> int:
        info = await self.redis.xpending(self.training, GROUP)
        return int(info["pending"])

    async def deliveries(self) -> int:
        """Times the (single) pending entry has been delivered."""
        [entry] = await self.redis.xpending_range(self.training, GROUP, min="-", max="+", count=1)
        return int(entry["times_delivered"])

    async def dead_letters(self) -> list[dict[bytes, bytes]]:
        return [fields for _, fields in await self.redis.xrange(self.dlq)]


@pytest.fixture
def streams(redis: aioredis.Redis, names: object) -> Streams:
    return Streams(redis, f"test.{names.token}:")  # type: ignore[attr-defined]


@pytest.fixture
def settings(
    redis_url: str, streams: Streams, mlflow_server: MlflowServer, template: str
) -> TrackingSettings:
    return worker_settings(
        redis_url,
        streams.namespace,
        mlflow_tracking_uri=mlflow_server.url,
        experiment_name_template=template,
    )


def running(settings: TrackingSettings) -> AbstractAsyncContextManager[None]:
    """The worker, as ``python -m llmops_tracking`` runs it, until the block ends."""
    return in_process(lambda stop: serve(settings, stop=stop), stop_timeout_s=30)


async def statuses_count(streams: Streams, count: int) -> list[ExperimentRunStatusUpdated]:
    async def enough() -> bool:
        return len(await streams.statuses()) >= count

    await wait_until(enough, timeout_s=30)
    return await streams.statuses()


async def test_submit_and_cancel_flow_through_the_streams(
    settings: TrackingSettings, streams: Streams, mlflow_reader: MlflowClient
) -> None:
    job_id = new_job_id()
    async with running(settings):
        await streams.publisher.publish(submitted(job_id))
        [created] = await statuses_count(streams, 1)
        await streams.publisher.publish(cancelled(job_id, "superseded"))
        _, killed = await statuses_count(streams, 2)

    [run] = runs_of_job(mlflow_reader, job_id)
    assert created.entity_id == killed.entity_id == run.info.run_id
    assert (created.phase, killed.phase) == ("Running", "Cancelled")
    assert killed.reason == "superseded"
    assert run.info.status == "KILLED"
    assert await streams.pending() == 0
    assert await streams.dead_letters() == []


async def test_mlflow_outage_keeps_the_event_pending_then_completes_once(
    settings: TrackingSettings,
    streams: Streams,
    mlflow_server: MlflowServer,
    mlflow_reader: MlflowClient,
) -> None:
    job_id = new_job_id()
    async with running(settings):
        await asyncio.to_thread(mlflow_server.stop)
        try:
            await streams.publisher.publish(submitted(job_id))

            async def retried_while_down() -> bool:
                return await streams.pending() == 1 and await streams.deliveries() >= 3

            await wait_until(retried_while_down, timeout_s=20)
            assert await streams.statuses() == []
            assert await streams.dead_letters() == []
        finally:
            await asyncio.to_thread(mlflow_server.start)

        [status] = await statuses_count(streams, 1)

    assert status.phase == "Running"
    [run] = runs_of_job(mlflow_reader, job_id)
    assert status.entity_id == run.info.run_id
    assert await streams.pending() == 0
    assert await streams.dead_letters() == []
    assert len(await streams.statuses()) == 1


async def test_an_invalid_event_is_dead_lettered_and_the_worker_keeps_serving(
    settings: TrackingSettings, streams: Streams, mlflow_reader: MlflowClient
) -> None:
    bad = json.loads(encode_event(submitted()))
    bad["data"]["spec"]["hyperparams"]["lr"] = -1  # TrainJobSpec: lr > 0
    good_job = new_job_id()

    async with running(settings):
        await streams.redis.xadd(streams.training, {EVENT_FIELD: json.dumps(bad)})
        await streams.publisher.publish(submitted(good_job))
        [status] = await statuses_count(streams, 1)

    [letter] = await streams.dead_letters()
    assert letter[b"error_type"] == b"EventDecodeError"
    assert b"hyperparams.lr" in letter[b"reason"]
    assert letter[b"cause"] == b"non_retryable"
    assert details_of(status)["job_id"] == good_job
    assert len(runs_of_job(mlflow_reader, good_job)) == 1
    assert runs_of_job(mlflow_reader, bad["data"]["job_id"]) == []
    assert await streams.pending() == 0


async def test_a_request_mlflow_rejects_is_dead_lettered_with_its_reason(
    settings: TrackingSettings, streams: Streams
) -> None:
    job_id = new_job_id()
    async with running(settings):
        await streams.publisher.publish(submitted(job_id))
        await statuses_count(streams, 1)
        await streams.publisher.publish(submitted(job_id, lr=0.5))  # same job, other params

        async def dead_lettered() -> bool:
            return len(await streams.dead_letters()) == 1

        await wait_until(dead_lettered, timeout_s=20)

    [letter] = await streams.dead_letters()
    assert letter[b"error_type"] == b"TrackingRejected"
    assert letter[b"cause"] == b"non_retryable"
    assert b"Changing param values is not allowed" in letter[b"reason"]
    assert len(await streams.statuses()) == 1
    assert await streams.pending() == 0
