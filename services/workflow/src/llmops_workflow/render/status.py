"""Observed pipelines -> phase, reason, node progress (pure).

Argo's workflow phases map onto the contract's :class:`~llmops_shared.events.Phase`:
``""``/``Pending`` -> Pending, ``Running`` -> Running, ``Succeeded`` -> Succeeded,
``Failed`` and ``Error`` -> Failed (with ``status.message``, else the first failed node's
message), and a workflow whose ``spec.shutdown`` is set that ended Failed/Error -> Cancelled
(Argo's terminate is a failure with "Stopped with strategy 'Terminate'"). The same phase is
the job's phase. ``nodes`` lists the Pod nodes (the stages' pods, retries included) with
Argo's own node phases (Pending, Running, Succeeded, Failed, Error, Skipped, Omitted).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from pydantic import JsonValue, ValidationError

from llmops_shared.events import Phase, RegisteredModel
from llmops_shared.logging import get_logger
from llmops_workflow.render import names

_log = get_logger(__name__)


@dataclass(frozen=True)
class Observed:
    """What the cluster (or the file system) says about one pipeline."""

    phase: Phase
    reason: str | None = None
    done: int = 0
    total: int = 0
    nodes: list[dict[str, JsonValue]] = field(default_factory=list)
    started_at: str | None = None
    finished_at: str | None = None
    terminating: bool = False
    """Termination was requested and has not finished: the job is not reported meanwhile
    (it is neither still running for the user nor cancelled yet)."""
    registered_model: RegisteredModel | None = None
    """The model version the register stage created, once it has."""

    @property
    def progress(self) -> dict[str, JsonValue]:
        return {"done": self.done, "total": self.total}


def steps_total(obj: dict[str, Any]) -> int:
    """Pods of one successful run, as the renderer recorded them (``llm-ops.io/steps-total``;
    the first item of a ``List``)."""
    if obj.get("kind") == "List":
        obj = (obj.get("items") or [{}])[0]
    notes = (obj.get("metadata") or {}).get("annotations") or {}
    try:
        return int(notes.get(names.STEPS_TOTAL_ANNOTATION) or 0)
    except ValueError:
        return 0


def _parse_progress(text: Any) -> tuple[int, int] | None:
    """Argo's ``status.progress`` (``"2/4"``)."""
    if not isinstance(text, str) or "/" not in text:
        return None
    done, _, total = text.partition("/")
    try:
        return int(done), int(total)
    except ValueError:
        return None


def nodes_of(status: dict[str, Any]) -> list[dict[str, JsonValue]]:
    """The Pod nodes, trimmed to what people read, in start order."""
    found: list[dict[str, JsonValue]] = []
    for node in (status.get("nodes") or {}).values():
        if not isinstance(node, dict) or node.get("type") != "Pod":
            continue
        found.append(
            {
                "name": node.get("displayName") or node.get("name"),
                "phase": node.get("phase") or "Pending",
                "started_at": node.get("startedAt"),
                "finished_at": node.get("finishedAt"),
                "message": node.get("message"),
            }
        )
    return sorted(found, key=lambda n: (str(n["started_at"] or "~"), str(n["name"])))


def parse_registered_model(text: str | None, *, where: str) -> RegisteredModel | None:
    """register's ``model-version.json``; a missing or unreadable one is logged and ignored
    (the pipeline's outcome stands, the gateway then deploys by its template)."""
    if not text:
        return None
    try:
        return RegisteredModel.model_validate(json.loads(text))
    except (ValueError, ValidationError) as exc:
        _log.warning("registered_model_unreadable", where=where, error=str(exc)[:500])
        return None


def _registered_model(obj: dict[str, Any]) -> RegisteredModel | None:
    """The ``model-version`` output parameter of the succeeded register node, if any."""
    for node in ((obj.get("status") or {}).get("nodes") or {}).values():
        if not isinstance(node, dict) or node.get("phase") != "Succeeded":
            continue
        for parameter in (node.get("outputs") or {}).get("parameters") or []:
            if isinstance(parameter, dict) and parameter.get("name") == (
                names.MODEL_VERSION_PARAMETER
            ):
                name = (obj.get("metadata") or {}).get("name")
                return parse_registered_model(parameter.get("value"), where=f"workflow {name}")
    return None


def _failure(status: dict[str, Any], nodes: list[dict[str, JsonValue]], phase: str) -> str:
    if status.get("message"):
        return str(status["message"])
    for node in nodes:
        if node["phase"] in ("Failed", "Error") and node["message"]:
            return f"{node['name']}: {node['message']}"
    return f"the workflow ended in phase {phase}"


def observe_workflow(obj: dict[str, Any]) -> Observed:
    """The phase and progress of a live Workflow."""
    status = obj.get("status") or {}
    argo_phase = str(status.get("phase") or "")
    terminated = bool((obj.get("spec") or {}).get("shutdown"))
    nodes = nodes_of(status)
    parsed = _parse_progress(status.get("progress"))
    if parsed is not None:
        done, total = parsed
    else:
        done = sum(1 for n in nodes if n["phase"] == "Succeeded")
        total = max(steps_total(obj), len(nodes))
    times = {"started_at": status.get("startedAt"), "finished_at": status.get("finishedAt")}
    common: dict[str, Any] = {
        "done": done,
        "total": total,
        "nodes": nodes,
        "registered_model": _registered_model(obj),
        **times,
    }
    if argo_phase == "Succeeded":
        return Observed(Phase.SUCCEEDED, None, **common)
    if argo_phase in ("Failed", "Error"):
        why = _failure(status, nodes, argo_phase)
        if terminated:
            return Observed(Phase.CANCELLED, f"terminated: {why}", **common)
        return Observed(Phase.FAILED, why, **common)
    if argo_phase == "Running":
        reason = "termination requested" if terminated else None
        return Observed(Phase.RUNNING, reason, terminating=terminated, **common)
    if terminated:
        return Observed(Phase.PENDING, "termination requested", terminating=True, **common)
    waiting = status.get("message") or "waiting for the Argo controller"
    return Observed(Phase.PENDING, str(waiting), **common)


CANCELLED_ANNOTATION = f"{names.PREFIX}cancelled"
"""Set on the built-in Jobs of a cancelled pipeline (with ``suspend: true``)."""


def _stage_index(job: dict[str, Any]) -> int:
    notes = (job.get("metadata") or {}).get("annotations") or {}
    try:
        return int(notes.get(names.STAGE_INDEX_ANNOTATION, 0))
    except ValueError:
        return 0


def sort_stages(jobs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The built-in Jobs of one pipeline in stage order."""
    return sorted(jobs, key=_stage_index)


def _job_node(job: dict[str, Any]) -> dict[str, JsonValue]:
    status = job.get("status") or {}
    labels = (job.get("metadata") or {}).get("labels") or {}
    conditions = {c.get("type"): c for c in status.get("conditions") or [] if isinstance(c, dict)}
    failed = conditions.get("Failed") or {}
    complete = conditions.get("Complete") or {}
    node: dict[str, JsonValue] = {
        "name": labels.get(names.STAGE_LABEL) or (job.get("metadata") or {}).get("name"),
        "phase": "Pending",
        "started_at": status.get("startTime"),
        "finished_at": None,
        "message": None,
    }
    if complete.get("status") == "True" or int(status.get("succeeded") or 0) > 0:
        node.update(phase="Succeeded", finished_at=status.get("completionTime"))
    elif failed.get("status") == "True":
        why = ": ".join(str(failed[k]) for k in ("reason", "message") if failed.get(k))
        node.update(phase="Failed", finished_at=failed.get("lastTransitionTime"), message=why)
    elif int(status.get("active") or 0) > 0 or status.get("startTime"):
        node["phase"] = "Running"
    return node


def _cancelled(job: dict[str, Any]) -> bool:
    notes = (job.get("metadata") or {}).get("annotations") or {}
    return notes.get(CANCELLED_ANNOTATION) == "true"


def observe_jobs(jobs: list[dict[str, Any]]) -> Observed:
    """The phase and progress of the built-in pipeline (its stage Jobs)."""
    ordered = sort_stages(jobs)
    nodes = [_job_node(j) for j in ordered]
    cancelled = any(_cancelled(j) for j in ordered)
    active = any(int((j.get("status") or {}).get("active") or 0) > 0 for j in ordered)
    done = sum(1 for n in nodes if n["phase"] == "Succeeded")
    total = len(names.STAGES)
    started = next((n["started_at"] for n in nodes if n["started_at"]), None)
    last_finish = max((str(n["finished_at"]) for n in nodes if n["finished_at"]), default=None)
    common: dict[str, Any] = {"done": done, "total": total, "nodes": nodes, "started_at": started}
    failed = next((n for n in nodes if n["phase"] == "Failed"), None)
    if failed is not None:
        why = f"{failed['name']}: {failed['message'] or 'failed'}"
        phase = Phase.CANCELLED if cancelled else Phase.FAILED
        return Observed(phase, why, finished_at=last_finish, **common)
    if done == total and ordered:
        return Observed(Phase.SUCCEEDED, None, finished_at=last_finish, **common)
    if cancelled:
        if active:
            return Observed(Phase.RUNNING, "termination requested", terminating=True, **common)
        return Observed(Phase.CANCELLED, "terminated", finished_at=last_finish, **common)
    if any(n["phase"] == "Running" for n in nodes) or done:
        return Observed(Phase.RUNNING, None, **common)
    return Observed(Phase.PENDING, "waiting for the first stage to start", **common)


def next_stage_to_resume(jobs: list[dict[str, Any]]) -> str | None:
    """The suspended Job whose predecessor has succeeded (the built-in sequencer), if any."""
    ordered = sort_stages(jobs)
    if any(_cancelled(j) for j in ordered):
        return None
    previous_done = True
    for job in ordered:
        node = _job_node(job)
        if (job.get("spec") or {}).get("suspend") and previous_done:
            return str((job.get("metadata") or {}).get("name"))
        previous_done = node["phase"] == "Succeeded"
    return None
