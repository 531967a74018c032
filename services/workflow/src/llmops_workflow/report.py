"""Status events about pipelines and jobs: one shape for the handlers and the watcher.

The gateway folds these field for field, so they are a contract with it (docs/workflow.md):

* ``pipeline`` (entity id = workflow name ``train-<job_id>``), ``details`` =
  :class:`~llmops_shared.events.payloads.details.PipelineDetails` (``registered_model``: the
  model version register created, else null);
* ``job`` (entity id = job id), the same phase (Pending, Running, Succeeded, Failed,
  Cancelled) and reason, no details, so the job's own status moves with its pipeline.
"""

from __future__ import annotations

from functools import partial
from typing import Any, Final

from llmops_shared.events import Envelope, Phase, StatusEntity, status_event
from llmops_shared.events.payloads.details import PipelineDetails, PipelineNode, PipelineProgress
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
) -> PipelineDetails:
    """The ``details`` of a pipeline status event."""
    return PipelineDetails(
        job_id=job_id,
        workflow_name=workflow_name,
        namespace=namespace,
        backend=backend,
        progress=PipelineProgress.model_validate(
            observed.progress if observed else {"done": 0, "total": 0}
        ),
        nodes=[PipelineNode.model_validate(node) for node in observed.nodes] if observed else [],
        started_at=observed.started_at if observed else None,
        finished_at=observed.finished_at if observed else None,
        manifest=manifest,
        registered_model=observed.registered_model if observed is not None else None,
    )


pipeline_status: Final = partial(status_event, StatusEntity.PIPELINE, reporter=REPORTER)
"""A ``pipeline`` status event (entity id = workflow name, ``details`` from :func:`details`);
``seq`` defaults to now."""

job_status: Final = partial(status_event, StatusEntity.JOB, reporter=REPORTER)
"""A ``job`` status event (entity id = job id, no details); ``seq`` defaults to now."""


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
    job: bool = True,
) -> list[Envelope]:
    """The pipeline report and, when the phase is one a job has (and no termination is in
    flight, see :func:`reports_job`) and ``job`` is true, the job report; both with ``seq``
    (the observation time, default now)."""
    out = [
        pipeline_status(
            entity_id=workflow_name,
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
    if job and reports_job(observed):
        out.append(
            job_status(
                entity_id=job_id,
                phase=observed.phase,
                reason=observed.reason,
                correlation_id=correlation_id,
                seq=seq,
            )
        )
    return out


def reports_job(observed: Observed) -> bool:
    """Whether an observation is also the job's: a phase a job has, no termination in flight."""
    return observed.phase in JOB_PHASES and not observed.terminating
