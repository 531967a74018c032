"""``/integrations/configs``: the integration flags per environment, and changing one.

A change is stored and announced (``llmops.config``) in one transaction; the workers of the
area switch backend within about a second, without a redeploy, and report the backend they run
in ``GET /health/integrations``. Reading is open like the other GETs; changing needs the key.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, get_args

from fastapi import APIRouter, Path, Query
from pydantic import Field

from llmops_gateway.api.deps import Authenticated, CorrelationId, State
from llmops_gateway.api.schemas import API_PREFIX, CamelModel
from llmops_gateway.domain.integration_configs import (
    ChangeConfig,
    EffectiveConfig,
    Source,
    change_config,
    list_configs,
)
from llmops_shared.config import Environment
from llmops_shared.events import IntegrationArea
from llmops_shared.events.fields import Reason

router = APIRouter(prefix=f"{API_PREFIX}/integrations/configs", tags=["integrations"])

ENVIRONMENTS: tuple[str, ...] = get_args(Environment)


class IntegrationConfigOut(CamelModel):
    environment: str
    area: IntegrationArea
    service: str
    enabled: bool
    system: str
    source: Source
    revision: int
    changed_by: str | None
    reason: str | None
    updated_at: datetime | None

    @classmethod
    def of(cls, config: EffectiveConfig) -> IntegrationConfigOut:
        """The response for ``config``: each field read from the attribute of its name."""
        return cls.model_validate(config, from_attributes=True)


class IntegrationConfigList(CamelModel):
    items: list[IntegrationConfigOut]


class IntegrationConfigChange(CamelModel):
    """``PUT /integrations/configs/{environment}/{area}``."""

    enabled: bool
    system: str | None = None
    changed_by: str | None = Field(default=None, max_length=256)
    reason: Reason | None = None


class IntegrationConfigChanged(IntegrationConfigOut):
    changed: bool


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
    return IntegrationConfigChanged(**IntegrationConfigOut.of(config).model_dump(), changed=changed)
