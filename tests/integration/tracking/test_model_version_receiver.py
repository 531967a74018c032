"""The webhook receiver's answers: signatures, replay window, bad bodies, duplicates, failures.

The receiver app runs in process (httpx's ASGI transport) on the real Redis and the real MLflow
server; deliveries are built and signed exactly as MLflow's ``webhooks/delivery.py`` does.
"""

from __future__ import annotations

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
from llmops_tracking.model_versions import delivery_key
from llmops_tracking.webhooks import (
    NOT_CONFIGURED,
    WebhookReceiver,
    build_webhook_app,
    sign,
)

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
    version: tuple[str, str],
) -> None:
    model, number = version
    headers, body = created(model, number)
    first = await http.post("/mlflow/webhook", content=body, headers=headers)
    again = await http.post("/mlflow/webhook", content=body, headers=headers)

    assert first.status_code == 200, first.text
    assert first.json()["published"] == model_version_event_id(model, number)
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
