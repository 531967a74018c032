"""How a local pipeline ends: its final phase and reason, and what a success reports.

Split out of :mod:`llmops_workflow.local.runner`: both the runner and the stage processes
(:mod:`llmops_workflow.local.stages`) end pipelines, the same way.
"""

from __future__ import annotations

from pathlib import Path

from llmops_shared.logging import get_logger
from llmops_workflow.local.state import PipelinePhase, PipelineState, now_iso
from llmops_workflow.render import names
from llmops_workflow.render.status import parse_registered_model

_log = get_logger(__name__)


def finish(state: PipelineState, phase: PipelinePhase, reason: str | None) -> None:
    """End the pipeline in ``phase``; the stages that never ran are Omitted (not on success)."""
    state.phase = phase
    state.reason = reason
    state.finished_at = now_iso()
    for stage in state.stages:
        if stage.phase in ("Pending", "Error") and phase != "Succeeded":
            stage.phase = "Omitted" if stage.attempt == 0 else stage.phase
    if phase != "Succeeded":
        _log.warning("local_pipeline_ended", pipeline=state.name, phase=phase, reason=reason)


def succeed(state: PipelineState, outputs: Path) -> None:
    """End the pipeline Succeeded with the model version its register stage wrote in
    ``outputs`` (a reason says so when that file is unreadable)."""
    registered = outputs / Path(names.MODEL_VERSION_PATH).name
    try:
        text = registered.read_text()
    except FileNotFoundError:
        text = None
    state.registered_model = parse_registered_model(text, where=f"pipeline {state.name}")
    reason = None
    if text and state.registered_model is None:
        reason = f"register's {registered.name} is unreadable: no model version is reported"
    finish(state, "Succeeded", reason)
