"""Dead letters: entries a consumer gave up on, kept with the reason in ``<stream>.dlq``.

Moving an entry is one MULTI/EXEC: XADD to the dead-letter stream and XACK on the source, so an
entry is never both lost and acknowledged. The idempotency key is *not* set, so replaying a dead
letter after a fix processes it.

Operators list them (:func:`list_dead_letters`) and replay one (:func:`replay_dead_letter`) by
its id, ``<stream>:<entry id>`` (``llmops.training:1712345678901-0``: the contract stream, not
namespaced, and the entry's id in ``<stream>.dlq``); the gateway's ``/events/dlq`` and
``llmops dlq`` share these functions.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

import redis.asyncio as aioredis
from pydantic import ValidationError

from llmops_shared.events import DeadLetterEntry, Stream, dead_letter_stream

DLQ_MAXLEN = 100_000
REPLAYED_TTL_S = 7 * 24 * 3600
"""How long a replayed letter's id is remembered, so replaying it again answers "already
replayed" (409) rather than "unknown" (404)."""

_LETTER_ID = re.compile(r"^(?P<stream>llmops\.[a-z][a-z0-9_-]*):(?P<entry>[0-9]+-[0-9]+)$")


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


# --- listing and replaying ------------------------------------------------------------------


class UnknownDeadLetterError(LookupError):
    """No dead letter has that id (and none with it was replayed lately)."""


class DeadLetterAlreadyReplayedError(LookupError):
    """The dead letter was replayed already; it is no longer in the dead-letter stream."""

    def __init__(self, letter_id: str, replayed_as: str) -> None:
        super().__init__(f"dead letter {letter_id} was already replayed (as entry {replayed_as})")
        self.replayed_as = replayed_as


class DeadLetterNotReplayableError(ValueError):
    """The dead letter has no ``event`` field (the entry it came from had none)."""


def letter_id(stream: str, entry_id: str) -> str:
    """The public id of a dead letter: ``<contract stream>:<entry id in <stream>.dlq>``."""
    return f"{stream}:{entry_id}"


def parse_letter_id(value: str) -> tuple[Stream, str]:
    """``(stream, entry id)``; :class:`UnknownDeadLetterError` for anything else."""
    match = _LETTER_ID.match(value)
    if match is None:
        raise UnknownDeadLetterError(f"dead letter {value} not found")
    try:
        stream = Stream(match["stream"])
    except ValueError:
        raise UnknownDeadLetterError(f"dead letter {value} not found") from None
    return stream, match["entry"]


@dataclass(frozen=True)
class StoredDeadLetter:
    """One entry of a dead-letter stream as an operator sees it."""

    id: str
    stream: Stream
    entry_id: str
    fields: Mapping[str, str]
    letter: DeadLetterEntry | None
    """None when the fields do not parse (an entry written by hand, or by a future runtime)."""

    @property
    def event(self) -> Mapping[str, Any] | None:
        """The original event as JSON, when it is a JSON object (a CloudEvent, usually)."""
        try:
            parsed = json.loads(self.fields.get("event", ""))
        except ValueError:
            return None
        return parsed if isinstance(parsed, dict) else None


def _text(value: bytes | str) -> str:
    return value.decode("utf-8", errors="replace") if isinstance(value, bytes) else value


def _stored(stream: Stream, entry_id: bytes | str, raw: Mapping[Any, Any]) -> StoredDeadLetter:
    fields = {_text(k): _text(v) for k, v in raw.items()}
    try:
        letter: DeadLetterEntry | None = DeadLetterEntry.from_fields(fields)
    except ValidationError:
        letter = None
    entry = _text(entry_id)
    return StoredDeadLetter(letter_id(stream, entry), stream, entry, fields, letter)


def _entry_key(entry_id: str) -> tuple[int, int]:
    ms, _, seq = entry_id.partition("-")
    return int(ms), int(seq or 0)


async def list_dead_letters(
    redis: aioredis.Redis,
    *,
    namespace: str = "",
    stream: Stream | None = None,
    limit: int = 50,
) -> list[StoredDeadLetter]:
    """The newest ``limit`` dead letters of ``stream`` (every stream when None), newest first."""
    streams = [stream] if stream is not None else list(Stream)
    async with redis.pipeline(transaction=False) as pipe:
        for name in streams:
            pipe.xrevrange(dead_letter_stream(f"{namespace}{name}"), count=limit)
        replies = await pipe.execute()
    letters = [
        _stored(name, entry_id, fields)
        for name, entries in zip(streams, replies, strict=True)
        for entry_id, fields in entries or []
    ]
    letters.sort(key=lambda letter: _entry_key(letter.entry_id), reverse=True)
    return letters[:limit]


_REPLAY_LUA = """
local entries = redis.call('XRANGE', KEYS[1], ARGV[1], ARGV[1])
if #entries == 0 then
  local replayed = redis.call('GET', KEYS[3])
  if replayed then return {'replayed', replayed} end
  return {'missing', ''}
end
local fields = entries[1][2]
local event = nil
for i = 1, #fields, 2 do
  if fields[i] == 'event' then event = fields[i + 1] end
end
if event == nil then return {'no_event', ''} end
local new_id
local maxlen = tonumber(ARGV[2])
if maxlen > 0 then
  new_id = redis.call('XADD', KEYS[2], 'MAXLEN', '~', maxlen, '*', 'event', event)
else
  new_id = redis.call('XADD', KEYS[2], '*', 'event', event)
end
redis.call('XDEL', KEYS[1], ARGV[1])
redis.call('SET', KEYS[3], new_id, 'EX', tonumber(ARGV[3]))
return {'ok', new_id}
"""


@dataclass(frozen=True)
class Replayed:
    """A dead letter put back on its stream."""

    id: str
    stream: Stream
    entry_id: str
    replayed_entry_id: str
    """The new entry's id in the stream; the event inside (and its event id) is unchanged."""


def replayed_marker(namespace: str, stream: Stream, entry_id: str) -> str:
    return f"{namespace}llmops:dlq-replayed:{stream}:{entry_id}"


async def replay_dead_letter(
    redis: aioredis.Redis,
    value: str,
    *,
    namespace: str = "",
    maxlen: int = 1_000_000,
) -> Replayed:
    """Put the dead letter ``value`` (``<stream>:<entry id>``) back on its stream.

    One Lua script XADDs the entry's ``event`` field to the stream, byte for byte (same event
    id, so consumers that handled it already skip it by their idempotency key, and the group
    that gave up, which never marked it processed, handles it), XDELs it from the dead-letter
    stream and remembers the replay for :data:`REPLAYED_TTL_S`: a crash leaves it either
    replayed or not, never both or lost. Raises :class:`UnknownDeadLetterError` or
    :class:`DeadLetterAlreadyReplayedError` (or :class:`DeadLetterNotReplayableError`).
    """
    stream, entry_id = parse_letter_id(value)
    key = f"{namespace}{stream}"
    marker = replayed_marker(namespace, stream, entry_id)
    reply = await redis.eval(
        _REPLAY_LUA, 3, dead_letter_stream(key), key, marker, entry_id, maxlen, REPLAYED_TTL_S
    )
    outcome, new_id = (_text(part) for part in reply)
    if outcome == "replayed":
        raise DeadLetterAlreadyReplayedError(value, new_id)
    if outcome == "missing":
        raise UnknownDeadLetterError(f"dead letter {value} not found")
    if outcome == "no_event":
        raise DeadLetterNotReplayableError(f"dead letter {value} has no event to replay")
    return Replayed(value, stream, entry_id, new_id)
