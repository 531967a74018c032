"""What the local backend remembers of each pipeline, on disk, so a restart finds it again.

One directory per pipeline, ``<LOCAL_WORKDIR>/<namespace>/<name>/``::

    state.json            this module's record (written atomically after every change)
    logs/<stage>.log      the stage's output, every attempt appended
    outputs/              files stages write for later ones (the MLflow run id, model-version.json)
    run/<stage>.<n>.exit  the exit code of attempt n, written by the stage's shell wrapper

The record is the truth the watcher reports from: the runner changes it, the backend reads it.
A worker that restarts (a crash, a kill, an in-process backend switch) loads every record and
carries on: stages still running are adopted, stages that ended while nobody watched are
judged by their exit file.
"""

from __future__ import annotations

import json
import shutil
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from llmops_shared.events import RegisteredModel
from llmops_shared.logging import get_logger
from llmops_shared.manifest_files import write_atomically

PipelinePhase = Literal["Pending", "Running", "Succeeded", "Failed", "Cancelled"]
StagePhase = Literal["Pending", "Running", "Succeeded", "Failed", "Error", "Omitted"]
"""Argo's node phases: ``Error`` is an attempt killed from outside (retried), ``Omitted`` a
stage that never ran because the pipeline ended first."""

FINISHED: frozenset[str] = frozenset({"Succeeded", "Failed", "Cancelled"})

_log = get_logger(__name__)


def now_iso() -> str:
    """UTC now as Argo writes timestamps (``2025-01-27T10:00:00Z``)."""
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class StageState(BaseModel):
    """One stage of a pipeline."""

    model_config = ConfigDict(extra="ignore")

    name: str
    phase: StagePhase = "Pending"
    attempt: int = Field(default=0, description="Attempts started (1 = the first).")
    retries: int = Field(default=0, description="Retries used under the retry policy.")
    pid: int | None = None
    pid_start: str | None = Field(default=None, description="Process start time, vs pid reuse.")
    boot_id: str | None = Field(default=None, description="The machine's boot it started in.")
    start_failures: int = Field(default=0, description="Ticks it failed to even start.")
    started_at: str | None = None
    finished_at: str | None = None
    exit_code: int | None = None
    message: str | None = None
    retry_at: float | None = Field(default=None, description="Epoch seconds of the next try.")
    interrupted: bool = Field(
        default=False, description="Stopped by a worker shutdown: rerun, not counted as a retry."
    )


class PipelineState(BaseModel):
    """One pipeline: its manifest, phase and stages."""

    model_config = ConfigDict(extra="ignore")

    name: str
    namespace: str
    job_id: str | None
    manifest: dict[str, Any]
    phase: PipelinePhase = "Pending"
    reason: str | None = None
    created_at: str = Field(default_factory=now_iso)
    started_at: str | None = None
    finished_at: str | None = None
    cancel_requested: bool = False
    stages: list[StageState]
    registered_model: RegisteredModel | None = None
    """What register created, read (and checked) once when the pipeline succeeded."""

    @property
    def finished(self) -> bool:
        return self.phase in FINISHED

    def stage(self, name: str) -> StageState:
        return next(s for s in self.stages if s.name == name)


class PipelineDirs:
    """Where one pipeline's files are."""

    def __init__(self, root: Path, namespace: str, name: str) -> None:
        self.root = root / namespace / name

    @property
    def state(self) -> Path:
        return self.root / "state.json"

    @property
    def outputs(self) -> Path:
        return self.root / "outputs"

    def log(self, stage: str) -> Path:
        return self.root / "logs" / f"{stage}.log"

    def exit_file(self, stage: str, attempt: int) -> Path:
        return self.root / "run" / f"{stage}.{attempt}.exit"

    def stage_dir(self, stage: str) -> Path:
        """The stage's working directory (its relative paths stay inside the pipeline)."""
        return self.root / "work" / stage

    def create(self) -> None:
        for sub in ("logs", "outputs", "run", "work"):
            (self.root / sub).mkdir(parents=True, exist_ok=True)


class StateStore:
    """Every pipeline record under ``root``."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def dirs(self, namespace: str, name: str) -> PipelineDirs:
        return PipelineDirs(self.root, namespace, name)

    def save(self, state: PipelineState) -> None:
        """Write the record atomically (a crash leaves the previous one)."""
        dirs = self.dirs(state.namespace, state.name)
        write_atomically(dirs.state, state.model_dump_json(indent=1))

    def load_all(self) -> list[PipelineState]:
        """Every readable record; an unreadable one is logged and left alone (never deleted)."""
        found: list[PipelineState] = []
        if not self.root.is_dir():
            return found
        for path in sorted(self.root.glob("*/*/state.json")):
            try:
                found.append(PipelineState.model_validate(json.loads(path.read_text())))
            except (OSError, ValueError, ValidationError) as exc:
                _log.error("local_pipeline_state_unreadable", path=str(path), error=str(exc))
        return found

    def remove(self, state: PipelineState) -> None:
        """Delete a finished pipeline's directory (its TTL passed); artifacts live elsewhere."""
        shutil.rmtree(self.dirs(state.namespace, state.name).root, ignore_errors=True)
