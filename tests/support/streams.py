"""Small helpers for stream tests: example events, waiting, reading a stream back."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import redis.asyncio as aioredis

from llmops_shared.config import ConsumerSettings
from llmops_shared.events import (
    Envelope,
    Event,
    Phase,
    StatusEntity,
    TrainingJobCancelled,
    decode_event,
    new_event,
    status_updated,
)
from llmops_shared.streams import EVENT_FIELD

FAST_CONSUMER = ConsumerSettings(
    batch_size=10,
    block_ms=50,
    claim_idle_ms=200,
    janitor_interval_ms=100,
    max_deliveries=3,
    retry_attempts=2,
    retry_initial_backoff_s=0.01,
    retry_max_backoff_s=0.02,
)
"""Consumer settings that keep tests quick: short blocks, claims and backoffs. Suites adjust
single knobs with ``model_copy(update=...)``."""


def cancel_event(job_id: str | None = None, reason: str = "test") -> Envelope:
    """A small, valid event on ``llmops.training``."""
    payload = TrainingJobCancelled(job_id=job_id or uuid.uuid4().hex, reason=reason)
    return new_event(payload, source="tests", correlation_id="corr-test")


def status_for(event: Event, reporter: str = "tests") -> Envelope:
    """The status event a test handler emits for the event it handled (entity id = event id)."""
    payload = status_updated(
        StatusEntity.JOB,
        entity_id=event.envelope.id,
        phase=Phase.SUCCEEDED,
        reporter=reporter,
    )
    return new_event(payload, source=reporter, correlation_id=event.envelope.correlationid)


async def read_events(redis: aioredis.Redis, stream: str) -> list[Event]:
    """Every event in ``stream``, decoded."""
    return [decode_event(fields[EVENT_FIELD]) for _, fields in await redis.xrange(stream)]


async def wait_until(
    predicate: Callable[[], Awaitable[bool]], *, timeout_s: float = 20.0, interval_s: float = 0.05
) -> None:
    """Poll ``predicate`` until true; fail the test with a clear message on timeout."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if await predicate():
            return
        await asyncio.sleep(interval_s)
    raise AssertionError(f"condition not met within {timeout_s}s")


def details_of(payload: Any) -> dict[str, Any]:
    """A status payload's ``details`` as they travel (JSON; only the facts the reporter set)."""
    details: dict[str, Any] = payload.details.model_dump(mode="json")
    return details
