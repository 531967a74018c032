"""The transactional outbox and its relay, on SQLite and PostgreSQL, against a real Redis."""

from __future__ import annotations

import asyncio
import threading
from datetime import timedelta

import pytest
import redis as redis_sync
import sqlalchemy as sa
from sqlalchemy.orm import Session

from llmops_shared.events import Stream, decode_event
from llmops_shared.streams import EVENT_FIELD
from llmops_shared.streams.outbox import OutboxRelay, add_to_outbox, outbox_table

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
