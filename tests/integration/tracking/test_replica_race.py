"""Two tracking replicas racing on one job (issue 19, known gap 6), real MLflow and Redis.

Each replica is what ``app.py`` wires (its own MLflow client, its own Redis client), run in its
own thread with its own event loop, as two processes would be. A barrier right after the
search for the job's run makes the losing interleaving happen every time: both replicas have
searched (and found nothing) before either creates. Without the job's run lock both then
create a run. The other tests cover what the lock cannot prevent by itself: a replica slower
than the lock's TTL, one that died holding it, a lease lost before the create, and a run
created behind the lock's back (the fence after the create).
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
import redis.asyncio as aioredis
from mlflow.tracking import MlflowClient

from llmops_shared.events import (
    Envelope,
    ExperimentMigrationRequested,
    ExperimentRunStatusUpdated,
    decode_event,
    encode_event,
    new_event,
)
from llmops_shared.streams import is_retryable
from llmops_shared.streams.connection import async_redis, sync_redis
from llmops_tracking.adapters.mlflow import MlflowTracking, configure_client
from llmops_tracking.adapters.redis_locks import RedisRunLocks, run_lock_key
from llmops_tracking.app import build_backend, build_handler, build_locks
from llmops_tracking.config import TrackingSettings
from llmops_tracking.handlers import handle_training_event
from llmops_tracking.ports import RunLeaseLost, TrackingPorts

from integration.tracking.helpers import (
    CORRELATION_ID,
    new_job_id,
    received,
    runs_of_job,
    seed_spec,
    submitted,
    worker_settings,
)
from support.mlflow_server import MlflowServer

pytestmark = pytest.mark.integration

BARRIER_WAIT_S = 2.0
"""How long a replica that found no run waits for the other to have searched too (with the
fix the other cannot: it waits for the job's lock, so the barrier breaks and the first goes on)."""


class HookedClient(MlflowClient):
    """An MLflow client that calls ``after_miss(experiment_ids)`` when its search for a job's
    run finds none: the window between search and create, where a test puts what another
    replica does meanwhile."""

    def __init__(self, uri: str, after_miss: Callable[[list[str]], None]) -> None:
        super().__init__(tracking_uri=uri)
        self.after_miss = after_miss

    def search_runs(self, *args: Any, **kwargs: Any) -> Any:
        runs = super().search_runs(*args, **kwargs)
        if not runs and "llmops.job_id" in str(kwargs.get("filter_string")):
            self.after_miss(list(args[0]))
        return runs


def racing_client(uri: str, barrier: threading.Barrier) -> HookedClient:
    """A client that, after finding no run, waits until the other replica has searched too."""

    def meet(_: list[str]) -> None:
        # broken: the other replica never came, it waits for the job's lock
        with contextlib.suppress(threading.BrokenBarrierError):
            barrier.wait()

    return HookedClient(uri, meet)


def migration(job_id: str, run_status: str) -> Envelope:
    """The request ``migrate experiments-to-mlflow`` queues for the job's built-in record."""
    payload = ExperimentMigrationRequested(
        job_id=job_id,
        spec=seed_spec(),  # type: ignore[arg-type]
        run_status=run_status,
        params={},
        tags={},
    )
    return new_event(payload, source="gateway", correlation_id=CORRELATION_ID)


def replica(settings: TrackingSettings, client: MlflowClient, event: Envelope) -> list[Envelope]:
    """One tracking replica handling ``event``: the app's handler on its own clients, in its
    own event loop (call it in its own thread)."""

    async def handle() -> list[Envelope]:
        assert settings.redis_url is not None
        redis = async_redis(settings.redis_url.get_secret_value())
        try:
            backend = build_backend(settings, client)
            handler = build_handler(settings, backend, build_locks(settings, redis))
            return list(await handler(received(event)) or [])
        finally:
            await redis.aclose()

    return asyncio.run(handle())


def race(
    settings: TrackingSettings, mlflow_server: MlflowServer, events: Sequence[Envelope]
) -> list[list[Envelope]]:
    """Both events handled at once by two replicas, each stopping after its search."""
    configure_client(max_retries=0, timeout_s=10)
    barrier = threading.Barrier(len(events), timeout=BARRIER_WAIT_S)
    with ThreadPoolExecutor(len(events)) as pool:
        futures = [
            pool.submit(replica, settings, racing_client(mlflow_server.url, barrier), event)
            for event in events
        ]
        return [future.result(timeout=120) for future in futures]


def reported_run(outputs: Sequence[Envelope]) -> str:
    [envelope] = outputs
    return decode_event(encode_event(envelope)).payload_as(ExperimentRunStatusUpdated).entity_id


@pytest.mark.parametrize("second", ["redelivered submission", "migration"])
def test_two_replicas_racing_on_one_job_make_one_run(
    second: str,
    mlflow_server: MlflowServer,
    mlflow_reader: MlflowClient,
    redis_url: str,
    template: str,
) -> None:
    """A submission claimed by a second replica while the first is still on it, or a job's
    submission racing its own migration: both replicas search, both find nothing; exactly one
    MLflow run must exist afterwards, and both reports must name it."""
    job_id = new_job_id()
    first = submitted(job_id)
    other = first if second == "redelivered submission" else migration(job_id, "RUNNING")
    settings = worker_settings(
        redis_url, f"test-{uuid.uuid4().hex[:8]}:", experiment_name_template=template
    )

    outputs = race(settings, mlflow_server, [first, other])

    active = [r for r in runs_of_job(mlflow_reader, job_id) if r.info.lifecycle_stage == "active"]
    assert [r.info.run_id for r in active] == [active[0].info.run_id], (
        f"{len(active)} active MLflow runs for one job"
    )
    assert {reported_run(o) for o in outputs} == {active[0].info.run_id}


# ------------------------------------------------------------------ what the lock alone cannot do


def short_lived(
    redis: aioredis.Redis,
    client: MlflowClient,
    template: str,
    *,
    namespace: str,
    ttl_s: float = 0.6,
    wait_s: float | None = None,
) -> TrackingPorts:
    """Ports with a lock TTL short enough to outlast in a test (and a create margin under it)."""
    return TrackingPorts(
        backend=MlflowTracking(client, create_margin_s=0.1),
        locks=RedisRunLocks(redis, namespace=namespace, ttl_s=ttl_s, wait_s=wait_s),
        environment="dev",
        experiment_name_template=template,
    )


async def test_a_replica_slower_than_the_lock_ttl_keeps_the_lock(
    mlflow_server: MlflowServer,
    mlflow_reader: MlflowClient,
    redis: aioredis.Redis,
    template: str,
) -> None:
    """MLflow answers the first replica after more than three TTLs: its lock is renewed all
    along, so the second replica waits instead of creating a run of its own, then reuses it."""
    namespace = f"test-{uuid.uuid4().hex[:8]}:"
    job_id = new_job_id()
    searched = asyncio.Event()
    loop = asyncio.get_running_loop()

    def slow(_: list[str]) -> None:
        loop.call_soon_threadsafe(searched.set)
        time.sleep(2.0)

    slow_ports = short_lived(
        redis, HookedClient(mlflow_server.url, slow), template, namespace=namespace
    )
    other_ports = short_lived(redis, mlflow_reader, template, namespace=namespace, wait_s=30)
    first = asyncio.create_task(handle_training_event(received(submitted(job_id)), slow_ports))
    await searched.wait()
    second = await handle_training_event(received(submitted(job_id)), other_ports)

    [run] = runs_of_job(mlflow_reader, job_id)
    assert reported_run(await first) == reported_run(second) == run.info.run_id


async def test_a_replica_that_died_holding_the_lock_delays_the_job_by_its_ttl(
    mlflow_reader: MlflowClient, redis: aioredis.Redis, template: str
) -> None:
    """The first replica created the run and died before releasing the job's lock: the
    redelivered event waits until the lock expires (at most its TTL), then reuses the run."""
    namespace = f"test-{uuid.uuid4().hex[:8]}:"
    job_id = new_job_id()
    event = submitted(job_id)
    ports = short_lived(redis, mlflow_reader, template, namespace=namespace, ttl_s=1.0)
    first = await handle_training_event(received(event), ports)
    await redis.set(run_lock_key(namespace, job_id), "died-holding-it", px=1000)

    started = time.monotonic()
    second = await handle_training_event(received(event), ports)

    assert 0.5 < time.monotonic() - started < 5
    [run] = runs_of_job(mlflow_reader, job_id)
    assert reported_run(first) == reported_run(second) == run.info.run_id


async def test_a_lease_lost_before_the_create_creates_nothing(
    mlflow_server: MlflowServer,
    mlflow_reader: MlflowClient,
    redis: aioredis.Redis,
    redis_url: str,
    template: str,
) -> None:
    """The replica stalled after its search until its lock expired and another replica took
    it: it must not create a run (the new holder does); the event is retried and then reuses
    the run that exists by then."""
    namespace = f"test-{uuid.uuid4().hex[:8]}:"
    job_id = new_job_id()
    other = sync_redis(redis_url)

    def taken_over(_: list[str]) -> None:
        other.set(run_lock_key(namespace, job_id), "new-holder", px=30_000)
        time.sleep(0.5)  # the holder's renewal (every 0.2 s) finds the token changed

    ports = short_lived(
        redis, HookedClient(mlflow_server.url, taken_over), template, namespace=namespace
    )
    with pytest.raises(RunLeaseLost, match="was taken over") as caught:
        await handle_training_event(received(submitted(job_id)), ports)

    assert is_retryable(caught.value)
    assert runs_of_job(mlflow_reader, job_id) == []
    assert other.get(run_lock_key(namespace, job_id)) == b"new-holder"  # not released by us
    other.close()


async def test_a_run_created_behind_the_locks_back_is_settled_on_the_oldest(
    mlflow_server: MlflowServer,
    mlflow_reader: MlflowClient,
    redis: aioredis.Redis,
    template: str,
) -> None:
    """A run of the job appears between our search and our create (a replica whose lock had
    run out): after creating, the replica finds both, deletes its own newer run (tagged
    ``llmops.duplicate_of``) and reports the oldest."""
    namespace = f"test-{uuid.uuid4().hex[:8]}:"
    job_id = new_job_id()
    intruders: list[str] = []

    def intrude(experiment_ids: list[str]) -> None:
        run = mlflow_reader.create_run(
            experiment_ids[0], run_name=f"train-{job_id}", tags={"llmops.job_id": job_id}
        )
        intruders.append(run.info.run_id)
        time.sleep(0.01)  # our run starts a few ms later: it is the newer one

    ports = short_lived(
        redis, HookedClient(mlflow_server.url, intrude), template, namespace=namespace
    )
    outputs = await handle_training_event(received(submitted(job_id)), ports)

    [kept] = intruders
    runs = {r.info.run_id: r for r in runs_of_job(mlflow_reader, job_id)}
    [ours] = set(runs) - {kept}
    assert runs[kept].info.lifecycle_stage == "active"
    assert runs[ours].info.lifecycle_stage == "deleted"
    assert runs[ours].data.tags["llmops.duplicate_of"] == kept
    assert reported_run(outputs) == kept
    assert runs[kept].data.params["hyperparams.lr"] == "0.0001"  # the report's run got the params
