"""Model-version events by MLflow webhook: a real ``mlflow server`` delivers to the worker.

The worker runs in process (``serve``) on a free HTTP port and registers its webhook in MLflow;
the test creates versions, aliases and tags with a plain ``MlflowClient`` and reads
``<namespace>llmops.models`` back. The poller runs too, with a long interval: after its first
pass (no backfill) only the webhook can publish, so what arrives came by webhook.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
import redis.asyncio as aioredis
from mlflow.tracking import MlflowClient

from llmops_shared.events import (
    ModelVersionChanged,
    ModelVersionRegistered,
    model_version_event_id,
)
from llmops_shared.streams import Publisher
from llmops_tracking.adapters.mlflow_registry import MlflowModelRegistry
from llmops_tracking.config import TrackingSettings
from llmops_tracking.model_versions import ModelVersionRecord, changed_event_id
from llmops_tracking.poller import ModelVersionPoller

from integration.tracking.helpers import worker_settings
from integration.tracking.model_versions import (
    SECRET,
    ModelStreams,
    Registry,
    delete_webhook,
    new_name,
    running,
    wait_for_webhook,
)
from support.mlflow_server import MlflowServer, free_port

pytestmark = pytest.mark.integration


@pytest.fixture
def streams(redis: aioredis.Redis, names: object) -> ModelStreams:
    return ModelStreams(redis, f"test.{names.token}:")  # type: ignore[attr-defined]


@pytest.fixture
def webhook_name(mlflow_reader: MlflowClient) -> Iterator[str]:
    """A webhook name of this test's own; the webhook is deleted afterwards."""
    name = new_name("llmops-test")
    yield name
    delete_webhook(mlflow_reader, name)


@pytest.fixture
def settings(
    redis_url: str, streams: ModelStreams, mlflow_server: MlflowServer, webhook_name: str
) -> TrackingSettings:
    port = free_port()
    return worker_settings(
        redis_url,
        streams.namespace,
        health_port=port,
        mlflow_tracking_uri=mlflow_server.url,
        mlflow_webhook_secret=SECRET,
        mlflow_webhook_url=f"http://127.0.0.1:{port}/mlflow/webhook",
        mlflow_webhook_name=webhook_name,
        polling_interval=3600,
        model_versions_backfill=False,
    )


async def test_a_real_delivery_publishes_registered_and_changed_events(
    settings: TrackingSettings,
    streams: ModelStreams,
    mlflow_reader: MlflowClient,
    mlflow_server: MlflowServer,
    redis: aioredis.Redis,
) -> None:
    registry = Registry(mlflow_reader)
    model = registry.model()
    delays_ms: list[float] = []
    async with running(settings) as http:
        assert settings.mlflow_webhook_url is not None
        await wait_for_webhook(
            mlflow_reader, settings.mlflow_webhook_name, settings.mlflow_webhook_url
        )
        run_id, artifacts = registry.run()

        started = time.perf_counter()
        version = mlflow_reader.create_model_version(
            model, source=f"{artifacts}/model", run_id=run_id, tags={"stage": "candidate"}
        )
        [event] = await streams.wait_for(lambda found: len(found) >= 1, model=model)
        delays_ms.append((time.perf_counter() - started) * 1000)

        # more samples of the delay: version -> event on the stream
        for expected in range(2, 7):
            started = time.perf_counter()
            registry.version(model)
            await streams.wait_for(lambda found, n=expected: len(found) >= n, model=model)
            delays_ms.append((time.perf_counter() - started) * 1000)

        mlflow_reader.set_registered_model_alias(model, "champion", "1")
        mlflow_reader.set_model_version_tag(model, "1", "approved", "yes")
        found = await streams.wait_for(lambda found: len(found) >= 8, model=model)
        poller = (await http.get("/mlflow/poller")).json()

    # run with -s to see it: the delay from calling create_model_version to the event in Redis
    print(f"webhook delay create_model_version -> stream (ms): {[round(d) for d in delays_ms]}")
    assert max(delays_ms) < 5000

    # the registered event: deterministic id, fields read back from MLflow
    assert event.envelope.id == model_version_event_id(model, "1", version.creation_timestamp)
    assert event.envelope.source == "tracking"
    assert event.envelope.subject == f"{model}/1"
    assert event.envelope.correlationid  # the delivery id
    payload = event.payload_as(ModelVersionRegistered)
    assert type(payload) is ModelVersionRegistered
    assert (payload.model_name, payload.version) == (model, "1")
    assert payload.run_id == run_id
    assert payload.experiment_id == registry.experiment_id
    assert payload.source == version.source == f"{artifacts}/model"
    assert payload.created_at == datetime.fromtimestamp(version.creation_timestamp / 1000, tz=UTC)
    assert payload.tags == {"stage": "candidate"}
    assert payload.aliases == []

    # one event per version, every version
    registered = [e for e in found if e.type == ModelVersionRegistered.event_type]
    assert sorted(e.payload_as(ModelVersionRegistered).version for e in registered) == [
        str(n) for n in range(1, 7)
    ]
    assert len({e.id for e in found}) == len(found)

    # alias and tag: ModelVersionChanged with the version's current state
    # MLflow delivers webhooks concurrently: the two may arrive in either order
    changed = {
        e.payload_as(ModelVersionChanged).change: e
        for e in found
        if e.type == ModelVersionChanged.event_type
    }
    assert set(changed) == {"alias_created", "tag_set"}
    alias, tag = changed["alias_created"], changed["tag_set"]
    alias_payload = alias.payload_as(ModelVersionChanged)
    assert (alias_payload.change, alias_payload.key, alias_payload.value) == (
        "alias_created",
        "champion",
        None,
    )
    assert alias_payload.aliases == ["champion"]
    record = ModelVersionRecord(
        name=model, version="1", source="x", creation_timestamp=version.creation_timestamp
    )
    alias_delivery, tag_delivery = alias.envelope.correlationid, tag.envelope.correlationid
    assert alias_delivery  # the delivery ids
    assert tag_delivery
    assert alias.id == changed_event_id(record, "alias_created", "champion", alias_delivery)
    tag_payload = tag.payload_as(ModelVersionChanged)
    assert (tag_payload.change, tag_payload.key, tag_payload.value) == (
        "tag_set",
        "approved",
        "yes",
    )
    assert tag_payload.tags == {"stage": "candidate", "approved": "yes"}
    assert tag.id == model_version_event_id(
        model, "1", version.creation_timestamp, f"tag_set:approved:{tag_delivery}"
    )
    assert tag_payload.run_id == run_id

    # the poller ran once at start (no backfill) and published nothing since
    assert poller["last_run"]["error"] is None
    assert poller["passes"] == 1

    # the poller, on its own (another namespace, backfill), mints the same ids...
    fresh = ModelStreams(redis, streams.namespace + "poller:")
    poller_alone = ModelVersionPoller(
        registry=MlflowModelRegistry(mlflow_reader),
        redis=redis,
        publisher=Publisher(redis, namespace=fresh.namespace),
        namespace=fresh.namespace,
        interval_s=3600,
        lookback_s=0,
    )
    await poller_alone.run_once()
    polled = {e.id for e in await fresh.events(model)}
    assert polled == {e.id for e in registered}
    # ...and in the webhook's namespace it skips what the webhook already published
    same = ModelVersionPoller(
        registry=MlflowModelRegistry(mlflow_reader),
        redis=redis,
        publisher=Publisher(redis, namespace=streams.namespace),
        namespace=streams.namespace,
        interval_s=3600,
    )
    await same.run_once()
    assert len(await streams.events(model)) == 8
