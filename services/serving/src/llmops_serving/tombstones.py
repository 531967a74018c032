"""Tombstones: the endpoints whose delete the serving worker handled, never to be deployed again.

A deleted endpoint does not come back: the gateway never un-deletes one (after DELETE only the
worker's ``Deleted`` report, or a retried DELETE, follow) and mints a new id (a fresh UUID) for
every endpoint it creates, also one re-created under the same route and name. So any later
``DeploymentRequested``, ``DeploymentPromoted``, ``DeploymentRolledBack`` or
``DeploymentMigrationRequested`` for a deleted endpoint id is a replay (a dead letter replayed
after the delete, an event re-read past the consumers' idempotency window, a consumer group
recreated at ``0``), and applying it would create an object nobody tracks. The worker records
the endpoint id when it handles the ``DeploymentDeleted`` (before it deletes anything, so a
replay handled by another replica during the delete is refused too), and refuses those events
for a recorded id (:mod:`llmops_serving.handlers`). Tombstones never block real work.

Where: Redis, one key per endpoint, ``<STREAM_NAMESPACE>llmops:serving:tombstones:<endpoint id>``
holding the id of the ``DeploymentDeleted`` event. That survives worker restarts, is shared by
every replica, and serves every backend alike (``kserve``, ``deployment``, ``manifests``: a
worker switched to another backend by the ``serving_framework`` flag keeps its tombstones).
Retention: ``TOMBSTONE_RETENTION_DAYS`` (default 365) as the key's TTL, refreshed by every
refusal; ``0`` keeps them for ever (a few dozen bytes per deleted endpoint). A replay older than
the retention is still caught by the gateway, which answers a report about an endpoint it does
not know with a delete (docs/serving.md, "Deleted endpoints stay deleted").
"""

from __future__ import annotations

from typing import Final, Protocol

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from llmops_serving.ports import ServingUnavailable

KEY_PREFIX: Final = "llmops:serving:tombstones:"
"""Under the stream namespace; the Redis ACL grants the serving user GET and SET on it."""


def tombstone_key(namespace: str, endpoint_id: str) -> str:
    """The Redis key of ``endpoint_id``'s tombstone."""
    return f"{namespace}{KEY_PREFIX}{endpoint_id}"


class Tombstones(Protocol):
    """Where the deleted endpoints are remembered."""

    async def bury(self, endpoint_id: str, *, event_id: str) -> None:
        """Remember that ``endpoint_id`` was deleted by the event ``event_id``."""
        ...

    async def buried(self, endpoint_id: str) -> str | None:
        """The id of the event that deleted ``endpoint_id``; ``None`` when it was not."""
        ...


class RedisTombstones:
    """:class:`Tombstones` in Redis (see the module); Redis errors are outages
    (:class:`~llmops_serving.ports.ServingUnavailable`: the event waits and is retried)."""

    def __init__(
        self, redis: aioredis.Redis, *, namespace: str = "", retention_s: int | None = None
    ) -> None:
        self._redis = redis
        self._namespace = namespace
        self._retention_s = retention_s or None

    async def bury(self, endpoint_id: str, *, event_id: str) -> None:
        try:
            await self._redis.set(
                tombstone_key(self._namespace, endpoint_id), event_id, ex=self._retention_s
            )
        except RedisError as exc:
            raise ServingUnavailable(
                f"cannot record the tombstone of {endpoint_id}: {exc}"
            ) from exc

    async def buried(self, endpoint_id: str) -> str | None:
        try:
            value = await self._redis.get(tombstone_key(self._namespace, endpoint_id))
        except RedisError as exc:
            raise ServingUnavailable(f"cannot read the tombstone of {endpoint_id}: {exc}") from exc
        if value is None:
            return None
        return value.decode() if isinstance(value, bytes) else str(value)


class MemoryTombstones:
    """:class:`Tombstones` in this process only (tests that drive the handlers directly)."""

    def __init__(self) -> None:
        self.deleted: dict[str, str] = {}

    async def bury(self, endpoint_id: str, *, event_id: str) -> None:
        self.deleted[endpoint_id] = event_id

    async def buried(self, endpoint_id: str) -> str | None:
        return self.deleted.get(endpoint_id)
