"""The transactional outbox and its relay, on SQLite and PostgreSQL, against a real Redis."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import threading
import time
from collections.abc import Iterator
from datetime import timedelta

import pytest
import redis as redis_sync
import sqlalchemy as sa
from prometheus_client import CollectorRegistry
from sqlalchemy.orm import Session

from llmops_cli.embedded_redis import EmbeddedRedis
from llmops_shared.events import Stream, decode_event
from llmops_shared.streams import EVENT_FIELD
from llmops_shared.streams.outbox import (
    OutboxRelay,
    ReplicationShortfall,
    add_to_outbox,
    outbox_table,
)

from support.streams import cancel_event

pytestmark = pytest.mark.integration


class Db:
    """A state table and the outbox on one engine."""

    def __init__(self, engine: sa.Engine) -> None:
        self.engine = engine
        metadata = sa.MetaData()
        self.jobs = sa.Table("jobs", metadata, sa.Column("id", sa.String(64), primary_key=True))
        self.outbox = outbox_table(metadata)
        metadata.create_all(engine)

    def job_ids(self) -> set[str]:
        with self.engine.connect() as conn:
            return set(conn.execute(sa.select(self.jobs.c.id)).scalars())


@pytest.fixture
def db(sql_engine: sa.Engine) -> Db:
    return Db(sql_engine)


@pytest.fixture
def redis_client(redis_url: str) -> redis_sync.Redis:
    return redis_sync.Redis.from_url(redis_url)


@pytest.fixture
def namespace(names: object) -> str:
    return f"test.{names.token}:"  # type: ignore[attr-defined]


def submit(db: Db, job_id: str, *, fail_after_write: bool = False) -> str:
    """What a gateway request does: the state row and its event in one transaction."""
    event = cancel_event(job_id)
    with Session(db.engine) as session, session.begin():
        session.execute(sa.insert(db.jobs).values(id=job_id))
        add_to_outbox(session, db.outbox, event)
        if fail_after_write:
            raise RuntimeError("the request failed after writing")
    return event.id


def stream_ids(client: redis_sync.Redis, stream: str) -> list[str]:
    return [decode_event(f[EVENT_FIELD]).envelope.id for _, f in client.xrange(stream)]


def test_relay_publishes_committed_events_in_order_once(
    db: Db, redis_client: redis_sync.Redis, namespace: str
) -> None:
    sent = [submit(db, f"job-{i}") for i in range(12)]
    relay = OutboxRelay(db.engine, db.outbox, redis_client, namespace=namespace, batch_size=5)
    assert relay.pending_count() == 12

    assert relay.relay_all() == 12
    assert relay.relay_all() == 0  # published rows are not sent again
    assert stream_ids(redis_client, f"{namespace}{Stream.TRAINING}") == sent
    assert relay.pending_count() == 0


def test_a_rolled_back_request_publishes_nothing(
    db: Db, redis_client: redis_sync.Redis, namespace: str
) -> None:
    with pytest.raises(RuntimeError):
        submit(db, "job-x", fail_after_write=True)
    relay = OutboxRelay(db.engine, db.outbox, redis_client, namespace=namespace)
    assert relay.relay_all() == 0
    assert db.job_ids() == set()
    assert redis_client.exists(f"{namespace}{Stream.TRAINING}") == 0


def test_redis_down_keeps_rows_for_later(db: Db, namespace: str, redis_url: str) -> None:
    sent = submit(db, "job-1")
    unreachable = redis_sync.Redis(host="127.0.0.1", port=1, socket_connect_timeout=0.2)
    with pytest.raises(redis_sync.ConnectionError):
        OutboxRelay(db.engine, db.outbox, unreachable, namespace=namespace).relay_once()

    client = redis_sync.Redis.from_url(redis_url)
    relay = OutboxRelay(db.engine, db.outbox, client, namespace=namespace)
    assert relay.pending_count() == 1
    assert relay.relay_all() == 1
    assert stream_ids(client, f"{namespace}{Stream.TRAINING}") == [sent]


def test_purge_removes_only_old_published_rows(
    db: Db, redis_client: redis_sync.Redis, namespace: str
) -> None:
    submit(db, "job-1")
    relay = OutboxRelay(db.engine, db.outbox, redis_client, namespace=namespace)
    relay.relay_all()
    submit(db, "job-2")  # unpublished: never purged
    assert relay.purge_published() == 0  # published just now: kept for the retention period
    eager = OutboxRelay(
        db.engine, db.outbox, redis_client, namespace=namespace, keep_published_for=timedelta(0)
    )
    assert eager.purge_published() == 1
    assert eager.pending_count() == 1


async def test_run_loop_publishes_on_wake(
    db: Db, redis_client: redis_sync.Redis, namespace: str
) -> None:
    relay = OutboxRelay(db.engine, db.outbox, redis_client, namespace=namespace, poll_interval_s=30)
    stop = asyncio.Event()
    task = asyncio.create_task(relay.run(stop))
    await asyncio.sleep(0.1)  # the first (empty) pass is done; the loop now sleeps 30 s
    sent = await asyncio.to_thread(submit, db, "job-1")
    relay.wake()
    stream = f"{namespace}{Stream.TRAINING}"
    for _ in range(100):
        if redis_client.xlen(stream):
            break
        await asyncio.sleep(0.02)
    stop.set()
    await asyncio.wait_for(task, timeout=5)
    assert stream_ids(redis_client, stream) == [sent]


def test_concurrent_relays_on_postgresql_publish_each_row_once(
    postgres_engine: sa.Engine, redis_url: str, namespace: str
) -> None:
    db = Db(postgres_engine)
    sent = [submit(db, f"job-{i}") for i in range(300)]
    relays = [
        OutboxRelay(
            db.engine,
            db.outbox,
            redis_sync.Redis.from_url(redis_url),
            namespace=namespace,
            batch_size=7,
        )
        for _ in range(4)
    ]
    threads = [threading.Thread(target=relay.relay_all) for relay in relays]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    published = stream_ids(redis_sync.Redis.from_url(redis_url), f"{namespace}{Stream.TRAINING}")
    assert sorted(published) == sorted(sent)  # every row, none twice (FOR UPDATE SKIP LOCKED)


async def test_the_run_loop_purges_published_rows_past_their_retention(
    db: Db, redis_client: redis_sync.Redis, namespace: str
) -> None:
    submit(db, "job-1")
    relay = OutboxRelay(
        db.engine,
        db.outbox,
        redis_client,
        namespace=namespace,
        poll_interval_s=0.05,
        keep_published_for=timedelta(0),
        purge_every=timedelta(0),
    )
    stop = asyncio.Event()
    task = asyncio.create_task(relay.run(stop))
    for _ in range(100):
        with db.engine.connect() as conn:
            if conn.execute(sa.select(sa.func.count()).select_from(db.outbox)).scalar_one() == 0:
                break
        await asyncio.sleep(0.05)
    stop.set()
    await asyncio.wait_for(task, timeout=5)
    with db.engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(db.outbox)).scalar_one() == 0
    assert redis_client.xlen(f"{namespace}{Stream.TRAINING}") == 1  # published before purged


class Replicated:
    """A private primary and one replica (two ``redis-server`` processes)."""

    def __init__(self, primary: EmbeddedRedis, replica: EmbeddedRedis) -> None:
        self.primary_server = primary
        self.replica_server = replica
        self.primary = redis_sync.Redis.from_url(primary.url)
        self.replica = redis_sync.Redis.from_url(replica.url)
        self._replica_pid = int(self.replica.info("server")["process_id"])

    def online_replicas(self) -> int:
        info = self.primary.info("replication")
        return sum(
            1
            for key, value in info.items()
            if key.startswith("slave") and isinstance(value, dict)
            and value.get("state") == "online"
        )  # fmt: skip

    def wait_for(self, replicas: int, timeout_s: float = 10.0) -> None:
        deadline = time.monotonic() + timeout_s
        while self.online_replicas() != replicas:
            assert time.monotonic() < deadline, f"the primary never had {replicas} replica(s)"
            time.sleep(0.02)

    def wait_until_streaming(self, timeout_s: float = 10.0) -> None:
        """Until the replica acknowledges a write: the primary lists it online before it has
        finished loading the first sync, and a replica frozen then reads nothing after SIGCONT
        for a while."""
        deadline = time.monotonic() + timeout_s
        with self.primary.pipeline(transaction=False) as pipe:
            while True:
                pipe.set("replication-check", "1")
                pipe.wait(1, 100)
                if pipe.execute()[-1] == 1:
                    return
                assert time.monotonic() < deadline, "the replica never acknowledged a write"

    @contextlib.contextmanager
    def replica_frozen(self) -> Iterator[None]:
        """SIGSTOP the replica: still online for the primary (until repl-timeout, 60 s), but it
        reads and acknowledges nothing; SIGCONT on the way out, whatever happened."""
        os.kill(self._replica_pid, signal.SIGSTOP)
        try:
            yield
        finally:
            os.kill(self._replica_pid, signal.SIGCONT)


@pytest.fixture
def replicated() -> Iterator[Replicated]:
    with EmbeddedRedis() as primary, EmbeddedRedis() as replica:
        pair = Replicated(primary, replica)
        pair.primary.config_set("repl-diskless-sync-delay", 0)  # the full sync at once, not in 5 s
        pair.replica.replicaof("127.0.0.1", primary.port)
        pair.wait_for(1)
        pair.wait_until_streaming()
        yield pair
        pair.primary.close()
        pair.replica.close()


def test_rows_stay_unpublished_until_a_replica_has_their_events(
    db: Db, replicated: Replicated, namespace: str
) -> None:
    """Issue 19, gap 7: a row marked published must survive a failover to the replica.

    Before the relay waited for replicas this failed: the rows were marked published at once.
    """
    sent = [submit(db, f"job-{i}") for i in range(3)]
    stream = f"{namespace}{Stream.TRAINING}"
    relay = OutboxRelay(
        db.engine, db.outbox, replicated.primary, namespace=namespace, wait_timeout_ms=300
    )  # min_replicas "auto": the one replica the primary reports online
    with replicated.replica_frozen():
        started = time.monotonic()
        with pytest.raises(ReplicationShortfall) as shortfall:
            relay.relay_once()
        assert time.monotonic() - started < 2  # bounded by the WAIT timeout
        assert (shortfall.value.acknowledged, shortfall.value.required) == (0, 1)
        assert shortfall.value.events == 3
        assert relay.pending_count() == 3, "marked published while no replica has the events"
        with pytest.raises(ReplicationShortfall):
            relay.relay_all()  # a shortfall stops the pass: nothing is marked
        assert relay.pending_count() == 3
    assert relay.relay_all() == 3  # the replica is back: sent again, and now confirmed
    assert relay.pending_count() == 0
    on_replica = stream_ids(replicated.replica, stream)
    assert set(on_replica) == set(sent)  # a failover now would keep every event
    # the unconfirmed passes did reach the primary: duplicates, which consumers skip by event id
    assert len(on_replica) == 9
    assert stream_ids(replicated.primary, stream) == on_replica


def test_a_single_redis_is_not_waited_on(db: Db, namespace: str) -> None:
    """auto with no replica: no WAIT, published at once; a fixed minimum holds the rows."""
    sent = submit(db, "job-1")
    with EmbeddedRedis() as server:
        client = redis_sync.Redis.from_url(server.url)
        strict = OutboxRelay(
            db.engine, db.outbox, client, namespace=namespace, min_replicas=1, wait_timeout_ms=50
        )
        with pytest.raises(ReplicationShortfall):
            strict.relay_once()  # availability falls back to the configured minimum
        assert strict.pending_count() == 1
        auto = OutboxRelay(db.engine, db.outbox, client, namespace=namespace)
        assert auto.relay_all() == 1
        assert client.info("commandstats").get("cmdstat_wait", {}).get("calls") == 1  # strict's
        assert stream_ids(client, f"{namespace}{Stream.TRAINING}") == [sent, sent]
        client.close()


def test_auto_stops_waiting_for_a_replica_that_is_gone(
    db: Db, replicated: Replicated, namespace: str
) -> None:
    submit(db, "job-1")
    relay = OutboxRelay(db.engine, db.outbox, replicated.primary, namespace=namespace)
    replicated.replica_server.stop()
    replicated.wait_for(0)
    assert relay.relay_all() == 1  # auto: no replica online, nothing to wait for
    fixed = OutboxRelay(
        db.engine, db.outbox, replicated.primary, namespace=namespace, min_replicas=1,
        wait_timeout_ms=50,
    )  # fmt: skip
    submit(db, "job-2")
    with pytest.raises(ReplicationShortfall):
        fixed.relay_once()
    assert fixed.pending_count() == 1


async def test_the_run_loop_counts_shortfalls_and_publishes_once_the_replica_is_back(
    db: Db, replicated: Replicated, namespace: str
) -> None:
    registry = CollectorRegistry()
    relay = OutboxRelay(
        db.engine, db.outbox, replicated.primary, namespace=namespace, poll_interval_s=0.05,
        wait_timeout_ms=100, registry=registry,
    )  # fmt: skip
    stop = asyncio.Event()
    with replicated.replica_frozen():
        await asyncio.to_thread(submit, db, "job-1")
        task = asyncio.create_task(relay.run(stop))
        for _ in range(100):
            if registry.get_sample_value("llmops_outbox_replication_shortfalls_total"):
                break
            await asyncio.sleep(0.02)
        assert registry.get_sample_value("llmops_outbox_replication_shortfalls_total") == 1
        assert registry.get_sample_value("llmops_outbox_replicas_required") == 1
        assert await asyncio.to_thread(relay.pending_count) == 1
    for _ in range(200):  # backing off (0.1 s, then 0.2 s, ...), then confirmed
        if await asyncio.to_thread(relay.pending_count) == 0:
            break
        await asyncio.sleep(0.02)
    stop.set()
    await asyncio.wait_for(task, timeout=5)
    assert relay.pending_count() == 0


def test_auto_without_the_info_permission_publishes_as_before(db: Db, namespace: str) -> None:
    """A Redis user that may not run INFO (an ACL): auto cannot count replicas, so it waits for
    none (logged once) rather than stop publishing."""
    sent = submit(db, "job-1")
    with EmbeddedRedis() as server:
        admin = redis_sync.Redis.from_url(server.url)
        admin.acl_setuser(
            "relay", enabled=True, nopass=True, keys=["*"], commands=["+xadd", "+ping"]
        )
        client = redis_sync.Redis(port=server.port, username="relay", password="")
        relay = OutboxRelay(db.engine, db.outbox, client, namespace=namespace)
        assert relay.relay_all() == 1
        submit(db, "job-2")
        assert relay.relay_all() == 1
        denied = [e for e in admin.acl_log() if e["object"] == "info"]
        assert len(denied) == 1  # asked once, not at every batch
        assert stream_ids(admin, f"{namespace}{Stream.TRAINING}")[0] == sent
        client.close()
        admin.close()
