"""A real worker process for the fault tests, run as ``python worker_process.py CONSUMER``.

It runs :func:`llmops_shared.worker.run_worker` on ``llmops.training`` (under the namespace in
``STREAM_NAMESPACE``) with a handler that counts its calls in Redis, waits
``HANDLER_DELAY_S`` and emits one status event per event. An event whose ``reason`` is
``crash`` makes the process die on the spot (``os._exit``), as a segfault or OOM kill would.
"""

from __future__ import annotations

import asyncio
import os
import sys

import redis.asyncio as aioredis

from llmops_shared.config import ServiceSettings
from llmops_shared.events import (
    Envelope,
    Event,
    Phase,
    StatusEntity,
    Stream,
    TrainingJobCancelled,
    new_event,
    status_updated,
)
from llmops_shared.logging import configure_logging
from llmops_shared.streams import async_redis
from llmops_shared.worker import Subscription, run_worker


def make_handler(redis: aioredis.Redis, namespace: str, delay_s: float):  # type: ignore[no-untyped-def]
    async def handle(event: Event) -> list[Envelope]:
        await redis.hincrby(f"{namespace}handler-calls", event.envelope.id, 1)
        payload = event.payload
        if isinstance(payload, TrainingJobCancelled) and payload.reason == "crash":
            os._exit(137)
        await asyncio.sleep(delay_s)
        status = status_updated(
            StatusEntity.JOB, entity_id=event.envelope.id, phase=Phase.CANCELLED, reporter="fault"
        )
        return [new_event(status, source="fault")]

    return handle


async def main(consumer: str) -> None:
    settings = ServiceSettings(service_name="fault-worker", health_port=0)
    configure_logging(service=settings.service_name, json=True)
    assert settings.redis_url is not None, "REDIS_URL must be set"
    side_channel = async_redis(settings.redis_url.get_secret_value())
    handler = make_handler(
        side_channel, settings.stream_namespace, float(os.environ.get("HANDLER_DELAY_S", "0"))
    )
    await run_worker(settings, [Subscription(Stream.TRAINING, handler)], consumer_name=consumer)
    await side_channel.aclose()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1]))
