"""The Argo Server REST backend (``ARGO_SUBMIT_VIA=argo_server``) and the handlers on real
``httpx``, against the Argo Server test double (tests/support/argo_server.py) playing the
controller: idempotent submit, phases through the watcher, terminate, the bearer token, and
the error classification."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import pytest
from pydantic import SecretStr, ValidationError

from llmops_shared.events import Phase
from llmops_shared.streams import DependencyUnavailableError, NonRetryableError
from llmops_workflow.adapters.argo_server import ArgoServerBackend, authorization
from llmops_workflow.adapters.ledger import MemoryLedger
from llmops_workflow.app import build_backend
from llmops_workflow.config import ArgoSubmitVia, WorkflowSettings
from llmops_workflow.handlers import handle_training_event
from llmops_workflow.ports import WorkflowRejected, WorkflowUnavailable
from llmops_workflow.watcher import Watcher

from integration.workflow.helpers import (
    CORRELATION_ID,
    NS,
    RecordingSink,
    cancelled,
    make_ports,
    new_job_id,
    received,
    split,
    submitted,
)
from support.argo_schema import schema_errors
from support.argo_server import ArgoServerDouble
from support.streams import details_of

pytestmark = pytest.mark.integration

TOKEN = "v2:test-token"
WORKFLOWS_PATH = f"/api/v1/workflows/{NS}"

RUNNING = {
    "phase": "Running",
    "startedAt": "2025-01-27T10:00:00Z",
    "progress": "1/4",
    "nodes": {
        "a": {
            "id": "a",
            "name": "wf.prepare-data",
            "displayName": "prepare-data",
            "type": "Pod",
            "phase": "Succeeded",
            "startedAt": "2025-01-27T10:00:01Z",
            "finishedAt": "2025-01-27T10:05:00Z",
        },
        "b": {
            "id": "b",
            "name": "wf.train",
            "displayName": "train",
            "type": "Pod",
            "phase": "Running",
            "startedAt": "2025-01-27T10:05:10Z",
        },
    },
}


@pytest.fixture
def server() -> Iterator[ArgoServerDouble]:
    with ArgoServerDouble(token=TOKEN) as double:
        yield double


@pytest.fixture
async def backend(server: ArgoServerDouble) -> AsyncIterator[ArgoServerBackend]:
    argo = ArgoServerBackend(server.url, namespace=NS, token=SecretStr(TOKEN), request_timeout_s=5)
    yield argo
    await argo.aclose()


def _setup(backend: ArgoServerBackend):  # type: ignore[no-untyped-def]
    sink = RecordingSink()
    ledger = MemoryLedger()
    watcher = Watcher(backend, sink, namespaces=[NS], interval_s=0.05, ledger=ledger)
    return sink, watcher, make_ports(backend, sink, watcher, ledger=ledger)


async def test_submit_twice_is_one_workflow(
    server: ArgoServerDouble, backend: ArgoServerBackend
) -> None:
    sink, _, ports = _setup(backend)
    job_id = new_job_id()
    name = f"train-{job_id}"
    event = submitted(job_id)
    pipelines, jobs = split(await handle_training_event(received(event), ports))
    first = server.get(NS, name)
    assert first is not None
    again, _ = split(await handle_training_event(received(event), ports))
    assert len(server.list(NS)) == 1
    assert server.get(NS, name) == first  # untouched by the redelivery
    posts = [r for r in server.requests if r[0] == "POST" and r[1] == WORKFLOWS_PATH]
    assert len(posts) == 2  # the second answered 409 AlreadyExists, then was read back
    assert any(r[0] == "GET" and r[1] == f"{WORKFLOWS_PATH}/{name}" for r in server.requests)
    [pipeline], [job] = pipelines, jobs
    assert (pipeline.phase, job.phase) == (Phase.PENDING, Phase.PENDING)
    assert again[0].phase is Phase.PENDING
    assert details_of(pipeline)["backend"] == "argo"
    assert details_of(pipeline)["progress"] == {"done": 0, "total": 4}
    assert schema_errors(details_of(pipeline)["manifest"]) == []  # type: ignore[arg-type]
    assert first["metadata"]["labels"]["llm-ops.io/job-id"] == job_id
    assert first["metadata"]["annotations"]["llm-ops.io/correlation-id"] == CORRELATION_ID
    assert sink.envelopes == []


async def test_redelivery_of_a_finished_workflow_reports_what_it_observes(
    server: ArgoServerDouble, backend: ArgoServerBackend
) -> None:
    _, _, ports = _setup(backend)
    job_id = new_job_id()
    event = submitted(job_id)
    await handle_training_event(received(event), ports)
    server.set_status(NS, f"train-{job_id}", {**RUNNING, "phase": "Succeeded"})
    pipelines, jobs = split(await handle_training_event(received(event), ports))
    assert [p.phase for p in pipelines] == [Phase.SUCCEEDED]
    assert [j.phase for j in jobs] == [Phase.SUCCEEDED]
    assert len(server.list(NS)) == 1


async def test_bearer_token_is_sent_on_every_request(
    server: ArgoServerDouble, backend: ArgoServerBackend
) -> None:
    _, watcher, ports = _setup(backend)
    await handle_training_event(received(submitted(new_job_id())), ports)
    await watcher.poll_once()
    await backend.ping()
    assert server.requests
    assert {r[2].get("authorization") for r in server.requests} == {f"Bearer {TOKEN}"}
    # the argo CLI's convention (ARGO_TOKEN="Bearer ...") is accepted as is
    assert authorization(SecretStr(f"Bearer {TOKEN}")) == {"Authorization": f"Bearer {TOKEN}"}
    assert authorization(None) == {}


async def test_a_wrong_token_is_an_outage_not_a_rejection(server: ArgoServerDouble) -> None:
    wrong = ArgoServerBackend(server.url, namespace=NS, token=SecretStr("nope"))
    try:
        with pytest.raises(WorkflowUnavailable, match="token not valid"):
            await wrong.ping()
        _, _, ports = _setup(wrong)
        with pytest.raises(WorkflowUnavailable):
            await handle_training_event(received(submitted(new_job_id())), ports)
    finally:
        await wrong.aclose()
    assert server.list(NS) == []


async def test_watcher_follows_running_to_succeeded(
    server: ArgoServerDouble, backend: ArgoServerBackend
) -> None:
    sink, watcher, ports = _setup(backend)
    job_id = new_job_id()
    name = f"train-{job_id}"
    await handle_training_event(received(submitted(job_id)), ports)
    assert await watcher.poll_once() == 2  # first sight: Pending (pipeline + job)
    assert await watcher.poll_once() == 0
    server.set_status(NS, name, RUNNING)
    assert await watcher.poll_once() == 2
    pipelines, jobs = sink.split()
    assert pipelines[-1].phase is Phase.RUNNING
    assert details_of(pipelines[-1])["progress"] == {"done": 1, "total": 4}
    assert [n["name"] for n in details_of(pipelines[-1])["nodes"]] == ["prepare-data", "train"]
    assert details_of(pipelines[-1])["manifest"]["kind"] == "Workflow"
    assert jobs[-1].phase is Phase.RUNNING
    assert received(sink.envelopes[-1]).envelope.correlationid == CORRELATION_ID
    done = {**RUNNING, "phase": "Succeeded", "progress": "4/4", "finishedAt": "2025-01-27T12:00Z"}
    server.set_status(NS, name, done)
    assert await watcher.poll_once() == 2
    pipelines, jobs = sink.split()
    assert pipelines[-1].phase is Phase.SUCCEEDED
    assert details_of(pipelines[-1])["progress"] == {"done": 4, "total": 4}
    assert [j.phase for j in jobs] == [Phase.PENDING, Phase.RUNNING, Phase.SUCCEEDED]
    listing = [r[1] for r in server.requests if r[0] == "GET" and r[1].startswith(WORKFLOWS_PATH)]
    assert all("listOptions.labelSelector=" in path for path in listing)


async def test_observe_skips_unmanaged_workflows_and_reports_deletion(
    server: ArgoServerDouble, backend: ArgoServerBackend
) -> None:
    sink, watcher, ports = _setup(backend)
    job_id = new_job_id()
    await handle_training_event(received(submitted(job_id)), ports)
    other = {"metadata": {"name": "someone-else", "namespace": NS}, "spec": {}}
    await backend._client.post(WORKFLOWS_PATH, json={"workflow": other})
    assert [live.name for live in await backend.observe([NS, "empty-ns"])] == [f"train-{job_id}"]
    await watcher.poll_once()
    server.delete(NS, f"train-{job_id}")
    await watcher.poll_once()
    pipelines, jobs = sink.split()
    assert pipelines[-1].phase is Phase.DELETED
    assert jobs[-1].phase is Phase.FAILED


async def test_cancel_terminates_and_reports_cancelled(
    server: ArgoServerDouble, backend: ArgoServerBackend
) -> None:
    sink, watcher, ports = _setup(backend)
    job_id = new_job_id()
    name = f"train-{job_id}"
    await handle_training_event(received(submitted(job_id)), ports)
    server.set_status(NS, name, RUNNING)
    await watcher.poll_once()
    pipelines, jobs = split(await handle_training_event(received(cancelled(job_id)), ports))
    assert server.get(NS, name)["spec"]["shutdown"] == "Terminate"  # type: ignore[index]
    puts = [(method, path) for method, path, _ in server.requests if method == "PUT"]
    assert puts == [("PUT", f"{WORKFLOWS_PATH}/{name}/terminate")]
    assert [p.phase for p in pipelines] == [Phase.RUNNING]
    assert pipelines[0].reason == "termination requested"
    assert jobs == []
    server.set_status(
        NS, name, {**RUNNING, "phase": "Failed", "message": "Stopped with strategy 'Terminate'"}
    )
    await watcher.poll_once()
    pipelines, jobs = sink.split()
    assert pipelines[-1].phase is Phase.CANCELLED
    assert jobs[-1].phase is Phase.CANCELLED


async def test_cancel_of_a_finished_or_missing_workflow(
    server: ArgoServerDouble, backend: ArgoServerBackend
) -> None:
    _, _, ports = _setup(backend)
    pipelines, jobs = split(await handle_training_event(received(cancelled(new_job_id())), ports))
    assert [p.phase for p in pipelines] == [Phase.CANCELLED]
    assert [j.phase for j in jobs] == [Phase.CANCELLED]
    job_id = new_job_id()
    name = f"train-{job_id}"
    await handle_training_event(received(submitted(job_id)), ports)
    server.set_status(NS, name, {**RUNNING, "phase": "Succeeded"})
    # Argo Server refuses to shut down a completed workflow (500): not asked at all
    pipelines, _ = split(await handle_training_event(received(cancelled(job_id)), ports))
    assert [p.phase for p in pipelines] == [Phase.SUCCEEDED]
    assert not any(r[0] == "PUT" for r in server.requests)
    # finished between the read and the terminate: the refusal is read as "finished"
    server.set_status(NS, name, RUNNING)
    server.fail_next(
        "PUT", "/terminate", 500, f'cannot shutdown a completed workflow: workflow: "{name}"'
    )
    assert (await backend.terminate(NS, name)).phase is Phase.RUNNING  # type: ignore[union-attr]


async def test_server_errors_are_outages_and_4xx_are_rejections(
    server: ArgoServerDouble, backend: ArgoServerBackend
) -> None:
    sink, watcher, ports = _setup(backend)
    job_id = new_job_id()
    server.fail_next("POST", WORKFLOWS_PATH, 500, "etcdserver: request timed out")
    with pytest.raises(DependencyUnavailableError, match="etcdserver"):
        await handle_training_event(received(submitted(job_id)), ports)
    server.fail_next("POST", WORKFLOWS_PATH, 429, "too many requests")
    with pytest.raises(WorkflowUnavailable):
        await handle_training_event(received(submitted(job_id)), ports)
    server.fail_next("POST", WORKFLOWS_PATH, 403, "forbidden")
    with pytest.raises(WorkflowUnavailable):
        await handle_training_event(received(submitted(job_id)), ports)
    assert sink.envelopes == []  # an outage reports nothing: the entry just waits
    server.fail_next("POST", WORKFLOWS_PATH, 400, "spec.templates[0].name is required")
    with pytest.raises(WorkflowRejected, match=r"rejected .*spec\.templates\[0\]\.name"):
        await handle_training_event(received(submitted(job_id)), ports)
    assert issubclass(WorkflowRejected, NonRetryableError)
    pipelines, jobs = sink.split()
    assert [p.phase for p in pipelines] == [Phase.FAILED]
    assert [j.phase for j in jobs] == [Phase.FAILED]
    assert "spec.templates[0].name is required" in (jobs[0].reason or "")
    assert server.list(NS) == []
    server.fail_next("GET", WORKFLOWS_PATH, 503)
    with pytest.raises(WorkflowUnavailable):
        await watcher.poll_once()
    server.fail_next("GET", WORKFLOWS_PATH, 200, body="<!doctype html><title>Argo</title>")
    with pytest.raises(WorkflowUnavailable, match="ARGO_SERVER_URL"):
        await backend.ping()


async def test_unreachable_server_is_an_outage(server: ArgoServerDouble) -> None:
    url = server.url
    server.stop()  # a fresh client: a kept-alive connection would outlive the listener
    gone = ArgoServerBackend(url, namespace=NS, request_timeout_s=2)
    try:
        with pytest.raises(WorkflowUnavailable, match="unreachable"):
            await gone.ping()
    finally:
        await gone.aclose()


def test_settings_select_the_argo_server_backend(server: ArgoServerDouble) -> None:
    settings = WorkflowSettings(
        _env_file=None,
        workflow_backend="argo",
        argo_submit_via="argo_server",
        argo_server_url=f"{server.url}/",
        argo_token=SecretStr(TOKEN),
        environment="dev",
    )
    assert settings.argo_submit_via is ArgoSubmitVia.ARGO_SERVER
    assert settings.argo_server_url == server.url
    assert "test-token" not in repr(settings)
    assert isinstance(build_backend(settings), ArgoServerBackend)
    assert WorkflowSettings(_env_file=None).argo_submit_via is ArgoSubmitVia.KUBERNETES
    with pytest.raises(ValidationError, match="needs ARGO_SERVER_URL"):
        WorkflowSettings(
            _env_file=None,
            workflow_backend="argo",
            argo_submit_via="argo_server",
        )
    with pytest.raises(ValidationError, match="http"):
        WorkflowSettings(_env_file=None, argo_server_url="argo-server:2746")
