"""Request and response bodies of ``/integrations/configs``: the integration flags."""

from __future__ import annotations

from datetime import datetime

from pydantic import Field

from llmops_gateway.api.schemas.common import CamelModel, Items
from llmops_gateway.operations.integration_configs import EffectiveConfig, Source
from llmops_shared.events import IntegrationArea
from llmops_shared.events.fields import Reason


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


class IntegrationConfigList(Items[IntegrationConfigOut]):
    pass


class IntegrationConfigChange(CamelModel):
    """``PUT /integrations/configs/{environment}/{area}``."""

    enabled: bool = Field(strict=True)  # true or false, not 0, 1 or "yes"
    system: str | None = None
    changed_by: str | None = Field(
        default=None,
        max_length=256,
        description="Ignored as the author (the verified credential is); kept as a note in the "
        "audit log.",
    )
    reason: Reason | None = None


class IntegrationConfigChanged(IntegrationConfigOut):
    changed: bool

    @classmethod
    def of_change(cls, config: EffectiveConfig, changed: bool) -> IntegrationConfigChanged:
        return cls(**IntegrationConfigOut.of(config).model_dump(), changed=changed)
