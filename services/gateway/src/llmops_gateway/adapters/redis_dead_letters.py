"""The dead-letter streams in Redis, as the operations use cases read and replay them."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Sequence
from typing import Final, TypeVar

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from llmops_gateway.domain.errors import ConflictError, NotFoundError, UnavailableError
from llmops_shared.events import Stream
from llmops_shared.logging import get_logger
from llmops_shared.streams.dead_letters import (
    DeadLetterAlreadyReplayedError,
    DeadLetterNotReplayableError,
    Replayed,
    StoredDeadLetter,
    UnknownDeadLetterError,
    list_dead_letters,
    replay_dead_letter,
)

T = TypeVar("T")
REDIS_TIMEOUT_S: Final = 2.0


class RedisDeadLetters:
    """:class:`~llmops_gateway.operations.dead_letters.DeadLetterStore` on the gateway's client:
    every call bounded by :data:`REDIS_TIMEOUT_S`; Redis down or slow is an
    :class:`UnavailableError` (503, retry later), never a 500."""

    def __init__(self, redis: aioredis.Redis, *, namespace: str, maxlen: int) -> None:
        self._redis = redis
        self._namespace = namespace
        self._maxlen = maxlen

    async def list(self, stream: Stream | None, limit: int) -> Sequence[StoredDeadLetter]:
        return await _bounded(
            list_dead_letters(self._redis, namespace=self._namespace, stream=stream, limit=limit)
        )

    async def replay(self, letter_id: str) -> Replayed:
        try:
            return await _bounded(
                replay_dead_letter(
                    self._redis, letter_id, namespace=self._namespace, maxlen=self._maxlen
                )
            )
        except UnknownDeadLetterError as exc:
            raise NotFoundError(str(exc)) from exc
        except (DeadLetterAlreadyReplayedError, DeadLetterNotReplayableError) as exc:
            raise ConflictError(str(exc)) from exc


async def _bounded(call: Awaitable[T]) -> T:
    try:
        return await asyncio.wait_for(call, timeout=REDIS_TIMEOUT_S)
    except (RedisError, OSError, TimeoutError) as exc:
        get_logger(__name__).warning(
            "dead_letters_redis_unavailable", error=f"{type(exc).__name__}: {exc}"
        )
        raise UnavailableError("redis unavailable, retry later", retry_after=1) from exc
