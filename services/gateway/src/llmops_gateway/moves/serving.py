"""Moving serving endpoints between the built-in Deployment + Service and KServe.

Pure logic over a :class:`~sqlalchemy.orm.Session` for ``migrate serving-to-kserve`` and
``rollback integrations --remove-kserve`` (the scripts do the console, Redis and waiting):

1. :func:`plan` lists the endpoints whose current deployment is in the other format than the
   target, judged by what the serving worker last reported (the stored manifest's ``kind``: an
   ``InferenceService``, or the built-in ``v1 List`` of a Deployment and a Service; else the
   ``backend`` column), each with the ``DeploymentMigrationRequested`` that moves it, or why it
   cannot move. Endpoints being deleted (or reported gone) are not planned.
2. :func:`queue` adds one request per movable endpoint to the outbox, in the caller's
   transaction. The envelope id is derived from the endpoint id, the target and the row's
   ``seq`` (:func:`move_event_id`): asking again before the worker answered gives the same
   id, which is already in the outbox (not queued twice) and in the serving worker's idempotency
   store (not handled twice); once a report changed the row (a failed attempt), the next
   request is a new event.
3. :func:`outcomes` reads how each request ended: the row reports the target format *and*
   ``Ready`` (migrated: the worker removes the old objects only once the new one is Ready, and
   reports the new one ``Pending`` until then), or a newer report said the move failed
   (``Failed``, or ``details.migration`` ``failed``: refused, or the new object failed while the
   old one keeps serving; the worker said why), or neither yet.

The request carries the endpoint's stored request (spec, route, model) and the artifact the
current object serves (its ``llm-ops.io/storage-uri`` and ``llm-ops.io/mlflow-run-id``
annotations; without the first, the endpoint's own ``storage_uri``, the producing job's
registered model), so the moved endpoint serves the same model files.
"""

from __future__ import annotations

import uuid
from collections.abc import Collection, Sequence
from dataclasses import asdict, dataclass
from typing import Any, Final, Literal

from pydantic import ValidationError
from sqlalchemy import select
from sqlalchemy.orm import Session

from llmops_gateway.db.models import ServingDeployment
from llmops_gateway.domain.reports import brief
from llmops_gateway.domain.serving import DELETE_STATES, PROMOTED
from llmops_gateway.moves.requests import Queued, queue_once
from llmops_shared.events import DeploymentMigrationRequested, Phase
from llmops_shared.specs import RolloutStrategy

Format = Literal["kserve", "builtin"]
KSERVE: Final[Format] = "kserve"
BUILTIN: Final[Format] = "builtin"

FORMAT_LABELS: Final[dict[str, str]] = {
    KSERVE: "KServe InferenceService",
    BUILTIN: "built-in Deployment + Service",
}

EVENT_ID_NAMESPACE: Final = uuid.UUID("0b7e2f5c-93a4-4d1e-b6f8-5a2c9d4e7f13")
"""uuid5 namespace of the move requests' envelope ids (never change it: ids would change)."""

STORAGE_URI_ANNOTATION: Final = "llm-ops.io/storage-uri"
MLFLOW_RUN_ANNOTATION: Final = "llm-ops.io/mlflow-run-id"

NOT_PLANNED: Final = frozenset({*DELETE_STATES, Phase.DELETED.value})
"""Endpoint statuses a move leaves alone: being deleted, or reported gone."""

Outcome = Literal["migrated", "failed", "gone", "pending"]


def move_event_id(endpoint_id: str, target: Format, seq: int) -> str:
    """The envelope id of the request moving ``endpoint_id`` to ``target`` as recorded at
    ``seq``."""
    return str(uuid.uuid5(EVENT_ID_NAMESPACE, f"{endpoint_id}:migrate-{target}:{seq}"))


def _primary(manifest: dict[str, Any] | None) -> dict[str, Any]:
    """The object describing the endpoint (the Deployment of a built-in ``List``)."""
    if not manifest:
        return {}
    if manifest.get("kind") == "List":
        items = manifest.get("items") or [{}]
        first = items[0]
        return first if isinstance(first, dict) else {}
    return manifest


def current_format(endpoint: ServingDeployment) -> Format | None:
    """The format the endpoint is deployed in, from the manifest the worker last reported;
    ``None`` before any report showed one (the ``backend`` column is no evidence: a refusal or
    failure report sets it without any object being there)."""
    kind = (endpoint.manifest or {}).get("kind")
    if kind == "InferenceService":
        return KSERVE
    if kind in ("List", "Deployment"):
        return BUILTIN
    return None


MIGRATION_CONDITION: Final = "Migration"
"""The condition the status consumer keeps from a report's ``details.migration`` (see
``domain.serving_status.apply_deployment``): ``reason`` = ``in_progress``/``migrated``/
``failed``, ``message`` = why, ``target`` = the format moved to."""


def move_condition(endpoint: ServingDeployment) -> dict[str, Any] | None:
    """What the serving worker last said about a move of ``endpoint`` between formats."""
    for condition in endpoint.conditions or []:
        if isinstance(condition, dict) and condition.get("type") == MIGRATION_CONDITION:
            return condition
    return None


@dataclass(frozen=True)
class PlannedEndpoint:
    """An endpoint in the other format than ``target``, and what moving it means.

    ``skipped`` says why it cannot move; ``request`` is the event payload otherwise.
    """

    endpoint_id: str
    name: str
    environment: str
    route: str
    status: str
    backend: str | None
    current: Format | None
    target: Format
    seq: int
    request: DeploymentMigrationRequested | None
    skipped: str | None = None

    @property
    def event_id(self) -> str:
        return move_event_id(self.endpoint_id, self.target, self.seq)

    def as_dict(self) -> dict[str, Any]:
        return {
            "endpoint_id": self.endpoint_id,
            "name": self.name,
            "environment": self.environment,
            "route": self.route,
            "status": self.status,
            "backend": self.backend,
            "current": self.current,
            "target": self.target,
            "action": "skip" if self.skipped else "migrate",
            "skipped": self.skipped,
        }


def _canary_refusal(endpoint: ServingDeployment, target: Format) -> str | None:
    """Why a canary endpoint cannot move to the built-in format (one version only)."""
    strategy = (endpoint.spec or {}).get("rollout", {}).get("strategy")
    if target != BUILTIN or strategy != RolloutStrategy.CANARY.value:
        return None
    if endpoint.rollout_action == PROMOTED:
        return None
    state = "rolled back" if endpoint.rollout_action else "in progress"
    return (
        f"its canary rollout is {state}: the built-in Deployment serves one version; promote "
        "the canary (or deploy again) first"
    )


def _planned(endpoint: ServingDeployment, target: Format) -> PlannedEndpoint:
    current = current_format(endpoint)
    request: DeploymentMigrationRequested | None = None
    skipped: str | None = None
    if current is None:
        skipped = "no deployment reported yet by the serving worker: its format is unknown"
    else:
        skipped = _canary_refusal(endpoint, target)
    if skipped is None:
        annotations = (_primary(endpoint.manifest).get("metadata") or {}).get("annotations") or {}
        try:
            request = DeploymentMigrationRequested.model_validate(
                {
                    "endpoint_id": endpoint.id,
                    "name": endpoint.endpoint_name,
                    "environment": endpoint.environment,
                    "route": endpoint.route,
                    "model_id": endpoint.model_id,
                    "spec": endpoint.spec,
                    "storage_uri": annotations.get(STORAGE_URI_ANNOTATION) or endpoint.storage_uri,
                    "mlflow_run_id": annotations.get(MLFLOW_RUN_ANNOTATION) or None,
                    "target": target,
                }
            )
        except ValidationError as exc:
            skipped = f"the stored request no longer validates: {brief(exc)}"
    return PlannedEndpoint(
        endpoint_id=endpoint.id,
        name=endpoint.endpoint_name,
        environment=endpoint.environment,
        route=endpoint.route,
        status=endpoint.status,
        backend=endpoint.backend,
        current=current,
        target=target,
        seq=endpoint.seq,
        request=request,
        skipped=skipped,
    )


def plan(
    session: Session,
    *,
    target: Format,
    environment: str | None = None,
    endpoint_ids: Collection[str] = (),
) -> list[PlannedEndpoint]:
    """The endpoints not (known to be) in ``target``'s format, oldest first: only those of
    ``environment`` and ``endpoint_ids`` when given. Endpoints already in ``target`` are not
    listed (nothing to do); those whose format is unknown are listed as skipped."""
    query = (
        select(ServingDeployment)
        .where(ServingDeployment.status.not_in(sorted(NOT_PLANNED)))
        .order_by(ServingDeployment.created_at, ServingDeployment.id)
    )
    if environment is not None:
        query = query.where(ServingDeployment.environment == environment)
    if endpoint_ids:
        query = query.where(ServingDeployment.id.in_(list(endpoint_ids)))
    return [
        _planned(endpoint, target)
        for endpoint in session.scalars(query)
        if current_format(endpoint) != target
    ]


def move_request(endpoint: PlannedEndpoint) -> DeploymentMigrationRequested:
    """The event payload moving ``endpoint`` (which must not be skipped)."""
    if endpoint.request is None:
        raise ValueError(f"endpoint {endpoint.endpoint_id} cannot be migrated: {endpoint.skipped}")
    return endpoint.request


def queue(
    session: Session, endpoints: Sequence[PlannedEndpoint], *, correlation_id: str
) -> Queued[PlannedEndpoint]:
    """Add a move request per movable endpoint to the outbox of the open transaction; a
    request whose id is already there (asked before, not answered yet) is not added again."""
    movable = [e for e in endpoints if e.request is not None]
    return queue_once(session, movable, move_request, correlation_id=correlation_id)


@dataclass(frozen=True)
class EndpointOutcome:
    """Where one requested move stands, from the endpoint's row."""

    endpoint_id: str
    name: str
    outcome: Outcome
    status: str | None
    reason: str | None
    backend: str | None
    url: str | None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _outcome(planned: PlannedEndpoint, endpoint: ServingDeployment | None) -> EndpointOutcome:
    if endpoint is None:
        return EndpointOutcome(
            planned.endpoint_id, planned.name, "gone", None, "the endpoint was deleted", None, None
        )
    outcome: Outcome
    move = move_condition(endpoint)
    refused = (
        move is not None and move.get("reason") == "failed" and move.get("target") == planned.target
    )
    reason = endpoint.reason
    if current_format(endpoint) == planned.target and endpoint.status == Phase.READY.value:
        outcome = "migrated"
    elif endpoint.seq != planned.seq and (endpoint.status == Phase.FAILED.value or refused):
        outcome = "failed"
        if refused and move is not None and move.get("message"):
            reason = str(move["message"])
    elif endpoint.status in NOT_PLANNED:
        outcome = "gone"
    else:
        outcome = "pending"
    return EndpointOutcome(
        endpoint_id=endpoint.id,
        name=endpoint.endpoint_name,
        outcome=outcome,
        status=endpoint.status,
        reason=reason,
        backend=endpoint.backend,
        url=endpoint.serve_url,
    )


def outcomes(session: Session, planned: Sequence[PlannedEndpoint]) -> list[EndpointOutcome]:
    """How each requested move stands now (in ``planned``'s order)."""
    ids = [p.endpoint_id for p in planned]
    rows = {
        row.id: row
        for row in session.scalars(select(ServingDeployment).where(ServingDeployment.id.in_(ids)))
    }
    return [_outcome(p, rows.get(p.endpoint_id)) for p in planned]
