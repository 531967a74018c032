"""The local backend: pipelines run as processes on this machine (``WORKFLOW_BACKEND=local``).

The default of ``llmops up``: the same rendered Workflow (or stage Jobs) a cluster would run,
executed by :class:`~llmops_workflow.local.runner.LocalRunner` with the trainer of the worker's
own Python environment (``LOCAL_PYTHON``), so a job trains on a laptop and the loop closes
(run -> model version -> Helm values -> endpoint) without a cluster. Container images,
resources and node selectors do not apply here; one node only.

It is observable: the watcher polls :meth:`observe` like a cluster and reports every change
(stage by stage progress, Succeeded with the registered model, Failed with the failing stage
and the tail of its log), so the status events are the ones the Argo backend sends.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
from collections.abc import Sequence
from pathlib import Path

from pydantic import JsonValue

from llmops_shared.events import Phase
from llmops_workflow.local.runner import LocalRunner
from llmops_workflow.local.state import PipelineState
from llmops_workflow.ports import Live, Manifest, WorkflowUnavailable
from llmops_workflow.render.status import Observed

_PHASES = {
    "Pending": Phase.PENDING,
    "Running": Phase.RUNNING,
    "Succeeded": Phase.SUCCEEDED,
    "Failed": Phase.FAILED,
    "Cancelled": Phase.CANCELLED,
}


def observe_local(state: PipelineState) -> Observed:
    """The phase, progress and stages of a local pipeline, as the watcher reports them."""
    nodes: list[dict[str, JsonValue]] = [
        {
            "name": stage.name,
            "phase": stage.phase,
            "started_at": stage.started_at,
            "finished_at": stage.finished_at,
            "message": stage.message,
        }
        for stage in state.stages
    ]
    terminating = state.cancel_requested and not state.finished
    reason = state.reason
    if state.phase == "Pending" and reason is None:
        reason = "starting"
    return Observed(
        Phase.RUNNING if terminating and state.phase == "Running" else _PHASES[state.phase],
        "termination requested" if terminating else reason,
        done=sum(1 for s in state.stages if s.phase == "Succeeded"),
        total=len(state.stages),
        nodes=nodes,
        started_at=state.started_at,
        finished_at=state.finished_at,
        terminating=terminating,
        registered_model=state.registered_model,
    )


class LocalBackend:
    """A :class:`~llmops_workflow.ports.WorkflowBackend` of local processes."""

    name = "local"
    observable = True

    def __init__(self, runner: LocalRunner, *, workdir: Path, python: str) -> None:
        self.runner = runner
        self._workdir = workdir
        self._python = python
        self._trainer_found = False

    async def apply(self, manifest: Manifest) -> Observed:
        try:
            return observe_local(self.runner.submit(manifest))
        except OSError as exc:
            raise WorkflowUnavailable(str(exc)) from exc

    async def terminate(self, namespace: str, name: str) -> Observed | None:
        try:
            state = self.runner.cancel(namespace, name)
        except OSError as exc:
            raise WorkflowUnavailable(str(exc)) from exc
        return None if state is None else observe_local(state)

    async def observe(self, namespaces: Sequence[str]) -> list[Live]:
        wanted = set(namespaces)
        return [
            Live(state.name, state.namespace, state.job_id, state.manifest, observe_local(state))
            for state in self.runner.states()
            if state.namespace in wanted
        ]

    async def ping(self) -> None:
        """Ready when the work directory is writable and the Python that runs the stages has
        the trainer (checked once: importing it costs a process start)."""
        await asyncio.to_thread(self._workdir.mkdir, parents=True, exist_ok=True)
        if not os.access(self._workdir, os.W_OK):
            raise PermissionError(f"{self._workdir} is not writable")
        if not self._trainer_found:
            await asyncio.to_thread(self._check_trainer)
            self._trainer_found = True

    def _check_trainer(self) -> None:
        done = subprocess.run(
            [self._python, "-c", "import llmops_trainer"],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        if done.returncode != 0:
            raise RuntimeError(
                f"{self._python} cannot import llmops_trainer (install the llmops-trainer "
                f"package there, or set LOCAL_PYTHON): {done.stderr.strip()[-300:]}"
            )
