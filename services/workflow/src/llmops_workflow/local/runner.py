"""The local pipeline runner: the stages of each pipeline as processes, in dependency order.

A supervisor loop (a critical background task of the workflow worker) drives every pipeline
record (:mod:`.state`) a step at a time, every ``tick_s``:

* a Pending pipeline starts when fewer than ``max_running`` run (a laptop trains one job at a
  time by default; the others wait, reported Pending with why);
* the next stage starts once the stages it depends on succeeded, with the argv and environment
  the Argo pod would get (parameters such as the MLflow run id filled from the files earlier
  stages wrote), the worker's Python environment first on ``PATH``;
* a stage that ends by itself decides: exit 0 succeeded, anything else fails the pipeline with
  the stage's name, its exit and the tail of its log (a trainer error is never retried, as
  Argo's ``OnError``); a stage killed from outside (no exit code) is an infrastructure error,
  retried under the template's ``retryStrategy`` (limit, backoff, factor, cap), and the trainer
  resumes from its last checkpoint;
* a cancel stops the running stage's process group (SIGTERM, then SIGKILL after a grace).

The worker's final shutdown stops running stages the same way but marks them *interrupted*:
the next start reruns them without counting a retry (stopping ``llmops up`` pauses training;
starting it again resumes from the last checkpoint). A worker that dies, or restarts in
process, leaves them running: the next runner adopts them from their records. So a pipeline is
never left Running forever: it runs, is adopted, or is judged by its exit file.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import subprocess
import time
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path

from llmops_shared.logging import get_logger
from llmops_workflow.local import process
from llmops_workflow.local.logs import LogTail, StageOutput
from llmops_workflow.local.plan import LocalPlan, LocalStage, fill_inputs, local_plan, task_output
from llmops_workflow.local.state import (
    PipelinePhase,
    PipelineState,
    StageState,
    StateStore,
    now_iso,
)
from llmops_workflow.ports import Manifest, WorkflowRejected
from llmops_workflow.render import names

Key = tuple[str, str]  # (namespace, name)

STAGE_ENV_WITHHELD = frozenset(
    {
        "API_KEYS",
        "DATABASE_URL",
        "REDIS_URL",
        "MLFLOW_WEBHOOK_SECRET",
        "MLFLOW_WEBHOOK_SECRET_ENCRYPTION_KEY",
        "GITHUB_TOKEN",
        "GITHUB_APP_PRIVATE_KEY",
        "ARGO_TOKEN",
    }
)
"""The platform's own secrets: a stage inherits the worker's environment (PATH, HOME, HF_*,
AWS_* for its data) but not these, as a pod would not have them either."""

_log = get_logger(__name__)


class LocalRunner:
    """Runs and remembers the pipelines of one worker (see the module docstring)."""

    def __init__(
        self,
        store: StateStore,
        *,
        python: str,
        output: StageOutput,
        environ: Mapping[str, str],
        max_running: int = 1,
        stop_grace_s: float = 10.0,
        ttl_success_s: float = 24 * 3600,
        ttl_failure_s: float = 7 * 24 * 3600,
        tick_s: float = 0.5,
    ) -> None:
        self._store = store
        self._python = python
        self._output = output
        self._environ = {k: v for k, v in environ.items() if k not in STAGE_ENV_WITHHELD}
        self._max_running = max_running
        self._grace = stop_grace_s
        self._ttl_success = ttl_success_s
        self._ttl_failure = ttl_failure_s
        self._tick = tick_s
        self._states: dict[Key, PipelineState] = {}
        self._plans: dict[Key, LocalPlan] = {}
        self._children: dict[tuple[Key, str], subprocess.Popen[bytes]] = {}
        self._tails: dict[tuple[Key, str], LogTail] = {}
        self._kill_sent: dict[tuple[Key, str], float] = {}
        self._wake = asyncio.Event()
        self._loaded = False

    # ------------------------------------------------------------------ what the backend calls

    def load(self) -> None:
        """Read every record once (at start): running stages are adopted by the next step."""
        if self._loaded:
            return
        for state in self._store.load_all():
            key = (state.namespace, state.name)
            self._states[key] = state
            running = [s.name for s in state.stages if s.phase == "Running"]
            for name in running:  # adopted: show its output from here on
                log = self._store.dirs(state.namespace, state.name).log(name)
                self._tails[(key, name)] = LogTail(log, state.name, name, self._output)
            if not state.finished:
                _log.info("local_pipeline_found", pipeline=state.name, running=running)
        self._loaded = True

    def states(self) -> list[PipelineState]:
        self.load()
        return list(self._states.values())

    def submit(self, manifest: Manifest) -> PipelineState:
        """Record a new pipeline (idempotent: a known one is returned as it is, never rerun)."""
        self.load()
        plan = local_plan(manifest)  # refuses what cannot run here, before anything is stored
        key = (plan.namespace, plan.name)
        if key in self._states:
            return self._states[key]
        state = PipelineState(
            name=plan.name,
            namespace=plan.namespace,
            job_id=plan.job_id,
            manifest=manifest,
            stages=[StageState(name=stage.name) for stage in plan.stages],
        )
        try:
            self._store.dirs(plan.namespace, plan.name).create()
            self._store.save(state)
        except OSError as exc:
            raise OSError(f"cannot record pipeline {plan.name}: {exc}") from exc
        self._states[key] = state
        self._plans[key] = plan
        self._wake.set()
        _log.info("local_pipeline_queued", pipeline=plan.name, stages=len(plan.stages))
        return state

    def cancel(self, namespace: str, name: str) -> PipelineState | None:
        """Ask for termination; None when the pipeline is unknown."""
        self.load()
        state = self._states.get((namespace, name))
        if state is None or state.finished:
            return state
        state.cancel_requested = True
        if state.phase == "Pending":  # nothing runs: stop at once
            self._finish(state, "Cancelled", "terminated before any stage started")
        self._save(state)
        self._wake.set()
        return state

    def running_count(self) -> int:
        return sum(1 for s in self._states.values() if s.phase == "Running")

    # ------------------------------------------------------------------ the loop

    async def run(self, stop: asyncio.Event) -> None:
        """Drive every pipeline until ``stop``; never stops the stages (see :meth:`shutdown`)."""
        self.load()
        _log.info("local_runner_started", pipelines=len(self._states))
        while not stop.is_set():
            self.step()
            self._wake.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=self._tick)

    def step(self) -> None:
        """One round over every pipeline (synchronous: quick file and process checks)."""
        now = time.time()
        for key, state in list(self._states.items()):
            try:
                self._step(key, state, now)
            except OSError as exc:  # a full disk or a vanished directory: next round again
                _log.error("local_pipeline_step_failed", pipeline=state.name, error=str(exc))
            for (owner, stage), tail in list(self._tails.items()):
                if owner == key:
                    tail.pump()
                    if state.stage(stage).phase != "Running":
                        tail.close()
                        del self._tails[(owner, stage)]
        for child in list(self._children.values()):
            child.poll()  # reap finished wrappers (no zombies)

    async def shutdown(self) -> None:
        """The worker stops for good: stop running stages and mark them interrupted, so the
        next start reruns them (resuming from checkpoints) without counting a retry."""
        stopping: list[tuple[PipelineState, StageState]] = []
        for state in self._states.values():
            for stage in state.stages:
                if stage.phase == "Running" and stage.pid is not None:
                    stage.interrupted = True
                    stopping.append((state, stage))
            self._save(state)
        for _, stage in stopping:
            assert stage.pid is not None
            process.signal_group(stage.pid, signal.SIGTERM)
        deadline = time.monotonic() + self._grace
        while time.monotonic() < deadline and any(
            process.group_alive(s.pid) for _, s in stopping if s.pid is not None
        ):
            await asyncio.sleep(0.1)
            for child in self._children.values():
                child.poll()
        for state, stage in stopping:
            if stage.pid is not None and process.group_alive(stage.pid):
                _log.warning("local_stage_killed", pipeline=state.name, stage=stage.name)
                process.signal_group(stage.pid, signal.SIGKILL)
        for child in self._children.values():
            with contextlib.suppress(subprocess.TimeoutExpired):
                child.wait(timeout=2)
        for tail in self._tails.values():
            tail.close()
        if stopping:
            _log.info(
                "local_stages_interrupted", stages=[f"{p.name}/{s.name}" for p, s in stopping]
            )

    # ------------------------------------------------------------------ one pipeline

    def _plan(self, key: Key, state: PipelineState) -> LocalPlan:
        if key not in self._plans:
            self._plans[key] = local_plan(state.manifest)
        return self._plans[key]

    def _step(self, key: Key, state: PipelineState, now: float) -> None:
        if state.finished:
            self._expire(key, state, now)
            return
        if state.cancel_requested:
            self._step_cancel(key, state, now)
            return
        if state.phase == "Pending":
            if self.running_count() >= self._max_running:
                waiting = f"waiting for a free slot ({self.running_count()} running locally)"
                if state.reason != waiting:
                    state.reason = waiting
                    self._save(state)
                return
            state.phase, state.reason, state.started_at = "Running", None, now_iso()
            self._save(state)
        plan = self._plan(key, state)
        for stage_plan in plan.stages:
            stage = state.stage(stage_plan.name)
            if stage.phase == "Succeeded":
                continue
            if not all(state.stage(d).phase == "Succeeded" for d in stage_plan.depends):
                continue
            if stage.phase == "Running":
                self._check(key, state, stage, stage_plan, now)
            due = stage.phase in ("Pending", "Error") and (stage.retry_at or 0) <= now
            if due and state.phase == "Running":
                self._start(key, state, stage, stage_plan, plan)
            if state.finished:
                return
        if all(s.phase == "Succeeded" for s in state.stages):
            self._succeed(key, state)

    def _check(
        self, key: Key, state: PipelineState, stage: StageState, plan: LocalStage, now: float
    ) -> None:
        dirs = self._store.dirs(state.namespace, state.name)
        code = process.read_exit_code(dirs.exit_file(stage.name, stage.attempt))
        if (
            code is None
            and stage.pid is not None
            and process.is_running(stage.pid, stage.pid_start)
        ):
            return
        stage.pid = None
        if code == 0:
            stage.phase, stage.exit_code, stage.finished_at = "Succeeded", 0, now_iso()
            stage.message = None
            self._save(state)
            _log.info("local_stage_succeeded", pipeline=state.name, stage=stage.name)
            return
        if code is not None:
            stage.phase, stage.exit_code, stage.finished_at = "Failed", code, now_iso()
            stage.message = process.describe_exit(code)
            tail = process.tail(dirs.log(stage.name))
            self._finish(
                state,
                "Failed",
                f"{stage.name} failed ({stage.message})" + (f":\n{tail}" if tail else ""),
            )
            self._save(state)
            return
        self._killed_from_outside(state, stage, plan, now)

    def _killed_from_outside(
        self, state: PipelineState, stage: StageState, plan: LocalStage, now: float
    ) -> None:
        """No exit code: the stage's wrapper was killed (the worker stopped it, a reboot)."""
        if stage.interrupted:
            stage.phase, stage.interrupted = "Pending", False
            stage.message = f"attempt {stage.attempt} was interrupted by a worker stop; rerun"
        elif stage.retries < plan.retry.limit:
            stage.retries += 1
            delay = plan.retry.delay(stage.retries)
            stage.phase, stage.retry_at = "Error", now + delay
            stage.message = (
                f"attempt {stage.attempt} was killed from outside; retry {stage.retries}/"
                f"{plan.retry.limit} in {delay:.0f}s"
            )
        else:
            stage.phase, stage.finished_at = "Error", now_iso()
            stage.message = f"attempt {stage.attempt} was killed from outside"
            self._finish(
                state,
                "Failed",
                f"{stage.name}: killed from outside {stage.attempt} times (no exit code); "
                f"retries used up ({plan.retry.limit})",
            )
        _log.warning("local_stage_lost", pipeline=state.name, stage=stage.name, note=stage.message)
        self._save(state)

    def _start(
        self, key: Key, state: PipelineState, stage: StageState, plan: LocalStage, whole: LocalPlan
    ) -> None:
        dirs = self._store.dirs(state.namespace, state.name)
        dirs.create()
        try:
            values = self._inputs(dirs.outputs, plan, whole)
            argv = [fill_inputs(part, values) for part in plan.argv]
            env = {name: fill_inputs(value, values) for name, value in plan.env.items()}
        except WorkflowRejected as exc:
            self._finish(state, "Failed", f"{stage.name}: {exc}")
            self._save(state)
            return
        python_bin = str(Path(self._python).parent)
        env = {
            **self._environ,
            **env,
            "LLMOPS_OUTPUTS_DIR": str(dirs.outputs),
            "PATH": os.pathsep.join([python_bin, self._environ.get("PATH", os.defpath)]),
            "PYTHONUNBUFFERED": "1",
        }
        stage.attempt += 1
        log = dirs.log(stage.name)
        tail_key = (key, stage.name)
        self._tails.setdefault(tail_key, LogTail(log, state.name, stage.name, self._output))
        with log.open("a", encoding="utf-8") as handle:
            handle.write(f"--- {stage.name} attempt {stage.attempt} at {now_iso()} ---\n")
        started = process.start(
            argv, env=env, cwd=dirs.stage_dir(stage.name), log=log,
            exit_file=dirs.exit_file(stage.name, stage.attempt),
        )  # fmt: skip
        self._children[tail_key] = started.process
        stage.phase, stage.pid, stage.pid_start = "Running", started.process.pid, started.pid_start
        stage.started_at = stage.started_at or now_iso()
        stage.retry_at = None
        self._save(state)
        _log.info(
            "local_stage_started",
            pipeline=state.name,
            stage=stage.name,
            attempt=stage.attempt,
            pid=started.process.pid,
        )

    def _inputs(self, outputs: Path, stage: LocalStage, whole: LocalPlan) -> dict[str, str]:
        """The stage's input parameters: literals, or the files earlier stages wrote."""
        values: dict[str, str] = {}
        for name, expression in stage.inputs.items():
            source = task_output(expression)
            if source is None:
                values[name] = expression
                continue
            task, parameter = source
            file_name = whole.stage(task).outputs.get(parameter)
            if file_name is None:
                raise WorkflowRejected(f"task {task} declares no output {parameter!r}")
            try:
                values[name] = (outputs / file_name).read_text().strip()
            except FileNotFoundError:
                raise WorkflowRejected(
                    f"{task} did not write its output {parameter!r} ({file_name})"
                ) from None
        return values

    def _step_cancel(self, key: Key, state: PipelineState, now: float) -> None:
        for stage in state.stages:
            if stage.phase != "Running":
                continue
            if stage.pid is not None and process.group_alive(stage.pid):
                sent = self._kill_sent.get((key, stage.name))
                if sent is None:
                    process.signal_group(stage.pid, signal.SIGTERM)
                    self._kill_sent[(key, stage.name)] = now
                elif now - sent > self._grace:
                    process.signal_group(stage.pid, signal.SIGKILL)
                return  # wait until it is gone
            self._kill_sent.pop((key, stage.name), None)
            stage.phase, stage.pid, stage.finished_at = "Failed", None, now_iso()
            stage.message = "terminated"
        self._finish(state, "Cancelled", "terminated: the job was cancelled")
        self._save(state)

    def _succeed(self, key: Key, state: PipelineState) -> None:
        outputs = self._store.dirs(state.namespace, state.name).outputs
        registered = outputs / Path(names.MODEL_VERSION_PATH).name
        try:
            state.registered_model = json.loads(registered.read_text())
        except FileNotFoundError:
            state.registered_model = None
        except ValueError as exc:
            _log.warning("registered_model_unreadable", pipeline=state.name, error=str(exc))
        self._finish(state, "Succeeded", None)
        self._save(state)
        _log.info("local_pipeline_succeeded", pipeline=state.name)

    def _finish(self, state: PipelineState, phase: PipelinePhase, reason: str | None) -> None:
        state.phase = phase
        state.reason = reason
        state.finished_at = now_iso()
        for stage in state.stages:
            if stage.phase in ("Pending", "Error") and phase != "Succeeded":
                stage.phase = "Omitted" if stage.attempt == 0 else stage.phase
        if phase != "Succeeded":
            _log.warning("local_pipeline_ended", pipeline=state.name, phase=phase, reason=reason)

    def _expire(self, key: Key, state: PipelineState, now: float) -> None:
        """Forget a finished pipeline once its TTL passed (Argo's ``ttlStrategy``)."""
        if state.finished_at is None:
            return
        ttl = self._ttl_success if state.phase == "Succeeded" else self._ttl_failure
        finished = datetime.strptime(state.finished_at, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
        if now - finished.timestamp() >= ttl:
            self._store.remove(state)
            self._states.pop(key, None)
            self._plans.pop(key, None)
            _log.info("local_pipeline_expired", pipeline=state.name)

    def _save(self, state: PipelineState) -> None:
        self._store.save(state)
