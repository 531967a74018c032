"""The webhook receiver's answers: signatures, replay window, bad bodies, duplicates, failures.

The receiver app runs in process (httpx's ASGI transport) on the real Redis and the real MLflow
server; deliveries are built and signed exactly as MLflow's ``webhooks/delivery.py`` does.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
import redis.asyncio as aioredis
from mlflow.tracking import MlflowClient
from mlflow.webhooks.delivery import _generate_hmac_signature
from pydantic import SecretStr

from llmops_shared.events import Envelope, ModelVersionRegistered, model_version_event_id
from llmops_shared.streams import Publisher
from llmops_tracking.adapters.mlflow import mlflow_client
from llmops_tracking.adapters.mlflow_registry import MlflowModelRegistry
from llmops_tracking.model_versions import ModelVersionRecord, delivery_key
from llmops_tracking.webhook_app import build_webhook_app
from llmops_tracking.webhook_signing import sign
from llmops_tracking.webhooks import NOT_CONFIGURED, WebhookError, WebhookReceiver

from integration.tracking.helpers import unreachable_uri
from integration.tracking.model_versions import SECRET, ModelStreams, Registry

pytestmark = pytest.mark.integration


class FailingPublisher:
    """Redis refuses the XADD (what the real publisher raises after its retries)."""

    def __init__(self) -> None:
        self.calls = 0

    async def publish(self, envelope: Envelope) -> str:
        self.calls += 1
        raise ConnectionError("redis is down")


def delivery(
    entity: str, action: str, data: dict[str, Any], *, secret: str = SECRET, age_s: int = 0
) -> tuple[dict[str, str], bytes]:
    """Headers and body of one delivery, as MLflow sends it."""
    body = json.dumps(
        {
            "entity": entity,
            "action": action,
            "timestamp": datetime.now(UTC).isoformat(),
            "data": data,
        }
    )
    delivery_id = str(uuid.uuid4())
    timestamp = str(int(time.time()) - age_s)
    headers = {
        "Content-Type": "application/json",
        "X-MLflow-Delivery-Id": delivery_id,
        "X-MLflow-Timestamp": timestamp,
        "X-MLflow-Signature": _generate_hmac_signature(secret, delivery_id, timestamp, body),
    }
    return headers, body.encode()


@pytest.fixture
def streams(redis: aioredis.Redis, names: object) -> ModelStreams:
    return ModelStreams(redis, f"test.{names.token}:")  # type: ignore[attr-defined]


def receiver(
    redis: aioredis.Redis,
    streams: ModelStreams,
    client: MlflowClient,
    *,
    publisher: Any = None,
    secret: str | None = SECRET,
) -> WebhookReceiver:
    return WebhookReceiver(
        secret=SecretStr(secret) if secret else None,
        tolerance_s=300,
        registry=MlflowModelRegistry(client),
        redis=redis,
        publisher=publisher or Publisher(redis, namespace=streams.namespace),
        namespace=streams.namespace,
    )


async def http_client(app: Any) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://tracking") as client:
        yield client


@pytest.fixture
async def http(
    redis: aioredis.Redis, streams: ModelStreams, mlflow_reader: MlflowClient
) -> AsyncIterator[httpx.AsyncClient]:
    app = build_webhook_app(receiver(redis, streams, mlflow_reader), poller_status=None)
    async for client in http_client(app):
        yield client


@pytest.fixture
def version(mlflow_reader: MlflowClient) -> tuple[str, str]:
    """A model with one version: (model name, version)."""
    registry = Registry(mlflow_reader)
    model = registry.model()
    return model, str(registry.version(model).version)


def created(model: str, version: str, **kwargs: Any) -> tuple[dict[str, str], bytes]:
    data = {"name": model, "version": version, "source": "x", "run_id": None, "tags": {}}
    return delivery("model_version", "created", data, **kwargs)


async def test_a_signed_delivery_is_published_once(
    http: httpx.AsyncClient,
    streams: ModelStreams,
    redis: aioredis.Redis,
    mlflow_reader: MlflowClient,
    version: tuple[str, str],
) -> None:
    model, number = version
    headers, body = created(model, number)
    first = await http.post("/mlflow/webhook", content=body, headers=headers)
    again = await http.post("/mlflow/webhook", content=body, headers=headers)

    assert first.status_code == 200, first.text
    created_ms = mlflow_reader.get_model_version(model, number).creation_timestamp
    assert first.json()["published"] == model_version_event_id(model, number, created_ms)
    assert again.status_code == 200
    assert again.json() == {"duplicate": True, "delivery_id": headers["X-MLflow-Delivery-Id"]}
    [event] = await streams.events(model)
    assert event.payload_as(ModelVersionRegistered).version == number
    assert event.envelope.correlationid == headers["X-MLflow-Delivery-Id"]
    ttl = await redis.ttl(delivery_key(streams.namespace, headers["X-MLflow-Delivery-Id"]))
    assert 86_000 < ttl <= 86_400


@pytest.mark.parametrize(
    ("tamper", "detail"),
    [
        ("wrong-secret", "X-MLflow-Signature does not match"),
        ("body-changed", "X-MLflow-Signature does not match"),
        ("stale", "more than 300 s away from now"),
        ("future", "more than 300 s away from now"),
        ("not-a-number", "X-MLflow-Timestamp is not unix seconds"),
        ("no-signature", "missing header X-MLflow-Signature"),
        ("no-timestamp", "missing header X-MLflow-Timestamp"),
        ("no-delivery-id", "missing header X-MLflow-Delivery-Id"),
        ("unknown-version", "X-MLflow-Signature does not match"),
    ],
)
async def test_unauthenticated_deliveries_are_refused_with_401(
    http: httpx.AsyncClient, streams: ModelStreams, tamper: str, detail: str
) -> None:
    headers, body = created(
        "m", "1", secret="another-secret" if tamper == "wrong-secret" else SECRET
    )
    if tamper == "body-changed":
        body = body.replace(b'"m"', b'"n"')
    elif tamper in ("stale", "future"):
        headers, body = created("m", "1", age_s=301 if tamper == "stale" else -301)
    elif tamper == "not-a-number":
        headers["X-MLflow-Timestamp"] = "yesterday"
    elif tamper.startswith("no-"):
        header = {"no-signature": "Signature", "no-timestamp": "Timestamp"}.get(
            tamper, "Delivery-Id"
        )
        del headers[f"X-MLflow-{header}"]
    elif tamper == "unknown-version":
        headers["X-MLflow-Signature"] = headers["X-MLflow-Signature"].replace("v1,", "v2,")

    answer = await http.post("/mlflow/webhook", content=body, headers=headers)

    assert answer.status_code == 401
    assert detail in answer.json()["detail"]
    assert await streams.events() == []


@pytest.mark.parametrize(
    "body",
    [
        b"not json",
        b"[]",
        b'{"entity": "model_version"}',
        b'{"entity": "model_version", "action": "created", "data": {"version": "1"}}',
        b'{"entity": "model_version_alias", "action": "created", "data": {"name": "m"}}',
    ],
)
async def test_signed_but_malformed_bodies_are_refused_with_400(
    http: httpx.AsyncClient, streams: ModelStreams, body: bytes
) -> None:
    delivery_id, timestamp = str(uuid.uuid4()), str(int(time.time()))
    headers = {
        "X-MLflow-Delivery-Id": delivery_id,
        "X-MLflow-Timestamp": timestamp,
        "X-MLflow-Signature": sign(SECRET, delivery_id, timestamp, body),
    }
    answer = await http.post("/mlflow/webhook", content=body, headers=headers)
    assert answer.status_code == 400, answer.text
    assert await streams.events() == []


async def test_other_entities_are_acknowledged_and_ignored(
    http: httpx.AsyncClient, streams: ModelStreams
) -> None:
    headers, body = delivery("prompt_version", "created", {"name": "p", "version": "1"})
    answer = await http.post("/mlflow/webhook", content=body, headers=headers)
    assert answer.status_code == 200
    assert answer.json() == {"ignored": True, "event": "prompt_version.created"}
    assert await streams.events() == []


async def test_a_publish_failure_answers_503_and_forgets_the_delivery(
    redis: aioredis.Redis,
    streams: ModelStreams,
    mlflow_reader: MlflowClient,
    version: tuple[str, str],
) -> None:
    model, number = version
    failing = FailingPublisher()
    app = build_webhook_app(
        receiver(redis, streams, mlflow_reader, publisher=failing), poller_status=None
    )
    headers, body = created(model, number)
    async for http in http_client(app):
        answer = await http.post("/mlflow/webhook", content=body, headers=headers)
    assert answer.status_code == 503
    assert "cannot publish the event" in answer.json()["detail"]
    assert failing.calls == 1
    assert not await redis.exists(delivery_key(streams.namespace, headers["X-MLflow-Delivery-Id"]))

    # MLflow's retry of the same delivery then goes through
    healthy = build_webhook_app(receiver(redis, streams, mlflow_reader), poller_status=None)
    async for http in http_client(healthy):
        retried = await http.post("/mlflow/webhook", content=body, headers=headers)
    assert retried.status_code == 200
    assert len(await streams.events(model)) == 1


async def test_mlflow_unreachable_answers_503_and_forgets_the_delivery(
    redis: aioredis.Redis, streams: ModelStreams
) -> None:
    down = mlflow_client(unreachable_uri(), max_retries=0, timeout_s=2)
    app = build_webhook_app(receiver(redis, streams, down), poller_status=None)
    headers, body = created("m", "1")
    async for http in http_client(app):
        answer = await http.post("/mlflow/webhook", content=body, headers=headers)
    assert answer.status_code == 503
    assert "failed while reading model version m/1" in answer.json()["detail"]
    assert not await redis.exists(delivery_key(streams.namespace, headers["X-MLflow-Delivery-Id"]))


async def test_a_deleted_version_is_acknowledged_without_an_event(
    http: httpx.AsyncClient, streams: ModelStreams
) -> None:
    headers, body = created("no-such-model-" + uuid.uuid4().hex[:6], "1")
    answer = await http.post("/mlflow/webhook", content=body, headers=headers)
    assert answer.status_code == 200
    assert answer.json()["ignored"] is True
    assert await streams.events() == []


async def test_without_a_secret_or_mlflow_the_receiver_says_why(
    redis: aioredis.Redis, streams: ModelStreams, mlflow_reader: MlflowClient
) -> None:
    headers, body = created("m", "1")
    unconfigured = build_webhook_app(
        receiver(redis, streams, mlflow_reader, secret=None), poller_status=None
    )
    async for http in http_client(unconfigured):
        answer = await http.post("/mlflow/webhook", content=body, headers=headers)
        assert answer.status_code == 503
        assert answer.json() == {"detail": NOT_CONFIGURED}

    builtin = build_webhook_app(None, poller_status=None, disabled_reason="tracking is built-in")
    async for http in http_client(builtin):
        answer = await http.post("/mlflow/webhook", content=body, headers=headers)
        assert (answer.status_code, answer.json()) == (503, {"detail": "tracking is built-in"})
        poller = await http.get("/mlflow/poller")
        assert (poller.status_code, poller.json()) == (503, {"detail": "tracking is built-in"})


class CrashAfterPublish:
    """Publishes, then the process "dies" before the delivery id is recorded."""

    def __init__(self, inner: Publisher) -> None:
        self.inner = inner

    async def publish(self, envelope: Envelope) -> str:
        await self.inner.publish(envelope)
        raise asyncio.CancelledError  # what a SIGTERM'd task sees; SIGKILL stops even earlier


async def test_a_crash_between_publish_and_record_republishes_the_same_id(
    redis: aioredis.Redis,
    streams: ModelStreams,
    mlflow_reader: MlflowClient,
    version: tuple[str, str],
) -> None:
    model, number = version
    headers, body = created(model, number)
    crashing = receiver(
        redis,
        streams,
        mlflow_reader,
        publisher=CrashAfterPublish(Publisher(redis, namespace=streams.namespace)),
    )
    with pytest.raises(asyncio.CancelledError):
        await crashing.receive(headers, body)
    key = delivery_key(streams.namespace, headers["X-MLflow-Delivery-Id"])
    assert not await redis.exists(key)  # nothing left behind to answer "duplicate"

    app = build_webhook_app(receiver(redis, streams, mlflow_reader), poller_status=None)
    async for http in http_client(app):
        retried = await http.post("/mlflow/webhook", content=body, headers=headers)
        again = await http.post("/mlflow/webhook", content=body, headers=headers)
    assert retried.status_code == 200, retried.text
    assert again.json()["duplicate"] is True
    events = await streams.events(model)
    assert len(events) == 2
    assert len({e.id for e in events}) == 1  # consumers keep one
    assert retried.json()["published"] == events[0].id


class SlowRegistry:
    """The first read waits for ``release`` (an MLflow lookup past MLflow's 30 s timeout)."""

    def __init__(self, inner: MlflowModelRegistry) -> None:
        self.inner = inner
        self.release = asyncio.Event()
        self.calls = 0

    async def get_version(self, name: str, version: str) -> Any:
        self.calls += 1
        if self.calls == 1:
            await self.release.wait()
        return await self.inner.get_version(name, version)


async def test_a_retry_overtaking_a_slow_attempt_that_then_fails_is_not_lost(
    redis: aioredis.Redis,
    streams: ModelStreams,
    mlflow_reader: MlflowClient,
    version: tuple[str, str],
) -> None:
    """The first attempt is slow, MLflow times out and retries; the retry publishes; the first
    attempt then fails with 503. The event is on the stream and the delivery is done."""
    model, number = version
    headers, body = created(model, number)
    slow = SlowRegistry(MlflowModelRegistry(mlflow_reader))
    shared = WebhookReceiver(
        secret=SecretStr(SECRET),
        tolerance_s=300,
        registry=slow,  # type: ignore[arg-type]
        redis=redis,
        publisher=Publisher(redis, namespace=streams.namespace),
        namespace=streams.namespace,
    )
    first = asyncio.create_task(shared.receive(headers, body))
    await asyncio.sleep(0.05)
    retried = await shared.receive(headers, body)
    assert "published" in retried

    class FailNow:
        async def publish(self, envelope: Envelope) -> str:
            raise ConnectionError("redis is down")

    shared.publisher = FailNow()  # the slow attempt's publish fails
    slow.release.set()
    with pytest.raises(WebhookError) as failed:
        await first
    assert failed.value.status == 503
    key = delivery_key(streams.namespace, headers["X-MLflow-Delivery-Id"])
    assert await redis.exists(key)  # the failure did not forget the done delivery
    assert [e.id for e in await streams.events(model)] == [retried["published"]]
    assert (await shared.receive(headers, body))["duplicate"] is True


async def test_oversized_bodies_are_refused_before_being_read(
    http: httpx.AsyncClient, streams: ModelStreams
) -> None:
    headers, _ = created("m", "1")
    declared = await http.post(
        "/mlflow/webhook",
        content=b"x" * 10,
        headers={**headers, "Content-Length": str(2 * 1024 * 1024)},
    )
    assert declared.status_code == 413

    async def chunks() -> AsyncIterator[bytes]:  # chunked: no Content-Length to check
        for _ in range(3):
            yield b"x" * 512 * 1024

    streamed = await http.post("/mlflow/webhook", content=chunks(), headers=headers)
    assert streamed.status_code == 413
    assert "larger than 1048576 bytes" in streamed.json()["detail"]
    assert await streams.events() == []


class FixedRegistry:
    def __init__(self, record: ModelVersionRecord) -> None:
        self.record = record

    async def get_version(self, name: str, version: str) -> ModelVersionRecord:
        return self.record


async def test_a_version_with_a_path_like_run_id_is_ignored_with_a_reason(
    redis: aioredis.Redis, streams: ModelStreams
) -> None:
    record = ModelVersionRecord(
        name="m", version="1", source="s3://b/k", creation_timestamp=1, run_id="../../x"
    )
    shared = WebhookReceiver(
        secret=SecretStr(SECRET),
        tolerance_s=300,
        registry=FixedRegistry(record),  # type: ignore[arg-type]
        redis=redis,
        publisher=Publisher(redis, namespace=streams.namespace),
        namespace=streams.namespace,
    )
    async for http in http_client(build_webhook_app(shared, poller_status=None)):
        headers, body = created("m", "1")
        answer = await http.post("/mlflow/webhook", content=body, headers=headers)
    assert answer.status_code == 200
    assert answer.json()["ignored"] is True
    assert "run_id" in answer.json()["reason"]
    assert await streams.events() == []


async def test_a_long_tag_value_is_published(
    http: httpx.AsyncClient,
    streams: ModelStreams,
    mlflow_reader: MlflowClient,
    version: tuple[str, str],
) -> None:
    model, number = version
    value = "v" * 100_000  # MLflow's own limit
    mlflow_reader.set_model_version_tag(model, number, "notes", value)
    headers, body = delivery(
        "model_version_tag",
        "set",
        {"name": model, "version": number, "key": "notes", "value": value},
    )
    answer = await http.post("/mlflow/webhook", content=body, headers=headers)
    assert answer.status_code == 200, answer.text[:500]
    [event] = await streams.events(model)
    assert event.envelope.data["value"] == value


async def test_credentials_in_the_tracking_uri_never_reach_an_answer(
    redis: aioredis.Redis, streams: ModelStreams
) -> None:
    uri = unreachable_uri().replace("http://", "http://alice:s3cret@")
    down = mlflow_client(uri, max_retries=0, timeout_s=2)
    app = build_webhook_app(receiver(redis, streams, down), poller_status=None)
    headers, body = created("m", "1")
    async for http in http_client(app):
        answer = await http.post("/mlflow/webhook", content=body, headers=headers)
    assert answer.status_code == 503
    assert "s3cret" not in answer.text
    assert "alice:***@" in answer.text
