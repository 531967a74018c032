"""``/integrations/configs``: the integration flags per environment, and changing one.

A change is stored and announced (``llmops.config``) in one transaction; the workers of the
area switch backend within about a second, without a redeploy, and report the backend they run
in ``GET /health/integrations``. Reading is open like the other GETs; changing needs the key.
"""

from __future__ import annotations

from typing import Annotated, get_args

from fastapi import APIRouter, Path, Query

from llmops_gateway.api.deps import Authenticated, CorrelationId, State
from llmops_gateway.api.schemas.common import API_PREFIX
from llmops_gateway.api.schemas.integration_configs import (
    IntegrationConfigChange,
    IntegrationConfigChanged,
    IntegrationConfigList,
    IntegrationConfigOut,
)
from llmops_gateway.operations.integration_configs import ChangeConfig, change_config, list_configs
from llmops_shared.config import Environment
from llmops_shared.events import IntegrationArea

router = APIRouter(prefix=f"{API_PREFIX}/integrations/configs", tags=["integrations"])

ENVIRONMENTS: tuple[str, ...] = get_args(Environment)


@router.get("", response_model=IntegrationConfigList, summary="Integration flags")
def get_configs(
    state: State,
    environment: Annotated[Environment | None, Query(description="Only this one.")] = None,
) -> IntegrationConfigList:
    """Each area's flag per environment: the ``integration_configs`` row, else the
    environment's default (``source``)."""
    environments = [environment] if environment else list(ENVIRONMENTS)
    configs = list_configs(state.sessions, state.settings, environments)
    return IntegrationConfigList(items=[IntegrationConfigOut.of(c) for c in configs])


@router.put(
    "/{environment}/{area}",
    response_model=IntegrationConfigChanged,
    dependencies=[Authenticated],
    summary="Change an integration flag (workers switch backend without a redeploy)",
)
def put_config(
    state: State,
    correlation_id: CorrelationId,
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
        changed_by=body.changed_by,
        reason=body.reason,
        correlation_id=correlation_id,
    )
    config, changed = change_config(state.sessions, state.settings, command)
    if changed:
        state.wake_relay()
    return IntegrationConfigChanged.of_change(config, changed)
