"""Re-checking stored training jobs and serving endpoints against today's rules.

Rules change (a family leaves the whitelist, a catalog model's ``max_position_embeddings`` is
corrected, dataset versions become mandatory), and records accepted under the old rules stay in
the database. These functions re-run, over the stored specs, exactly what submission runs:

1. the spec's schema rules and field constraints (``train_job_spec_violations`` /
   ``deployment_spec_violations`` of :mod:`llmops_shared.specs`): a spec that no longer parses
   under today's models is reported with pydantic's error text, never raised;
2. when the spec still parses, the catalog rules with the facts looked up now
   (:func:`llmops_gateway.domain.training.check_job_against_catalog` and
   :func:`llmops_gateway.domain.serving.deployment_violations`, the very functions the API
   calls): family and context-window checks against the catalog model, which must be Ready,
   the dataset's type and versions, the producing training job of a deployed model.

Messages are the rules' own (worded as in the integration quickstart's list of common validation
errors: ``Model family 'x' is not supported``...).
Locations are relative to the stored spec (``dataset_ref.type``), except ``modelId`` for the
endpoint's catalog model. With ``mark=True`` the result is written on each checked row
(``violations``: a JSON list, ``[]`` when clean; ``validated_at``), leaving ``updated_at``
alone: re-validation does not change the record. The caller owns the transaction.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final, ParamSpec, TypeVar

from sqlalchemy import select, update
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from llmops_gateway.db import repository
from llmops_gateway.db.models import ServingDeployment, TrainingJob, utcnow
from llmops_gateway.domain.errors import NotFoundError
from llmops_gateway.domain.serving import DELETE_STATES, deployment_violations
from llmops_gateway.domain.training import check_job_against_catalog
from llmops_shared.specs import (
    DeploymentSpec,
    RuleViolation,
    TrainJobSpec,
    deployment_spec_violations,
    train_job_spec_violations,
)

CHECK_FAILED: Final = "check_failed"
"""The rule name of a record the rules themselves could not be run on (an unexpected error)."""

_SPEC_PREFIX: Final = ("deploymentSpec",)

_P = ParamSpec("_P")
_Record = TypeVar("_Record", TrainingJob, ServingDeployment)


@dataclass(frozen=True, slots=True)
class Violation:
    """One broken rule of a stored record, as reported and as stored in ``violations``."""

    loc: tuple[str | int, ...]
    message: str
    rule: str
    type: str

    @classmethod
    def of(cls, violation: RuleViolation) -> Violation:
        loc = violation.loc
        if loc[: len(_SPEC_PREFIX)] == _SPEC_PREFIX:  # deployment rules speak of the body
            loc = loc[len(_SPEC_PREFIX) :]
        return cls(loc, violation.message, violation.rule, violation.error_type)

    @property
    def field(self) -> str:
        """The location as ``dataset_ref.type``; ``(spec)`` for the spec as a whole."""
        return ".".join(str(part) for part in self.loc) or "(spec)"

    def as_json(self) -> dict[str, Any]:
        return {
            "loc": list(self.loc),
            "message": self.message,
            "rule": self.rule,
            "type": self.type,
        }


@dataclass(frozen=True, slots=True)
class RecordReport:
    """One checked record: what identifies it to a person, and what it breaks.

    ``name`` is the job's ``output.artifact_name`` (None when the stored spec has none) or the
    endpoint's InferenceService name. ``catalog_checked`` is false when the spec itself is
    invalid, so the catalog rules (which need a parsed spec) could not run yet.
    """

    id: str
    name: str | None
    status: str
    violations: tuple[Violation, ...]
    catalog_checked: bool
    environment: str | None = None
    route: str | None = None

    @property
    def ok(self) -> bool:
        return not self.violations

    def as_json(self) -> dict[str, Any]:
        document: dict[str, Any] = {"id": self.id, "name": self.name, "status": self.status}
        if self.environment is not None:
            document["environment"] = self.environment
        if self.route is not None:
            document["route"] = self.route
        document["violations"] = [v.as_json() for v in self.violations]
        document["catalogChecked"] = self.catalog_checked
        return document


@dataclass(frozen=True, slots=True)
class SkippedRecord:
    """A record left out of a full run, and why."""

    id: str
    name: str | None
    status: str
    reason: str

    def as_json(self) -> dict[str, Any]:
        return {"id": self.id, "name": self.name, "status": self.status, "reason": self.reason}


@dataclass(frozen=True, slots=True)
class Revalidation:
    """The result of one run over one kind of record (oldest record first)."""

    entity: str
    """``training job`` or ``serving endpoint``."""
    records: tuple[RecordReport, ...]
    skipped: tuple[SkippedRecord, ...]
    validated_at: datetime
    marked: bool

    @property
    def checked(self) -> int:
        return len(self.records)

    @property
    def with_violations(self) -> tuple[RecordReport, ...]:
        return tuple(record for record in self.records if not record.ok)

    @property
    def ok(self) -> bool:
        return not self.with_violations

    def summary(self) -> str:
        """``3 training jobs checked, 1 with violations`` (+ skipped, + marked)."""
        failing = len(self.with_violations)
        line = f"{_plural(self.checked, self.entity)} checked, {failing} with violations"
        if self.skipped:
            states = sorted({record.status for record in self.skipped})
            line += f"; {len(self.skipped)} skipped ({', '.join(states)})"
        if self.marked:
            line += f"; marked {_plural(self.checked, 'record')} (violations, validated_at)"
        return line

    def as_json(self) -> dict[str, Any]:
        return {
            "entity": self.entity,
            "checked": self.checked,
            "withViolations": len(self.with_violations),
            "marked": self.marked,
            "validatedAt": self.validated_at.isoformat(),
            "records": [record.as_json() for record in self.records],
            "skipped": [record.as_json() for record in self.skipped],
        }


def _plural(count: int, noun: str) -> str:
    return f"{count} {noun}" if count == 1 else f"{count} {noun}s"


# --- training jobs --------------------------------------------------------------------------


def training_job_violations(
    session: Session, spec: Any, *, require_dataset_version: bool
) -> tuple[list[RuleViolation], bool]:
    """What a stored TrainJobSpec breaks today, and whether the catalog rules could run."""
    violations = train_job_spec_violations(spec)
    if violations:
        return violations, False
    parsed = TrainJobSpec.model_validate(spec)
    check = check_job_against_catalog(
        session, parsed, require_dataset_version=require_dataset_version
    )
    return check.violations, True


def revalidate_training_jobs(
    session: Session,
    *,
    job_id: str | None = None,
    require_dataset_version: bool = True,
    mark: bool = False,
    now: datetime | None = None,
) -> Revalidation:
    """Check every stored training job (or only ``job_id``: :class:`NotFoundError` when there
    is none); ``require_dataset_version`` is the gateway's ``TRAINING_REQUIRES_DATASET_VERSION``.
    """
    reports = []
    for job in _stored(session, TrainingJob, "training job", job_id):
        violations, catalog_checked = _guarded(
            training_job_violations,
            session,
            job.spec,
            require_dataset_version=require_dataset_version,
        )
        reports.append(
            RecordReport(
                id=job.id,
                name=_artifact_name(job.spec),
                status=job.status,
                violations=tuple(Violation.of(v) for v in violations),
                catalog_checked=catalog_checked,
            )
        )
    return _finish(session, TrainingJob, "training job", reports, (), mark=mark, now=now)


def _artifact_name(spec: Any) -> str | None:
    output = spec.get("output") if isinstance(spec, dict) else None
    name = output.get("artifact_name") if isinstance(output, dict) else None
    return name if isinstance(name, str) else None


# --- serving endpoints ----------------------------------------------------------------------


def endpoint_violations(
    session: Session, endpoint: ServingDeployment
) -> tuple[list[RuleViolation], bool]:
    """What a stored endpoint's DeploymentSpec breaks today (with its catalog model and the
    training job that produced ``model_ref``, as at creation), and whether the catalog rules
    could run."""
    violations = deployment_spec_violations(endpoint.spec)
    if violations:
        return violations, False
    spec = DeploymentSpec.model_validate(endpoint.spec)
    model = repository.catalog_model_by_id_or_name(session, endpoint.model_id)
    producing_job = repository.training_job_producing(session, spec.model_ref)
    return deployment_violations(spec, endpoint.model_id, model, producing_job), True


def revalidate_serving_endpoints(
    session: Session,
    *,
    endpoint_id: str | None = None,
    mark: bool = False,
    now: datetime | None = None,
) -> Revalidation:
    """Check every stored serving endpoint (or only ``endpoint_id``: :class:`NotFoundError`
    when there is none).

    A full run skips endpoints being deleted (Deleting, DeleteFailed): they are going away and
    nothing will be deployed from their spec again. Named with ``endpoint_id``, one is checked.
    """
    skipped: list[SkippedRecord] = []
    reports = []
    for endpoint in _stored(session, ServingDeployment, "serving endpoint", endpoint_id):
        if endpoint_id is None and endpoint.status in DELETE_STATES:
            skipped.append(
                SkippedRecord(endpoint.id, endpoint.endpoint_name, endpoint.status, "being deleted")
            )
            continue
        violations, catalog_checked = _guarded(endpoint_violations, session, endpoint)
        reports.append(
            RecordReport(
                id=endpoint.id,
                name=endpoint.endpoint_name,
                status=endpoint.status,
                violations=tuple(Violation.of(v) for v in violations),
                catalog_checked=catalog_checked,
                environment=endpoint.environment,
                route=endpoint.route,
            )
        )
    return _finish(
        session, ServingDeployment, "serving endpoint", reports, tuple(skipped), mark=mark, now=now
    )


# --- shared ---------------------------------------------------------------------------------


def _stored(
    session: Session, table: type[_Record], entity: str, record_id: str | None
) -> Sequence[_Record]:
    """The record ``record_id`` of ``table`` (:class:`NotFoundError` when there is none), or
    every one, oldest first."""
    if record_id is not None:
        record = session.get(table, record_id)
        if record is None:
            raise NotFoundError(f"{entity} {record_id} not found")
        return [record]
    return session.scalars(select(table).order_by(table.created_at, table.id)).all()


def _guarded(
    check: Callable[_P, tuple[list[RuleViolation], bool]], *args: _P.args, **kwargs: _P.kwargs
) -> tuple[list[RuleViolation], bool]:
    """Run one record's check; an unexpected error in a rule becomes that record's violation
    (a database error still stops the run: the transaction is gone)."""
    try:
        return check(*args, **kwargs)
    except SQLAlchemyError:
        raise
    except Exception as exc:  # noqa: BLE001 - one odd record must not stop the others
        message = f"the rules could not be run on this record: {type(exc).__name__}: {exc}"
        return [RuleViolation((), message, CHECK_FAILED, CHECK_FAILED)], False


def _finish(
    session: Session,
    table: type[TrainingJob] | type[ServingDeployment],
    entity: str,
    reports: list[RecordReport],
    skipped: tuple[SkippedRecord, ...],
    *,
    mark: bool,
    now: datetime | None,
) -> Revalidation:
    validated_at = now or utcnow()
    if mark:
        for report in reports:
            session.execute(
                update(table)
                .where(table.id == report.id)
                .values(
                    violations=[v.as_json() for v in report.violations],
                    validated_at=validated_at,
                    updated_at=table.updated_at,  # not a change of the record: keep it
                )
                .execution_options(synchronize_session=False)
            )
        session.expire_all()  # the loaded rows no longer show what is stored
    return Revalidation(entity, tuple(reports), skipped, validated_at, marked=mark)
