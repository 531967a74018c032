"""The local pipeline runner: the stages of each pipeline as processes, in dependency order.

A supervisor loop (a critical background task of the workflow worker) drives every pipeline
record (:mod:`.state`) a step at a time, every ``tick_s``:

* a Pending pipeline starts when fewer than ``max_running`` run (a laptop trains one job at a
  time by default; the others wait, reported Pending with why);
* the next stage starts once the stages it depends on succeeded, with the argv and environment
  the Argo pod would get (:mod:`.launch`);
* a stage that ends by itself decides: exit 0 succeeded, anything else fails the pipeline with
  the stage's name, its exit and the tail of its log (a trainer error is never retried, as
  Argo's ``OnError``); a stage killed from outside (no exit code) is an infrastructure error,
  retried under the template's ``retryStrategy`` (limit, backoff, factor, cap), and the trainer
  resumes from its last checkpoint;
* a cancel stops the running stage's process group (SIGTERM, then SIGKILL after a grace).

The worker's final shutdown stops running stages the same way but marks them *interrupted*:
the next start reruns them without counting a retry (stopping ``llmops up`` pauses training;
starting it again resumes from the last checkpoint). A worker that dies, or restarts in
process, leaves them running: the next runner adopts them from their records. Whatever goes
wrong with one pipeline (a stage that cannot even start, a record that no longer makes
sense) fails that pipeline with the reason, never the worker: a pipeline is never left
Running forever. One runner owns a work directory (a file lock): two workers sharing one
would both drive the same stages. The processes behind the stages are
:mod:`~llmops_workflow.local.stages`; how a pipeline ends, :mod:`~llmops_workflow.local.ending`.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import signal
import time
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import IO

from llmops_shared.logging import get_logger
from llmops_workflow.local import process
from llmops_workflow.local.ending import finish, succeed
from llmops_workflow.local.launch import stage_environ
from llmops_workflow.local.logs import StageOutput
from llmops_workflow.local.plan import LocalPlan, local_plan
from llmops_workflow.local.stages import Key, StageProcesses
from llmops_workflow.local.state import PipelineState, StageState, StateStore, now_iso
from llmops_workflow.local.stopping import stage_alive, stop_stages
from llmops_workflow.ports import Manifest, WorkflowUnavailable

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
        passthrough: Iterable[str] = (),
        max_running: int = 1,
        stop_grace_s: float = 10.0,
        ttl_success_s: float = 24 * 3600,
        ttl_failure_s: float = 7 * 24 * 3600,
        tick_s: float = 0.5,
    ) -> None:
        self._store = store
        self._stages = StageProcesses(
            store,
            python=python,
            output=output,
            inherited=stage_environ(environ, passthrough),
            stop_grace_s=stop_grace_s,
        )
        self._max_running = max_running
        self._grace = stop_grace_s
        self._ttl_success = ttl_success_s
        self._ttl_failure = ttl_failure_s
        self._tick = tick_s
        self._states: dict[Key, PipelineState] = {}
        self._plans: dict[Key, LocalPlan] = {}
        self._wake = asyncio.Event()
        self._lock: IO[str] | None = None
        self._loaded = False
        self._stopping = False

    # ------------------------------------------------------------------ what the backend calls

    def load(self) -> None:
        """Take the work directory and read every record (once): the next step adopts the
        running stages."""
        if self._loaded:
            return
        self._store.root.mkdir(parents=True, exist_ok=True)
        handle = (self._store.root / ".runner.lock").open("w")
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.close()
            raise WorkflowUnavailable(
                f"another workflow worker runs the pipelines in {self._store.root} "
                "(LOCAL_WORKDIR): give each worker its own"
            ) from None
        self._lock = handle
        for state in self._store.load_all():
            key = (state.namespace, state.name)
            self._states[key] = state
            running = [s.name for s in state.stages if s.phase == "Running"]
            for name in running:  # adopted: show its output from here on
                self._stages.adopt(key, state, name)
            if not state.finished:
                _log.info("local_pipeline_found", pipeline=state.name, running=running)
        self._loaded = True

    def release(self) -> None:
        """Give the work directory up (the next runner of this process takes it over)."""
        if self._lock is not None:
            self._lock.close()
            self._lock = None

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
            finish(state, "Cancelled", "terminated before any stage started")
        self._store.save(state)
        self._wake.set()
        return state

    def running_count(self) -> int:
        return sum(1 for s in self._states.values() if s.phase == "Running")

    # ------------------------------------------------------------------ the loop

    async def run(self, stop: asyncio.Event) -> None:
        """Drive every pipeline until ``stop``; never stops the stages (see :meth:`shutdown`)."""
        try:
            self.load()
            _log.info("local_runner_started", pipelines=len(self._states))
            while not stop.is_set() and not self._stopping:
                self.step()
                self._wake.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), timeout=self._tick)
        finally:
            self.release()

    def step(self) -> None:
        """One round over every pipeline (synchronous: quick file and process checks)."""
        if self._stopping:
            return
        now = time.time()
        for key, state in list(self._states.items()):
            try:
                self._step(key, state, now)
            except OSError as exc:  # a full disk, a vanished directory: next round again
                _log.error("local_pipeline_step_failed", pipeline=state.name, error=str(exc))
            except Exception as exc:  # noqa: BLE001 - one pipeline's problem, not the worker's
                _log.error("local_pipeline_broken", pipeline=state.name, exc_info=True)
                self._give_up(state, f"the local runner cannot run this pipeline: {exc!r}")
            self._stages.pump(key, state)
        self._stages.reap()

    async def shutdown(self) -> None:
        """The worker stops for good: stop running stages and mark them interrupted, so the
        next start reruns them (resuming from checkpoints) without counting a retry. The loop
        does nothing from here on."""
        self._stopping = True
        stopping: list[tuple[str, StageState]] = []
        for state in self._states.values():
            for stage in state.stages:
                if stage.phase == "Running" and stage_alive(stage):
                    stage.interrupted = True
                    stopping.append((state.name, stage))
                    self._store.save(state)
        await stop_stages(stopping, grace_s=self._grace, reap=self._stages.reap)
        self._stages.close()
        if stopping:
            _log.info("local_stages_interrupted", stages=[f"{p}/{s.name}" for p, s in stopping])

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
                    self._store.save(state)
                return
            state.phase, state.reason, state.started_at = "Running", None, now_iso()
            self._store.save(state)
        plan = self._plan(key, state)
        for stage_plan in plan.stages:
            stage = state.stage(stage_plan.name)
            if stage.phase == "Succeeded":
                continue
            if not all(state.stage(d).phase == "Succeeded" for d in stage_plan.depends):
                continue
            if stage.phase == "Running":
                self._stages.check(state, stage, stage_plan, now)
            due = stage.phase in ("Pending", "Error") and (stage.retry_at or 0) <= now
            if due and state.phase == "Running":
                self._stages.start(key, state, stage, stage_plan, plan)
            if state.finished:
                return
        if all(s.phase == "Succeeded" for s in state.stages):
            self._succeed(state)

    def _step_cancel(self, key: Key, state: PipelineState, now: float) -> None:
        if not self._stages.terminate(key, state, now):
            return  # wait until the stages are gone
        finish(state, "Cancelled", "terminated: the job was cancelled")
        self._store.save(state)

    def _succeed(self, state: PipelineState) -> None:
        succeed(state, self._store.dirs(state.namespace, state.name).outputs)
        self._store.save(state)
        _log.info("local_pipeline_succeeded", pipeline=state.name)

    def _give_up(self, state: PipelineState, reason: str) -> None:
        """Fail a pipeline the runner cannot drive, killing what still runs of it."""
        for stage in state.stages:
            if stage.phase == "Running" and stage_alive(stage):
                process.signal_group(stage.pid or 0, signal.SIGKILL)
        finish(state, "Failed", reason)
        with contextlib.suppress(OSError):  # the record is rewritten at the next change
            self._store.save(state)

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
