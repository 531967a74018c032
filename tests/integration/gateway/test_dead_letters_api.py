"""``/events/dlq``: listing dead letters and replaying one after a fix, with a real worker
consuming the stream, on a real Redis and database."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

import pytest
from pydantic import SecretStr

from llmops_shared.config import ServiceSettings
from llmops_shared.events import Envelope, Event, Stream
from llmops_shared.streams import NonRetryableError, Publisher
from llmops_shared.worker import Subscription, WorkerContext, run_worker

from integration.gateway.harness import API, NO_CREDENTIAL, OTHER_API_KEY, Gateway, auth
from support.streams import FAST_CONSUMER, cancel_event, read_events, wait_until

pytestmark = pytest.mark.integration

DLQ = f"{API}/events/dlq"


class Flaky:
    """A tracking handler that refuses events until fixed."""

    def __init__(self) -> None:
        self.broken = True
        self.handled: list[str] = []

    def __call__(self, _: WorkerContext[ServiceSettings]) -> Sequence[Subscription]:
        async def handle(event: Event) -> list[Envelope]:
            if self.broken:
                raise NonRetryableError("bad config: fix me")
            self.handled.append(event.envelope.id)
            return []

        return [Subscription(Stream.TRAINING, handle)]


async def test_list_replay_and_handle_after_a_fix(gateway: Gateway) -> None:
    ns = gateway.namespace
    flaky = Flaky()
    stop = asyncio.Event()
    settings = ServiceSettings(
        service_name="tracking",
        redis_url=SecretStr(gateway.settings.redis_url.get_secret_value()),  # type: ignore[union-attr]
        stream_namespace=ns, consumer=FAST_CONSUMER, health_port=0, heartbeat_interval_s=0.2,
    )  # fmt: skip
    worker = asyncio.create_task(run_worker(settings, flaky, consumer_name="t-1", stop=stop))
    try:
        envelope = cancel_event()
        await Publisher(gateway.redis, namespace=ns).publish(envelope)

        async def dead_lettered() -> bool:
            return bool(await gateway.redis.xlen(f"{ns}{Stream.TRAINING}.dlq"))

        await wait_until(dead_lettered, timeout_s=10)

        listed = await gateway.client.get(DLQ, params={"stream": "llmops.training"})
        assert listed.status_code == 200, listed.text
        [item] = listed.json()["items"]
        assert item["id"].startswith("llmops.training:")
        assert item["stream"] == "llmops.training"
        assert item["group"] == "tracking"
        assert item["consumer"] == "t-1"
        assert item["reason"].endswith("bad config: fix me")
        assert item["errorType"] == "NonRetryableError"
        assert item["cause"] == "non_retryable"
        assert item["deliveries"] >= 1
        assert item["failedAt"]
        assert item["eventId"] == envelope.id
        assert item["eventType"] == envelope.type
        assert item["subject"] == envelope.subject
        everything = (await gateway.client.get(DLQ)).json()["items"]
        assert [i["id"] for i in everything] == [item["id"]]
        assert (await gateway.client.get(DLQ, params={"stream": "llmops.serving"})).json()[
            "items"
        ] == []
        assert (await gateway.client.get(DLQ, params={"stream": "nope"})).status_code == 422

        replay_url = f"{DLQ}/{item['id']}/replay"
        assert (await gateway.client.post(replay_url, headers=NO_CREDENTIAL)).status_code == 401
        assert (await gateway.client.post(replay_url, headers=auth("wrong"))).status_code == 401

        flaky.broken = False
        replayed = await gateway.client.post(replay_url, headers=auth(OTHER_API_KEY))
        assert replayed.status_code == 202, replayed.text
        body: dict[str, Any] = replayed.json()
        assert body["id"] == item["id"]
        assert body["entryId"] == item["id"].split(":", 1)[1]
        assert await gateway.redis.xlen(f"{ns}{Stream.TRAINING}.dlq") == 0
        events = await read_events(gateway.redis, f"{ns}{Stream.TRAINING}")
        assert [e.envelope.id for e in events] == [envelope.id, envelope.id]  # same event id

        async def handled() -> bool:
            return flaky.handled == [envelope.id]

        await wait_until(handled, timeout_s=10)

        again = await gateway.client.post(replay_url, headers=auth())
        assert again.status_code == 409
        assert "already replayed" in again.json()["detail"]
        assert await gateway.redis.xlen(f"{ns}{Stream.TRAINING}") == 2  # nothing re-published
    finally:
        stop.set()
        await asyncio.wait_for(worker, timeout=10)


async def test_unknown_dead_letters_are_404(gateway: Gateway) -> None:
    for letter in ("llmops.training:1-0", "llmops.nothing:1-0", "garbage", "llmops.training:x"):
        response = await gateway.client.post(f"{DLQ}/{letter}/replay", headers=auth())
        assert response.status_code == 404, (letter, response.text)


async def test_listing_is_newest_first_across_streams_and_limited(gateway: Gateway) -> None:
    ns = gateway.namespace
    fields = {"event": "not json", "stream": "s", "group": "g", "message_id": "1-0",
              "reason": "r", "error_type": "E", "deliveries": "1",
              "failed_at": "2026-01-01T00:00:00+00:00", "consumer": "c"}  # fmt: skip
    first = await gateway.redis.xadd(f"{ns}{Stream.SERVING}.dlq", fields)
    second = await gateway.redis.xadd(f"{ns}{Stream.CATALOG}.dlq", fields)
    third = await gateway.redis.xadd(f"{ns}{Stream.SERVING}.dlq", {"event": "x"})  # unparsed
    items = (await gateway.client.get(DLQ)).json()["items"]
    assert [i["entryId"] for i in items] == [e.decode() for e in (third, second, first)]
    assert items[0]["reason"] is None
    assert items[1]["eventType"] is None  # the event is not JSON
    limited = (await gateway.client.get(DLQ, params={"limit": 1})).json()["items"]
    assert [i["entryId"] for i in limited] == [third.decode()]
