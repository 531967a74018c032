"""The stage processes of the local runner: start one, judge a running one, terminate them.

Split out of :mod:`llmops_workflow.local.runner`, which drives pipelines through their stages;
this module owns the processes behind the stages (their wrappers, their log tails, the
signals a cancel sends) and records what they did in the pipeline's state.
"""

from __future__ import annotations

import contextlib
import signal
import subprocess
from collections.abc import Mapping
from typing import Final

from llmops_shared.logging import get_logger
from llmops_workflow.local import process
from llmops_workflow.local.ending import finish
from llmops_workflow.local.launch import command_line
from llmops_workflow.local.logs import LogTail, StageOutput
from llmops_workflow.local.outcome import ended_by_itself, killed_from_outside
from llmops_workflow.local.plan import LocalPlan, LocalStage
from llmops_workflow.local.state import PipelineState, StageState, StateStore, now_iso
from llmops_workflow.local.stopping import stage_alive
from llmops_workflow.ports import WorkflowRejected

Key = tuple[str, str]  # (namespace, name)

START_ATTEMPTS: Final = 3
"""Ticks a stage may fail to even start (no such file, too many open files) before the
pipeline fails with the reason."""

_log = get_logger(__name__)


class StageProcesses:
    """The processes of the running stages of a runner's pipelines, and their output."""

    def __init__(
        self,
        store: StateStore,
        *,
        python: str,
        output: StageOutput,
        inherited: Mapping[str, str],
        stop_grace_s: float,
    ) -> None:
        self._store = store
        self._python = python
        self._output = output
        self._inherited = inherited
        self._grace = stop_grace_s
        self._children: dict[tuple[Key, str], subprocess.Popen[bytes]] = {}
        self._tails: dict[tuple[Key, str], LogTail] = {}
        self._kill_sent: dict[tuple[Key, str], float] = {}

    def adopt(self, key: Key, state: PipelineState, stage: str) -> None:
        """A stage found running (a previous runner started it): show its output from here on."""
        log = self._store.dirs(state.namespace, state.name).log(stage)
        self._tails[(key, stage)] = LogTail(log, state.name, stage, self._output)

    def start(
        self, key: Key, state: PipelineState, stage: StageState, plan: LocalStage, whole: LocalPlan
    ) -> None:
        dirs = self._store.dirs(state.namespace, state.name)
        try:
            argv, env = command_line(
                plan, whole, outputs=dirs.outputs, inherited=self._inherited, python=self._python
            )
        except WorkflowRejected as exc:
            finish(state, "Failed", f"{stage.name}: {exc}")
            self._store.save(state)
            return
        attempt = stage.attempt + 1
        log = dirs.log(stage.name)
        try:
            dirs.create()
            with log.open("a", encoding="utf-8") as handle:
                handle.write(f"--- {stage.name} attempt {attempt} at {now_iso()} ---\n")
            started = process.start(
                argv, env=env, cwd=dirs.stage_dir(stage.name), log=log,
                exit_file=dirs.exit_file(stage.name, attempt),
            )  # fmt: skip
        except OSError as exc:  # the stage cannot even start: a few ticks, then give up
            stage.start_failures += 1
            _log.error(
                "local_stage_not_started", pipeline=state.name, stage=stage.name, error=str(exc)
            )
            if stage.start_failures >= START_ATTEMPTS:
                finish(state, "Failed", f"{stage.name}: cannot start: {exc}")
            self._store.save(state)
            return
        tail_key = (key, stage.name)
        self._tails.setdefault(tail_key, LogTail(log, state.name, stage.name, self._output))
        self._children[tail_key] = started.process
        stage.attempt, stage.start_failures = attempt, 0
        stage.phase, stage.pid, stage.pid_start = "Running", started.process.pid, started.pid_start
        stage.boot_id = process.current_boot()
        stage.started_at = stage.started_at or now_iso()
        stage.retry_at = None
        self._store.save(state)
        _log.info(
            "local_stage_started",
            pipeline=state.name,
            stage=stage.name,
            attempt=attempt,
            pid=started.process.pid,
        )

    def check(self, state: PipelineState, stage: StageState, plan: LocalStage, now: float) -> None:
        """Judge a running stage. Liveness first, then the exit file: the wrapper writes the
        file before it exits, so a gone wrapper without one was killed from outside."""
        if stage.pid is not None and process.is_running(stage.pid, stage.pid_start):
            return
        if stage.pid is not None and process.our_group_alive(stage.pid, stage.boot_id):
            process.signal_group(stage.pid, signal.SIGKILL)  # an orphaned trainer: never two
            return
        dirs = self._store.dirs(state.namespace, state.name)
        code = process.read_exit_code(dirs.exit_file(stage.name, stage.attempt))
        if code is not None:
            failure = ended_by_itself(
                stage, code, process.tail(dirs.log(stage.name)) if code else ""
            )
        else:
            failure = killed_from_outside(stage, plan.retry, now)
            _log.warning(
                "local_stage_lost", pipeline=state.name, stage=stage.name, note=stage.message
            )
        if failure is not None:
            finish(state, "Failed", failure)
        elif stage.phase == "Succeeded":
            _log.info("local_stage_succeeded", pipeline=state.name, stage=stage.name)
        self._store.save(state)

    def terminate(self, key: Key, state: PipelineState, now: float) -> bool:
        """One step of a cancel: SIGTERM the running stages, SIGKILL them after the grace;
        True once none runs any more (each marked terminated)."""
        for stage in state.stages:
            if stage.phase != "Running":
                continue
            if stage_alive(stage):
                assert stage.pid is not None
                sent = self._kill_sent.get((key, stage.name))
                if sent is None:
                    process.signal_group(stage.pid, signal.SIGTERM)
                    self._kill_sent[(key, stage.name)] = now
                elif now - sent > self._grace:
                    process.signal_group(stage.pid, signal.SIGKILL)
                return False  # wait until it is gone
            self._kill_sent.pop((key, stage.name), None)
            stage.phase, stage.pid, stage.finished_at = "Failed", None, now_iso()
            stage.message = "terminated"
        return True

    def pump(self, key: Key, state: PipelineState) -> None:
        """Copy the new output of the pipeline's stages; stop following the ended ones."""
        for (owner, stage), tail in list(self._tails.items()):
            if owner != key:
                continue
            tail.pump()
            if state.stage(stage).phase != "Running":
                tail.close()
                del self._tails[(owner, stage)]

    def reap(self) -> None:
        """Collect the wrappers that ended (no zombies left behind)."""
        for child in list(self._children.values()):
            child.poll()

    def close(self) -> None:
        """The runner stops: wait a little for the wrappers, stop following the output."""
        for child in self._children.values():
            with contextlib.suppress(subprocess.TimeoutExpired):
                child.wait(timeout=2)
        for tail in self._tails.values():
            tail.close()
