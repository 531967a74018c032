"""OpenLineage run events of training jobs, end to end: the gateway (real lifespan, status
consumer, emitter) folds the workers' job reports, queues the run events in the same
transaction and posts them to a receiver that checks each one against the official OpenLineage
JSON Schemas (``support.openlineage_receiver``). SQLite and PostgreSQL, real Redis."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import datetime
from typing import Any

import pytest
import sqlalchemy as sa
from prometheus_client import CollectorRegistry

from llmops_gateway.db.migrate import upgrade
from llmops_gateway.db.models import OpenLineageOutbox, TrainingJob, utcnow
from llmops_gateway.db.session import session_factory
from llmops_gateway.openlineage.emitter import LineageEmitter, LineageMetrics
from llmops_gateway.openlineage.events import Naming
from llmops_gateway.openlineage.service import TASK_NAME
from llmops_shared.events import Phase, new_seq

from integration.gateway.harness import (
    API,
    Gateway,
    job_report,
    new_id,
    pipeline_report,
    registered_model,
)
from integration.gateway.test_datasets_api import (
    STORAGE,
    V1_FILES,
    create_dataset,
    sft_job,
    succeeded_version,
)
from support.openlineage_receiver import OpenLineageReceiver
from support.streams import wait_until

pytestmark = pytest.mark.integration

DATASET = "enterprise-instruction"


@pytest.fixture
def receiver() -> Iterator[OpenLineageReceiver]:
    with OpenLineageReceiver() as server:
        yield server


async def lineage_gateway(
    start_gateway: Callable[..., Any], receiver: OpenLineageReceiver, **overrides: Any
) -> Gateway:
    """A gateway sending to ``receiver``, quick to poll and to retry."""
    values: dict[str, Any] = {
        "openlineage_url": receiver.url,
        "openlineage_poll_interval_s": 0.05,
        "openlineage_retry_initial_s": 0.1,
        "training_requires_dataset_version": True,
        **overrides,
    }
    gateway: Gateway = await start_gateway(**values)
    return gateway


async def pinned_job(gateway: Gateway) -> str:
    """A job submitted on a Succeeded version (v1.1.0) of the catalog dataset."""
    await gateway.register_base_model()
    dataset = await create_dataset(gateway)
    await succeeded_version(gateway, dataset["id"], "v1.1.0", V1_FILES)
    response = await gateway.submit(sft_job("v1.1.0"))
    assert response.status_code == 202, response.text
    job_id: str = response.json()["id"]
    return job_id


async def report_job(gateway: Gateway, job_id: str, phase: Phase, **values: Any) -> None:
    """What the workflow worker publishes about the job; returns once folded."""
    before = gateway.count("processed_events")
    await gateway.publish_status(job_report(job_id, phase, new_seq(), **values))
    await gateway.wait_processed(before + 1)


async def received(receiver: OpenLineageReceiver, *types: str) -> list[dict[str, Any]]:
    """Once the receiver accepted an event of each of ``types``: all it accepted."""

    async def arrived() -> bool:
        return all(receiver.of_type(event_type) for event_type in types)

    await wait_until(arrived, timeout_s=15)
    return list(receiver.events)


def unsent(gateway: Gateway) -> int:
    with gateway.state.engine.connect() as conn:
        query = "SELECT count(*) FROM openlineage_outbox WHERE emitted_at IS NULL"
        return int(conn.execute(sa.text(query)).scalar_one())


async def all_marked_sent(gateway: Gateway) -> None:
    """Until the emitter has marked every row sent (just after the receiver's answer)."""

    async def marked() -> bool:
        return unsent(gateway) == 0

    await wait_until(marked, timeout_s=10)


def outbox_row(gateway: Gateway, job_id: str, event_type: str) -> OpenLineageOutbox:
    with gateway.state.sessions() as session:
        row = session.scalars(
            sa.select(OpenLineageOutbox).where(
                OpenLineageOutbox.job_id == job_id, OpenLineageOutbox.event_type == event_type
            )
        ).one()
    return row


async def test_a_trained_job_emits_start_then_complete_from_dataset_version_to_model(
    start_gateway: Callable[..., Any], receiver: OpenLineageReceiver
) -> None:
    gateway = await lineage_gateway(start_gateway, receiver)
    assert TASK_NAME in {task.get_name() for task in gateway.state.tasks}
    job_id = await pinned_job(gateway)

    await report_job(gateway, job_id, Phase.RUNNING)
    [start] = await received(receiver, "START")
    await gateway.report_trained(job_id)
    start_again, complete = await received(receiver, "START", "COMPLETE")

    assert start_again == start  # sent once
    assert receiver.rejected == []  # every event passed the schemas
    assert [start["eventType"], complete["eventType"]] == ["START", "COMPLETE"]
    assert start["run"]["runId"] == complete["run"]["runId"] == job_id
    artifact = gateway.artifact_of(job_id)
    for event in (start, complete):
        assert (event["job"]["namespace"], event["job"]["name"]) == ("llmops", artifact)
        [source] = event["inputs"]
        assert (source["namespace"], source["name"]) == ("s3://llm-datasets", DATASET)
        assert source["facets"]["version"]["datasetVersion"] == "v1.1.0"
        assert source["facets"]["dataSource"]["uri"].startswith(STORAGE)
    assert start["outputs"] == []
    [model] = complete["outputs"]
    assert (model["namespace"], model["name"]) == ("mlflow", artifact)
    assert model["facets"]["version"]["datasetVersion"] == "1"
    assert model["facets"]["dataSource"]["uri"] == registered_model(artifact)["storage_uri"]
    assert datetime.fromisoformat(start["eventTime"]) < datetime.fromisoformat(
        complete["eventTime"]
    )
    await all_marked_sent(gateway)

    async def counted() -> bool:
        metrics = (await gateway.client.get("/metrics")).text
        return 'llmops_openlineage_events_emitted_total{event_type="COMPLETE"} 1.0' in metrics

    await wait_until(counted, timeout_s=5)


async def test_a_failed_job_emits_fail_with_its_reason(
    start_gateway: Callable[..., Any], receiver: OpenLineageReceiver
) -> None:
    gateway = await lineage_gateway(start_gateway, receiver)
    job_id = await pinned_job(gateway)
    reason = "step train failed: exit code 137 (OOMKilled)"
    await report_job(gateway, job_id, Phase.FAILED, reason=reason)

    start, fail = await received(receiver, "START", "FAIL")  # the START it never had, first
    assert (start["eventType"], fail["eventType"]) == ("START", "FAIL")
    assert start["eventTime"] == fail["eventTime"]
    assert fail["run"]["facets"]["errorMessage"]["message"] == reason
    assert fail["outputs"] == []
    assert receiver.rejected == []


async def test_a_receiver_that_fails_twice_gets_each_event_once(
    start_gateway: Callable[..., Any], receiver: OpenLineageReceiver
) -> None:
    gateway = await lineage_gateway(start_gateway, receiver)
    job_id = await pinned_job(gateway)
    receiver.fail_next(2, status=503)
    await report_job(gateway, job_id, Phase.FAILED, reason="boom")

    await received(receiver, "START", "FAIL")
    await all_marked_sent(gateway)  # nothing is left to send: what was received is all
    assert [event["eventType"] for event in receiver.events] == ["START", "FAIL"]
    assert receiver.requests == 4  # two refused STARTs, then each event once
    start = outbox_row(gateway, job_id, "START")
    assert (start.attempts, start.last_error) == (3, None)
    assert outbox_row(gateway, job_id, "FAIL").attempts == 1


async def test_an_event_the_receiver_refuses_for_good_is_given_up_not_retried(
    start_gateway: Callable[..., Any], receiver: OpenLineageReceiver
) -> None:
    """A 400 will be a 400 again: the START is given up (kept, with the error) and the job's
    FAIL still goes; nothing is retried."""
    gateway = await lineage_gateway(start_gateway, receiver)
    job_id = await pinned_job(gateway)
    receiver.fail_next(1, status=400)
    await report_job(gateway, job_id, Phase.FAILED, reason="boom")

    await received(receiver, "FAIL")
    start = outbox_row(gateway, job_id, "START")
    assert start.given_up_at is not None
    assert start.emitted_at is None
    assert "400" in (start.last_error or "")
    assert [event["eventType"] for event in receiver.events] == ["FAIL"]
    assert receiver.requests == 2


async def test_a_complete_waits_for_the_model_version_reported_after_the_job_ended(
    start_gateway: Callable[..., Any], receiver: OpenLineageReceiver
) -> None:
    gateway = await lineage_gateway(start_gateway, receiver)
    job_id = await pinned_job(gateway)
    await report_job(gateway, job_id, Phase.SUCCEEDED)  # before the pipeline's report
    await received(receiver, "START")

    artifact = gateway.artifact_of(job_id)
    details = {"registered_model": registered_model(artifact, version="7")}
    before = gateway.count("processed_events")
    await gateway.publish_status(pipeline_report(job_id, Phase.SUCCEEDED, new_seq(), **details))
    await gateway.wait_processed(before + 1)

    [complete] = (await received(receiver, "COMPLETE"))[1:]
    [model] = complete["outputs"]
    assert (model["name"], model["facets"]["version"]["datasetVersion"]) == (artifact, "7")


async def test_a_cancel_emits_the_abort_of_a_started_run_at_once(
    start_gateway: Callable[..., Any], receiver: OpenLineageReceiver
) -> None:
    gateway = await lineage_gateway(start_gateway, receiver)
    job_id = await pinned_job(gateway)
    await report_job(gateway, job_id, Phase.RUNNING)
    await received(receiver, "START")
    response = await gateway.client.post(f"{API}/training/jobs/{job_id}/cancel")
    assert response.status_code == 202, response.text

    [_, abort] = await received(receiver, "START", "ABORT")  # no worker report needed
    assert abort["eventType"] == "ABORT"
    with gateway.state.sessions() as session:
        job = session.get(TrainingJob, job_id)
        assert job is not None
        cancelled_at = job.updated_at
    assert datetime.fromisoformat(abort["eventTime"]) == cancelled_at  # when it was cancelled
    await report_job(gateway, job_id, Phase.CANCELLED, reason="terminated")  # the worker's
    await all_marked_sent(gateway)
    assert [e["eventType"] for e in receiver.events] == ["START", "ABORT"]  # not twice


async def test_a_job_cancelled_before_it_ran_emits_nothing_until_a_run_is_reported(
    start_gateway: Callable[..., Any], receiver: OpenLineageReceiver
) -> None:
    """No run to end (the worker's Cancelled proves none); but a run the worker started while
    the cancel was on its way is reported after it, and gets its START and ABORT then."""
    gateway = await lineage_gateway(start_gateway, receiver)
    job_id = await pinned_job(gateway)
    response = await gateway.client.post(f"{API}/training/jobs/{job_id}/cancel")
    assert response.status_code == 202, response.text
    await report_job(gateway, job_id, Phase.CANCELLED, reason="nothing to stop")
    assert gateway.count("openlineage_outbox") == 0

    await report_job(gateway, job_id, Phase.RUNNING)  # observed before the cancel reached it
    events = await received(receiver, "START", "ABORT")
    assert [e["eventType"] for e in events] == ["START", "ABORT"]


async def test_a_redelivered_or_repeated_report_queues_no_second_row(
    start_gateway: Callable[..., Any], receiver: OpenLineageReceiver
) -> None:
    # no pipeline reports a model here: the COMPLETE goes without waiting for one
    gateway = await lineage_gateway(start_gateway, receiver, openlineage_output_grace_s=0)
    job_id = await pinned_job(gateway)
    seq, event_id = new_seq(), new_id()
    before = gateway.count("processed_events")
    succeeded = job_report(job_id, Phase.SUCCEEDED, seq)
    await gateway.publish_status(succeeded, event_id=event_id)
    await gateway.publish_status(succeeded, event_id=event_id)  # redelivered
    await gateway.publish_status(succeeded)  # the worker published it again
    await gateway.publish_status(job_report(job_id, Phase.SUCCEEDED, seq + 1))
    await gateway.wait_processed(before + 3)

    assert gateway.count("openlineage_outbox") == 2
    events = await received(receiver, "START", "COMPLETE")
    assert [event["eventType"] for event in events] == ["START", "COMPLETE"]


async def test_without_openlineage_url_nothing_is_queued(
    start_gateway: Callable[..., Any],
) -> None:
    gateway: Gateway = await start_gateway(training_requires_dataset_version=True)
    assert TASK_NAME not in {task.get_name() for task in gateway.state.tasks}
    job_id = await pinned_job(gateway)
    await report_job(gateway, job_id, Phase.RUNNING)
    await gateway.report_trained(job_id)
    with gateway.state.sessions() as session:
        job = session.get(TrainingJob, job_id)
        assert job is not None
        assert job.status == "Succeeded"
    assert gateway.count("openlineage_outbox") == 0


def test_two_emitters_on_postgresql_never_claim_the_same_row(postgres_engine: sa.Engine) -> None:
    """A row locked by one gateway's claim is skipped by the other's (SKIP LOCKED), which
    takes the next due row instead of waiting."""
    upgrade(postgres_engine)
    sessions = session_factory(postgres_engine)
    now = utcnow()
    with sessions.begin() as session:
        for job_id in ("job-a", "job-b"):
            session.add(
                OpenLineageOutbox(
                    job_id=job_id,
                    event_type="START",
                    event_time=now,
                    created_at=now,
                    next_attempt_at=now,
                    attempts=0,
                )
            )
    naming = Naming(job_namespace="llmops", dataset_namespace=None, model_namespace="mlflow")
    other = LineageEmitter(
        sessions, lambda _event: None, naming, LineageMetrics(CollectorRegistry())
    )
    with postgres_engine.connect() as holder, holder.begin():  # the first gateway's open claim
        holder.execute(
            sa.text("SELECT id FROM openlineage_outbox WHERE job_id = 'job-a' FOR UPDATE")
        )
        claimed = other.claim()
        assert claimed is not None
        assert claimed.job_id == "job-b"
        assert other.claim() is None  # job-a is locked, job-b leased
