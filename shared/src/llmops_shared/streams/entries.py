"""Stream entries as the consumer sees them: id, fields and how often they were delivered.

Split out of :mod:`llmops_shared.streams.consumer`: the reading loop and the batch processing
(:mod:`llmops_shared.streams.processing`) share these types and reply parsers.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import redis.asyncio as aioredis

from llmops_shared.streams.publisher import EVENT_FIELD


@dataclass(frozen=True)
class Entry:
    message_id: bytes
    fields: dict[bytes, bytes] | None  # None: the entry was trimmed away while pending
    deliveries: int

    @property
    def redelivered(self) -> bool:
        return self.deliveries > 1

    @property
    def raw_event(self) -> bytes:
        return (self.fields or {}).get(EVENT_FIELD, b"")


async def with_delivery_counts(
    redis: aioredis.Redis, stream: str, group: str, raw: list[tuple[bytes, Any]]
) -> list[Entry]:
    """``raw`` entries (id, fields) with their delivery counts from the group's pending list."""
    async with redis.pipeline(transaction=False) as pipe:
        for mid, _ in raw:
            pipe.xpending_range(stream, group, min=mid, max=mid, count=1)
        replies = await pipe.execute()
    entries = []
    for (mid, fields), pending in zip(raw, replies, strict=True):
        deliveries = int(pending[0]["times_delivered"]) if pending else 1
        entries.append(Entry(mid, fields, deliveries))
    return entries


def entries_of(reply: Any) -> list[tuple[bytes, Any]]:
    """Entries of a one-stream XREADGROUP reply (RESP2, which our connections pin)."""
    return list(reply[0][1]) if reply else []


def id_texts(values: Sequence[bytes | str]) -> list[str]:
    return [text(i) for i in values]


def text(value: bytes | str | None) -> str:
    if value is None:
        return ""
    return value.decode() if isinstance(value, bytes) else value
