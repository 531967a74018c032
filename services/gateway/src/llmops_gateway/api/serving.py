"""``/serving/endpoints``: create, list, read, the reported deployment, promote, roll back,
delete."""

from __future__ import annotations

from typing import Annotated

from fastapi import Body

from llmops_gateway.api.auth import CurrentCaller
from llmops_gateway.api.deps import CorrelationId, Pagination, State
from llmops_gateway.api.errors import rules_refused
from llmops_gateway.api.routes import Routes
from llmops_gateway.api.schemas.serving import (
    DeploymentOut,
    Environment,
    RollbackRequest,
    ServingEndpointList,
    ServingEndpointOut,
    ServingEndpointRequest,
)
from llmops_gateway.domain.errors import CatalogRuleError
from llmops_gateway.domain.serving import (
    CreateEndpoint,
    create_endpoint,
    get_endpoint,
    list_serving_endpoints,
    reported_deployment,
)
from llmops_gateway.domain.serving_actions import (
    delete_endpoint,
    promote_endpoint,
    rollback_endpoint,
)
from llmops_gateway.security.access import Scope

routes = Routes.at(
    "/serving/endpoints",
    tag="serving",
    scope=Scope.TARGET,
    not_found="No such endpoint",
    conflict="Route taken, or the endpoint's state forbids the action",
)
router = routes.router


@routes.command("", summary="Create a serving endpoint")
def create(
    body: ServingEndpointRequest,
    state: State,
    correlation_id: CorrelationId,
    caller: CurrentCaller,
) -> ServingEndpointOut:
    """Validate the DeploymentSpec (schema rules, then the catalog model and the training job
    that produced ``model_ref``), store the endpoint as Pending and queue its
    ``llmops.serving.deployment.requested.v1`` in the same transaction. 202: the worker deploys
    asynchronously; follow ``statusUrl``. 409 when the route is taken in the environment."""
    caller.require_in(body.environment)
    command = CreateEndpoint(
        model_id=body.model_id,
        route=body.route,
        environment=body.environment,
        spec=body.deployment_spec,
        correlation_id=correlation_id,
    )
    try:
        endpoint = create_endpoint(state.sessions, command)
    except CatalogRuleError as exc:
        raise rules_refused(exc, "ServingEndpointRequest", ("body",)) from None
    state.wake_relay()
    return ServingEndpointOut.of(endpoint)


@routes.page(summary="List endpoints, newest first")
def list_endpoints(
    state: State, page: Pagination, caller: CurrentCaller, environment: Environment | None = None
) -> ServingEndpointList:
    """The endpoints of the environments the caller may see (of ``environment`` when given: 403
    when the caller may not see it)."""
    if environment is not None:
        caller.require_in(environment)
    environments = [environment] if environment else caller.viewable()
    endpoints = list_serving_endpoints(
        state.sessions, environments=environments, limit=page.limit, offset=page.offset
    )
    items = [
        ServingEndpointOut.of(e, with_spec=caller.sees_specs(e.environment)) for e in endpoints
    ]
    return ServingEndpointList.of(items, page)


@routes.read("/{endpoint_id}", summary="Read an endpoint")
def read(endpoint_id: str, state: State, caller: CurrentCaller) -> ServingEndpointOut:
    endpoint = get_endpoint(state.sessions, endpoint_id)
    caller.require_in(endpoint.environment)
    return ServingEndpointOut.of(endpoint, with_spec=caller.sees_specs(endpoint.environment))


@routes.read(
    "/{endpoint_id}/deployment",
    summary="The endpoint's deployment as the serving worker last reported it",
)
def deployment(endpoint_id: str, state: State, caller: CurrentCaller) -> DeploymentOut:
    """Name, namespace, backend, the rendered manifest, conditions, traffic and rollout from the
    last status report; 404 until the worker has reported once."""
    endpoint, observed_at = reported_deployment(
        state.sessions, endpoint_id, authorize=caller.require_in
    )
    specs = caller.sees_specs(endpoint.environment)
    return DeploymentOut.of(endpoint, observed_at, with_spec=specs)


@routes.command("/{endpoint_id}/promote", summary="Promote the canary to all traffic")
def promote(
    endpoint_id: str, state: State, correlation_id: CorrelationId, caller: CurrentCaller
) -> ServingEndpointOut:
    """Queue ``llmops.serving.deployment.promoted.v1``. 409 unless the endpoint is a canary
    that was neither promoted nor rolled back, or when it is being deleted."""
    endpoint = promote_endpoint(
        state.sessions, endpoint_id, correlation_id=correlation_id, authorize=caller.require_in
    )
    state.wake_relay()
    return ServingEndpointOut.of(endpoint)


@routes.command("/{endpoint_id}/rollback", summary="Return all traffic to the previous version")
def rollback(
    endpoint_id: str,
    state: State,
    correlation_id: CorrelationId,
    caller: CurrentCaller,
    body: Annotated[RollbackRequest | None, Body()] = None,
) -> ServingEndpointOut:
    """Queue ``llmops.serving.deployment.rolled_back.v1`` with the reason. 409 when already
    rolled back or being deleted."""
    reason = (body or RollbackRequest()).reason
    endpoint = rollback_endpoint(
        state.sessions,
        endpoint_id,
        reason=reason,
        correlation_id=correlation_id,
        authorize=caller.require_in,
    )
    state.wake_relay()
    return ServingEndpointOut.of(endpoint)


@routes.command("/{endpoint_id}", method="DELETE", summary="Delete an endpoint")
def delete(
    endpoint_id: str, state: State, correlation_id: CorrelationId, caller: CurrentCaller
) -> ServingEndpointOut:
    """Mark the endpoint Deleting and queue ``llmops.serving.deployment.deleted.v1``. The
    endpoint disappears only when the worker reports its resource gone; repeat the DELETE to
    retry (it re-publishes the event)."""
    endpoint = delete_endpoint(
        state.sessions, endpoint_id, correlation_id=correlation_id, authorize=caller.require_in
    )
    state.wake_relay()
    return ServingEndpointOut.of(endpoint)
