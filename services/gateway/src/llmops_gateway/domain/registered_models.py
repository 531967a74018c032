"""The model a training job produced: recorded from its pipeline's reports, served as is.

A pipeline's ``register`` stage creates the job's MLflow model version; from then on the
workflow worker's pipeline reports carry it as ``details.registered_model``
(:class:`~llmops_shared.events.payloads.training.RegisteredModel`). The gateway keeps it on the
training job, so that an endpoint serving the job's artifact (``DeploymentSpec.model_ref`` =
the job's ``output.artifact_name``) is given exactly the files the job trained
(``DeploymentRequested.storage_uri``), not a location derived from the name by a template,
which may hold another run's model or nothing at all.
"""

from __future__ import annotations

from typing import Any, Final

from sqlalchemy import or_, update
from sqlalchemy.orm import Session

from llmops_gateway.db.models import TrainingJob, utcnow
from llmops_shared.events import Phase
from llmops_shared.events.payloads.training import RegisteredModel
from llmops_shared.specs import DeploymentSpec, RuleViolation

MODEL_REF_REGISTERED: Final = "model_ref_registered"
"""The rule: an endpoint may serve a job's artifact only once the job registered it."""

_SUCCEEDED: Final = Phase.SUCCEEDED.value

REGISTERING_BACKENDS: Final = frozenset({"argo", "local"})
"""Pipeline backends that report what register created (the built-in Jobs have no output
parameters, and the GitOps manifests backend observes nothing)."""

_COLUMNS: Final = {
    "name": "registered_model_name",
    "version": "registered_model_version",
    "run_id": "model_run_id",
    "source": "model_source",
    "storage_uri": "model_storage_uri",
}
"""Each field of a :class:`RegisteredModel` -> the training job's column that keeps it."""


def record_registered_model(
    session: Session, job_id: str | None, model: RegisteredModel, seq: int
) -> bool:
    """Keep ``model`` on the training job ``job_id``, unless the job holds one from a report
    at least as new (``registered_model_seq``): pipelines report it on every report after the
    ``register`` stage, and a job may be reported on by more than one pipeline, so the job
    keeps its own order. A report without a registered model never reaches here, so it never
    erases one. The job's status is not touched. True when the job changed."""
    if job_id is None:
        return False
    result = session.execute(
        update(TrainingJob)
        .where(
            TrainingJob.id == job_id,
            or_(TrainingJob.registered_model_seq.is_(None), TrainingJob.registered_model_seq < seq),
        )
        .values(
            **{column: getattr(model, field) for field, column in _COLUMNS.items()},
            registered_model_seq=seq,
            updated_at=utcnow(),
        )
        .execution_options(synchronize_session=False)
    )
    return bool(getattr(result, "rowcount", 0))


def registered_model(job: TrainingJob) -> dict[str, Any] | None:
    """The model ``job`` registered, by :class:`RegisteredModel`'s field names; None while its
    pipeline reported none."""
    if job.registered_model_name is None or job.model_storage_uri is None:
        return None
    return {field: getattr(job, column) for field, column in _COLUMNS.items()}


def artifact_violations(
    spec: DeploymentSpec, job: TrainingJob | None, pipeline_backend: str | None
) -> list[RuleViolation]:
    """The rule ``model_ref_registered``, located at ``deploymentSpec.model_ref``: when a
    training job still Pending or Running produces ``model_ref`` (and no Succeeded one does,
    see :func:`llmops_gateway.db.repository.training_job_producing`), nothing can be served
    yet: the model does not exist until the job's ``register`` stage created it. Nor when the
    job Succeeded on a pipeline backend that reports its model (``pipeline_backend``) but no
    model was reported: serving a location guessed from the name would not be that model.

    Checked when an endpoint is created only: an endpoint stored earlier is not wrong because
    a job producing the same name was submitted since (``validate serving-endpoints`` does not
    apply it).
    """
    if job is None:
        return []
    if job.status != _SUCCEEDED:
        why = (
            f"which is {job.status}: deploy it once the job has Succeeded and registered the model"
        )
    elif job.model_storage_uri is None and pipeline_backend in REGISTERING_BACKENDS:
        why = (
            f"which Succeeded but its {pipeline_backend} pipeline reported no registered model "
            "version: see the job's pipeline (register's model-version record)"
        )
    else:
        return []
    return [
        RuleViolation(
            ("deploymentSpec", "model_ref"),
            f"model_ref '{spec.model_ref}' is the artifact of training job {job.id}, {why}",
            MODEL_REF_REGISTERED,
            input=spec.model_ref,
        )
    ]


def served_storage_uri(job: TrainingJob | None) -> str | None:
    """Where the artifact an endpoint serves is: the registered model's ``storage_uri`` of the
    Succeeded job producing it; None without such a job, or for a job that registered nothing
    (an older pipeline, the GitOps manifests backend): the serving worker then resolves
    ``model_ref`` with its template, as before."""
    if job is None or job.status != _SUCCEEDED:
        return None
    return job.model_storage_uri
