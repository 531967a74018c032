"""Streams runtime benchmark: throughput and end-to-end latency against the raw redis-py ceiling.

    uv run python bench/streams.py                 # private redis-server, default sizes
    uv run python bench/streams.py --redis-url redis://127.0.0.1:6379/0

Events are real ``llmops.training.job.submitted.v1`` events carrying the seed's TrainJobSpec
(about 1 KB each). Both sides run in the same process on the same server, one after the other:

* **throughput**: N events are queued, then one consumer drains them with COUNT 1 and COUNT 100.
  *raw* is a bare XREADGROUP + one XACK per batch (no decoding at all); *runtime* is
  :class:`ConsumerRunner` with a no-op handler: decode and validate every event, idempotency
  check, commit script (mark + XACK), metrics.
* **latency**: events are published at a fixed rate from this process while a consumer runs in
  a child process and answers each with a status event; the time from XADD to seeing the status
  event (which the runtime writes atomically with the XACK) is publish -> handler -> ack.
  *raw* answers with a pipelined XADD + XACK per batch.

It prints a Markdown table; copy it to docs/benchmarks.md with the command, machine and date.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing as mp
import platform
import statistics
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import redis.asyncio as aioredis
from prometheus_client import CollectorRegistry

from llmops_cli.embedded_redis import EmbeddedRedis
from llmops_shared.config import ConsumerSettings
from llmops_shared.events import (
    Envelope,
    Event,
    Phase,
    StatusEntity,
    Stream,
    TrainingJobSubmitted,
    decode_event,
    encode_event,
    new_event,
    status_updated,
)
from llmops_shared.logging import configure_logging
from llmops_shared.specs import TrainJobSpec
from llmops_shared.specs.examples import SEED_TRAIN_JOB_SPEC
from llmops_shared.streams import EVENT_FIELD, ConsumerRunner, StreamMetrics, async_redis
from llmops_shared.worker import tune_garbage_collector

GROUP = "bench"
SPEC = TrainJobSpec.model_validate(SEED_TRAIN_JOB_SPEC)


def training_event() -> Envelope:
    payload = TrainingJobSubmitted(
        job_id=str(uuid.uuid4()),
        model_id=str(uuid.uuid4()),
        dataset_id=str(uuid.uuid4()),
        spec=SPEC,
    )
    return new_event(payload, source="bench", correlation_id=str(uuid.uuid4()))


def status_reply(event: Event) -> Envelope:
    payload = status_updated(
        StatusEntity.JOB, entity_id=event.envelope.id, phase=Phase.RUNNING, reporter="bench"
    )
    return new_event(payload, source="bench")


@dataclass
class Names:
    namespace: str

    @property
    def stream(self) -> str:
        return f"{self.namespace}{Stream.TRAINING}"

    @property
    def status(self) -> str:
        return f"{self.namespace}{Stream.STATUS}"


def fresh_names() -> Names:
    return Names(f"bench.{uuid.uuid4().hex[:8]}:")


async def enqueue(redis: aioredis.Redis, stream: str, count: int) -> None:
    payloads = [encode_event(training_event()) for _ in range(count)]
    for start in range(0, count, 1000):
        async with redis.pipeline(transaction=False) as pipe:
            for payload in payloads[start : start + 1000]:
                pipe.xadd(stream, {EVENT_FIELD: payload})
            await pipe.execute()


def settings(count: int) -> ConsumerSettings:
    return ConsumerSettings(batch_size=count, block_ms=100, janitor_interval_ms=600_000)


# ---------------------------------------------------------------------------- throughput


async def raw_drain(
    redis: aioredis.Redis, names: Names, total: int, count: int, *, decode: bool = False
) -> None:
    await redis.xgroup_create(names.stream, GROUP, id="0", mkstream=True)
    done = 0
    while done < total:
        reply = await redis.xreadgroup(GROUP, "raw", {names.stream: ">"}, count=count, block=100)
        if not reply:
            continue
        entries = reply[0][1]
        if decode:
            for _, fields in entries:
                decode_event(fields[EVENT_FIELD], expected_stream=Stream.TRAINING)
        await redis.xack(names.stream, GROUP, *[mid for mid, _ in entries])
        done += len(entries)


async def raw_decode_drain(redis: aioredis.Redis, names: Names, total: int, count: int) -> None:
    await raw_drain(redis, names, total, count, decode=True)


async def runtime_drain(redis: aioredis.Redis, names: Names, total: int, count: int) -> None:
    stop = asyncio.Event()
    seen = 0

    async def handler(event: Event) -> None:
        nonlocal seen
        seen += 1
        if seen >= total:
            stop.set()

    runner = ConsumerRunner(
        redis,
        stream=Stream.TRAINING,
        group=GROUP,
        consumer="runtime",
        handler=handler,
        settings=settings(count),
        metrics=StreamMetrics(CollectorRegistry()),
        namespace=names.namespace,
    )
    await runner.run(stop)


async def throughput(
    url: str,
    drain: Callable[[aioredis.Redis, Names, int, int], object],
    total: int,
    count: int,
) -> float:
    redis = async_redis(url)
    names = fresh_names()
    await enqueue(redis, names.stream, total)
    started = time.perf_counter()
    await drain(redis, names, total, count)  # type: ignore[misc]
    elapsed = time.perf_counter() - started
    pending = (await redis.xpending(names.stream, GROUP))["pending"]
    assert pending == 0, f"{pending} entries left unacknowledged"
    await redis.delete(names.stream, names.status)
    await redis.aclose()
    return total / elapsed


# ---------------------------------------------------------------------------- latency


def consumer_process(url: str, namespace: str, kind: str, count: int, ready: object) -> None:
    """Child process: answer every training event with a status event until terminated."""
    quiet_logging()
    tune_garbage_collector()

    async def raw() -> None:
        redis = async_redis(url)
        names = Names(namespace)
        await redis.xgroup_create(names.stream, GROUP, id="0", mkstream=True)
        ready.set()  # type: ignore[attr-defined]
        while True:
            reply = await redis.xreadgroup(
                GROUP, "raw", {names.stream: ">"}, count=count, block=100
            )
            if not reply:
                continue
            entries = reply[0][1]
            async with redis.pipeline(transaction=False) as pipe:
                for _, fields in entries:
                    pipe.xadd(names.status, {EVENT_FIELD: fields[EVENT_FIELD]})
                pipe.xack(names.stream, GROUP, *[mid for mid, _ in entries])
                await pipe.execute()

    async def runtime() -> None:
        redis = async_redis(url)

        async def handler(event: Event) -> list[Envelope]:
            return [status_reply(event)]

        runner = ConsumerRunner(
            redis,
            stream=Stream.TRAINING,
            group=GROUP,
            consumer="runtime",
            handler=handler,
            settings=settings(count),
            metrics=StreamMetrics(CollectorRegistry()),
            namespace=namespace,
        )
        await runner.ensure_group()
        ready.set()  # type: ignore[attr-defined]
        await runner.run(asyncio.Event())

    asyncio.run(raw() if kind == "raw" else runtime())


async def latency(
    url: str, kind: str, count: int, rate: int, duration_s: float
) -> dict[str, float]:
    names = fresh_names()
    ready = mp.get_context("spawn").Event()
    child = mp.get_context("spawn").Process(
        target=consumer_process, args=(url, names.namespace, kind, count, ready), daemon=True
    )
    child.start()
    ready.wait(timeout=30)
    redis = async_redis(url)
    observer = async_redis(url)
    sent_at: dict[str, float] = {}
    latencies: list[float] = []
    total = int(rate * duration_s)

    async def publish() -> None:
        started = time.perf_counter()
        for i in range(total):
            event = training_event()
            payload = encode_event(event)
            due = started + i / rate
            if (delay := due - time.perf_counter()) > 0:
                await asyncio.sleep(delay)
            sent_at[event.id] = time.perf_counter()
            await redis.xadd(names.stream, {EVENT_FIELD: payload})

    async def observe() -> None:
        last: bytes | str = "0"
        while len(latencies) < total:
            reply = await observer.xread({names.status: last}, count=500, block=1000)
            now = time.perf_counter()
            for mid, fields in reply[0][1] if reply else []:
                last = mid
                event = decode_event(fields[EVENT_FIELD])
                source_id = event.envelope.id if kind == "raw" else event.payload.subject()
                latencies.append(now - sent_at[source_id])

    publish_started = time.perf_counter()
    await asyncio.wait_for(asyncio.gather(publish(), observe()), timeout=duration_s * 4 + 30)
    achieved = total / (time.perf_counter() - publish_started)
    child.terminate()
    child.join()
    await redis.delete(names.stream, names.status)
    await redis.aclose()
    await observer.aclose()
    ms = sorted(latency * 1000 for latency in latencies)
    return {
        "rate": achieved,
        "p50": statistics.median(ms),
        "p99": ms[int(len(ms) * 0.99) - 1],
        "max": ms[-1],
    }


# ---------------------------------------------------------------------------- main


async def run(url: str, events: int, rate: int, duration_s: float, repeat: int) -> None:
    size = len(encode_event(training_event()).encode())
    redis = async_redis(url)
    version = (await redis.info("server"))["redis_version"]
    await redis.aclose()
    print(f"# streams benchmark: {platform.node()}, Python {platform.python_version()}, "
          f"Redis {version}, event {size} bytes, {mp.cpu_count()} cores")  # fmt: skip
    print()
    print(f"Throughput, events/s (best of {repeat} runs):")
    print()
    print("| COUNT | events | raw redis-py | raw + decode_event | runtime | runtime / raw "
          "| runtime / (raw + decode) |")  # fmt: skip
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for count in (1, 100):
        total = events if count == 100 else max(events // 10, 1000)
        cells = []
        for drain in (raw_drain, raw_decode_drain, runtime_drain):
            cells.append(max([await throughput(url, drain, total, count) for _ in range(repeat)]))
        raw, raw_decode, runtime = cells
        print(
            f"| {count} | {total:,} | {raw:,.0f} | {raw_decode:,.0f} | {runtime:,.0f} "
            f"| {runtime / raw:.2f} | {runtime / raw_decode:.2f} |"
        )
    print()
    print(f"Latency publish -> handler -> ack, ms, at {rate:,} events/s for {duration_s:g} s:")
    print()
    print("| COUNT | achieved events/s | raw p50 | raw p99 | raw max "
          "| runtime p50 | runtime p99 | runtime max |")  # fmt: skip
    print("| --- | --- | --- | --- | --- | --- | --- | --- |")
    for count in (1, 100):
        raw_lat = await latency(url, "raw", count, rate, duration_s)
        rt_lat = await latency(url, "runtime", count, rate, duration_s)
        print(
            f"| {count} | {rt_lat['rate']:,.0f} | {raw_lat['p50']:.2f} | {raw_lat['p99']:.2f} "
            f"| {raw_lat['max']:.2f} | {rt_lat['p50']:.2f} | {rt_lat['p99']:.2f} "
            f"| {rt_lat['max']:.2f} |"
        )


def quiet_logging() -> None:
    configure_logging(service="bench", level="WARNING", json=False)


def main() -> None:
    quiet_logging()
    tune_garbage_collector()  # as every worker does (llmops_shared.worker); applies to all columns
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--redis-url", help="a Redis to use (default: a private redis-server)")
    parser.add_argument("--events", type=int, default=50_000, help="events per COUNT-100 run")
    parser.add_argument("--rate", type=int, default=1_000, help="events/s in the latency runs")
    parser.add_argument("--duration", type=float, default=10.0, help="seconds per latency run")
    parser.add_argument("--repeat", type=int, default=3, help="throughput runs per cell (best)")
    args = parser.parse_args()
    if args.redis_url:
        asyncio.run(run(args.redis_url, args.events, args.rate, args.duration, args.repeat))
        return
    with EmbeddedRedis(data_dir=None) as server:
        print(f"(private redis-server {Path(server.binary).name} on port {server.port})")
        asyncio.run(run(server.url, args.events, args.rate, args.duration, args.repeat))


if __name__ == "__main__":
    main()
