"""Submitting and cancelling training jobs: state row and event in one transaction.

The event goes to the outbox inside the same transaction as the row, so a job exists if and
only if its ``TrainingJobSubmitted`` will be published (the relay does that after commit).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Final

from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from llmops_gateway.db import repository
from llmops_gateway.db.models import (
    CatalogDataset,
    CatalogModel,
    TrainingJob,
    WorkflowPipeline,
    utcnow,
)
from llmops_gateway.db.session import SessionFactory
from llmops_gateway.domain.catalog import usable_facts
from llmops_gateway.domain.errors import CatalogRuleError, ConflictError, found
from llmops_gateway.domain.locations import dataset_version_pin, model_location
from llmops_gateway.domain.outbox import publish
from llmops_gateway.openlineage.record import record_cancel
from llmops_shared.events import (
    Phase,
    TrainingJobCancelled,
    TrainingJobSubmitted,
    new_seq,
)
from llmops_shared.specs import (
    DatasetFacts,
    RuleViolation,
    TrainJobSpec,
    check_train_job_against_catalog,
)

TERMINAL_PHASES: Final = frozenset({Phase.SUCCEEDED, Phase.FAILED, Phase.CANCELLED})
"""A job in one of these phases cannot be cancelled any more."""


@dataclass(frozen=True, slots=True)
class SubmitTrainingJob:
    """A validated submission (the spec passed its schema rules already)."""

    spec: TrainJobSpec
    model_id: str | None
    dataset_id: str | None
    job_type: str | None
    correlation_id: str
    idempotency_key: str | None = None
    request_hash: str | None = None
    require_dataset_version: bool = True
    """``dataset_ref`` must name a Succeeded version of a catalog dataset (else: when known)."""


def submit_training_job(sessions: SessionFactory, command: SubmitTrainingJob) -> TrainingJob:
    """Check the catalog rules, then store the job (Pending) and its event.

    With an idempotency key, a repeated request returns the job the first one created (even
    when two race: the loser's insert hits the unique key and it reads the winner's job); the
    same key with a different body is a :class:`ConflictError`.
    """
    try:
        with sessions.begin() as session:
            if command.idempotency_key is not None:
                existing = repository.training_job_by_idempotency_key(
                    session, command.idempotency_key
                )
                if existing is not None:
                    return _replayed(existing, command)
            return _insert_job(session, command)
    except IntegrityError:
        if command.idempotency_key is None:
            raise
        with sessions() as session:
            existing = repository.training_job_by_idempotency_key(session, command.idempotency_key)
        if existing is None:
            raise
        return _replayed(existing, command)


def _replayed(job: TrainingJob, command: SubmitTrainingJob) -> TrainingJob:
    if job.request_hash != command.request_hash:
        raise ConflictError(
            f"Idempotency-Key '{command.idempotency_key}' was already used with a different "
            f"request (job {job.id})"
        )
    return job


@dataclass(frozen=True, slots=True)
class CatalogCheck:
    """The catalog rules' verdict on a spec, and the catalog entries the spec names."""

    violations: list[RuleViolation]
    base_model: CatalogModel | None
    dataset: CatalogDataset | None


def check_job_against_catalog(
    session: Session, spec: TrainJobSpec, *, require_dataset_version: bool
) -> CatalogCheck:
    """Look up the facts the catalog rules need and apply them (reads only): used at
    submission and by ``validate training-jobs`` on stored jobs."""
    base_model = None
    base_model_facts = None
    not_ready: list[RuleViolation] = []
    if spec.base_model_ref is not None:
        base_model = repository.catalog_model_by_name(session, spec.base_model_ref)
        if base_model is not None:
            base_model_facts, not_ready = usable_facts(
                base_model, ("base_model_ref",), spec.base_model_ref
            )
    dataset = repository.catalog_dataset_by_name(session, spec.dataset_ref.name)
    dataset_facts = None
    if dataset is not None:
        versions = repository.dataset_version_labels(session, dataset.id)
        dataset_facts = DatasetFacts(dataset.name, dataset.type, versions)
    elif require_dataset_version:  # unknown dataset: none of its versions exist
        dataset_facts = DatasetFacts(spec.dataset_ref.name, None)
    violations = check_train_job_against_catalog(spec, base_model_facts, dataset_facts)
    if not_ready:  # the model exists, it just cannot be used yet: say that, not "not found"
        violations = not_ready + [v for v in violations if v.rule != "base_model_exists"]
    return CatalogCheck(violations, base_model, dataset)


def _insert_job(session: Session, command: SubmitTrainingJob) -> TrainingJob:
    """Insert the job and queue its event, which tells the workers exactly what to read: the
    base model's location and the pinned dataset version, both resolved now from the catalog
    (see :mod:`llmops_gateway.domain.locations`)."""
    spec = command.spec
    check = check_job_against_catalog(
        session, spec, require_dataset_version=command.require_dataset_version
    )
    if check.violations:
        raise CatalogRuleError(check.violations)
    base_model, dataset = check.base_model, check.dataset

    pin = None if dataset is None else dataset_version_pin(session, dataset, spec.dataset_ref)
    now = utcnow()
    job = TrainingJob(
        id=str(uuid.uuid4()),
        model_id=command.model_id,
        dataset_id=command.dataset_id,
        job_type=command.job_type,
        spec=spec.model_dump(mode="json"),
        status=Phase.PENDING.value,
        reason=None,
        status_seq=0,
        correlation_id=command.correlation_id,
        idempotency_key=command.idempotency_key,
        request_hash=command.request_hash,
        dataset_version_id=None if pin is None else pin.version_id,
        created_at=now,
        updated_at=now,
    )
    session.add(job)
    session.flush()  # the idempotency key's unique index speaks now, not at commit
    payload = TrainingJobSubmitted(
        job_id=job.id,
        model_id=base_model.id if base_model is not None else None,
        dataset_id=dataset.id if dataset is not None else None,
        spec=spec,
        base_model_uri=None if base_model is None else model_location(session, base_model),
        dataset_version=pin,
    )
    publish(session, payload, command.correlation_id)
    return job


def cancel_training_job(
    sessions: SessionFactory,
    job_id: str,
    *,
    reason: str,
    correlation_id: str,
    openlineage: bool = False,
) -> TrainingJob:
    """Mark the job Cancelled and tell the workers, in one transaction (with ``openlineage``,
    the ``ABORT`` of its run too).

    The job's ``status_seq`` becomes now, so a worker's report observed before the cancel (a
    late "Running") cannot resurrect it.
    """
    with sessions.begin() as session:
        job = session.get(TrainingJob, job_id, with_for_update=True)
        job = found(job, f"training job {job_id}")
        if job.status in TERMINAL_PHASES:
            raise ConflictError(f"training job {job_id} is already {job.status}")
        job.status = Phase.CANCELLED.value
        job.reason = reason
        job.status_seq = max(new_seq(), job.status_seq + 1)
        job.updated_at = utcnow()
        publish(session, TrainingJobCancelled(job_id=job.id, reason=reason), correlation_id)
        if openlineage:
            record_cancel(session, job.id, job.updated_at)
    return job


def get_training_job(sessions: SessionFactory, job_id: str) -> TrainingJob:
    """The job, or :class:`~llmops_gateway.domain.errors.NotFoundError`."""
    with sessions() as session:
        return found(session.get(TrainingJob, job_id), f"training job {job_id}")


JobAndPipeline = tuple[TrainingJob, WorkflowPipeline | None]
"""A job and the newest pipeline the workflow worker reported for it (None before)."""


def with_pipeline(sessions: SessionFactory, job: TrainingJob) -> JobAndPipeline:
    """``job`` and its pipeline, as it is now."""
    with sessions() as session:
        return job, repository.pipelines_of_jobs(session, [job.id]).get(job.id)


def list_training_jobs(
    sessions: SessionFactory, *, limit: int, offset: int
) -> list[JobAndPipeline]:
    """One page of jobs, newest first, each with its pipeline."""
    with sessions() as session:
        jobs = repository.list_training_jobs(session, limit=limit, offset=offset)
        pipelines = repository.pipelines_of_jobs(session, [job.id for job in jobs])
    return [(job, pipelines.get(job.id)) for job in jobs]
