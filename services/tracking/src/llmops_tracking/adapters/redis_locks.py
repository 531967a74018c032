"""The per-job run locks over Redis, shared by every replica of the tracking worker.

One key per job, ``<namespace>tracking:run-lock:<job_id>``, holding a random token:

* taken with ``SET NX PX <ttl>`` (polled until it is free, at most ``wait_s``);
* renewed every third of the TTL while held (``PEXPIRE`` if the token is still ours, one
  script), so a slow MLflow call keeps it, while a replica that dies holding it frees it
  after at most the TTL;
* released with ``DEL`` if the token is still ours (one script): a holder whose lease ran out
  never deletes its successor's lock.

The lease knows, without asking Redis, until when it is surely ours: the TTL counted from
before the ``SET``/``PEXPIRE`` that set it (Redis counts from later). ``check(margin)`` runs in
the MLflow thread right before a create and refuses when less than ``margin`` is left, or when
a renewal found the token gone.
"""

from __future__ import annotations

import asyncio
import random
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Final

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from llmops_shared.logging import get_logger
from llmops_shared.streams.errors import describe
from llmops_tracking.ports import RunLease, RunLeaseLost, RunLockBusy, RunLockUnavailable

_RENEW_LUA: Final = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 0
"""
_RELEASE_LUA: Final = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
"""
_POLL_FIRST_S: Final = 0.02
_POLL_MAX_S: Final = 0.5

_log = get_logger(__name__)


def run_lock_key(namespace: str, job_id: str) -> str:
    """The Redis key of a job's run lock."""
    return f"{namespace}tracking:run-lock:{job_id}"


class RedisRunLease:
    """A held lock: its token, and until when (monotonic clock) it is surely ours."""

    def __init__(self, job_id: str, key: str, token: str, valid_until: float) -> None:
        self._job_id = job_id
        self.key = key
        self.token = token
        self.valid_until = valid_until
        self.lost = False
        """A renewal found the key gone or someone else's: never ours again."""

    @property
    def job_id(self) -> str:
        return self._job_id

    def check(self, margin_s: float = 0.0) -> None:
        left = self.valid_until - time.monotonic()
        if self.lost or left < margin_s:
            why = "was taken over" if self.lost else f"has {max(left, 0):.1f}s left"
            raise RunLeaseLost(
                f"the run lock of job {self._job_id} {why} (needed {margin_s:.1f}s): "
                "nothing was created; the retry looks for the run again"
            )


class RedisRunLocks:
    """A :class:`~llmops_tracking.ports.RunLocks` on the worker's Redis client."""

    def __init__(
        self,
        redis: aioredis.Redis,
        *,
        namespace: str = "",
        ttl_s: float = 30.0,
        wait_s: float | None = None,
    ) -> None:
        """``wait_s`` defaults to the TTL plus a second: long enough for the lock of a replica
        that died holding it to expire."""
        if ttl_s <= 0:
            raise ValueError("ttl_s must be positive")
        self._redis = redis
        self._namespace = namespace
        self._ttl_ms = max(int(ttl_s * 1000), 1)
        self._ttl_s = self._ttl_ms / 1000
        self._wait_s = ttl_s + 1.0 if wait_s is None else wait_s
        self._renew = redis.register_script(_RENEW_LUA)
        self._release = redis.register_script(_RELEASE_LUA)

    @asynccontextmanager
    async def hold(self, job_id: str) -> AsyncIterator[RunLease]:
        lease = await self._acquire(job_id)
        renewing = _Renewal(self, lease)
        try:
            yield lease
        finally:
            renewing.stop()
            await self._let_go(lease)

    async def _acquire(self, job_id: str) -> RedisRunLease:
        key = run_lock_key(self._namespace, job_id)
        token = uuid.uuid4().hex
        deadline = time.monotonic() + self._wait_s
        pause = _POLL_FIRST_S
        waited = False
        while True:
            sent = time.monotonic()
            try:
                taken = await self._redis.set(key, token, nx=True, px=self._ttl_ms)
            except (RedisError, OSError) as exc:
                raise RunLockUnavailable(
                    f"cannot take the run lock of job {job_id}: {describe(exc)}"
                ) from exc
            if taken:
                if waited:
                    _log.info("run_lock_taken_after_wait", job_id=job_id, key=key)
                return RedisRunLease(job_id, key, token, sent + self._ttl_s)
            if not waited:
                _log.info("run_lock_waiting", job_id=job_id, key=key, wait_s=self._wait_s)
                waited = True
            left = deadline - time.monotonic()
            if left <= 0:
                raise RunLockBusy(
                    f"the run of job {job_id} is being changed by another tracking replica "
                    f"(its lock {key} stayed held for more than {self._wait_s:.0f}s)"
                )
            await asyncio.sleep(min(pause * (0.5 + random.random()), left))
            pause = min(pause * 2, _POLL_MAX_S)

    async def renew(self, lease: RedisRunLease) -> None:
        """Push the lease's end a TTL further, if the lock is still ours."""
        sent = time.monotonic()
        try:
            renewed = await self._renew(keys=[lease.key], args=[lease.token, self._ttl_ms])
        except (RedisError, OSError) as exc:  # the lease runs out by itself; retried next beat
            _log.warning("run_lock_renewal_failed", job_id=lease.job_id, error=describe(exc))
            return
        if renewed:
            lease.valid_until = max(lease.valid_until, sent + self._ttl_s)
        else:
            lease.lost = True
            _log.warning(
                "run_lock_lost",
                job_id=lease.job_id,
                key=lease.key,
                note="the lock expired while held (a stall longer than its TTL) or was taken "
                "over; nothing more is created under it",
            )

    async def _let_go(self, lease: RedisRunLease) -> None:
        try:
            await self._release(keys=[lease.key], args=[lease.token])
        except (RedisError, OSError) as exc:  # it expires after its TTL anyway
            _log.warning("run_lock_release_failed", job_id=lease.job_id, error=describe(exc))

    @property
    def renew_interval_s(self) -> float:
        return self._ttl_s / 3


class _Renewal:
    """Renews a held lease every third of the TTL: a timer, not a task per hold (most holds
    end long before the first renewal), as :class:`~llmops_shared.streams.heartbeat.
    ClaimHeartbeat` does for the batch in hand."""

    def __init__(self, locks: RedisRunLocks, lease: RedisRunLease) -> None:
        self._locks = locks
        self._lease = lease
        self._loop = asyncio.get_running_loop()
        self._task: asyncio.Task[None] | None = None
        self._timer = self._loop.call_later(locks.renew_interval_s, self._beat)

    def _beat(self) -> None:
        if self._task is None or self._task.done():
            self._task = self._loop.create_task(self._locks.renew(self._lease))
        if not self._lease.lost:
            self._timer = self._loop.call_later(self._locks.renew_interval_s, self._beat)

    def stop(self) -> None:
        self._timer.cancel()
        if self._task is not None:
            self._task.cancel()
