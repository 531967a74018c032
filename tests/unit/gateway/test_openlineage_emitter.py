"""The OpenLineage emitter: due rows are claimed one at a time (oldest first, leased), built and
sent, then marked; a failure is counted, kept and retried later with a capped doubling backoff,
and never holds back other jobs; a job's end waits for its START, and a COMPLETE for the job's
model version until the grace is over. The client posts to a schema-checking receiver."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import requests
from openlineage.client.event_v2 import RunEvent
from prometheus_client import CollectorRegistry
from sqlalchemy import select

from llmops_gateway.config import GatewaySettings
from llmops_gateway.db.models import OpenLineageOutbox, TrainingJob
from llmops_gateway.db.models.openlineage import LAST_ERROR_LENGTH
from llmops_gateway.db.session import SessionFactory
from llmops_gateway.openlineage.emitter import LineageEmitter, LineageMetrics, retry_delay_s
from llmops_gateway.openlineage.events import Naming
from llmops_gateway.openlineage.sender import lineage_client

from support.openlineage_receiver import OpenLineageReceiver
from unit.gateway.folds import seed_job

pytestmark = pytest.mark.unit

NAMING = Naming(job_namespace="llmops", dataset_namespace=None, model_namespace="mlflow")
T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


class Clock:
    """A clock the test moves."""

    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


class Receiver:
    """What ``send`` was given; the job ids in ``failing`` raise."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, str]] = []
        self.failing: set[str] = set()

    def __call__(self, event: RunEvent) -> None:
        if event.run.runId in self.failing:
            raise requests.ConnectionError("connection refused " + "x" * 3000)
        self.sent.append((event.run.runId, str(event.eventType.value if event.eventType else "")))


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def receiver() -> Receiver:
    return Receiver()


@pytest.fixture
def registry() -> CollectorRegistry:
    return CollectorRegistry()


@pytest.fixture
def emitter(
    sessions: SessionFactory, receiver: Receiver, clock: Clock, registry: CollectorRegistry
) -> LineageEmitter:
    return LineageEmitter(
        sessions,
        receiver,
        NAMING,
        LineageMetrics(registry),
        output_grace_s=30,
        retry_initial_s=1.0,
        lease_s=40,
        clock=clock,
    )


def queue(sessions: SessionFactory, job_id: str, *types: str, at: datetime = T0) -> None:
    with sessions.begin() as session:
        for event_type in types:
            session.add(
                OpenLineageOutbox(
                    job_id=job_id,
                    event_type=event_type,
                    event_time=at,
                    created_at=at,
                    next_attempt_at=at,
                    attempts=0,
                )
            )


def rows(sessions: SessionFactory, job_id: str) -> Iterator[OpenLineageOutbox]:
    with sessions() as session:
        yield from session.scalars(
            select(OpenLineageOutbox)
            .where(OpenLineageOutbox.job_id == job_id)
            .order_by(OpenLineageOutbox.id)
        )


def row(sessions: SessionFactory, job_id: str, event_type: str) -> OpenLineageOutbox:
    [found] = [r for r in rows(sessions, job_id) if r.event_type == event_type]
    return found


def counted(registry: CollectorRegistry, name: str, event_type: str) -> float:
    return registry.get_sample_value(f"{name}_total", {"event_type": event_type}) or 0.0


def test_due_rows_are_sent_oldest_first_and_marked(
    sessions: SessionFactory,
    emitter: LineageEmitter,
    receiver: Receiver,
    clock: Clock,
    registry: CollectorRegistry,
) -> None:
    first, second = seed_job(sessions, status="Failed"), seed_job(sessions)
    queue(sessions, first, "START", "FAIL")
    queue(sessions, second, "START")
    assert emitter.emit_due() == 3
    assert receiver.sent == [(first, "START"), (first, "FAIL"), (second, "START")]
    for sent in [*rows(sessions, first), *rows(sessions, second)]:
        assert (sent.emitted_at, sent.attempts, sent.last_error) == (clock.now, 1, None)
    assert emitter.emit_due() == 0  # nothing is sent twice
    assert counted(registry, "llmops_openlineage_events_emitted", "START") == 2
    assert counted(registry, "llmops_openlineage_events_emitted", "FAIL") == 1


def test_a_failure_is_counted_kept_cut_and_retried_after_a_doubling_backoff(
    sessions: SessionFactory,
    emitter: LineageEmitter,
    receiver: Receiver,
    clock: Clock,
    registry: CollectorRegistry,
) -> None:
    job_id = seed_job(sessions)
    queue(sessions, job_id, "START")
    receiver.failing.add(job_id)

    assert emitter.emit_due() == 1
    failed = row(sessions, job_id, "START")
    assert (failed.emitted_at, failed.attempts) == (None, 1)
    assert failed.next_attempt_at == clock.now + timedelta(seconds=1)
    assert failed.last_error is not None
    assert failed.last_error.startswith("ConnectionError: connection refused")
    assert len(failed.last_error) == LAST_ERROR_LENGTH

    assert emitter.emit_due() == 0  # not due yet
    clock.advance(1)
    assert emitter.emit_due() == 1
    assert row(sessions, job_id, "START").next_attempt_at == clock.now + timedelta(seconds=2)

    receiver.failing.clear()
    clock.advance(2)
    assert emitter.emit_due() == 1
    sent = row(sessions, job_id, "START")
    assert (sent.emitted_at, sent.attempts, sent.last_error) == (clock.now, 3, None)
    assert receiver.sent == [(job_id, "START")]
    assert counted(registry, "llmops_openlineage_emit_failures", "START") == 2


def test_the_backoff_doubles_up_to_five_minutes() -> None:
    delays = [retry_delay_s(attempts, initial_s=1.0) for attempts in range(1, 12)]
    assert delays[:5] == [1.0, 2.0, 4.0, 8.0, 16.0]
    assert delays[-1] == 300.0
    assert retry_delay_s(10_000, initial_s=1.0) == 300.0


def test_a_poison_row_holds_back_its_own_job_only(
    sessions: SessionFactory, emitter: LineageEmitter, receiver: Receiver, clock: Clock
) -> None:
    poison, healthy = seed_job(sessions, status="Succeeded"), seed_job(sessions)
    queue(sessions, poison, "START", "COMPLETE", at=T0 - timedelta(minutes=5))
    queue(sessions, healthy, "START")
    receiver.failing.add(poison)

    assert emitter.emit_due() == 2  # the poison START failed, the healthy START went
    assert receiver.sent == [(healthy, "START")]
    assert row(sessions, poison, "COMPLETE").attempts == 0  # waits for its START

    receiver.failing.clear()
    clock.advance(1)
    assert emitter.emit_due() == 2
    assert receiver.sent[1:] == [(poison, "START"), (poison, "COMPLETE")]


def test_a_job_that_is_gone_is_a_failed_row(
    sessions: SessionFactory, emitter: LineageEmitter, receiver: Receiver
) -> None:
    queue(sessions, "vanished", "START")
    assert emitter.emit_due() == 1
    failed = row(sessions, "vanished", "START")
    assert failed.attempts == 1
    assert failed.last_error is not None
    assert failed.last_error.startswith("JobGone: training job vanished")
    assert receiver.sent == []


def test_a_complete_waits_for_the_model_version_until_the_grace_is_over(
    sessions: SessionFactory, emitter: LineageEmitter, receiver: Receiver, clock: Clock
) -> None:
    waiting, late = seed_job(sessions, status="Succeeded"), seed_job(sessions, status="Succeeded")
    for job_id in (waiting, late):
        queue(sessions, job_id, "COMPLETE")
    assert emitter.emit_due() == 0

    with sessions.begin() as session:  # the pipeline's report with the model arrives
        job = session.get(TrainingJob, waiting)
        assert job is not None
        job.registered_model_name, job.registered_model_version = "llama-3-8b-sft-v1", "1"
    assert emitter.emit_due() == 1
    assert receiver.sent == [(waiting, "COMPLETE")]

    clock.advance(29)
    assert emitter.emit_due() == 0
    clock.advance(1)
    assert emitter.emit_due() == 1  # the grace is over: sent without an output
    assert receiver.sent[-1] == (late, "COMPLETE")


def test_a_claimed_row_is_leased_until_sent(
    sessions: SessionFactory, emitter: LineageEmitter, clock: Clock
) -> None:
    job_id = seed_job(sessions)
    queue(sessions, job_id, "START")
    claimed = emitter.claim()
    assert claimed is not None
    assert claimed.next_attempt_at == clock.now + timedelta(seconds=40)
    assert emitter.claim() is None  # another emitter sees it leased
    clock.advance(40)
    assert emitter.claim() is not None  # a sender that died: the lease ends, it goes again


def test_the_loop_sends_until_stopped(
    sessions: SessionFactory, receiver: Receiver, registry: CollectorRegistry
) -> None:
    job_id = seed_job(sessions)
    queue(sessions, job_id, "START")
    emitter = LineageEmitter(
        sessions, receiver, NAMING, LineageMetrics(registry), poll_interval_s=0.01
    )

    async def run() -> None:
        stop = asyncio.Event()
        task = asyncio.create_task(emitter.run(stop))
        for _ in range(500):
            if receiver.sent:
                break
            await asyncio.sleep(0.01)
        stop.set()
        await asyncio.wait_for(task, timeout=5)

    asyncio.run(run())
    assert receiver.sent == [(job_id, "START")]


# ----------------------------------------------------------------- the client, over HTTP


def client_settings(url: str, **values: Any) -> GatewaySettings:
    return GatewaySettings(_env_file=None, openlineage_url=url, **values)  # type: ignore[call-arg]


@pytest.fixture
def lineage_server() -> Iterator[OpenLineageReceiver]:
    with OpenLineageReceiver() as server:
        yield server


def test_the_client_posts_valid_events_with_the_bearer_key_and_no_retries_of_its_own(
    sessions: SessionFactory, lineage_server: OpenLineageReceiver, registry: CollectorRegistry
) -> None:
    client = lineage_client(client_settings(lineage_server.url, openlineage_api_key="k-123"))
    assert client is not None
    emitter = LineageEmitter(sessions, client.emit, NAMING, LineageMetrics(registry))
    job_id = seed_job(sessions)
    queue(sessions, job_id, "START")
    lineage_server.fail_next(1, status=503)
    try:
        assert emitter.emit_due() == 1
        assert lineage_server.requests == 1  # the 503 was one attempt, not five
        assert row(sessions, job_id, "START").last_error is not None
        with sessions.begin() as session:  # due again now
            found = session.get(OpenLineageOutbox, row(sessions, job_id, "START").id)
            assert found is not None
            found.next_attempt_at = T0
        assert emitter.emit_due() == 1
    finally:
        client.close()
    [event] = lineage_server.events
    assert event["run"]["runId"] == job_id
    assert lineage_server.rejected == []
    assert lineage_server.authorizations == ["Bearer k-123", "Bearer k-123"]


def test_the_client_is_off_without_a_url_or_when_disabled(
    monkeypatch: pytest.MonkeyPatch, lineage_server: OpenLineageReceiver
) -> None:
    assert lineage_client(GatewaySettings(_env_file=None)) is None  # type: ignore[call-arg]
    monkeypatch.setenv("OPENLINEAGE_DISABLED", "true")
    assert lineage_client(client_settings(lineage_server.url)) is None


def test_an_invalid_event_is_refused_by_the_receiver(
    lineage_server: OpenLineageReceiver,
) -> None:
    body: dict[str, Any] = {"eventType": "START", "eventTime": "now", "run": {"runId": "x"}}
    answer = requests.post(f"{lineage_server.url}/api/v1/lineage", json=body, timeout=5)
    assert answer.status_code == 400
    assert lineage_server.events == []
    [(_, errors)] = lineage_server.rejected
    assert any("'job' is a required property" in error for error in errors)
