"""Workflow pipelines: the workflow worker's reports folded into ``/workflows/pipelines`` and
the job view (both databases).

The reports go onto the test's namespaced ``llmops.status`` stream, as the worker publishes
them; the gateway's own consumer folds them.
"""

from __future__ import annotations

from typing import Any, cast

import pytest

from llmops_gateway.domain.status import apply_status_event
from llmops_shared.events import (
    DeadLetterEntry,
    Phase,
    StatusEntity,
    decode_event,
    encode_event,
    new_event,
    new_seq,
    status_updated,
)

from integration.gateway.harness import (
    API,
    Gateway,
    auth,
    job_report,
    pipeline_report,
    workflow_name,
)
from support.streams import wait_until

pytestmark = pytest.mark.integration

PIPELINES = f"{API}/workflows/pipelines"
JOBS = f"{API}/training/jobs"
SEQ = 1_767_225_600_000_000_000
"""2026-01-01T00:00:00Z in nanoseconds: the seq (observation time) of the first report."""
SECOND = 1_000_000_000


def manifest(job_id: str) -> dict[str, Any]:
    return {
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "Workflow",
        "metadata": {"name": workflow_name(job_id), "namespace": "llm-ops"},
        "spec": {"entrypoint": "train"},
    }


NODES: list[Any] = [
    {"name": "prepare-data", "phase": "Succeeded", "started_at": "2026-01-01T00:00:05Z",
     "finished_at": "2026-01-01T00:01:00Z", "message": None},
    {"name": "train", "phase": "Running", "started_at": "2026-01-01T00:01:05Z",
     "finished_at": None, "message": None, "id": "argo-node-id"},
]  # fmt: skip
NODES_OUT = [
    {"name": "prepare-data", "phase": "Succeeded", "startedAt": "2026-01-01T00:00:05Z",
     "finishedAt": "2026-01-01T00:01:00Z", "message": None},
    {"name": "train", "phase": "Running", "startedAt": "2026-01-01T00:01:05Z",
     "finishedAt": None, "message": None},
]  # fmt: skip


def submitted(job_id: str) -> Any:
    """The worker's first report: submitted, not observed yet (0/0, no nodes)."""
    return pipeline_report(
        job_id,
        Phase.PENDING,
        SEQ,
        reason="waiting for the Argo controller",
        progress={"done": 0, "total": 0},
        nodes=[],
        started_at=None,
        finished_at=None,
        manifest=manifest(job_id),
    )


def running(job_id: str, seq: int = SEQ + SECOND) -> Any:
    return pipeline_report(
        job_id,
        Phase.RUNNING,
        seq,
        progress={"done": 1, "total": 3},
        nodes=NODES,
        started_at="2026-01-01T00:00:04Z",
        manifest=manifest(job_id),
    )


async def pipeline(gateway: Gateway, name: str) -> dict[str, Any]:
    response = await gateway.client.get(f"{PIPELINES}/{name}")
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def job(gateway: Gateway, job_id: str) -> dict[str, Any]:
    response = await gateway.client.get(f"{JOBS}/{job_id}")
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def test_before_the_first_report_there_is_no_pipeline(gateway: Gateway) -> None:
    job_id = await gateway.submitted_job()
    assert (await job(gateway, job_id))["pipeline"] is None
    listed = (await gateway.client.get(JOBS)).json()["items"]
    assert [item["pipeline"] for item in listed] == [None]

    missing = await gateway.client.get(f"{PIPELINES}/{workflow_name(job_id)}")
    assert missing.status_code == 404
    assert missing.json() == {"detail": f"workflow pipeline {workflow_name(job_id)} not found"}
    empty = await gateway.client.get(PIPELINES, params={"jobId": job_id})
    assert empty.json() == {"items": [], "limit": 50, "offset": 0}


async def test_reports_show_progress_nodes_and_the_job_embeds_the_pipeline(
    gateway: Gateway,
) -> None:
    job_id = await gateway.submitted_job()
    name = workflow_name(job_id)
    await gateway.publish_status(submitted(job_id))
    await gateway.publish_status(job_report(job_id, Phase.PENDING, SEQ))
    await gateway.wait_processed(2)
    first = await pipeline(gateway, name)
    assert (first["status"], first["progress"], first["nodes"]) == (
        "Pending",
        {"done": 0, "total": 0},
        [],
    )
    assert first["reason"] == "waiting for the Argo controller"

    await gateway.publish_status(running(job_id))
    await gateway.publish_status(job_report(job_id, Phase.RUNNING, SEQ + SECOND))
    await gateway.wait_processed(4)

    assert await pipeline(gateway, name) == {
        "id": name,
        "jobId": job_id,
        "workflowName": name,
        "namespace": "llm-ops",
        "backend": "argo",
        "status": "Running",
        "reason": None,
        "progress": {"done": 1, "total": 3},
        "nodes": NODES_OUT,
        "startedAt": "2026-01-01T00:00:04Z",
        "finishedAt": None,
        "observedAt": "2026-01-01T00:00:01Z",
        "manifest": manifest(job_id),
    }
    summary = {
        "id": name,
        "status": "Running",
        "progress": {"done": 1, "total": 3},
        "startedAt": "2026-01-01T00:00:04Z",
        "finishedAt": None,
        "pipelineUrl": f"{PIPELINES}/{name}",
    }
    viewed = await job(gateway, job_id)
    assert viewed["status"] == "Running"
    assert viewed["pipeline"] == summary
    listed = (await gateway.client.get(JOBS)).json()["items"]
    assert [item["pipeline"] for item in listed] == [summary]


async def test_a_stale_report_is_ignored(gateway: Gateway) -> None:
    job_id = await gateway.submitted_job()
    await gateway.publish_status(running(job_id, seq=SEQ + 2 * SECOND))
    late = pipeline_report(
        job_id, Phase.PENDING, SEQ + SECOND, progress={"done": 0, "total": 5}, namespace="old"
    )
    await gateway.publish_status(late)
    await gateway.publish_status(job_report(job_id, Phase.RUNNING, SEQ + 2 * SECOND))
    await gateway.publish_status(job_report(job_id, Phase.PENDING, SEQ + SECOND))
    await gateway.wait_processed(4)

    view = await pipeline(gateway, workflow_name(job_id))
    assert (view["status"], view["progress"], view["namespace"]) == (
        "Running",
        {"done": 1, "total": 3},
        "llm-ops",
    )
    assert view["observedAt"] == "2026-01-01T00:00:02Z"
    assert (await job(gateway, job_id))["status"] == "Running"


async def test_a_redelivered_report_changes_nothing(gateway: Gateway) -> None:
    job_id = await gateway.submitted_job()
    first = await gateway.publish_status(running(job_id))
    await gateway.wait_processed(1)

    await gateway.publish_envelope(first)  # the same event id through the stream ...
    forged = new_event(  # ... and through the handler, with other content under the same id
        pipeline_report(job_id, Phase.FAILED, SEQ + 9 * SECOND, reason="must not apply"),
        source="tests",
        event_id=first.id,
    )
    event = decode_event(encode_event(forged))
    assert apply_status_event(gateway.state.sessions, event, consumer="gateway") is False
    # A new report proves the consumer has moved past the duplicate.
    await gateway.publish_status(job_report(job_id, Phase.RUNNING, SEQ + SECOND))
    await gateway.wait_processed(2)

    view = await pipeline(gateway, workflow_name(job_id))
    assert (view["status"], view["reason"]) == ("Running", None)
    assert gateway.count("workflow_pipelines") == 1
    assert gateway.count("processed_events") == 2


async def test_missing_null_or_empty_details_keep_what_was_reported(gateway: Gateway) -> None:
    job_id = await gateway.submitted_job()
    await gateway.publish_status(running(job_id))
    short = pipeline_report(  # a report with nothing but the phase ...
        job_id, Phase.RUNNING, SEQ + 2 * SECOND, job_id=None, namespace=None, backend=None
    )
    await gateway.publish_status(short)
    await gateway.wait_processed(2)
    kept = {
        "jobId": job_id,
        "namespace": "llm-ops",
        "backend": "argo",
        "progress": {"done": 1, "total": 3},
        "nodes": NODES_OUT,
        "startedAt": "2026-01-01T00:00:04Z",
        "manifest": manifest(job_id),
        "observedAt": "2026-01-01T00:00:02Z",  # the short report was applied
    }
    view = await pipeline(gateway, workflow_name(job_id))
    assert {key: view[key] for key in kept} == kept

    empty = pipeline_report(  # ... or empty values, and a 0/0 progress, keep them too
        job_id,
        Phase.RUNNING,
        SEQ + 3 * SECOND,
        namespace="",
        progress={"done": 0, "total": 0},
        nodes=[],
        manifest={},
        started_at="",
        finished_at=None,
    )
    partial = pipeline_report(  # a partial progress is merged key by key
        job_id, Phase.RUNNING, SEQ + 4 * SECOND, progress={"done": 2, "total": None}
    )
    await gateway.publish_status(empty)
    await gateway.publish_status(partial)
    await gateway.wait_processed(4)
    view = await pipeline(gateway, workflow_name(job_id))
    assert view["namespace"] == "llm-ops"
    assert view["progress"] == {"done": 2, "total": 3}
    assert view["nodes"] == NODES_OUT
    assert view["manifest"] == manifest(job_id)
    assert view["startedAt"] == "2026-01-01T00:00:04Z"


async def test_failed_pipeline_and_job_carry_the_message(gateway: Gateway) -> None:
    job_id = await gateway.submitted_job()
    message = "train: OOMKilled (exit code 137)"
    failed_nodes = [{**NODES[1], "phase": "Failed", "finished_at": "2026-01-01T01:09:00+01:00",
                     "message": "OOMKilled (exit code 137)"}]  # fmt: skip
    await gateway.publish_status(running(job_id))
    await gateway.publish_status(job_report(job_id, Phase.RUNNING, SEQ + SECOND))
    failed = pipeline_report(
        job_id,
        Phase.FAILED,
        SEQ + 2 * SECOND,
        reason=message,
        progress={"done": 1, "total": 3},
        nodes=failed_nodes,
        finished_at="2026-01-01T00:09:01Z",
    )
    await gateway.publish_status(failed)
    await gateway.publish_status(job_report(job_id, Phase.FAILED, SEQ + 2 * SECOND, reason=message))
    await gateway.wait_processed(4)

    view = await pipeline(gateway, workflow_name(job_id))
    assert (view["status"], view["reason"]) == ("Failed", message)
    assert view["finishedAt"] == "2026-01-01T00:09:01Z"
    assert view["nodes"] == [{"name": "train", "phase": "Failed",
                              "startedAt": "2026-01-01T00:01:05Z",
                              "finishedAt": "2026-01-01T00:09:00Z",  # in UTC
                              "message": "OOMKilled (exit code 137)"}]  # fmt: skip
    viewed = await job(gateway, job_id)
    assert (viewed["status"], viewed["reason"]) == ("Failed", message)
    assert viewed["pipeline"]["status"] == "Failed"
    assert viewed["pipeline"]["finishedAt"] == "2026-01-01T00:09:01Z"

    cancel = await gateway.client.post(f"{JOBS}/{job_id}/cancel", headers=auth())
    assert cancel.status_code == 409
    assert cancel.json() == {"detail": f"training job {job_id} is already Failed"}


async def test_a_succeeded_job_cannot_be_cancelled_nor_reopened(gateway: Gateway) -> None:
    job_id = await gateway.submitted_job()
    done = pipeline_report(
        job_id,
        Phase.SUCCEEDED,
        SEQ + SECOND,
        progress={"done": 3, "total": 3},
        finished_at="2026-01-01T01:00:00Z",
    )
    await gateway.publish_status(done)
    await gateway.publish_status(job_report(job_id, Phase.SUCCEEDED, SEQ + SECOND))
    # a newer Running (a watcher re-observing a stale cache) does not reopen a finished job
    await gateway.publish_status(job_report(job_id, Phase.RUNNING, SEQ + 2 * SECOND))
    await gateway.wait_processed(3)

    viewed = await job(gateway, job_id)
    assert viewed["status"] == "Succeeded"
    assert viewed["pipeline"]["progress"] == {"done": 3, "total": 3}
    cancel = await gateway.client.post(f"{JOBS}/{job_id}/cancel", headers=auth())
    assert cancel.status_code == 409
    assert cancel.json() == {"detail": f"training job {job_id} is already Succeeded"}


async def test_reports_after_a_cancel_do_not_resurrect_the_job(gateway: Gateway) -> None:
    job_id = await gateway.submitted_job()
    await gateway.publish_status(running(job_id))
    await gateway.publish_status(job_report(job_id, Phase.RUNNING, SEQ + SECOND))
    await gateway.wait_processed(2)

    cancelled = await gateway.client.post(
        f"{JOBS}/{job_id}/cancel", json={"reason": "wrong dataset"}, headers=auth()
    )
    assert cancelled.status_code == 202, cancelled.text
    assert cancelled.json()["status"] == "Cancelled"
    assert cancelled.json()["pipeline"]["status"] == "Running"

    # The worker observed the workflow still running *after* the cancel was committed (a newer
    # seq than the cancel's), before it had stopped it; then the stopped workflow ended Failed.
    await gateway.publish_status(pipeline_report(
        job_id, Phase.RUNNING, new_seq(), reason="termination requested"))  # fmt: skip
    await gateway.publish_status(job_report(job_id, Phase.RUNNING, new_seq()))
    await gateway.publish_status(job_report(
        job_id, Phase.FAILED, new_seq(), reason="Stopped with strategy 'Terminate'"))  # fmt: skip
    ended = pipeline_report(
        job_id, Phase.CANCELLED, new_seq(), reason="terminated: Stopped with strategy"
    )
    await gateway.publish_status(ended)
    await gateway.wait_processed(6)

    viewed = await job(gateway, job_id)
    assert (viewed["status"], viewed["reason"]) == ("Cancelled", "wrong dataset")
    assert viewed["pipeline"]["status"] == "Cancelled"  # the pipeline shows what happened
    view = await pipeline(gateway, workflow_name(job_id))
    assert view["reason"] == "terminated: Stopped with strategy"
    assert view["progress"] == {"done": 1, "total": 3}


async def test_list_newest_first_with_paging_and_a_job_filter(gateway: Gateway) -> None:
    first = await gateway.submitted_job()
    second = (await gateway.submit()).json()["id"]
    await gateway.publish_status(running(first))
    await gateway.wait_processed(1)
    await gateway.publish_status(running(second))
    await gateway.wait_processed(2)
    other = status_updated(  # a pipeline some other system runs, with no job
        StatusEntity.PIPELINE,
        entity_id="nightly-eval",
        phase=Phase.RUNNING,
        reporter="scheduler",
        details={"backend": "job"},
        seq=SEQ,
    )
    await gateway.publish_status(other)
    await gateway.wait_processed(3)

    listed = (await gateway.client.get(PIPELINES)).json()
    assert [p["id"] for p in listed["items"]] == [
        "nightly-eval",
        workflow_name(second),
        workflow_name(first),
    ]
    assert listed["items"][0]["jobId"] is None
    page = (await gateway.client.get(PIPELINES, params={"limit": 1, "offset": 1})).json()
    assert (page["limit"], page["offset"]) == (1, 1)
    assert [p["id"] for p in page["items"]] == [workflow_name(second)]
    mine = (await gateway.client.get(PIPELINES, params={"jobId": first})).json()
    assert [p["id"] for p in mine["items"]] == [workflow_name(first)]
    bad = await gateway.client.get(PIPELINES, params={"limit": 0})
    assert bad.status_code == 422


async def test_a_report_without_job_id_is_linked_by_the_workflow_name(gateway: Gateway) -> None:
    job_id = await gateway.submitted_job()
    await gateway.publish_status(pipeline_report(job_id, Phase.PENDING, SEQ, job_id=None))
    await gateway.wait_processed(1)
    assert (await pipeline(gateway, workflow_name(job_id)))["jobId"] == job_id
    assert (await job(gateway, job_id))["pipeline"]["status"] == "Pending"


async def test_malformed_details_are_dead_lettered(gateway: Gateway) -> None:
    job_id = await gateway.submitted_job()
    valid = pipeline_report(job_id, Phase.RUNNING, SEQ)
    envelope = await gateway.publish_unchecked_status(valid, progress={"done": "most", "total": 3})
    dlq = f"{gateway.namespace}llmops.status.dlq"

    async def dead_lettered() -> bool:
        return bool(await gateway.redis.xlen(dlq))

    await wait_until(dead_lettered, timeout_s=10)
    [(_, fields)] = await gateway.redis.xrange(dlq)
    entry = DeadLetterEntry.from_fields(cast("dict[bytes, bytes]", fields))
    assert envelope.id in entry.event
    assert entry.reason == (
        "invalid payload for llmops.status.pipeline.updated.v1: "
        "data.details.progress.done: Input should be a valid integer, unable to parse string as "
        "an integer"
    )
    assert gateway.count("workflow_pipelines") == 0
