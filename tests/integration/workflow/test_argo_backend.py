"""The Argo backend and the handlers on the real ``kubernetes`` client, against the Kubernetes
API test double (tests/support/k8s_server.py) playing the Argo controller: submit, phases and
node progress via the watcher, cancel, and the error classification."""

from __future__ import annotations

import json

import pytest

from llmops_shared.events import Phase
from llmops_shared.streams import DependencyUnavailableError
from llmops_workflow.adapters.argo import ArgoBackend
from llmops_workflow.adapters.ledger import MemoryLedger
from llmops_workflow.handlers import handle_training_event
from llmops_workflow.ports import WorkflowRejected, WorkflowUnavailable
from llmops_workflow.watcher import Watcher

from integration.workflow.helpers import (
    CORRELATION_ID,
    NS,
    WORKFLOWS,
    RecordingSink,
    cancelled,
    delete_workflow,
    make_ports,
    new_job_id,
    received,
    split,
    submitted,
)
from support.argo_schema import schema_errors
from support.k8s_server import KubeApiServer
from support.streams import details_of

pytestmark = pytest.mark.integration

DETAIL_KEYS = {
    "job_id", "workflow_name", "namespace", "backend", "progress", "nodes",
    "started_at", "finished_at", "manifest", "registered_model",
}  # fmt: skip


def _setup(argo: ArgoBackend):  # type: ignore[no-untyped-def]
    sink = RecordingSink()
    ledger = MemoryLedger()
    watcher = Watcher(argo, sink, namespaces=[NS], interval_s=0.05, ledger=ledger)
    return sink, watcher, make_ports(argo, sink, watcher, ledger=ledger)


def _node(
    name: str, phase: str, started: str, finished: str | None = None, message: str | None = None
) -> dict:  # type: ignore[type-arg]
    node = {
        "id": f"wf-{name}",
        "name": f"wf.{name}",
        "displayName": name,
        "type": "Pod",
        "phase": phase,
        "startedAt": started,
    }
    if finished:
        node["finishedAt"] = finished
    if message:
        node["message"] = message
    return node


REGISTERED = json.dumps(
    {
        "name": "llama-3-8b-sft-v1",
        "version": "2",
        "run_id": "4c1d",
        "source": "mlflow-artifacts:/1/4c1d/artifacts/model",
        "storage_uri": "s3://mlflow-artifacts/1/4c1d/artifacts/model",
    }
)
"""register's model-version.json, as Argo keeps the output parameter."""

RUNNING = {
    "phase": "Running",
    "startedAt": "2025-01-27T10:00:00Z",
    "progress": "1/4",
    "nodes": {
        "wf": {"id": "wf", "name": "wf", "displayName": "wf", "type": "DAG", "phase": "Running"},
        "a": _node("prepare-data", "Succeeded", "2025-01-27T10:00:01Z", "2025-01-27T10:05:00Z"),
        "b": _node("train", "Running", "2025-01-27T10:05:10Z"),
    },
}


async def test_apply_twice_is_one_workflow(kube: KubeApiServer, argo: ArgoBackend) -> None:
    sink, _, ports = _setup(argo)
    job_id = new_job_id()
    name = f"train-{job_id}"
    event = submitted(job_id)
    pipelines, jobs = split(await handle_training_event(received(event), ports))
    obj = kube.get(*WORKFLOWS, NS, name)
    assert obj is not None
    generation = obj["metadata"]["generation"]
    again = split(await handle_training_event(received(event), ports))
    assert len(kube.list(*WORKFLOWS, NS)) == 1
    assert kube.get(*WORKFLOWS, NS, name)["metadata"]["generation"] == generation  # type: ignore[index]
    applies = [r for r in kube.requests if r[0] == "PATCH" and name in r[1]]
    assert len(applies) == 2
    for _method, path, content_type in applies:
        assert content_type == "application/apply-patch+yaml"
        assert "fieldManager=llm-ops-workflow" in path
        assert "force=true" in path
    [pipeline], [job] = pipelines, jobs
    assert (pipeline.phase, job.phase) == (Phase.PENDING, Phase.PENDING)
    assert again[0][0].phase is Phase.PENDING
    assert pipeline.entity_id == name
    assert job.entity_id == job_id
    assert pipeline.reporter == job.reporter == "workflow"
    assert set(details_of(pipeline)) == DETAIL_KEYS
    assert details_of(pipeline)["backend"] == "argo"
    assert details_of(pipeline)["job_id"] == job_id
    assert details_of(pipeline)["progress"] == {"done": 0, "total": 4}
    assert schema_errors(details_of(pipeline)["manifest"]) == []  # type: ignore[arg-type]
    assert obj["metadata"]["labels"]["llm-ops.io/job-id"] == job_id
    assert obj["metadata"]["annotations"]["llm-ops.io/correlation-id"] == CORRELATION_ID
    assert sink.envelopes == []


async def test_watcher_follows_running_to_succeeded(kube: KubeApiServer, argo: ArgoBackend) -> None:
    sink, watcher, ports = _setup(argo)
    job_id = new_job_id()
    name = f"train-{job_id}"
    await handle_training_event(received(submitted(job_id)), ports)
    assert await watcher.poll_once() == 2  # first sight: Pending (pipeline + job)
    assert await watcher.poll_once() == 0  # unchanged: nothing
    kube.set_status(*WORKFLOWS, NS, name, RUNNING)
    assert await watcher.poll_once() == 2
    pipelines, jobs = sink.split()
    running = pipelines[-1]
    assert running.phase is Phase.RUNNING
    assert details_of(running)["progress"] == {"done": 1, "total": 4}
    assert details_of(running)["started_at"] == "2025-01-27T10:00:00Z"
    assert details_of(running)["nodes"] == [
        {
            "name": "prepare-data",
            "phase": "Succeeded",
            "started_at": "2025-01-27T10:00:01Z",
            "finished_at": "2025-01-27T10:05:00Z",
            "message": None,
        },
        {
            "name": "train",
            "phase": "Running",
            "started_at": "2025-01-27T10:05:10Z",
            "finished_at": None,
            "message": None,
        },
    ]
    assert jobs[-1].phase is Phase.RUNNING
    assert received(sink.envelopes[-1]).envelope.correlationid == CORRELATION_ID
    progressed = {**RUNNING, "progress": "2/4"}
    kube.set_status(*WORKFLOWS, NS, name, progressed)
    assert await watcher.poll_once() == 1  # progress only: the job's state did not change
    register = _node("register", "Succeeded", "2025-01-27T11:58:00Z", "2025-01-27T11:59:00Z")
    register["outputs"] = {"parameters": [{"name": "model-version", "value": REGISTERED}]}
    done = {
        **RUNNING,
        "phase": "Succeeded",
        "progress": "4/4",
        "finishedAt": "2025-01-27T12:00:00Z",
        "nodes": {**RUNNING["nodes"], "d": register},  # type: ignore[dict-item]
    }
    kube.set_status(*WORKFLOWS, NS, name, done)
    assert await watcher.poll_once() == 2
    pipelines, jobs = sink.split()
    assert pipelines[-1].phase is Phase.SUCCEEDED
    assert details_of(pipelines[-1])["registered_model"] == json.loads(REGISTERED)
    assert details_of(pipelines[-1])["finished_at"] == "2025-01-27T12:00:00Z"
    assert details_of(pipelines[-1])["progress"] == {"done": 4, "total": 4}
    assert jobs[-1].phase is Phase.SUCCEEDED
    assert [j.phase for j in jobs] == [Phase.PENDING, Phase.RUNNING, Phase.SUCCEEDED]
    seqs = [received(e).payload.seq for e in sink.envelopes]  # type: ignore[attr-defined]
    assert seqs == sorted(seqs)


@pytest.mark.parametrize("argo_phase", ["Failed", "Error"])
async def test_failed_and_error_report_failed_with_the_message(
    kube: KubeApiServer, argo: ArgoBackend, argo_phase: str
) -> None:
    sink, watcher, ports = _setup(argo)
    job_id = new_job_id()
    name = f"train-{job_id}"
    await handle_training_event(received(submitted(job_id)), ports)
    failed = {
        "phase": argo_phase,
        "message": "child 'train' failed",
        "nodes": {
            "b": _node("train", "Failed", "2025-01-27T10:05:10Z", "2025-01-27T10:06:00Z",
                       "OOMKilled (exit code 137)"),
        },
    }  # fmt: skip
    kube.set_status(*WORKFLOWS, NS, name, failed)
    await watcher.poll_once()
    pipelines, jobs = sink.split()
    assert (pipelines[-1].phase, pipelines[-1].reason) == (Phase.FAILED, "child 'train' failed")
    assert details_of(pipelines[-1])["nodes"][0]["message"] == "OOMKilled (exit code 137)"  # type: ignore[index,call-overload]
    assert (jobs[-1].phase, jobs[-1].reason) == (Phase.FAILED, "child 'train' failed")
    del failed["message"]
    kube.set_status(*WORKFLOWS, NS, name, failed)
    await watcher.poll_once()
    pipelines, _ = sink.split()
    assert pipelines[-1].reason == "train: OOMKilled (exit code 137)"


async def test_cancel_terminates_and_reports_cancelled(
    kube: KubeApiServer, argo: ArgoBackend
) -> None:
    sink, watcher, ports = _setup(argo)
    job_id = new_job_id()
    name = f"train-{job_id}"
    await handle_training_event(received(submitted(job_id)), ports)
    kube.set_status(*WORKFLOWS, NS, name, RUNNING)
    await watcher.poll_once()
    pipelines, jobs = split(await handle_training_event(received(cancelled(job_id)), ports))
    obj = kube.get(*WORKFLOWS, NS, name)
    assert obj["spec"]["shutdown"] == "Terminate"  # type: ignore[index]
    assert [p.phase for p in pipelines] == [Phase.RUNNING]
    assert pipelines[0].reason == "termination requested"
    assert jobs == []  # neither running for the user nor cancelled yet
    # a redelivered submission re-applies without `shutdown`: the termination stays
    await handle_training_event(received(submitted(job_id)), ports)
    assert kube.get(*WORKFLOWS, NS, name)["spec"]["shutdown"] == "Terminate"  # type: ignore[index]
    kube.set_status(
        *WORKFLOWS, NS, name,
        {**RUNNING, "phase": "Failed", "message": "Stopped with strategy 'Terminate'"},
    )  # fmt: skip
    await watcher.poll_once()
    pipelines, jobs = sink.split()
    assert pipelines[-1].phase is Phase.CANCELLED
    assert jobs[-1].phase is Phase.CANCELLED
    assert "Terminate" in (jobs[-1].reason or "")


async def test_a_late_cancel_keeps_a_real_failure_a_failure(
    kube: KubeApiServer, argo: ArgoBackend
) -> None:
    _, watcher, ports = _setup(argo)
    job_id = new_job_id()
    name = f"train-{job_id}"
    await handle_training_event(received(submitted(job_id)), ports)
    kube.set_status(*WORKFLOWS, NS, name, {**RUNNING, "phase": "Failed", "message": "OOMKilled"})
    await watcher.poll_once()
    pipelines, _ = split(await handle_training_event(received(cancelled(job_id)), ports))
    assert [p.phase for p in pipelines] == [Phase.FAILED]
    assert "shutdown" not in kube.get(*WORKFLOWS, NS, name)["spec"]  # type: ignore[index]


async def test_cancel_of_a_missing_workflow_reports_cancelled(argo: ArgoBackend) -> None:
    _, _, ports = _setup(argo)
    pipelines, jobs = split(await handle_training_event(received(cancelled(new_job_id())), ports))
    assert [p.phase for p in pipelines] == [Phase.CANCELLED]
    assert [j.phase for j in jobs] == [Phase.CANCELLED]


async def test_a_deleted_unfinished_workflow_fails_its_job(
    kube: KubeApiServer, argo: ArgoBackend
) -> None:
    sink, watcher, ports = _setup(argo)
    job_id = new_job_id()
    await handle_training_event(received(submitted(job_id)), ports)
    await watcher.poll_once()
    delete_workflow(kube, f"train-{job_id}")
    await watcher.poll_once()
    pipelines, jobs = sink.split()
    assert pipelines[-1].phase is Phase.DELETED
    assert jobs[-1].phase is Phase.FAILED


async def test_server_errors_are_outages_and_4xx_are_rejections(
    kube: KubeApiServer, argo: ArgoBackend
) -> None:
    sink, watcher, ports = _setup(argo)
    job_id = new_job_id()
    name = f"train-{job_id}"
    kube.fail_next("PATCH", f"/workflows/{name}", 500)
    with pytest.raises(DependencyUnavailableError):
        await handle_training_event(received(submitted(job_id)), ports)
    assert sink.envelopes == []  # an outage reports nothing: the entry just waits
    kube.fail_next("PATCH", f"/workflows/{name}", 403, reason="Forbidden")
    with pytest.raises(WorkflowUnavailable):
        await handle_training_event(received(submitted(job_id)), ports)
    kube.fail_next("PATCH", f"/workflows/{name}", 422, reason="Invalid")
    with pytest.raises(WorkflowRejected, match="rejected"):
        await handle_training_event(received(submitted(job_id)), ports)
    pipelines, jobs = sink.split()
    assert [p.phase for p in pipelines] == [Phase.FAILED]
    assert [j.phase for j in jobs] == [Phase.FAILED]
    assert "Invalid" in (jobs[0].reason or "")
    kube.fail_next("GET", "/workflows", 503)
    with pytest.raises(WorkflowUnavailable):
        await watcher.poll_once()


async def test_unreachable_cluster_is_an_outage(argo: ArgoBackend, kube: KubeApiServer) -> None:
    kube.stop()
    with pytest.raises(WorkflowUnavailable, match="unreachable"):
        await argo.ping()
