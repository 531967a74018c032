"""``/integrations/configs``: the integration flags per environment, and changing one.

A change is stored and announced (``llmops.config``) in one transaction; the workers of the
area switch backend within about a second, without a redeploy, and report the backend they run
in ``GET /health/integrations``. Viewers read the flags of their environments; changing one
needs the admin role in its environment, and the change is recorded as made by the verified
caller (what a client sends as ``changedBy`` is only a note in the audit log).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Path, Query

from llmops_gateway.api.auth import CurrentCaller, guarded
from llmops_gateway.api.deps import CorrelationId, State
from llmops_gateway.api.routes import api_router
from llmops_gateway.api.schemas.common import error_responses
from llmops_gateway.api.schemas.integration_configs import (
    IntegrationConfigChange,
    IntegrationConfigChanged,
    IntegrationConfigList,
    IntegrationConfigOut,
)
from llmops_gateway.operations.integration_configs import ChangeConfig, change_config, list_configs
from llmops_gateway.security.access import VIEW_ANY, Access, Scope
from llmops_gateway.security.roles import Role
from llmops_shared.config import Environment
from llmops_shared.events import IntegrationArea

router = api_router("/integrations/configs", tag="integrations")


@router.get(
    "", response_model=IntegrationConfigList, summary="Integration flags", **guarded(VIEW_ANY)
)
def get_configs(
    state: State,
    caller: CurrentCaller,
    environment: Annotated[Environment | None, Query(description="Only this one.")] = None,
) -> IntegrationConfigList:
    """Each area's flag per environment the caller may see: the ``integration_configs`` row,
    else the environment's default (``source``)."""
    if environment is not None:
        caller.require_in(environment)
    environments = [environment] if environment else caller.viewable()
    configs = list_configs(state.sessions, state.settings, environments)
    return IntegrationConfigList(items=[IntegrationConfigOut.of(c) for c in configs])


@router.put(
    "/{environment}/{area}",
    response_model=IntegrationConfigChanged,
    summary="Change an integration flag (workers switch backend without a redeploy)",
    **guarded(
        Access(Role.ADMIN, Scope.PATH),
        error_responses(conflict="Concurrent changes of the area kept winning: retry", auth=False),
    ),
)
def put_config(
    state: State,
    correlation_id: CorrelationId,
    caller: CurrentCaller,
    environment: Annotated[Environment, Path()],
    area: Annotated[IntegrationArea, Path()],
    body: IntegrationConfigChange,
) -> IntegrationConfigChanged:
    """Set the flag (and optionally the system). Setting the value it has changes nothing."""
    command = ChangeConfig(
        environment=environment,
        area=area,
        enabled=body.enabled,
        system=body.system,
        changed_by=caller.principal.name,
        reason=body.reason,
        correlation_id=correlation_id,
    )
    if body.changed_by:
        caller.note = f"client's changedBy: {body.changed_by}"
    config, changed = change_config(state.sessions, state.settings, command)
    if changed:
        state.wake_relay()
    return IntegrationConfigChanged.of_change(config, changed)
