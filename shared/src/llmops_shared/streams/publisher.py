"""Append events to their streams: the one way a service writes to Redis Streams.

Every event goes to the stream its type belongs to (``stream_for``) as a single ``event`` field
holding the CloudEvents JSON. A connection error is retried with backoff; if Redis applied the
XADD but the reply was lost, the retry appends a second copy with the same event id, which the
consumers' idempotency store skips. That is the at-least-once half of the contract.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

import redis.asyncio as aioredis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError
from tenacity import (
    AsyncRetrying,
    retry_if_exception_type,
    stop_after_delay,
    wait_exponential_jitter,
)

from llmops_shared.events import Envelope, encode_event, stream_for

EVENT_FIELD = b"event"


def stream_key(namespace: str, stream: str) -> str:
    """The Redis key of a contract stream name under a namespace ('' in most deployments)."""
    return f"{namespace}{stream}"


TRANSIENT_REDIS_ERRORS = (RedisConnectionError, RedisTimeoutError, ConnectionError, OSError)


class StatusSink(Protocol):
    """Where a service sends events out of band: a watcher's reports, progress while a handler
    runs. :class:`Publisher` is one; tests pass an in-memory one."""

    async def publish(self, envelope: Envelope) -> str:
        """Append one event to its stream; the entry id."""
        ...


class Publisher:
    """Publish envelopes; ``maxlen`` is an approximate cap (0 = none), kept well above lag."""

    def __init__(
        self,
        redis: aioredis.Redis,
        *,
        namespace: str = "",
        maxlen: int = 1_000_000,
        retry_for_s: float = 30.0,
    ) -> None:
        self._redis = redis
        self._namespace = namespace
        self._maxlen = maxlen or None
        self._retry_for_s = retry_for_s

    async def publish(self, envelope: Envelope) -> str:
        """Append one event; returns its stream entry id."""
        ids = await self.publish_many([envelope])
        return ids[0]

    async def publish_many(self, envelopes: Sequence[Envelope]) -> list[str]:
        """Append several events in one round trip (a non-transactional pipeline)."""
        if not envelopes:
            return []
        entries = [
            (stream_key(self._namespace, stream_for(e.type)), encode_event(e)) for e in envelopes
        ]
        async for attempt in AsyncRetrying(
            retry=retry_if_exception_type(TRANSIENT_REDIS_ERRORS),
            wait=wait_exponential_jitter(multiplier=0.05, max=2.0, jitter=0.05),
            stop=stop_after_delay(self._retry_for_s),
            reraise=True,
        ):
            with attempt:
                async with self._redis.pipeline(transaction=False) as pipe:
                    for stream, payload in entries:
                        pipe.xadd(
                            stream,
                            {EVENT_FIELD: payload},
                            maxlen=self._maxlen,
                            approximate=True,
                        )
                    replies = await pipe.execute()
        return [r.decode() if isinstance(r, bytes) else str(r) for r in replies]
