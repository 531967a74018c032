"""The pipeline ledger's stores: Redis (the worker's) and memory (tests).

:class:`RedisLedger` keeps one JSON string per job under the worker's stream namespace,
``<namespace>llmops:workflow:pipeline:<job_id>``, each written with an expiry of
``PIPELINE_RECORD_TTL_S`` (reset at every write; a pipeline's record is written when it is
claimed, applied and when it ends), and the set ``<namespace>llmops:workflow:watched`` of the
job ids whose record is ``watched`` (what the watcher looks for after a restart; an id whose
record expired is dropped from it when read). ``update`` is an optimistic transaction: WATCH
the record, compute the change, MULTI/EXEC; a concurrent writer makes EXEC fail and the change
is computed again on what that writer left.

Every Redis failure is :class:`~llmops_workflow.ports.WorkflowUnavailable`: the event stays
pending and is retried, a watcher round is skipped.
"""

from __future__ import annotations

import asyncio
import random
from typing import Final

import redis.asyncio as aioredis
from pydantic import ValidationError
from redis.exceptions import RedisError, WatchError

from llmops_shared.logging import get_logger
from llmops_workflow.ledger import Change, PipelineRecord
from llmops_workflow.ports import WorkflowUnavailable

_log = get_logger(__name__)

_TRIES: Final = 20
"""Optimistic transactions before giving up (a record is written by one handler and the
watcher; contention is rare and short)."""


def ledger_prefix(namespace: str) -> str:
    """Where the workflow worker keeps its own state in Redis (``STREAM_NAMESPACE`` first)."""
    return f"{namespace}llmops:workflow:"


def _parse(job_id: str, raw: bytes | str | None) -> PipelineRecord | None:
    """A stored record; an unreadable one is logged and treated as absent (overwritten)."""
    if raw is None:
        return None
    try:
        return PipelineRecord.model_validate_json(raw)
    except (ValidationError, ValueError) as exc:
        _log.error("pipeline_record_unreadable", job_id=job_id, error=str(exc)[:300])
        return None


class RedisLedger:
    """A :class:`~llmops_workflow.ports.PipelineLedger` in Redis (see the module docstring)."""

    def __init__(self, redis: aioredis.Redis, *, namespace: str = "", ttl_s: int) -> None:
        self._redis = redis
        self._prefix = ledger_prefix(namespace)
        self._watched = f"{self._prefix}watched"
        self._ttl_s = ttl_s

    def key(self, job_id: str) -> str:
        return f"{self._prefix}pipeline:{job_id}"

    async def get(self, job_id: str) -> PipelineRecord | None:
        try:
            return _parse(job_id, await self._redis.get(self.key(job_id)))
        except RedisError as exc:
            raise self._unavailable(exc) from exc

    async def update(self, job_id: str, change: Change) -> PipelineRecord | None:
        key = self.key(job_id)
        try:
            async with self._redis.pipeline(transaction=True) as pipe:
                for attempt in range(_TRIES):
                    try:
                        await pipe.watch(key)
                        current = _parse(job_id, await pipe.get(key))
                        new = change(current)
                        if new is current:
                            # nothing to write: UNWATCH
                            await pipe.reset()  # type: ignore[no-untyped-call]
                            return current
                        pipe.multi()  # type: ignore[no-untyped-call]
                        if new is None:
                            pipe.delete(key)
                            pipe.srem(self._watched, job_id)
                        else:
                            pipe.set(key, new.model_dump_json(), ex=self._ttl_s)
                            if new.watched:
                                pipe.sadd(self._watched, job_id)
                            else:
                                pipe.srem(self._watched, job_id)
                        await pipe.execute()
                        return new
                    except WatchError:  # another writer: compute the change again on its record
                        await asyncio.sleep(random.uniform(0, 0.005 * (attempt + 1)))
        except RedisError as exc:
            raise self._unavailable(exc) from exc
        raise WorkflowUnavailable(f"the record of job {job_id} kept changing under this worker")

    async def watched(self) -> list[PipelineRecord]:
        try:
            members = sorted(
                m.decode() if isinstance(m, bytes) else str(m)
                for m in await self._redis.smembers(self._watched)
            )
            if not members:
                return []
            raws = await self._redis.mget([self.key(job_id) for job_id in members])
            found: list[PipelineRecord] = []
            stale: list[str] = []
            for job_id, raw in zip(members, raws, strict=True):
                record = _parse(job_id, raw)
                if record is None or not record.watched:
                    stale.append(job_id)
                else:
                    found.append(record)
            if stale:  # expired (or never written): nothing left to look for
                await self._redis.srem(self._watched, *stale)
            return found
        except RedisError as exc:
            raise self._unavailable(exc) from exc

    @staticmethod
    def _unavailable(exc: Exception) -> WorkflowUnavailable:
        return WorkflowUnavailable(f"the pipeline ledger (Redis) is unavailable: {exc}")


class MemoryLedger:
    """A :class:`~llmops_workflow.ports.PipelineLedger` in memory: the tests' (one process,
    nothing durable; no expiry)."""

    def __init__(self) -> None:
        self.records: dict[str, PipelineRecord] = {}

    async def get(self, job_id: str) -> PipelineRecord | None:
        return self.records.get(job_id)

    async def update(self, job_id: str, change: Change) -> PipelineRecord | None:
        new = change(self.records.get(job_id))
        if new is None:
            self.records.pop(job_id, None)
        else:
            self.records[job_id] = new
        return new

    async def watched(self) -> list[PipelineRecord]:
        return [r for _, r in sorted(self.records.items()) if r.watched]
