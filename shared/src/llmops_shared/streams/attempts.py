"""What a consumer group remembers about entries that have not completed yet.

Redis counts deliveries, not handler runs: when a worker dies mid-batch every entry of the batch
is delivered again, including the innocent ones it never reached. Blaming those would
dead-letter good events next to a poison one. So the runner counts handler *attempts* itself,
only for redelivered entries (the first attempt is implied by the delivery and costs nothing on
the hot path), and keeps the last error of each. One hash per stream and group holds both.
"""

from __future__ import annotations

from collections.abc import Sequence

import redis.asyncio as aioredis

_TTL_S = 7 * 24 * 3600


class AttemptLog:
    """Attempt counts and last errors of unfinished entries of one stream and group."""

    def __init__(self, redis: aioredis.Redis, *, key: str) -> None:
        self._redis = redis
        self._key = key

    async def record_attempt(self, message_id: bytes) -> int:
        """Count the attempt about to start on a redelivered entry.

        Returns how many attempts came before it: the first delivery's attempt is implied (not
        recorded), so after the first redelivery this returns 1.
        """
        async with self._redis.pipeline(transaction=False) as pipe:
            pipe.hincrby(self._key, _attempts_field(message_id), 1)
            pipe.expire(self._key, _TTL_S)
            count, _ = await pipe.execute()
        return int(count)

    async def undo_attempt(self, message_id: bytes) -> None:
        """Take back an attempt that failed for a reason outside the event (an outage)."""
        await self._redis.hincrby(self._key, _attempts_field(message_id), -1)

    async def record_error(self, message_id: bytes, error: str) -> None:
        async with self._redis.pipeline(transaction=False) as pipe:
            pipe.hset(self._key, _error_field(message_id), error)
            pipe.expire(self._key, _TTL_S)
            await pipe.execute()

    async def last_error(self, message_id: bytes) -> str | None:
        value = await self._redis.hget(self._key, _error_field(message_id))
        return value.decode() if isinstance(value, bytes) else value

    async def forget(self, message_ids: Sequence[bytes]) -> None:
        """Drop what was kept for entries that completed or were dead-lettered."""
        if message_ids:
            fields = [f(mid) for mid in message_ids for f in (_attempts_field, _error_field)]
            await self._redis.hdel(self._key, *fields)


def _attempts_field(message_id: bytes) -> bytes:
    return message_id + b":attempts"


def _error_field(message_id: bytes) -> bytes:
    return message_id + b":error"
