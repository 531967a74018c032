"""Flag-switch benchmark: seconds from a config change on ``llmops.config`` to the worker running
the other backend.

    uv run python bench/flag_switch.py [--switches 10]

Runs the real versioning worker in process (``serve_with_flags``, as ``python -m
llmops_versioning`` does) on a private ``redis-server``, and alternates ``DATA_VERSIONING``
between DVC and the built-in store by publishing ``IntegrationConfigChanged`` events (what the
gateway's outbox relay does). Per switch it times, from the XADD:

* **switched**: the worker's heartbeat hash names the new backend (it drained, rebuilt its
  adapters and consumers and beat again); the heartbeat is written at start, so this is the
  time a health check can see the switch;

and, as the floor, in the same run: **raw XADD -> XREAD** delivery of one entry to a blocked
reader on the same server. Prints a Markdown table for docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import asyncio
import platform
import statistics
import tempfile
import time
from pathlib import Path

import redis.asyncio as aioredis
from pydantic import SecretStr

from llmops_cli.embedded_redis import EmbeddedRedis
from llmops_shared.events import IntegrationArea, IntegrationConfigChanged, new_event
from llmops_shared.heartbeat import read_heartbeats
from llmops_shared.streams import Publisher
from llmops_shared.worker import serve_with_flags
from llmops_versioning.app import serve
from llmops_versioning.config import VersioningSettings


async def backend_of(redis: aioredis.Redis) -> str | None:
    beats = [b for b in await read_heartbeats(redis, namespace="") if b.service == "versioning"]
    return beats[0].facts.get("backend") if len(beats) == 1 else None


async def wait_backend(redis: aioredis.Redis, backend: str, timeout_s: float = 30) -> None:
    deadline = time.monotonic() + timeout_s
    while await backend_of(redis) != backend:
        if time.monotonic() > deadline:
            raise TimeoutError(f"worker did not switch to {backend}")
        await asyncio.sleep(0.002)


async def raw_delivery(redis: aioredis.Redis, samples: int) -> list[float]:
    """XADD -> a blocked XREAD on another connection, the floor of any change event."""
    reader = redis.client()
    out: list[float] = []
    try:
        for _ in range(samples):
            last = "$"
            read = asyncio.create_task(reader.xread({"bench.raw": last}, block=5_000, count=1))
            await asyncio.sleep(0.05)  # the reader is blocked
            started = time.perf_counter()
            await redis.xadd("bench.raw", {"x": "1"})
            await read
            out.append(time.perf_counter() - started)
    finally:
        await reader.aclose()
    return out


async def main(switches: int) -> None:
    with tempfile.TemporaryDirectory() as tmp, EmbeddedRedis() as server:
        root = Path(tmp)
        redis = aioredis.from_url(server.url)
        settings = VersioningSettings(
            redis_url=SecretStr(server.url),
            health_port=0,
            environment="dev",
            dvc_repos_dir=root / "repos",
            dvc_remote_url=str(root / "remote"),
            builtin_store_dir=root / "builtin",
            log_json=True,
        )
        publisher = Publisher(redis)
        stop = asyncio.Event()
        worker = asyncio.create_task(serve_with_flags(serve, settings, stop=stop))
        await wait_backend(redis, "dvc")
        samples: list[float] = []
        for revision in range(1, switches + 1):
            enabled = revision % 2 == 0
            change = IntegrationConfigChanged(
                environment="dev",
                area=IntegrationArea.DATA_VERSIONING,
                enabled=enabled,
                system="dvc",
                revision=revision,
            )
            started = time.perf_counter()
            await publisher.publish(new_event(change, source="bench", correlation_id="bench"))
            await wait_backend(redis, "dvc" if enabled else "builtin")
            samples.append(time.perf_counter() - started)
        stop.set()
        await worker
        raw = await raw_delivery(redis, switches)
        await redis.aclose()

    def row(name: str, values: list[float]) -> str:
        ms = sorted(v * 1000 for v in values)
        p50, worst = statistics.median(ms), ms[-1]
        return f"| {name} | {len(ms)} | {p50:.1f} ms | {worst:.1f} ms |"

    print(f"# flag switch, {platform.node()}, {time.strftime('%Y-%m-%d')}, Python "
          f"{platform.python_version()}")  # fmt: skip
    print("| path | samples | median | max |")
    print("| --- | --- | --- | --- |")
    print(row("change event -> worker on the other backend (heartbeat)", samples))
    print(row("raw XADD -> blocked XREAD (floor)", raw))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--switches", type=int, default=10)
    asyncio.run(main(parser.parse_args().switches))
