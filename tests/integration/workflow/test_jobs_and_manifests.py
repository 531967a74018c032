"""The built-in backend (one batch/v1 Job per stage, sequenced by the watcher) on the API test
double, and the manifests backend on real files."""

from __future__ import annotations

from pathlib import Path

import pytest

from llmops_shared.events import Phase
from llmops_shared.kube.watcher import NoCache
from llmops_shared.manifest_files import load_documents
from llmops_workflow.adapters.jobs import JobBackend
from llmops_workflow.adapters.ledger import MemoryLedger
from llmops_workflow.adapters.manifests import ManifestsBackend
from llmops_workflow.handlers import handle_training_event
from llmops_workflow.render.jobs import MultiNodeRefused
from llmops_workflow.watcher import Watcher

from integration.workflow.helpers import (
    JOBS,
    NS,
    RecordingSink,
    cancelled,
    make_ports,
    new_job_id,
    received,
    split,
    submitted,
)
from support.k8s_server import KubeApiServer
from support.streams import details_of

pytestmark = pytest.mark.integration

COMPLETE = {
    "succeeded": 1,
    "startTime": "2025-01-27T10:00:00Z",
    "completionTime": "2025-01-27T10:10:00Z",
    "conditions": [{"type": "Complete", "status": "True"}],
}


def _suspended(kube: KubeApiServer, job_id: str) -> dict[str, bool]:
    return {
        j["metadata"]["labels"]["llm-ops.io/stage"]: j["spec"]["suspend"]
        for j in kube.list(*JOBS, NS)
        if j["metadata"]["labels"]["llm-ops.io/job-id"] == job_id
    }


async def test_stages_run_in_order_and_the_job_succeeds(
    kube: KubeApiServer, jobs: JobBackend
) -> None:
    sink = RecordingSink()
    ledger = MemoryLedger()
    watcher = Watcher(jobs, sink, namespaces=[NS], interval_s=0.05, ledger=ledger)
    ports = make_ports(jobs, sink, watcher, jobs=True, ledger=ledger)
    job_id = new_job_id()
    event = submitted(job_id)
    pipelines, _ = split(await handle_training_event(received(event), ports))
    await handle_training_event(received(event), ports)  # redelivery: the same four Jobs
    assert len(kube.list(*JOBS, NS)) == 4
    assert details_of(pipelines[0])["backend"] == "job"
    assert details_of(pipelines[0])["progress"] == {"done": 0, "total": 4}
    assert _suspended(kube, job_id) == {
        "prepare-data": False, "train": True, "evaluate": True, "register": True,
    }  # fmt: skip
    await watcher.poll_once()
    for index, stage in enumerate(["prep", "train", "eval", "reg"]):
        kube.set_status(*JOBS, NS, f"{stage}-{job_id}", COMPLETE)
        await watcher.poll_once()
        if index < 3:
            assert list(_suspended(kube, job_id).values()).count(False) == index + 2
    pipelines, job_reports = sink.split()
    assert pipelines[-1].phase is Phase.SUCCEEDED
    assert details_of(pipelines[-1])["progress"] == {"done": 4, "total": 4}
    assert [n["name"] for n in details_of(pipelines[-1])["nodes"]] == [  # type: ignore[union-attr,index]
        "prepare-data", "train", "evaluate", "register",
    ]  # fmt: skip
    assert job_reports[-1].phase is Phase.SUCCEEDED
    assert Phase.RUNNING in [j.phase for j in job_reports]


async def test_a_failed_stage_fails_the_job_and_cancel_suspends(
    kube: KubeApiServer, jobs: JobBackend
) -> None:
    sink = RecordingSink()
    ledger = MemoryLedger()
    watcher = Watcher(jobs, sink, namespaces=[NS], interval_s=0.05, ledger=ledger)
    ports = make_ports(jobs, sink, watcher, jobs=True, ledger=ledger)
    failing, stopping = new_job_id(), new_job_id()
    await handle_training_event(received(submitted(failing)), ports)
    await handle_training_event(received(submitted(stopping)), ports)
    kube.set_status(
        *JOBS, NS, f"prep-{failing}",
        {"conditions": [{"type": "Failed", "status": "True", "reason": "PodFailurePolicy",
                         "message": "exit code 1"}]},
    )  # fmt: skip
    await watcher.poll_once()
    _, job_reports = sink.split()
    [failed] = [j for j in job_reports if j.entity_id == failing]
    assert failed.phase is Phase.FAILED
    assert failed.reason == "prepare-data: PodFailurePolicy: exit code 1"
    assert _suspended(kube, failing)["train"] is True  # the sequencer stopped
    _, job_reports = split(await handle_training_event(received(cancelled(stopping)), ports))
    assert set(_suspended(kube, stopping).values()) == {True}
    assert [j.phase for j in job_reports] == [Phase.CANCELLED]


async def test_multi_node_is_refused_by_the_builtin_backend(jobs: JobBackend) -> None:
    sink = RecordingSink()
    ports = make_ports(jobs, sink, NoCache(), jobs=True)
    job_id = new_job_id()
    with pytest.raises(MultiNodeRefused, match="needs Argo"):
        await handle_training_event(
            received(submitted(job_id, resources={"gpus": 8, "nodes": 2})), ports
        )
    _, job_reports = sink.split()
    assert [j.phase for j in job_reports] == [Phase.FAILED]


async def test_manifests_backend_writes_and_cancels(tmp_path: Path) -> None:
    sink = RecordingSink()
    backend = ManifestsBackend(tmp_path)
    ports = make_ports(backend, sink, NoCache())
    job_id = new_job_id()
    path = tmp_path / NS / f"train-{job_id}.yaml"
    pipelines, job_reports = split(await handle_training_event(received(submitted(job_id)), ports))
    assert path.is_file()
    mtime = path.stat().st_mtime_ns
    await handle_training_event(received(submitted(job_id)), ports)
    assert path.stat().st_mtime_ns == mtime  # identical content is not rewritten
    assert (pipelines[0].phase, pipelines[0].reason) == (Phase.PENDING, f"written to {path}")
    assert job_reports[0].phase is Phase.PENDING
    pipelines, job_reports = split(await handle_training_event(received(cancelled(job_id)), ports))
    [workflow] = load_documents(path.read_text(encoding="utf-8"))
    assert workflow["spec"]["shutdown"] == "Terminate"
    assert pipelines[0].phase is job_reports[0].phase is Phase.CANCELLED


async def test_manifests_backend_writes_and_cancels_the_builtin_jobs(tmp_path: Path) -> None:
    """WORKFLOW_ORCHESTRATION_ENABLED=false on the manifests backend: the stage Jobs (a List,
    which has no metadata of its own) go to the pipeline's file, and a cancel suspends them."""
    sink = RecordingSink()
    ports = make_ports(ManifestsBackend(tmp_path), sink, NoCache(), jobs=True)
    job_id = new_job_id()
    path = tmp_path / NS / f"train-{job_id}.yaml"
    pipelines, _ = split(await handle_training_event(received(submitted(job_id)), ports))
    assert (pipelines[0].phase, pipelines[0].reason) == (Phase.PENDING, f"written to {path}")
    stages = load_documents(path.read_text(encoding="utf-8"))
    assert [s["kind"] for s in stages] == ["Job"] * 4
    assert [s["spec"]["suspend"] for s in stages] == [False, True, True, True]
    pipelines, job_reports = split(await handle_training_event(received(cancelled(job_id)), ports))
    stages = load_documents(path.read_text(encoding="utf-8"))
    assert all(s["spec"]["suspend"] for s in stages)
    assert pipelines[0].phase is job_reports[0].phase is Phase.CANCELLED


async def test_a_replay_after_the_jobs_were_deleted_creates_nothing(
    kube: KubeApiServer, jobs: JobBackend
) -> None:
    """Issue 19, gap 3, on the built-in backend: the stage Jobs are gone after their TTL, the
    worker's memory of the outcome is not."""
    from kubernetes import client

    sink = RecordingSink()
    ledger = MemoryLedger()
    watcher = Watcher(jobs, sink, namespaces=[NS], interval_s=0.05, ledger=ledger)
    ports = make_ports(jobs, sink, watcher, jobs=True, ledger=ledger)
    job_id = new_job_id()
    await handle_training_event(received(submitted(job_id)), ports)
    await watcher.poll_once()
    for stage in ["prep", "train", "eval", "reg"]:
        kube.set_status(*JOBS, NS, f"{stage}-{job_id}", COMPLETE)
        await watcher.poll_once()
    outcome = sink.split()[1][-1]
    assert outcome.phase is Phase.SUCCEEDED
    batch = client.BatchV1Api(kube.api_client())
    for stage in ["prep", "train", "eval", "reg"]:
        batch.delete_namespaced_job(f"{stage}-{job_id}", NS)  # ttlSecondsAfterFinished
    await watcher.poll_once()
    assert sink.split()[0][-1].phase is Phase.DELETED
    _, replayed = split(await handle_training_event(received(submitted(job_id)), ports))
    assert [(j.phase, j.seq) for j in replayed] == [(Phase.SUCCEEDED, outcome.seq)]
    assert kube.list(*JOBS, NS) == []


async def test_manifests_backend_writes_nothing_for_a_job_cancelled_first(
    tmp_path: Path,
) -> None:
    """Issue 19, gap 4, on the manifests backend (a GitOps sync would run what is written)."""
    sink = RecordingSink()
    ports = make_ports(ManifestsBackend(tmp_path), sink, NoCache())
    job_id = new_job_id()
    await handle_training_event(received(cancelled(job_id)), ports)
    pipelines, job_reports = split(await handle_training_event(received(submitted(job_id)), ports))
    assert pipelines[0].phase is job_reports[0].phase is Phase.CANCELLED
    assert not (tmp_path / NS / f"train-{job_id}.yaml").exists()
