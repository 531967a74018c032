"""Fold ``deployment`` reports (serving) into the endpoint record; answer a report about an
endpoint the gateway does not hold, whose object exists, with that object's delete."""

from __future__ import annotations

from typing import Any, Final, get_args

from pydantic import ValidationError
from sqlalchemy.orm import Session

from llmops_gateway.db import repository
from llmops_gateway.db.models import ServingDeployment, utcnow
from llmops_gateway.domain.outbox import publish
from llmops_gateway.domain.reports import brief, observed_at, replace_given
from llmops_gateway.domain.serving import DELETE_FAILED, DELETE_STATES
from llmops_shared.config import Environment
from llmops_shared.events import DeploymentDeleted, DeploymentStatusUpdated, Phase
from llmops_shared.events.payloads.details import DeploymentDetails, FormatMove
from llmops_shared.logging import get_logger

_log = get_logger(__name__)

_KSERVE: Final = "InferenceService"
_FORMAT_OF_BACKEND: Final = {"kserve": _KSERVE, "deployment": "builtin"}
"""The format of the objects each serving backend observes."""

_ENVIRONMENT_OF_NAMESPACE: Final[dict[str, Environment]] = {
    f"llm-ops-{environment}": environment for environment in get_args(Environment)
}
"""The serving worker deploys an environment's endpoints into ``llm-ops-<environment>``."""

STRAY_CORRELATION_PREFIX: Final = "stray-endpoint:"
"""The correlation id of the delete queued for an unknown endpoint is this + its id (a fold sees
the report, not its envelope)."""


def apply_deployment(session: Session, report: DeploymentStatusUpdated) -> bool:
    """Fold a serving worker's report into its endpoint (entity id = endpoint id).

    The report's facts (namespace, backend, manifest, url, conditions, traffic) replace the
    stored ones; a missing, null or empty one keeps its stored value (the worker reports empty
    conditions and traffic when it has applied a manifest but not observed the result yet, which
    must not blank what the last observation showed); a ``rollout`` that names its strategy
    replaces the stored one (a promoted canary has no percent left), a partial one is merged.
    A manifest of the other format than the stored one (a migration between an InferenceService
    and the built-in Deployment + Service) first clears the old format's mode, URL, conditions and
    traffic. The endpoint's ``status`` follows the phase, except while a delete is pending:

    * ``Deleted`` while Deleting/DeleteFailed: the resource is gone, so the row is removed
      (its name and route become free). ``Deleted`` without a delete request (someone removed
      the resource behind the platform's back) only marks the endpoint Deleted; a DELETE then
      removes it;
    * ``Failed`` while Deleting: the deletion failed; status DeleteFailed with the reason;
    * any other phase while Deleting: the resource still exists; the deployment view is
      updated and the status stays Deleting.

    A report about an unknown (or already removed) endpoint changes no row; when it shows the
    endpoint's object (see :func:`answer_unknown_endpoint`) the object's delete is queued.
    """
    endpoint = repository.serving_endpoint(session, report.entity_id, for_update=True)
    if endpoint is None:
        answer_unknown_endpoint(session, report)
        return False
    if endpoint.seq >= report.seq:
        return False
    details = report.details
    if report.phase == Phase.DELETED and endpoint.status in DELETE_STATES:
        session.delete(endpoint)
        return True
    if report.phase == Phase.DELETED and _about_the_former_format(endpoint, details):
        # A worker observing the endpoint's former format saw that object go (after a move
        # between formats, on a replica that did not make the move): the endpoint is not gone.
        return False
    endpoint.seq = report.seq
    endpoint.reported_phase = report.phase.value
    endpoint.reported_reason = report.reason
    endpoint.observed_at = observed_at(report.seq)
    endpoint.updated_at = utcnow()
    _fold_facts(endpoint, details)
    if endpoint.status not in DELETE_STATES:
        endpoint.status = report.phase.value
        endpoint.reason = report.reason
    elif report.phase == Phase.FAILED:
        endpoint.status = DELETE_FAILED
        endpoint.reason = report.reason or "the serving worker could not delete the deployment"
    return True


def answer_unknown_endpoint(session: Session, report: DeploymentStatusUpdated) -> bool:
    """Queue ``DeploymentDeleted`` for an endpoint the gateway does not hold whose report
    shows its object: an InferenceService (or Deployment, or manifest file) nobody tracks, e.g.
    re-created by a request replayed after the endpoint was deleted and its row removed, or
    one this gateway never created. True when the delete was queued.

    In the fold's transaction (the outbox), so at most once per report: a redelivered report
    is in ``processed_events`` and is not folded again. Only a report that carries the
    object's manifest with a phase other than ``Deleted`` shows one: the worker's answer to a
    delete still waiting for finalizers (``Pending``) and a refused request (``Failed``) carry
    none, so a delete is never answered with another delete. The event names the object as
    the report does (``name``, and the environment of the ``llm-ops-<env>`` namespace); the
    serving worker leaves alone an object that another endpoint holds under the name.
    """
    details = report.details
    if report.phase == Phase.DELETED or not details.manifest or not details.name:
        return False
    environment = _ENVIRONMENT_OF_NAMESPACE.get(details.namespace or "")
    if environment is None:
        _log.warning(
            "stray_endpoint_left",
            endpoint_id=report.entity_id,
            namespace=details.namespace,
            why="not the namespace of an environment",
        )
        return False
    try:
        payload = DeploymentDeleted(
            endpoint_id=report.entity_id, name=details.name, environment=environment
        )
    except ValidationError as exc:  # not an id or a name the platform makes: not its object
        _log.warning("stray_endpoint_left", endpoint_id=report.entity_id, why=brief(exc))
        return False
    publish(session, payload, f"{STRAY_CORRELATION_PREFIX}{report.entity_id}")
    _log.warning(
        "stray_endpoint_delete_queued",
        endpoint_id=report.entity_id,
        name=details.name,
        namespace=details.namespace,
        phase=report.phase.value,
        seq=report.seq,
    )
    return True


def _is_kserve(manifest: dict[str, Any] | None) -> bool:
    return (manifest or {}).get("kind") == _KSERVE


def _about_the_former_format(endpoint: ServingDeployment, details: DeploymentDetails) -> bool:
    """Whether a ``Deleted`` report comes from the backend of the format the endpoint left."""
    stored_kind = (endpoint.manifest or {}).get("kind")
    gone_format = _FORMAT_OF_BACKEND.get(str(details.backend))
    if stored_kind is None or gone_format is None:
        return False
    return gone_format != (_KSERVE if stored_kind == _KSERVE else "builtin")


def _fold_facts(endpoint: ServingDeployment, details: DeploymentDetails) -> None:
    reported = details.manifest
    stored = endpoint.manifest
    if reported and stored and _is_kserve(reported) != _is_kserve(stored):
        # The endpoint moved to the other format (an InferenceService <-> the built-in List, or
        # its Deployment as the watcher reports it): what the old object reported (its mode,
        # URL, conditions, traffic) says nothing of the new one.
        endpoint.deployment_mode = None
        endpoint.serve_url = None
        endpoint.conditions = None
        endpoint.traffic = None
    replace_given(endpoint, details, "namespace", "backend", "deployment_mode", serve_url="url")
    if reported:
        endpoint.manifest = reported
    if details.rollout is not None and (rollout := details.rollout.model_dump(exclude_none=True)):
        # A report that names the strategy describes the whole rollout (after a promote its
        # canary percent is gone); a partial one only adds to what is stored.
        whole = "strategy" in rollout
        endpoint.rollout = rollout if whole else {**(endpoint.rollout or {}), **rollout}
    if details.conditions:
        endpoint.conditions = list(details.conditions)
    if details.migration is not None and details.migration.model_fields_set:  # not {}
        endpoint.conditions = _with_migration_condition(endpoint.conditions, details.migration)
    if details.traffic:
        endpoint.traffic = [target.model_dump(exclude_none=True) for target in details.traffic]


def _with_migration_condition(conditions: list[Any] | None, migration: FormatMove) -> list[Any]:
    """A move between formats is kept as a condition (the refusal of a move reports the phase
    the endpoint is observed in, so the status alone does not say it failed)."""
    return [
        c for c in conditions or [] if not (isinstance(c, dict) and c.get("type") == "Migration")
    ] + [
        {
            "type": "Migration",
            "status": {"migrated": "True", "failed": "False"}.get(
                str(migration.outcome), "Unknown"
            ),
            "reason": migration.outcome,
            "message": migration.reason,
            "target": migration.target,
        }
    ]
