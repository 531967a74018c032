"""Dead letters: entries a consumer gave up on, kept with the reason in ``<stream>.dlq``.

Moving an entry is one MULTI/EXEC: XADD to the dead-letter stream and XACK on the source, so an
entry is never both lost and acknowledged. The idempotency key is *not* set, so replaying a dead
letter after a fix processes it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Literal

import redis.asyncio as aioredis

from llmops_shared.events import dead_letter_stream

DLQ_MAXLEN = 100_000


@dataclass(frozen=True)
class DeadLetter:
    """Why one entry was given up on; written as flat stream fields."""

    message_id: bytes
    raw_event: bytes
    reason: str
    error_type: str
    deliveries: int
    cause: Literal["non_retryable", "max_deliveries"]

    def fields(self, *, stream: str, group: str, consumer: str) -> Mapping[str, bytes | str]:
        return {
            "event": self.raw_event,
            "stream": stream,
            "group": group,
            "message_id": self.message_id,
            "reason": self.reason,
            "error_type": self.error_type,
            "deliveries": str(self.deliveries),
            "cause": self.cause,
            "failed_at": datetime.now(UTC).isoformat(),
            "consumer": consumer,
        }


async def move_to_dead_letters(
    redis: aioredis.Redis,
    letters: Sequence[DeadLetter],
    *,
    stream: str,
    group: str,
    consumer: str,
) -> None:
    """Append each letter to ``<stream>.dlq`` and acknowledge its entry, atomically."""
    if not letters:
        return
    dlq = dead_letter_stream(stream)
    async with redis.pipeline(transaction=True) as pipe:
        for letter in letters:
            pipe.xadd(
                dlq,
                dict(letter.fields(stream=stream, group=group, consumer=consumer)),  # type: ignore[arg-type]
                maxlen=DLQ_MAXLEN,
                approximate=True,
            )
        pipe.xack(stream, group, *[letter.message_id for letter in letters])
        await pipe.execute()
