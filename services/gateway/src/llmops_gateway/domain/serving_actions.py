"""Changing a live endpoint: promote its canary, roll it back, delete it.

Each is one transaction that locks the endpoint, checks the caller may act in the endpoint's
environment (``authorize``, :mod:`llmops_gateway.security.access`), checks the endpoint's state,
remembers the action and queues its event through the outbox.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy.orm import Session

from llmops_gateway.db.models import ServingDeployment, utcnow
from llmops_gateway.db.session import SessionFactory
from llmops_gateway.domain.errors import ConflictError
from llmops_gateway.domain.outbox import publish
from llmops_gateway.domain.serving import (
    DELETE_STATES,
    DELETING,
    PROMOTED,
    ROLLED_BACK,
    endpoint_row,
)
from llmops_gateway.security.access import Authorize
from llmops_shared.events import (
    DeploymentDeleted,
    DeploymentPromoted,
    DeploymentRolledBack,
    EventPayload,
)
from llmops_shared.specs import RolloutStrategy


def _locked_live_endpoint(
    session: Session, endpoint_id: str, action: str, authorize: Authorize
) -> ServingDeployment:
    endpoint = endpoint_row(session, endpoint_id, for_update=True)
    authorize(endpoint.environment)
    if endpoint.status in DELETE_STATES:
        raise ConflictError(
            f"cannot {action} endpoint {endpoint_id}: it is being deleted ({endpoint.status})"
        )
    return endpoint


def _locked_canary(
    session: Session,
    endpoint_id: str,
    action: str,
    *,
    only: str,
    refusals: Mapping[str, str],
    authorize: Authorize,
) -> ServingDeployment:
    """The live endpoint, locked, when its rollout is a canary (else a :class:`ConflictError`
    saying ``only`` what can) and no earlier rollout action refuses ``action``
    (``refusals``: earlier action -> why not)."""
    endpoint = _locked_live_endpoint(session, endpoint_id, action, authorize)
    strategy = endpoint.spec.get("rollout", {}).get("strategy")
    if strategy != RolloutStrategy.CANARY:
        raise ConflictError(f"endpoint {endpoint_id} uses a {strategy} rollout: only {only}")
    refusal = refusals.get(endpoint.rollout_action or "")
    if refusal is not None:
        raise ConflictError(refusal)
    return endpoint


def _queue_rollout_action(
    session: Session,
    endpoint: ServingDeployment,
    action: str,
    payload: EventPayload,
    correlation_id: str,
) -> None:
    """Remember ``action`` on the endpoint (a second one is refused before the worker reports)
    and queue its event."""
    endpoint.rollout_action = action
    endpoint.updated_at = utcnow()
    publish(session, payload, correlation_id)


def promote_endpoint(
    sessions: SessionFactory, endpoint_id: str, *, correlation_id: str, authorize: Authorize
) -> ServingDeployment:
    """Queue ``DeploymentPromoted``: the canary takes all traffic.

    Only a canary that was neither promoted nor rolled back can be promoted; the gateway
    remembers the action, so a second promote is a 409 even before the worker reports.
    """
    refusals = {
        PROMOTED: f"the canary of endpoint {endpoint_id} is already promoted",
        ROLLED_BACK: f"endpoint {endpoint_id} was rolled back: there is no canary to promote",
    }
    with sessions.begin() as session:
        endpoint = _locked_canary(
            session,
            endpoint_id,
            "promote",
            only="a canary can be promoted",
            refusals=refusals,
            authorize=authorize,
        )
        payload = DeploymentPromoted(**_ids(endpoint))
        _queue_rollout_action(session, endpoint, PROMOTED, payload, correlation_id)
    return endpoint


def rollback_endpoint(
    sessions: SessionFactory,
    endpoint_id: str,
    *,
    reason: str,
    correlation_id: str,
    authorize: Authorize,
) -> ServingDeployment:
    """Queue ``DeploymentRolledBack``: all traffic back to the previous version.

    Only a canary in progress can be rolled back: KServe pins traffic to the last rolled-out
    revision, which after a promotion (or for a blue-green switch) is the new one, so the
    worker would do nothing while the API claimed a rollback. A second rollback is a 409.
    """
    refusals = {
        PROMOTED: f"the canary of endpoint {endpoint_id} was promoted: there is no previous "
        "version serving to roll back to",
        ROLLED_BACK: f"endpoint {endpoint_id} is already rolled back",
    }
    with sessions.begin() as session:
        endpoint = _locked_canary(
            session,
            endpoint_id,
            "roll back",
            only="a canary in progress can be rolled back",
            refusals=refusals,
            authorize=authorize,
        )
        payload = DeploymentRolledBack(**_ids(endpoint), reason=reason)
        _queue_rollout_action(session, endpoint, ROLLED_BACK, payload, correlation_id)
    return endpoint


def delete_endpoint(
    sessions: SessionFactory, endpoint_id: str, *, correlation_id: str, authorize: Authorize
) -> ServingDeployment:
    """Mark the endpoint Deleting and queue ``DeploymentDeleted``, in one transaction.

    The row stays until the worker reports the resource gone. Repeating the DELETE (the
    endpoint is already Deleting, or its deletion failed) publishes the event again, so a lost
    or failed deletion can always be retried.
    """
    with sessions.begin() as session:
        endpoint = endpoint_row(session, endpoint_id, for_update=True)
        authorize(endpoint.environment)
        now = utcnow()
        endpoint.status = DELETING
        endpoint.reason = None
        endpoint.delete_requested_at = endpoint.delete_requested_at or now
        endpoint.updated_at = now
        publish(session, DeploymentDeleted(**_ids(endpoint)), correlation_id)
    return endpoint


def _ids(endpoint: ServingDeployment) -> dict[str, Any]:
    return {
        "endpoint_id": endpoint.id,
        "name": endpoint.endpoint_name,
        "environment": endpoint.environment,
    }
