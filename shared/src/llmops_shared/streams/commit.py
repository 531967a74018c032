"""The atomic end of handling a batch: mark processed, write status events, acknowledge.

One Lua script does, per entry and in one server-side step: ``SET <idempotency key> NX``; only if
that succeeded, ``XADD`` the entry's output events; then one ``XACK`` for the whole batch. So an
effect written to Redis happens exactly once even when two consumers race on a reclaimed entry,
and a crash before the script leaves the entry pending (to be replayed) with nothing written.

Redis Cluster: every key a script touches must share a hash slot; keep a service's streams and
idempotency keys under one hash tag there (see docs/production.md when it lands).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import redis.asyncio as aioredis

_COMMIT_LUA = """
local group = ARGV[1]
local ttl = tonumber(ARGV[2])
local maxlen = tonumber(ARGV[3])
local n = tonumber(ARGV[4])
local pos = 5
local applied = 0
local ids = {}
for i = 1, n do
  local msg_id = ARGV[pos]
  local n_out = tonumber(ARGV[pos + 1])
  pos = pos + 2
  local fresh = redis.call('SET', KEYS[1 + i], msg_id, 'NX', 'EX', ttl)
  if fresh then applied = applied + 1 end
  for j = 1, n_out do
    if fresh then
      local key = KEYS[tonumber(ARGV[pos])]
      if maxlen > 0 then
        redis.call('XADD', key, 'MAXLEN', '~', maxlen, '*', 'event', ARGV[pos + 1])
      else
        redis.call('XADD', key, '*', 'event', ARGV[pos + 1])
      end
    end
    pos = pos + 2
  end
  ids[#ids + 1] = msg_id
end
if #ids > 0 then redis.call('XACK', KEYS[1], group, unpack(ids)) end
return applied
"""


@dataclass(frozen=True)
class Completed:
    """One handled entry: its stream id, its event id and the events it emits."""

    message_id: bytes
    event_id: str
    outputs: Sequence[tuple[str, str]] = field(default_factory=tuple)  # (stream, event JSON)
    redelivered: bool = False


def idempotency_key(group: str, event_id: str, namespace: str = "") -> str:
    """Per group: two services consuming one event each process it once."""
    return f"{namespace}llmops:idem:{group}:{event_id}"


class BatchCommitter:
    """Runs the commit script for a batch of completed entries of one stream and group."""

    def __init__(
        self,
        redis: aioredis.Redis,
        *,
        stream: str,
        group: str,
        ttl_s: int,
        output_maxlen: int,
        namespace: str = "",
    ) -> None:
        self._stream = stream
        self._namespace = namespace
        self._group = group
        self._ttl_s = ttl_s
        self._output_maxlen = output_maxlen
        self._script = redis.register_script(_COMMIT_LUA)

    async def commit(self, completed: Sequence[Completed]) -> int:
        """Commit and acknowledge; returns how many entries were new (not already processed)."""
        if not completed:
            return 0
        keys: list[str] = [self._stream]
        keys += [idempotency_key(self._group, c.event_id, self._namespace) for c in completed]
        output_index: dict[str, int] = {}
        args: list[str | bytes | int] = [
            self._group,
            self._ttl_s,
            self._output_maxlen,
            len(completed),
        ]
        for c in completed:
            args += [c.message_id, len(c.outputs)]
            for stream, payload in c.outputs:
                if stream not in output_index:
                    keys.append(stream)
                    output_index[stream] = len(keys)  # Lua KEYS are 1-based
                args += [output_index[stream], payload]
        applied = await self._script(keys=keys, args=args)
        return int(applied)
