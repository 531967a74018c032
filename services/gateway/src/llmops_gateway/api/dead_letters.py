"""``/events/dlq``: the dead letters of every stream, and replaying one after a fix.

A dead letter's id is ``<stream>:<entry id>``, e.g. ``llmops.training:1712345678901-0``: the
contract stream (not namespaced) and the entry's id in ``<stream>.dlq``; both parts are
URL-safe as they are. Listing is open like the other GETs; replaying needs the API key.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from datetime import datetime
from typing import Annotated, Any, TypeVar

import redis.asyncio as aioredis
from fastapi import APIRouter, HTTPException, Path, Query, status
from redis.exceptions import RedisError

from llmops_gateway.api.deps import Authenticated, State
from llmops_gateway.api.schemas import API_PREFIX, CamelModel
from llmops_shared.events import Stream
from llmops_shared.logging import get_logger
from llmops_shared.streams.dead_letters import (
    DeadLetterAlreadyReplayedError,
    DeadLetterNotReplayableError,
    StoredDeadLetter,
    UnknownDeadLetterError,
    list_dead_letters,
    replay_dead_letter,
)

router = APIRouter(prefix=f"{API_PREFIX}/events/dlq", tags=["events"])
_log = get_logger(__name__)
T = TypeVar("T")
REDIS_TIMEOUT_S = 2.0


class DeadLetterOut(CamelModel):
    id: str
    stream: str
    entry_id: str
    group: str | None
    consumer: str | None
    message_id: str | None
    reason: str | None
    error_type: str | None
    cause: str | None
    deliveries: int | None
    failed_at: datetime | None
    event_id: str | None
    event_type: str | None
    subject: str | None
    correlation_id: str | None
    event: str

    @classmethod
    def of(cls, stored: StoredDeadLetter) -> DeadLetterOut:
        letter, fields = stored.letter, stored.fields
        event = stored.event or {}

        def text(key: str) -> str | None:
            value = event.get(key)
            return value if isinstance(value, str) else None

        deliveries = fields.get("deliveries", "")
        return cls(
            id=stored.id,
            stream=stored.stream.value,
            entry_id=stored.entry_id,
            group=letter.group if letter else fields.get("group"),
            consumer=letter.consumer if letter else fields.get("consumer"),
            message_id=letter.message_id if letter else fields.get("message_id"),
            reason=letter.reason if letter else fields.get("reason"),
            error_type=letter.error_type if letter else fields.get("error_type"),
            cause=(letter.cause if letter else fields.get("cause")) or None,
            deliveries=letter.deliveries if letter else
                int(deliveries) if deliveries.isdigit() else None,
            failed_at=letter.failed_at if letter else None,
            event_id=text("id"),
            event_type=text("type"),
            subject=text("subject"),
            correlation_id=text("correlationid"),
            event=fields.get("event", ""),
        )  # fmt: skip


class DeadLetterList(CamelModel):
    items: list[DeadLetterOut]
    limit: int


class ReplayOut(CamelModel):
    id: str
    stream: str
    entry_id: str
    replayed_entry_id: str


async def _redis_call(state: State, call: Awaitable[T]) -> T:
    """Bounded; Redis down or slow is a 503 (retry later), never a 500."""
    try:
        return await asyncio.wait_for(call, timeout=REDIS_TIMEOUT_S)
    except (RedisError, OSError, TimeoutError) as exc:
        _log.warning("dead_letters_redis_unavailable", error=f"{type(exc).__name__}: {exc}")
        raise HTTPException(
            status.HTTP_503_SERVICE_UNAVAILABLE,
            detail="redis unavailable, retry later",
            headers={"Retry-After": "1"},
        ) from exc


def _client(state: State) -> aioredis.Redis:
    if state.redis is None:
        raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, detail="redis not connected")
    return state.redis


@router.get("", response_model=DeadLetterList, summary="List dead letters, newest first")
async def list_letters(
    state: State,
    stream: Annotated[
        Stream | None, Query(description="One contract stream; every stream when omitted.")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=1_000)] = 50,
) -> DeadLetterList:
    """The entries consumers gave up on, with why (reason, error type, cause, deliveries) and
    the event's id, type and subject when it parses."""
    client = _client(state)
    letters = await _redis_call(
        state,
        list_dead_letters(
            client, namespace=state.settings.stream_namespace, stream=stream, limit=limit
        ),
    )
    return DeadLetterList(items=[DeadLetterOut.of(s) for s in letters], limit=limit)


_REPLAY_ERRORS: dict[int | str, dict[str, Any]] = {
    404: {"description": "No dead letter with that id"},
    409: {"description": "Already replayed (or it has no event to replay)"},
}


@router.post(
    "/{letter_id}/replay",
    response_model=ReplayOut,
    status_code=status.HTTP_202_ACCEPTED,
    responses=_REPLAY_ERRORS,
    dependencies=[Authenticated],
    summary="Put a dead letter back on its stream",
)
async def replay(
    state: State,
    letter_id: Annotated[str, Path(max_length=100, description="<stream>:<entry id>")],
) -> ReplayOut:
    """Re-publish the original event, byte for byte (same event id: services that handled it
    skip it, the one that gave up handles it), and remove it from the dead-letter stream, in
    one atomic step. Replay after fixing the cause."""
    client = _client(state)
    try:
        done = await _redis_call(
            state,
            replay_dead_letter(
                client,
                letter_id,
                namespace=state.settings.stream_namespace,
                maxlen=state.settings.stream_maxlen,
            ),
        )
    except UnknownDeadLetterError as exc:
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail=str(exc)) from exc
    except (DeadLetterAlreadyReplayedError, DeadLetterNotReplayableError) as exc:
        raise HTTPException(status.HTTP_409_CONFLICT, detail=str(exc)) from exc
    _log.info("dead_letter_replayed", id=done.id, entry=done.replayed_entry_id)
    return ReplayOut(
        id=done.id,
        stream=done.stream.value,
        entry_id=done.entry_id,
        replayed_entry_id=done.replayed_entry_id,
    )
