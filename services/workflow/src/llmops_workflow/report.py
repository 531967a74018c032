"""Status events about pipelines and jobs: one shape for the handlers and the watcher.

The gateway folds these field for field, so they are a contract with it (docs/workflow.md):

* ``pipeline`` (entity id = workflow name ``train-<job_id>``), ``details`` =
  ``{job_id, workflow_name, namespace, backend, progress: {done, total}, nodes: [{name,
  phase, started_at, finished_at, message}], started_at, finished_at, manifest,
  registered_model}`` (``registered_model``: the model version register created, else null);
* ``job`` (entity id = job id), the same phase (Pending, Running, Succeeded, Failed,
  Cancelled) and reason, no details, so the job's own status moves with its pipeline.
"""

from __future__ import annotations

from typing import Any, Final

from pydantic import JsonValue

from llmops_shared.events import (
    REGISTERED_MODEL_DETAILS_KEY,
    Envelope,
    Phase,
    StatusEntity,
    status_event,
)
from llmops_workflow.render.status import Observed

REPORTER: Final = "workflow"

JOB_PHASES: Final = frozenset(
    {Phase.PENDING, Phase.RUNNING, Phase.SUCCEEDED, Phase.FAILED, Phase.CANCELLED}
)
"""Pipeline phases that are also the job's phase (``Deleted`` is the workflow's alone)."""


def details(
    *,
    job_id: str,
    workflow_name: str,
    namespace: str,
    backend: str,
    manifest: dict[str, Any] | None,
    observed: Observed | None = None,
) -> dict[str, JsonValue]:
    """The ``details`` of a pipeline status event."""
    return {
        "job_id": job_id,
        "workflow_name": workflow_name,
        "namespace": namespace,
        "backend": backend,
        "progress": observed.progress if observed else {"done": 0, "total": 0},
        "nodes": list(observed.nodes) if observed else [],
        "started_at": observed.started_at if observed else None,
        "finished_at": observed.finished_at if observed else None,
        "manifest": manifest,
        REGISTERED_MODEL_DETAILS_KEY: (
            observed.registered_model.model_dump(mode="json")
            if observed is not None and observed.registered_model is not None
            else None
        ),
    }


def pipeline_status(
    *,
    workflow_name: str,
    phase: Phase,
    reason: str | None,
    details: dict[str, JsonValue],
    correlation_id: str | None,
    seq: int | None = None,
) -> Envelope:
    """A ``pipeline`` status event (entity id = workflow name); ``seq`` defaults to now."""
    return status_event(
        StatusEntity.PIPELINE,
        entity_id=workflow_name,
        phase=phase,
        reporter=REPORTER,
        correlation_id=correlation_id,
        reason=reason,
        details=details,
        seq=seq,
    )


def job_status(
    *,
    job_id: str,
    phase: Phase,
    reason: str | None,
    correlation_id: str | None,
    seq: int | None = None,
) -> Envelope:
    """A ``job`` status event (entity id = job id); ``seq`` defaults to now."""
    return status_event(
        StatusEntity.JOB,
        entity_id=job_id,
        phase=phase,
        reporter=REPORTER,
        correlation_id=correlation_id,
        reason=reason,
        seq=seq,
    )


def reports(
    *,
    job_id: str,
    workflow_name: str,
    namespace: str,
    backend: str,
    manifest: dict[str, Any] | None,
    observed: Observed,
    correlation_id: str | None,
    seq: int | None = None,
) -> list[Envelope]:
    """The pipeline report and, when the phase is one a job has (and no termination is in
    flight), the job report; both with ``seq`` (the observation time, default now)."""
    out = [
        pipeline_status(
            workflow_name=workflow_name,
            phase=observed.phase,
            reason=observed.reason,
            details=details(
                job_id=job_id,
                workflow_name=workflow_name,
                namespace=namespace,
                backend=backend,
                manifest=manifest,
                observed=observed,
            ),
            correlation_id=correlation_id,
            seq=seq,
        )
    ]
    if observed.phase in JOB_PHASES and not observed.terminating:
        out.append(
            job_status(
                job_id=job_id,
                phase=observed.phase,
                reason=observed.reason,
                correlation_id=correlation_id,
                seq=seq,
            )
        )
    return out
