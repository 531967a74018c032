"""The pipeline ledger in real Redis: keys under the stream namespace with an expiry, the watched
set, optimistic transactions under concurrent writers, and Redis failures as outages."""

from __future__ import annotations

import asyncio

import pytest
import redis.asyncio as aioredis

from llmops_shared.events import Phase
from llmops_shared.streams.connection import async_redis
from llmops_workflow.adapters.ledger import RedisLedger, ledger_prefix
from llmops_workflow.ledger import Outcome, PipelineRecord, Transitions
from llmops_workflow.ports import WorkflowUnavailable
from llmops_workflow.render.status import Observed

from integration.workflow.helpers import NS, new_job_id

pytestmark = pytest.mark.integration

TTL_S = 3600


@pytest.fixture
def namespace(names: object) -> str:
    return f"test.{names.token}:"  # type: ignore[attr-defined]


@pytest.fixture
def ledger(redis: aioredis.Redis, namespace: str) -> RedisLedger:
    return RedisLedger(redis, namespace=namespace, ttl_s=TTL_S)


async def test_records_live_under_the_namespace_with_an_expiry(
    redis: aioredis.Redis, ledger: RedisLedger, namespace: str
) -> None:
    job_id = new_job_id()
    of = Transitions(job_id, NS, "argo")
    assert await ledger.get(job_id) is None
    claimed = await ledger.update(job_id, of.claim)
    key = f"{ledger_prefix(namespace)}pipeline:{job_id}"
    assert key == f"{namespace}llmops:workflow:pipeline:{job_id}"
    assert 0 < await redis.ttl(key) <= TTL_S
    assert await ledger.get(job_id) == claimed
    assert await ledger.watched() == []
    applied = await ledger.update(job_id, of.applied(True))
    assert await ledger.watched() == [applied]
    assert await redis.smembers(f"{namespace}llmops:workflow:watched") == {job_id.encode()}
    outcome = Outcome.of(Observed(Phase.SUCCEEDED, done=4, total=4), seq=42)
    await ledger.update(job_id, of.observed_end(outcome))
    gone = await ledger.update(job_id, of.gone(None))
    assert gone is not None
    assert gone.outcome == outcome
    assert not gone.watched
    assert await ledger.watched() == []
    stored = await ledger.get(job_id)
    assert stored is not None
    assert stored.outcome == outcome
    # a refused first submission leaves nothing behind
    other = new_job_id()
    await ledger.update(other, Transitions(other, NS, "argo").claim)
    assert await ledger.update(other, Transitions.release) is None
    assert not await redis.exists(f"{namespace}llmops:workflow:pipeline:{other}")


async def test_an_unchanged_record_is_not_written(
    redis: aioredis.Redis, ledger: RedisLedger, namespace: str
) -> None:
    job_id = new_job_id()
    of = Transitions(job_id, NS, "argo")
    await ledger.update(job_id, of.claim)
    key = f"{namespace}llmops:workflow:pipeline:{job_id}"
    await redis.expire(key, 100)
    await ledger.update(job_id, of.claim)  # the existing record: read, not rewritten
    assert await redis.ttl(key) <= 100
    assert await ledger.update(new_job_id(), Transitions.release) is None


async def test_concurrent_writers_lose_no_change(redis_url: str, namespace: str) -> None:
    job_id = new_job_id()
    clients = [async_redis(redis_url) for _ in range(4)]
    ledgers = [RedisLedger(c, namespace=namespace, ttl_s=TTL_S) for c in clients]

    def append(current: PipelineRecord | None) -> PipelineRecord:
        record = current or PipelineRecord(job_id=job_id, namespace=NS, backend="argo")
        return record.changed(cancel_reason=(record.cancel_reason or "") + "x")

    try:
        await asyncio.gather(*(ledgers[i % 4].update(job_id, append) for i in range(12)))
        record = await ledgers[0].get(job_id)
    finally:
        for client in clients:
            await client.aclose()
    assert record is not None
    assert record.cancel_reason == "x" * 12


async def test_expired_and_unreadable_records_are_dropped(
    redis: aioredis.Redis, ledger: RedisLedger, namespace: str
) -> None:
    kept, expired, broken = new_job_id(), new_job_id(), new_job_id()
    for job_id in (kept, expired, broken):
        await ledger.update(job_id, Transitions(job_id, NS, "argo").applied(True))
    await redis.delete(f"{namespace}llmops:workflow:pipeline:{expired}")  # its TTL passed
    await redis.set(f"{namespace}llmops:workflow:pipeline:{broken}", b"{not json")
    assert [r.job_id for r in await ledger.watched()] == [kept]
    assert await redis.smembers(f"{namespace}llmops:workflow:watched") == {kept.encode()}
    assert await ledger.get(broken) is None  # unreadable: as if absent, and overwritten next
    assert await ledger.update(broken, Transitions(broken, NS, "argo").claim) is not None


async def test_redis_down_is_an_outage() -> None:
    client = async_redis("redis://127.0.0.1:1/0")
    ledger = RedisLedger(client, ttl_s=TTL_S)
    try:
        with pytest.raises(WorkflowUnavailable, match="ledger"):
            await ledger.get("j")
        with pytest.raises(WorkflowUnavailable, match="ledger"):
            await ledger.update("j", Transitions("j", NS, "argo").claim)
        with pytest.raises(WorkflowUnavailable, match="ledger"):
            await ledger.watched()
    finally:
        await client.aclose()
