"""Serving endpoints: create, promote, roll back and delete, each with its event in one
transaction; and the rules a deployment is checked against.

As with training jobs, a state change and the event that tells the serving worker about it are
committed together (the outbox), so the read model never claims something the worker will not
hear about, and vice versa.

Deletion is two-phase, for safety: DELETE only marks the endpoint ``Deleting`` and publishes
``DeploymentDeleted``; the row (which holds the endpoint's name and route in its environment)
is removed by the status folding when the worker reports phase ``Deleted``, i.e. once the
cluster resource is really gone (see :mod:`llmops_gateway.domain.status`). A name or route is
therefore never handed out again while an old InferenceService may still answer under it.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from llmops_gateway.db import repository
from llmops_gateway.db.models import CatalogModel, ServingDeployment, TrainingJob, utcnow
from llmops_gateway.db.session import SessionFactory
from llmops_gateway.domain.catalog import usable_facts
from llmops_gateway.domain.errors import CatalogRuleError, ConflictError, NotFoundError, found
from llmops_gateway.domain.outbox import publish
from llmops_gateway.domain.registered_models import artifact_violations, served_storage_uri
from llmops_gateway.domain.serving_names import endpoint_name, max_name_length
from llmops_gateway.security.access import Authorize
from llmops_shared.events import (
    DeploymentRequested,
    Phase,
)
from llmops_shared.specs import (
    DeploymentSpec,
    JobType,
    ModelFacts,
    RuleViolation,
    check_deployment_against_model,
)

DELETING: Final = "Deleting"
"""Endpoint status between DELETE and the worker's ``Deleted`` report."""

DELETE_FAILED: Final = "DeleteFailed"
"""Endpoint status when the worker reported ``Failed`` while deleting; DELETE may be retried."""

DELETE_STATES: Final = frozenset({DELETING, DELETE_FAILED})

PROMOTED: Final = "promoted"
ROLLED_BACK: Final = "rolled_back"

_SUFFIX_LENGTH: Final = 8


@dataclass(frozen=True, slots=True)
class CreateEndpoint:
    """A validated request (the DeploymentSpec passed its schema rules already)."""

    model_id: str
    route: str
    environment: str
    spec: DeploymentSpec
    correlation_id: str


# --- rules ----------------------------------------------------------------------------------


def _job_type(value: Any) -> JobType | None:
    try:
        return JobType(value)
    except ValueError:
        return None


def deployment_violations(
    spec: DeploymentSpec,
    model_id: str,
    model: CatalogModel | None,
    producing_job: TrainingJob | None,
) -> list[RuleViolation]:
    """The cross-entity rules, located relative to the request body (``modelId``,
    ``deploymentSpec.<field>``).

    * ``modelId`` must be a catalog model; the spec is then checked against it (family, and
      input + output tokens within ``max_position_embeddings``);
    * when a training job produced ``model_ref`` (see
      :func:`llmops_gateway.db.repository.training_job_producing`), the spec's family and
      job type must be that job's too: they select the serving runtime.
    """
    violations: list[RuleViolation] = []
    if model is None:
        violations.append(
            RuleViolation(
                ("modelId",),
                f"Model '{model_id}' was not found in the catalog",
                "model_exists",
                input=model_id,
            )
        )
    else:
        facts, not_ready = usable_facts(model, ("modelId",), model_id)
        violations += not_ready
        if facts is not None:
            violations += check_deployment_against_model(spec, facts)
    if producing_job is not None:
        family = producing_job.spec.get("model_family")
        job_facts = ModelFacts(
            spec.model_ref,
            family if isinstance(family, str) else None,
            None,
            _job_type(producing_job.spec.get("job_type")),
        )
        for violation in check_deployment_against_model(spec, job_facts):
            if violation not in violations:  # the catalog check may have said the same
                violations.append(violation)
    return [v if v.loc == ("modelId",) else v.with_prefix(("deploymentSpec",)) for v in violations]


# --- commands -------------------------------------------------------------------------------


def create_endpoint(sessions: SessionFactory, command: CreateEndpoint) -> ServingDeployment:
    """Check the rules, then store the endpoint (Pending) and its ``DeploymentRequested``.

    Next to :func:`deployment_violations`, a new endpoint must not serve the artifact of a job
    that has not registered it yet (``model_ref_registered``); when the producing job did
    register it, its ``storage_uri`` is what the endpoint serves (see
    :mod:`llmops_gateway.domain.registered_models`).

    A route already used in the environment is a :class:`ConflictError`. Two requests racing
    for one route: the loser's insert hits the unique constraint and gets the same 409. Two
    racing for one derived name (different routes, same label): the loser retries once with a
    suffixed name.
    """
    endpoint_id = str(uuid.uuid4())
    for force_suffix in (False, True):
        try:
            with sessions.begin() as session:
                return _insert_endpoint(session, command, endpoint_id, force_suffix=force_suffix)
        except IntegrityError:
            with sessions() as session:
                holder = repository.serving_endpoint_by_route(
                    session, command.environment, command.route
                )
            if holder is not None:
                raise _route_taken(command, holder) from None
            if force_suffix:
                raise
    raise AssertionError("unreachable")  # pragma: no cover


def _route_taken(command: CreateEndpoint, holder: ServingDeployment) -> ConflictError:
    return ConflictError(
        f"route '{command.route}' is already used by endpoint {holder.id} "
        f"({holder.status}) in environment '{command.environment}'"
    )


def _insert_endpoint(
    session: Session, command: CreateEndpoint, endpoint_id: str, *, force_suffix: bool
) -> ServingDeployment:
    spec = command.spec
    model = repository.catalog_model_by_id_or_name(session, command.model_id)
    producing_job = repository.training_job_producing(session, spec.model_ref)
    violations = deployment_violations(spec, command.model_id, model, producing_job)
    pipeline = (
        None
        if producing_job is None
        else repository.pipelines_of_jobs(session, [producing_job.id]).get(producing_job.id)
    )
    backend = pipeline.backend if pipeline is not None else None
    violations += artifact_violations(spec, producing_job, backend)  # at creation only
    if violations:
        raise CatalogRuleError(violations)
    assert model is not None  # no violations: the model exists

    holder = repository.serving_endpoint_by_route(session, command.environment, command.route)
    if holder is not None:
        raise _route_taken(command, holder)
    longest = max_name_length(command.environment)
    name = endpoint_name(command.route, spec.model_ref, max_length=longest)
    if force_suffix or repository.serving_endpoint_name_taken(session, command.environment, name):
        suffix = endpoint_id.replace("-", "")[:_SUFFIX_LENGTH]
        name = endpoint_name(
            command.route, spec.model_ref, unique_suffix=suffix, max_length=longest
        )

    # exactly the files the producing job registered; null: the worker's template applies
    storage_uri = served_storage_uri(producing_job)
    now = utcnow()
    endpoint = ServingDeployment(
        id=endpoint_id,
        environment=command.environment,
        route=command.route,
        endpoint_name=name,
        model_id=model.id,
        model_ref=spec.model_ref,
        spec=spec.model_dump(mode="json"),
        storage_uri=storage_uri,
        status=Phase.PENDING.value,
        reason=None,
        correlation_id=command.correlation_id,
        seq=0,
        created_at=now,
        updated_at=now,
    )
    session.add(endpoint)
    session.flush()  # the unique constraints speak now, not at commit
    payload = DeploymentRequested(
        endpoint_id=endpoint.id,
        name=name,
        environment=command.environment,
        route=command.route,
        model_id=model.id,
        spec=spec,
        storage_uri=storage_uri,
        mlflow_run_id=_mlflow_run_id(session, producing_job),
    )
    publish(session, payload, command.correlation_id)
    return endpoint


def _mlflow_run_id(session: Session, job: TrainingJob | None) -> str | None:
    """The MLflow run of the job that produced the model, when tracking reported one."""
    if job is None:
        return None
    run = repository.experiment_run_for_job(session, job.id)
    if run is None or run.backend != "mlflow":
        return None
    return run.run_id


def endpoint_row(session: Session, endpoint_id: str, *, for_update: bool) -> ServingDeployment:
    """The endpoint in the open session (locked ``for_update``), or :class:`NotFoundError`."""
    endpoint = repository.serving_endpoint(session, endpoint_id, for_update=for_update)
    return found(endpoint, f"serving endpoint {endpoint_id}")


def get_endpoint(sessions: SessionFactory, endpoint_id: str) -> ServingDeployment:
    """The endpoint, or :class:`NotFoundError`."""
    with sessions() as session:
        return endpoint_row(session, endpoint_id, for_update=False)


def list_serving_endpoints(
    sessions: SessionFactory, *, environments: Sequence[str], limit: int, offset: int
) -> Sequence[ServingDeployment]:
    """One page of the endpoints of ``environments`` (those the caller may see), newest
    first."""
    with sessions() as session:
        return repository.list_serving_endpoints(
            session, environments=environments, limit=limit, offset=offset
        )


def reported_deployment(
    sessions: SessionFactory, endpoint_id: str, *, authorize: Authorize
) -> tuple[ServingDeployment, datetime]:
    """The endpoint and when the serving worker last reported its deployment, once the caller
    may see its environment (``authorize``, before anything else is said about it);
    :class:`NotFoundError` until it has reported once."""
    endpoint = get_endpoint(sessions, endpoint_id)
    authorize(endpoint.environment)
    if endpoint.observed_at is None:
        raise NotFoundError(f"no deployment reported yet for endpoint {endpoint_id}")
    return endpoint, endpoint.observed_at
