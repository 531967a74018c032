"""The dead letters of every stream, and replaying one after a fix (``/events/dlq``).

A dead letter's id is ``<stream>:<entry id>``, e.g. ``llmops.training:1712345678901-0``: the
contract stream (not namespaced) and the entry's id in ``<stream>.dlq``. The letters are in
Redis, reached through a :class:`DeadLetterStore`
(:class:`llmops_gateway.adapters.redis_dead_letters.RedisDeadLetters`), which answers an unknown
id with :class:`~llmops_gateway.domain.errors.NotFoundError`, a letter already replayed (or
with no event to replay) with :class:`~llmops_gateway.domain.errors.ConflictError`, and Redis
down or slow with :class:`~llmops_gateway.domain.errors.UnavailableError`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Protocol

from llmops_gateway.domain.errors import UnavailableError
from llmops_shared.events import Stream
from llmops_shared.logging import get_logger

if TYPE_CHECKING:
    from llmops_shared.streams.dead_letters import Replayed, StoredDeadLetter


class DeadLetterStore(Protocol):
    async def list(self, stream: Stream | None, limit: int) -> Sequence[StoredDeadLetter]:
        """The newest ``limit`` letters of ``stream`` (every stream when None), newest first."""
        ...

    async def replay(self, letter_id: str) -> Replayed:
        """Put the letter's event back on its stream and remove the letter, atomically."""
        ...


def _connected(store: DeadLetterStore | None) -> DeadLetterStore:
    if store is None:
        raise UnavailableError("redis not connected")
    return store


async def list_dead_letters(
    store: DeadLetterStore | None, *, stream: Stream | None, limit: int
) -> Sequence[StoredDeadLetter]:
    """The entries consumers gave up on, newest first (``store`` None: Redis not connected)."""
    return await _connected(store).list(stream, limit)


async def replay_dead_letter(store: DeadLetterStore | None, letter_id: str) -> Replayed:
    """Re-publish the letter's original event, byte for byte (same event id: services that
    handled it skip it, the one that gave up handles it)."""
    done = await _connected(store).replay(letter_id)
    get_logger(__name__).info("dead_letter_replayed", id=done.id, entry=done.replayed_entry_id)
    return done
