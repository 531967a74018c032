"""Fault tests: processes and servers die mid-flight; nothing is lost, nothing happens twice.

Worker processes are real (``worker_process.py``, which runs the production worker host). The
Redis-restart test starts its own ``redis-server`` with AOF, never the shared one.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis as redis_sync
from prometheus_client import CollectorRegistry

from llmops_cli.embedded_redis import EmbeddedRedis
from llmops_shared.config import ConsumerSettings
from llmops_shared.events import Envelope, Event, Stream, decode_event
from llmops_shared.streams import EVENT_FIELD, ConsumerRunner, Publisher, StreamMetrics, async_redis

from support.streams import cancel_event, status_for

pytestmark = pytest.mark.fault

WORKER = Path(__file__).with_name("worker_process.py")
GROUP = "fault-worker"


class Workers:
    """Start and stop worker processes against one Redis and namespace."""

    def __init__(self, redis_url: str, namespace: str, tmp_path: Path) -> None:
        self.redis_url = redis_url
        self.namespace = namespace
        self.tmp_path = tmp_path
        self.client = redis_sync.Redis.from_url(redis_url)
        self.stream = f"{namespace}{Stream.TRAINING}"
        self.status = f"{namespace}{Stream.STATUS}"
        self.processes: list[subprocess.Popen[bytes]] = []

    def start(self, consumer: str, **env: str) -> subprocess.Popen[bytes]:
        environment = {
            **os.environ,
            "REDIS_URL": self.redis_url,
            "STREAM_NAMESPACE": self.namespace,
            "CONSUMER__BATCH_SIZE": "20",
            "CONSUMER__BLOCK_MS": "100",
            "CONSUMER__CLAIM_IDLE_MS": "500",
            "CONSUMER__JANITOR_INTERVAL_MS": "200",
            "CONSUMER__MAX_DELIVERIES": "3",
            **env,
        }
        log = (self.tmp_path / f"{consumer}-{len(self.processes)}.log").open("wb")
        process = subprocess.Popen(
            [sys.executable, str(WORKER), consumer], env=environment, stderr=log, stdout=log
        )
        self.processes.append(process)
        return process

    def log_of(self, process: subprocess.Popen[bytes]) -> str:
        index = self.processes.index(process)
        [path] = self.tmp_path.glob(f"*-{index}.log")
        return path.read_text()

    def publish(self, events: list[Envelope]) -> None:
        async def go() -> None:
            client = async_redis(self.redis_url)
            await Publisher(client, namespace=self.namespace).publish_many(events)
            await client.aclose()

        asyncio.run(go())

    def reported(self) -> Counter[str]:
        """How many status events name each source event."""
        return Counter(
            decode_event(fields[EVENT_FIELD]).payload.subject()
            for _, fields in self.client.xrange(self.status)
        )

    def pending(self) -> int:
        return int(self.client.xpending(self.stream, GROUP)["pending"])

    def dead_letters(self) -> list[dict[bytes, bytes]]:
        return [fields for _, fields in self.client.xrange(f"{self.stream}.dlq")]

    def stop_all(self) -> None:
        for process in self.processes:
            if process.poll() is None:
                process.kill()
                process.wait()


@pytest.fixture
def workers(redis_url: str, tmp_path: Path) -> Iterator[Workers]:
    pool = Workers(redis_url, f"test.{uuid.uuid4().hex[:10]}:", tmp_path)
    yield pool
    pool.stop_all()


def wait_for(predicate: object, timeout_s: float = 60.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():  # type: ignore[operator]
            return
        time.sleep(0.05)
    raise AssertionError(f"{what} not reached within {timeout_s}s")


def test_kill_9_mid_batch_another_consumer_finishes_exactly_once(workers: Workers) -> None:
    events = [cancel_event() for _ in range(300)]
    workers.publish(events)
    first = workers.start("consumer-a", HANDLER_DELAY_S="0.01")
    wait_for(
        lambda: len(workers.reported()) >= 60 and workers.pending() > 0,
        what="consumer-a halfway with a batch in hand",
    )
    first.send_signal(signal.SIGKILL)
    first.wait()
    assert workers.pending() > 0, "the kill must leave delivered, unacknowledged entries"

    second = workers.start("consumer-b", HANDLER_DELAY_S="0.001")
    wait_for(lambda: len(workers.reported()) == 300, what="all 300 events reported")

    reported = workers.reported()
    assert set(reported) == {e.id for e in events}
    assert max(reported.values()) == 1, "an effect happened twice"
    wait_for(lambda: workers.pending() == 0, timeout_s=10, what="nothing pending")

    second.send_signal(signal.SIGTERM)  # graceful drain
    assert second.wait(timeout=15) == 0
    assert '"worker_stopped"' in workers.log_of(second)


def test_a_poison_event_that_crashes_the_worker_ends_in_the_dlq(workers: Workers) -> None:
    good_before, poison, good_after = cancel_event(), cancel_event(reason="crash"), cancel_event()
    workers.publish([good_before, poison, good_after])

    crashes = 0
    for _ in range(6):  # a supervisor restarting the crashed pod under the same name
        process = workers.start("consumer-p")
        while process.poll() is None and not workers.dead_letters():
            time.sleep(0.05)
        if process.poll() is None:
            break
        assert process.returncode == 137
        crashes += 1
    wait_for(lambda: len(workers.reported()) == 2, timeout_s=20, what="the good events reported")

    assert crashes == 3  # max_deliveries
    [letter] = workers.dead_letters()
    assert decode_event(letter[b"event"]).envelope.id == poison.id
    assert letter[b"cause"] == b"max_deliveries"
    assert letter[b"deliveries"] == b"4"
    assert letter[b"reason"].startswith(b"exceeded 3 deliveries")
    assert workers.reported() == Counter({good_before.id: 1, good_after.id: 1})
    wait_for(lambda: workers.pending() == 0, timeout_s=10, what="nothing pending")


def test_a_deleted_group_is_recreated_under_a_running_worker(workers: Workers) -> None:
    before = [cancel_event() for _ in range(5)]
    workers.publish(before)
    process = workers.start("consumer-g")
    wait_for(lambda: len(workers.reported()) == 5, what="first events reported")

    workers.client.xgroup_destroy(workers.stream, GROUP)
    after = [cancel_event() for _ in range(5)]
    workers.publish(after)
    wait_for(lambda: len(workers.reported()) == 10, what="events after the loss reported")

    assert max(workers.reported().values()) == 1
    assert process.poll() is None
    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=15) == 0
    log = workers.log_of(process)
    assert '"consumer_group_missing"' in log
    assert '"alert": true' in log


async def test_redis_restarted_mid_stream_loses_no_acknowledged_event(tmp_path: Path) -> None:
    with EmbeddedRedis(data_dir=tmp_path, appendonly=True, appendfsync="always") as server:
        client = async_redis(server.url)
        namespace = "fault:"
        stream, status = f"{namespace}{Stream.TRAINING}", f"{namespace}{Stream.STATUS}"

        async def handler(event: Event) -> list[Envelope]:
            return [status_for(event)]

        runner = ConsumerRunner(
            client,
            stream=Stream.TRAINING,
            group="tracking",
            consumer="c1",
            handler=handler,
            settings=ConsumerSettings(block_ms=50, claim_idle_ms=1_000, janitor_interval_ms=200),
            metrics=StreamMetrics(CollectorRegistry()),
            namespace=namespace,
        )
        stop = asyncio.Event()
        consumer = asyncio.create_task(runner.run(stop))
        publisher = Publisher(client, namespace=namespace, retry_for_s=30)
        acknowledged: list[str] = []

        async def publish() -> None:
            for _ in range(600):
                event = cancel_event()
                await publisher.publish(event)  # returns only once Redis acknowledged it
                acknowledged.append(event.id)
                await asyncio.sleep(0.002)

        publishing = asyncio.create_task(publish())
        while len(acknowledged) < 200:  # noqa: ASYNC110 - polling a plain list
            await asyncio.sleep(0.01)
        await asyncio.to_thread(server.kill)
        await asyncio.sleep(0.3)
        await asyncio.to_thread(server.start)
        await asyncio.wait_for(publishing, timeout=60)

        async def reported() -> Counter[str]:
            return Counter(
                decode_event(f[EVENT_FIELD]).payload.subject()
                for _, f in await client.xrange(status)
            )

        deadline = time.monotonic() + 30
        while set(acknowledged) - set(await reported()) and time.monotonic() < deadline:  # noqa: ASYNC110
            await asyncio.sleep(0.1)
        stop.set()
        await asyncio.wait_for(consumer, timeout=10)

        counts = await reported()
        assert set(acknowledged) <= set(counts), "an acknowledged event was lost"
        assert max(counts.values()) == 1, "an effect happened twice"
        assert int((await client.xpending(stream, "tracking"))["pending"]) == 0
        await client.aclose()
