"""The claim heartbeat: a consumer keeps the batch in hand claimed while its handlers run.

Split out of :mod:`llmops_shared.streams.consumer`: a timer beside the batch processing, so
another replica's janitor never takes over entries whose handler is merely slow.
"""

from __future__ import annotations

import asyncio

import redis.asyncio as aioredis
from redis.exceptions import ResponseError
from redis.typing import StreamIdT
from structlog.stdlib import BoundLogger

from llmops_shared.streams.errors import describe
from llmops_shared.streams.publisher import TRANSIENT_REDIS_ERRORS


class ClaimHeartbeat:
    """While a batch is in hand, reset its entries' idle time every third of
    ``claim_idle_ms``, so another replica's janitor never takes over a handler that is merely
    slow (a model download, a DVC push). ``XCLAIM ... JUSTID`` to ourselves does not count as a
    delivery, and ids already acknowledged are skipped by Redis. A dead process stops beating,
    so its entries are reclaimed as before.

    A timer, not a task per batch: most batches end long before the first beat, and arming and
    cancelling a timer costs far less than starting and cancelling a task (at COUNT 1 every
    event is a batch).
    """

    def __init__(
        self,
        redis: aioredis.Redis,
        *,
        stream: str,
        group: str,
        consumer: str,
        message_ids: list[StreamIdT],
        claim_idle_ms: int,
        log: BoundLogger,
    ) -> None:
        self._redis = redis
        self._stream = stream
        self._group = group
        self._consumer = consumer
        self._ids = message_ids
        self._log = log
        self._interval_s = max(claim_idle_ms / 3000, 0.05)
        self._loop = asyncio.get_running_loop()
        self._task: asyncio.Task[None] | None = None
        self._timer = self._loop.call_later(self._interval_s, self._beat)

    def _beat(self) -> None:
        if self._task is None or self._task.done():
            self._task = self._loop.create_task(self._claim_again())
        self._timer = self._loop.call_later(self._interval_s, self._beat)

    async def _claim_again(self) -> None:
        """Reset the idle time of the batch's entries."""
        try:
            await self._redis.xclaim(
                self._stream, self._group, self._consumer, 0, self._ids, justid=True
            )
        except (ResponseError, *TRANSIENT_REDIS_ERRORS) as exc:
            self._log.warning("claim_heartbeat_failed", error=describe(exc))

    def stop(self) -> None:
        self._timer.cancel()
        if self._task is not None and not self._task.done():
            self._task.cancel()
