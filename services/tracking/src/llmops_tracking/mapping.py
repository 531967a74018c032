"""How a submitted training job maps onto a tracked run (experiment, run name, params, tags),
and a tracked run onto its ``experiment_run`` report.

Pure functions of the event and the settings, so every delivery of one event asks the backend
for exactly the same run (the reliability contract's "deterministic external names"). The
report's ``details`` (:class:`~llmops_shared.events.payloads.details.ExperimentRunDetails`,
built by :func:`run_details`) is what the gateway folds into its run record (see
docs/tracking.md).
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import partial
from typing import Final

from pydantic import JsonValue

from llmops_shared.events import (
    Envelope,
    Event,
    Phase,
    StatusEntity,
    TrainingJobSubmitted,
    reply_status,
)
from llmops_shared.events.payloads.details import ExperimentRunDetails
from llmops_shared.specs import TrainJobSpec
from llmops_tracking.ports import RunRequest, RunStatus, TrackedRun

TAG_PREFIX: Final = "llmops."
JOB_ID_TAG: Final = "llmops.job_id"
CANCEL_REASON_TAG: Final = "llmops.cancel_reason"
REPORTER: Final = "tracking"

PHASES: Final = {
    RunStatus.SCHEDULED: Phase.PENDING,
    RunStatus.RUNNING: Phase.RUNNING,
    RunStatus.FINISHED: Phase.SUCCEEDED,
    RunStatus.FAILED: Phase.FAILED,
    RunStatus.KILLED: Phase.CANCELLED,
}
"""The status phase that reports a run in each tracking status."""

run_status: Final = partial(reply_status, StatusEntity.EXPERIMENT_RUN, reporter=REPORTER)
"""The ``experiment_run`` status event (entity id = run id) answering a handled event."""


def run_name(job_id: str) -> str:
    """Same name as the job's Argo workflow (``train-<job_id>``), so the two are easy to join."""
    return f"train-{job_id}"


def experiment_name(template: str, *, environment: str, spec: TrainJobSpec) -> str:
    """The job's experiment from ``EXPERIMENT_NAME_TEMPLATE`` (placeholders checked at start)."""
    return template.format(
        environment=environment, job_type=spec.job_type.value, model_family=spec.model_family
    )


def flatten_params(spec: TrainJobSpec) -> dict[str, str]:
    """The spec as MLflow params: dotted keys, string values, ``None`` left out.

    Values are ``str()`` of the JSON value (``0.0001``, ``4``, ``True``), as ``mlflow.log_params``
    would write them, so a run logged by hand from the same spec compares equal.
    """
    flat: dict[str, str] = {}
    _flatten(spec.model_dump(mode="json"), "", flat)
    return flat


def _flatten(value: JsonValue, prefix: str, out: dict[str, str]) -> None:
    if isinstance(value, dict):
        for key, item in value.items():
            _flatten(item, f"{prefix}{key}.", out)
    elif value is not None:
        out[prefix.removesuffix(".")] = str(value)


def run_tags(job: TrainingJobSubmitted, *, environment: str) -> dict[str, str]:
    """Tags to find and filter runs by: the job, its data, its model, where it ran."""
    spec = job.spec
    tags: Mapping[str, str | None] = {
        JOB_ID_TAG: job.job_id,
        "llmops.job_type": spec.job_type.value,
        "llmops.model_family": spec.model_family,
        "llmops.model_id": job.model_id,
        "llmops.base_model": spec.base_model_ref,
        "llmops.dataset": f"{spec.dataset_ref.name}@{spec.dataset_ref.version}",
        "llmops.dataset_id": job.dataset_id,
        "llmops.artifact_name": spec.output.artifact_name,
        "llmops.environment": environment,
    }
    return {key: value for key, value in tags.items() if value is not None}


def run_request(
    job: TrainingJobSubmitted, *, environment: str, experiment_name_template: str
) -> RunRequest:
    """Everything the backend needs to create (or find) the job's run."""
    return RunRequest(
        job_id=job.job_id,
        experiment_name=experiment_name(
            experiment_name_template, environment=environment, spec=job.spec
        ),
        run_name=run_name(job.job_id),
        params=flatten_params(job.spec),
        tags=run_tags(job, environment=environment),
    )


def run_status_event(
    event: Event, run: TrackedRun, *, job_id: str, backend: str, reason: str | None = None
) -> Envelope:
    """The ``experiment_run`` status event reporting ``run``, correlated with ``event``."""
    details = run_details(run, job_id=job_id, backend=backend)
    return run_status(
        event, run.run_id, PHASES[run.status], reason=reason or run.note, details=details
    )


def run_details(run: TrackedRun, *, job_id: str, backend: str) -> ExperimentRunDetails:
    """The ``details`` of the status event: the gateway's run record, field for field."""
    return ExperimentRunDetails(
        job_id=job_id,
        experiment_id=run.experiment_id,
        experiment_name=run.experiment_name,
        run_url=run.run_url,
        backend=backend,
        params=dict(run.params),
        tags=dict(run.tags),
    )
