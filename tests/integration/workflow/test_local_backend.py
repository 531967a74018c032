"""The local backend: the rendered pipeline's stages as real processes on this machine.

The stages are the fake trainer's processes (fake_trainer.py) so that order, arguments,
environment, retries, cancel and restarts can be driven on demand; the real trainer runs the
same contract in tests/integration/trainer and in the end-to-end loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import os
import shutil
import signal
import time
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import pytest
from mlflow.tracking import MlflowClient

from llmops_shared.events import Phase
from llmops_shared.streams import NonRetryableError
from llmops_workflow.adapters.ledger import MemoryLedger
from llmops_workflow.adapters.local import LocalBackend
from llmops_workflow.handlers import handle_training_event
from llmops_workflow.local import process
from llmops_workflow.local.runner import LocalRunner
from llmops_workflow.local.state import StateStore
from llmops_workflow.ports import WorkflowPorts, WorkflowUnavailable
from llmops_workflow.render.request import RenderOptions
from llmops_workflow.watcher import Watcher

from integration.workflow.fake_trainer import FakeTrainer, make_fake_trainer
from integration.workflow.helpers import (
    NS,
    RecordingSink,
    cancelled,
    new_job_id,
    received,
    split,
    submitted,
)
from support.mlflow_server import MlflowServer
from support.streams import details_of

pytestmark = pytest.mark.integration
T = TypeVar("T")

OPTIONS = RenderOptions(
    gpu_available=False,
    mlflow_tracking_uri="",  # no MLflow: the wrapper passes an empty run id
    retry_backoff="0s",
    retry_limit=2,
)


@pytest.fixture
def fake(tmp_path: Path) -> FakeTrainer:
    return make_fake_trainer(tmp_path / "fake")


@dataclass
class Local:
    """A local backend with its runner and watcher running, the handler's ports, the sink."""

    backend: LocalBackend
    runner: LocalRunner
    watcher: Watcher
    sink: RecordingSink
    ports: WorkflowPorts
    lines: list[tuple[str, str, str]]
    workdir: Path
    ledger: MemoryLedger

    async def submit(self, job_id: str, **spec_changes: Any) -> list[str]:
        """Handle the submission; the job phases the handler reports."""
        event = received(submitted(job_id, **spec_changes))
        _, jobs = split(await handle_training_event(event, self.ports))
        return [j.phase.value for j in jobs]

    def state(self, job_id: str) -> Any:
        return next(s for s in self.runner.states() if s.name == f"train-{job_id}")

    def job_phases(self, job_id: str) -> list[str]:
        _, jobs = self.sink.split()
        return [j.phase.value for j in jobs if j.entity_id == job_id]


def _runner(fake: FakeTrainer, workdir: Path, lines: list[tuple[str, str, str]]) -> LocalRunner:
    return LocalRunner(
        StateStore(workdir),
        python=fake.python,
        output=lambda pipeline, stage, line: lines.append((pipeline, stage, line)),
        environ=fake.environ(),
        passthrough=fake.passthrough,
        stop_grace_s=2,
        tick_s=0.05,
    )


@contextlib.asynccontextmanager
async def running(
    fake: FakeTrainer,
    workdir: Path,
    *,
    runner: LocalRunner | None = None,
    options: RenderOptions = OPTIONS,
    ledger: MemoryLedger | None = None,
) -> AsyncIterator[Local]:
    """A worker on the local backend; ``ledger``: what a previous one remembered (Redis in
    the worker: it outlives the process)."""
    ledger = ledger if ledger is not None else MemoryLedger()
    lines: list[tuple[str, str, str]] = []
    runner = runner or _runner(fake, workdir, lines)
    backend = LocalBackend(runner, workdir=workdir, python=fake.python)
    sink = RecordingSink()
    watcher = Watcher(backend, sink, namespaces=[NS], interval_s=0.05, ledger=ledger)
    ports = WorkflowPorts(
        backend, options, jobs=False, namespace=NS, sink=sink, cache=watcher, ledger=ledger
    )
    stop = asyncio.Event()
    tasks = [asyncio.create_task(runner.run(stop)), asyncio.create_task(watcher.run(stop))]
    try:
        yield Local(backend, runner, watcher, sink, ports, lines, workdir, ledger)
    finally:
        stop.set()
        await asyncio.gather(*tasks)


async def eventually(probe: Callable[[], T | None], *, timeout_s: float = 30, what: str) -> T:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if result := probe():
            return result
        await asyncio.sleep(0.05)
    raise AssertionError(f"{what} not within {timeout_s}s")


async def test_the_stages_run_in_order_as_the_pod_would_and_the_job_succeeds(
    fake: FakeTrainer, tmp_path: Path, mlflow_server: MlflowServer
) -> None:
    job_id = new_job_id()
    client = MlflowClient(mlflow_server.url)
    experiment = client.create_experiment(f"local-backend-{job_id}")
    run = client.create_run(experiment, tags={"llmops.job_id": job_id})  # as tracking does
    options = dataclasses.replace(OPTIONS, mlflow_tracking_uri=mlflow_server.url)
    async with running(fake, tmp_path / "work", options=options) as local:
        assert await local.submit(job_id) == ["Pending"]
        await eventually(lambda: "Succeeded" in local.job_phases(job_id), what="success")
        state = local.state(job_id)

    calls = fake.calls()
    assert [c["stage"] for c in calls] == ["prepare_data", "train", "evaluate", "register"]
    assert calls[1]["tool"] == "torchrun"  # the rendered launcher, found on the PATH
    outputs = str(local.workdir / NS / f"train-{job_id}" / "outputs")
    for call in calls:
        env = call["env"]
        assert env["LLMOPS_JOB_ID"] == job_id
        assert env["LLMOPS_OUTPUTS_DIR"] == outputs
        assert env["MLFLOW_TRACKING_URI"] == mlflow_server.url
        assert env["PATH"].split(os.pathsep)[0] == str(Path(fake.python).parent)
        assert env["API_KEYS"] is None  # the platform's secrets are withheld
        assert env["DATABASE_URL"] is None
        # prepare-data's wrapper found the run by its tag; later stages got it as a parameter
        assert env["MLFLOW_RUN_ID"] == run.info.run_id
    assert "--dataset-name=enterprise-instruction" in calls[0]["argv"]
    assert "--method=lora" in calls[1]["argv"]
    assert (Path(outputs) / "mlflow-run-id").read_text() == run.info.run_id

    pipelines, _ = local.sink.split()
    running_reports = [p for p in pipelines if p.phase == Phase.RUNNING]
    done = [details_of(p)["progress"]["done"] for p in running_reports]
    assert done == sorted(done)  # stage by stage
    assert done[0] < 4
    final = pipelines[-1]
    assert final.phase == Phase.SUCCEEDED
    assert details_of(final)["backend"] == "local"
    assert details_of(final)["registered_model"] == {
        "name": "sft-model",
        "version": "3",
        "run_id": "run-1",
        "source": "mlflow-artifacts:/1/run-1/artifacts/model",
        "storage_uri": "/data/mlflow/artifacts/1/run-1/artifacts/model",
    }
    assert [n["phase"] for n in details_of(final)["nodes"]] == ["Succeeded"] * 4  # type: ignore[union-attr,index]
    assert local.job_phases(job_id) == ["Running", "Succeeded"]
    assert state.stages[0].attempt == 1
    assert (f"train-{job_id}", "train", "train: working") in local.lines  # streamed, prefixed


async def test_a_failing_stage_fails_the_job_with_its_name_and_log_tail_and_is_not_retried(
    fake: FakeTrainer, tmp_path: Path
) -> None:
    fake.plan(train={"exit": 2, "lines": ["loading tiny model", "error: qlora needs a CUDA GPU"]})
    job_id = new_job_id()
    async with running(fake, tmp_path / "work") as local:
        await local.submit(job_id)
        await eventually(lambda: "Failed" in local.job_phases(job_id), what="failure")
        state = local.state(job_id)

    _, jobs = local.sink.split()
    reason = jobs[-1].reason or ""
    assert reason.startswith("train failed (exit code 2):")
    assert "error: qlora needs a CUDA GPU" in reason
    assert [s.phase for s in state.stages] == ["Succeeded", "Failed", "Omitted", "Omitted"]
    assert [c["stage"] for c in fake.calls()] == ["prepare_data", "train"]  # no retry


async def test_a_stage_killed_from_outside_is_retried_under_the_retry_strategy(
    fake: FakeTrainer, tmp_path: Path
) -> None:
    fake.plan(train={"sleep_first": 60})
    job_id = new_job_id()
    async with running(fake, tmp_path / "work") as local:
        await local.submit(job_id)
        await fake.wait_for_call("train")
        stage = await eventually(
            lambda: (s := local.state(job_id).stage("train")).pid and s, what="train running"
        )
        os.killpg(stage.pid, signal.SIGKILL)  # the node was lost: no exit code at all
        await eventually(lambda: "Succeeded" in local.job_phases(job_id), what="success")
        state = local.state(job_id)

    train = state.stage("train")
    assert (train.attempt, train.retries) == (2, 1)
    assert [c["stage"] for c in fake.calls()].count("train") == 2
    pipelines, _ = local.sink.split()
    messages = [n["message"] for p in pipelines for n in details_of(p)["nodes"]]  # type: ignore[union-attr,index]
    assert any(m and "killed from outside; retry 1/2" in m for m in messages)


async def test_retries_used_up_fail_the_job(fake: FakeTrainer, tmp_path: Path) -> None:
    fake.plan(evaluate={"sleep": 60})
    job_id = new_job_id()
    async with running(fake, tmp_path / "work") as local:
        await local.submit(job_id)
        for attempt in (1, 2, 3):  # the first attempt and both retries are lost
            stage = await eventually(
                lambda a=attempt: (
                    (s := local.state(job_id).stage("evaluate")).attempt == a and s.pid and s
                ),
                what=f"evaluate attempt {attempt}",
            )
            os.killpg(stage.pid, signal.SIGKILL)
        await eventually(lambda: "Failed" in local.job_phases(job_id), what="failure")
    _, jobs = local.sink.split()
    assert "evaluate: killed from outside 3 times" in (jobs[-1].reason or "")


async def test_cancel_stops_the_running_stage_and_the_job_is_cancelled(
    fake: FakeTrainer, tmp_path: Path
) -> None:
    fake.plan(train={"sleep": 60})
    job_id = new_job_id()
    async with running(fake, tmp_path / "work") as local:
        await local.submit(job_id)
        pid = (await fake.wait_for_call("train"))["pid"]
        await handle_training_event(received(cancelled(job_id)), local.ports)
        await eventually(lambda: "Cancelled" in local.job_phases(job_id), what="cancelled")
        state = local.state(job_id)

    assert not process.is_running(pid, None)  # the trainer is gone, not left training
    assert state.phase == "Cancelled"
    assert [s.phase for s in state.stages] == ["Succeeded", "Failed", "Omitted", "Omitted"]
    assert "register" not in [c["stage"] for c in fake.calls()]


async def test_a_redelivered_submission_runs_nothing_again(
    fake: FakeTrainer, tmp_path: Path
) -> None:
    job_id = new_job_id()
    async with running(fake, tmp_path / "work") as local:
        await local.submit(job_id)
        await eventually(lambda: "Succeeded" in local.job_phases(job_id), what="success")
        await local.submit(job_id)  # at-least-once delivery: the same event again
        await asyncio.sleep(0.3)
    assert [c["stage"] for c in fake.calls()].count("train") == 1
    assert local.job_phases(job_id)[-1] == "Succeeded"


async def test_one_pipeline_runs_at_a_time_the_next_waits_pending(
    fake: FakeTrainer, tmp_path: Path
) -> None:
    fake.plan(train={"sleep": 1})
    first, second = new_job_id(), new_job_id()
    async with running(fake, tmp_path / "work") as local:
        await local.submit(first)
        await eventually(lambda: local.state(first).phase == "Running", what="first running")
        await local.submit(second)
        await asyncio.sleep(0.3)
        waiting = local.state(second)
        assert waiting.phase == "Pending"
        assert waiting.reason == "waiting for a free slot (1 running locally)"
        await eventually(lambda: "Succeeded" in local.job_phases(second), what="second done")
    starts = [c["stage"] + ":" + c["env"]["LLMOPS_JOB_ID"] for c in fake.calls()]
    assert starts.index(f"register:{first}") < starts.index(f"prepare_data:{second}")


async def test_a_restarted_worker_adopts_a_running_stage(fake: FakeTrainer, tmp_path: Path) -> None:
    """The worker died (or restarted in process) while a stage ran: the stage went on, and the
    next runner finds it, waits for it and finishes the pipeline."""
    fake.plan(train={"sleep": 2})
    job_id = new_job_id()
    workdir = tmp_path / "work"
    async with running(fake, workdir) as local:
        await local.submit(job_id)
        await fake.wait_for_call("train")
    # the first runner is gone without stopping anything; a new one starts on the same records
    async with running(fake, workdir) as restarted:
        assert restarted.state(job_id).stage("train").phase == "Running"
        await eventually(lambda: "Succeeded" in restarted.job_phases(job_id), what="success")
    assert [c["stage"] for c in fake.calls()].count("train") == 1  # adopted, not rerun


async def test_a_stage_that_ended_while_no_worker_watched_is_judged_by_its_exit_code(
    fake: FakeTrainer, tmp_path: Path
) -> None:
    fake.plan(train={"sleep": 0.5, "exit": 3})
    job_id = new_job_id()
    workdir = tmp_path / "work"
    async with running(fake, workdir) as local:
        await local.submit(job_id)
        await fake.wait_for_call("train")
    await asyncio.sleep(1.5)  # train exits while no runner is alive
    async with running(fake, workdir) as restarted:
        await eventually(lambda: "Failed" in restarted.job_phases(job_id), what="failure")
    _, jobs = restarted.sink.split()
    assert (jobs[-1].reason or "").startswith("train failed (exit code 3)")


async def test_a_worker_stop_pauses_the_stage_and_the_next_start_reruns_it(
    fake: FakeTrainer, tmp_path: Path
) -> None:
    fake.plan(train={"sleep_first": 60, "sleep": 0})
    job_id = new_job_id()
    workdir = tmp_path / "work"
    async with running(fake, workdir) as local:
        await local.submit(job_id)
        pid = (await fake.wait_for_call("train"))["pid"]
    # the worker's final stop, as app.serve does it: the loop has ended, then the stages stop
    await local.runner.shutdown()
    assert not process.is_running(pid, None)
    assert local.state(job_id).stage("train").interrupted
    assert [c["stage"] for c in fake.calls()].count("train") == 1  # nothing reran meanwhile
    async with running(fake, workdir) as restarted:
        await eventually(lambda: "Succeeded" in restarted.job_phases(job_id), what="success")
        train = restarted.state(job_id).stage("train")
    assert (train.attempt, train.retries) == (2, 0)  # rerun by the next start, not a retry
    assert [c["attempt"] for c in fake.calls() if c["stage"] == "train"] == [1, 2]


async def test_a_trainer_whose_wrapper_was_killed_is_stopped_before_the_retry(
    fake: FakeTrainer, tmp_path: Path
) -> None:
    """Someone killed only the wrapper: the trainer it started must not go on beside the
    retry (both would write the same checkpoints)."""
    fake.plan(train={"sleep_first": 60})
    job_id = new_job_id()
    async with running(fake, tmp_path / "work") as local:
        await local.submit(job_id)
        first = await fake.wait_for_call("train")
        wrapper = local.state(job_id).stage("train").pid
        os.kill(wrapper, signal.SIGKILL)  # the wrapper only, not its group
        await eventually(lambda: "Succeeded" in local.job_phases(job_id), what="success")
    assert not process.is_running(first["pid"], first["start"])  # the orphan was stopped
    assert local.state(job_id).stage("train").attempt == 2


async def test_a_stage_that_cannot_start_fails_the_job_with_why(
    fake: FakeTrainer, tmp_path: Path
) -> None:
    job_id = new_job_id()
    lines: list[tuple[str, str, str]] = []
    runner = _runner(fake, tmp_path / "work", lines)
    async with running(fake, tmp_path / "work", runner=runner) as local:
        stage_dir = tmp_path / "work" / NS / f"train-{job_id}" / "work"
        await local.submit(job_id)
        # (the runner's first step may already have started prepare-data: make train fail)
        await eventually(lambda: local.state(job_id).phase == "Running", what="running")
        (stage_dir / "train").mkdir(parents=True, exist_ok=True)
        (stage_dir / "train").rmdir()
        (stage_dir / "train").write_text("a file where the stage's directory goes")
        await eventually(lambda: "Failed" in local.job_phases(job_id), what="failure")
    _, jobs = local.sink.split()
    assert (jobs[-1].reason or "").startswith("train: cannot start:")
    assert "train" not in [c["stage"] for c in fake.calls()]


async def test_two_runners_never_share_a_work_directory(fake: FakeTrainer, tmp_path: Path) -> None:
    lines: list[tuple[str, str, str]] = []
    first = _runner(fake, tmp_path / "work", lines)
    first.load()
    second = _runner(fake, tmp_path / "work", lines)
    with pytest.raises(WorkflowUnavailable, match="another workflow worker runs the pipelines"):
        second.load()
    first.release()
    second.load()  # taken over once released (an in-process restart)
    second.release()


async def test_an_unreadable_model_version_record_is_said_not_dropped_silently(
    fake: FakeTrainer, tmp_path: Path
) -> None:
    fake.plan(register={"model_version": '{"name": "m", "storage_uri": "/a path/with space"}'})
    job_id = new_job_id()
    async with running(fake, tmp_path / "work") as local:
        await local.submit(job_id)
        await eventually(lambda: "Succeeded" in local.job_phases(job_id), what="success")
    pipelines, _ = local.sink.split()
    assert details_of(pipelines[-1])["registered_model"] is None
    assert "model-version.json is unreadable" in (pipelines[-1].reason or "")


async def test_a_multi_node_job_is_refused_and_reported_failed(
    fake: FakeTrainer, tmp_path: Path
) -> None:
    job_id = new_job_id()
    async with running(fake, tmp_path / "work") as local:
        with pytest.raises(NonRetryableError, match="the local backend runs one"):
            await local.submit(job_id, resources={"gpus": 1, "gpu_type": None, "nodes": 2})
    assert local.job_phases(job_id) == ["Failed"]
    assert fake.calls() == []


async def test_the_built_in_job_format_runs_too(fake: FakeTrainer, tmp_path: Path) -> None:
    job_id = new_job_id()
    async with running(fake, tmp_path / "work") as local:
        local.ports = dataclasses.replace(local.ports, options=OPTIONS, jobs=True)
        await local.submit(job_id)
        await eventually(lambda: "Succeeded" in local.job_phases(job_id), what="success")
    assert [c["stage"] for c in fake.calls()] == ["prepare_data", "train", "evaluate", "register"]


async def test_a_finished_pipeline_is_forgotten_after_its_ttl(
    fake: FakeTrainer, tmp_path: Path
) -> None:
    lines: list[tuple[str, str, str]] = []
    runner = LocalRunner(
        StateStore(tmp_path / "work"),
        python=fake.python,
        output=lambda *line: lines.append(line),
        environ=fake.environ(),
        passthrough=fake.passthrough,
        ttl_success_s=0,
        tick_s=0.05,
    )
    job_id = new_job_id()
    async with running(fake, tmp_path / "work", runner=runner) as local:
        await local.submit(job_id)
        await eventually(
            lambda: any(
                p.phase == Phase.DELETED and p.entity_id == f"train-{job_id}"
                for p in local.sink.split()[0]
            ),
            what="the pipeline reported Deleted",
        )
    assert local.job_phases(job_id)[-1] == "Succeeded"  # a finished job stays finished
    assert not (tmp_path / "work" / NS / f"train-{job_id}").exists()


@pytest.fixture(autouse=True)
def _no_stray_stages(fake: FakeTrainer) -> Iterator[None]:
    """Whatever a test leaves running is killed (a failed assertion must not leak trainers)."""
    yield
    for call in fake.calls():
        if process.is_running(call["pid"], call["start"]):  # still that very process
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(call["pgid"], signal.SIGKILL)


async def test_a_replay_after_the_ttl_does_not_train_again(
    fake: FakeTrainer, tmp_path: Path
) -> None:
    """Issue 19, gap 3, on the local backend: its record on disk is gone after the TTL, the
    worker's memory of the outcome is not."""
    lines: list[tuple[str, str, str]] = []
    runner = LocalRunner(
        StateStore(tmp_path / "work"),
        python=fake.python,
        output=lambda *line: lines.append(line),
        environ=fake.environ(),
        passthrough=fake.passthrough,
        ttl_success_s=0,
        tick_s=0.05,
    )
    job_id = new_job_id()
    async with running(fake, tmp_path / "work", runner=runner) as local:
        await local.submit(job_id)
        await eventually(
            lambda: (
                not (tmp_path / "work" / NS / f"train-{job_id}").exists()
                and "Succeeded" in local.job_phases(job_id)
            ),
            what="the finished pipeline forgotten by its TTL",
        )
        outcome = local.sink.split()[1][-1]
        replayed = split(await handle_training_event(received(submitted(job_id)), local.ports))[1]
        await asyncio.sleep(0.3)  # a few runner ticks
    assert [(j.phase, j.seq) for j in replayed] == [(Phase.SUCCEEDED, outcome.seq)]
    assert [c["stage"] for c in fake.calls()].count("train") == 1
    assert not (tmp_path / "work" / NS / f"train-{job_id}").exists()


async def test_a_pipeline_deleted_while_the_worker_was_down_fails_its_job(
    fake: FakeTrainer, tmp_path: Path
) -> None:
    """Issue 19, gap 2, on the local backend: the pipeline's directory is removed by hand
    while no worker runs; the next one reports it gone and its job Failed."""
    fake.plan(train={"sleep": 60})
    job_id = new_job_id()
    workdir = tmp_path / "work"
    async with running(fake, workdir) as local:
        await local.submit(job_id)
        call = await fake.wait_for_call("train")
        await eventually(lambda: "Running" in local.job_phases(job_id), what="running")
    os.killpg(call["pgid"], signal.SIGKILL)
    shutil.rmtree(workdir / NS / f"train-{job_id}")
    async with running(fake, workdir, ledger=local.ledger) as restarted:
        await eventually(lambda: "Failed" in restarted.job_phases(job_id), what="failed")
    pipelines, jobs = restarted.sink.split()
    assert [p.phase for p in pipelines] == [Phase.DELETED]
    assert jobs[-1].reason == (
        f"the workflow train-{job_id} was deleted while the workflow worker was down"
    )


async def test_a_cancel_before_its_submission_runs_nothing(
    fake: FakeTrainer, tmp_path: Path
) -> None:
    """Issue 19, gap 4, on the local backend."""
    job_id = new_job_id()
    async with running(fake, tmp_path / "work") as local:
        await handle_training_event(received(cancelled(job_id)), local.ports)
        assert await local.submit(job_id) == ["Cancelled"]
        await asyncio.sleep(0.3)  # a few runner ticks
    assert fake.calls() == []
    assert not (tmp_path / "work" / NS / f"train-{job_id}").exists()
    assert local.job_phases(job_id) == []  # the watcher never saw a pipeline
