"""The per-job run locks over a real Redis (``llmops_tracking.adapters.redis_locks``): one holder
at a time, a dead holder's lock expires, a held lock is renewed past its TTL, a lost lease is
noticed, and a lock that is not ours is never deleted."""

from __future__ import annotations

import asyncio
import time
import uuid

import pytest
import redis.asyncio as aioredis

from llmops_shared.streams import DependencyUnavailableError, is_retryable
from llmops_shared.streams.connection import async_redis
from llmops_tracking.adapters.redis_locks import RedisRunLocks, run_lock_key
from llmops_tracking.ports import RunLeaseLost, RunLockBusy, RunLockUnavailable

from integration.tracking.helpers import new_job_id, unreachable_uri

pytestmark = pytest.mark.integration


@pytest.fixture
def namespace() -> str:
    return f"test-{uuid.uuid4().hex[:8]}:"


async def test_one_holder_at_a_time_and_the_key_is_gone_after(
    redis: aioredis.Redis, namespace: str
) -> None:
    locks = RedisRunLocks(redis, namespace=namespace, ttl_s=5)
    job_id = new_job_id()
    order: list[str] = []

    async def holder(name: str, hold_s: float) -> None:
        async with locks.hold(job_id) as lease:
            order.append(f"{name} in")
            lease.check(margin_s=1)
            await asyncio.sleep(hold_s)
            order.append(f"{name} out")

    first = asyncio.create_task(holder("first", 0.3))
    await asyncio.sleep(0.05)
    await holder("second", 0)
    await first

    assert order == ["first in", "first out", "second in", "second out"]
    assert not await redis.exists(run_lock_key(namespace, job_id))


async def test_the_lock_is_released_when_the_block_fails(
    redis: aioredis.Redis, namespace: str
) -> None:
    locks = RedisRunLocks(redis, namespace=namespace, ttl_s=5)
    job_id = new_job_id()
    with pytest.raises(RuntimeError, match="handler bug"):
        async with locks.hold(job_id):
            raise RuntimeError("handler bug")
    assert not await redis.exists(run_lock_key(namespace, job_id))


async def test_the_lock_of_a_replica_that_died_holding_it_expires(
    redis: aioredis.Redis, namespace: str
) -> None:
    job_id = new_job_id()
    await redis.set(run_lock_key(namespace, job_id), "dead-replica", px=600)  # never released
    locks = RedisRunLocks(redis, namespace=namespace, ttl_s=5)

    started = time.monotonic()
    async with locks.hold(job_id):
        waited = time.monotonic() - started

    assert 0.3 < waited < 3


async def test_a_lock_held_longer_than_the_wait_is_busy_and_retryable(
    redis: aioredis.Redis, namespace: str
) -> None:
    job_id = new_job_id()
    key = run_lock_key(namespace, job_id)
    await redis.set(key, "other-replica", px=30_000)
    locks = RedisRunLocks(redis, namespace=namespace, ttl_s=5, wait_s=0.3)

    with pytest.raises(RunLockBusy, match="another tracking replica") as caught:
        async with locks.hold(job_id):
            pytest.fail("held a lock another replica holds")

    assert is_retryable(caught.value)
    assert not isinstance(caught.value, DependencyUnavailableError)
    assert await redis.get(key) == b"other-replica"


async def test_a_held_lock_is_renewed_past_its_ttl(redis: aioredis.Redis, namespace: str) -> None:
    """A slow MLflow call under the lock: the holder keeps it (and its lease stays valid) for
    several TTLs; another replica cannot take it meanwhile."""
    job_id = new_job_id()
    locks = RedisRunLocks(redis, namespace=namespace, ttl_s=0.6)
    impatient = RedisRunLocks(redis, namespace=namespace, ttl_s=0.6, wait_s=0.2)

    async with locks.hold(job_id) as lease:
        for _ in range(4):  # 2 s, three TTLs and more
            await asyncio.sleep(0.5)
            lease.check(margin_s=0.2)
            with pytest.raises(RunLockBusy):
                async with impatient.hold(job_id):
                    pytest.fail("took a held lock")
        assert await redis.pttl(run_lock_key(namespace, job_id)) > 0


async def test_a_lease_taken_over_is_noticed_and_the_new_holders_lock_survives(
    redis: aioredis.Redis, namespace: str
) -> None:
    """The lock expired during a stall and another replica took it: the next renewal finds
    someone else's token, the lease refuses any create, and leaving does not delete the new
    holder's lock."""
    job_id = new_job_id()
    key = run_lock_key(namespace, job_id)
    locks = RedisRunLocks(redis, namespace=namespace, ttl_s=0.6)

    async with locks.hold(job_id) as lease:
        await redis.set(key, "new-holder", px=30_000)
        await asyncio.sleep(0.5)  # a renewal (every 0.2 s) has run
        with pytest.raises(RunLeaseLost, match="was taken over"):
            lease.check()

    assert await redis.get(key) == b"new-holder"


async def test_a_lease_whose_renewals_fail_runs_out_by_itself(
    redis: aioredis.Redis, namespace: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Renewals that cannot reach Redis leave the lease to run out locally, no later than the
    key expires in Redis: afterwards no create is allowed under it."""
    job_id = new_job_id()
    locks = RedisRunLocks(redis, namespace=namespace, ttl_s=0.6)

    async def unreachable(**_: object) -> int:
        raise ConnectionError("Redis is gone")

    async with locks.hold(job_id) as lease:
        lease.check(margin_s=0.3)
        with pytest.raises(RunLeaseLost, match="left"):
            lease.check(margin_s=0.7)  # more than the TTL: never enough
        monkeypatch.setattr(locks, "_renew", unreachable)
        await asyncio.sleep(0.7)
        with pytest.raises(RunLeaseLost, match="left"):
            lease.check()


async def test_unreachable_redis_is_a_dependency_outage() -> None:
    broken = RedisRunLocks(async_redis(unreachable_uri().replace("http", "redis")), ttl_s=1)
    with pytest.raises(RunLockUnavailable, match="cannot take the run lock") as caught:
        async with broken.hold(new_job_id()):
            pytest.fail("held a lock without Redis")
    assert isinstance(caught.value, DependencyUnavailableError)
