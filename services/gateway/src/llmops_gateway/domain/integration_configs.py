"""Run-time integration flags: the ``integration_configs`` table and its change events.

The environment (``EXPERIMENT_TRACKING_ENABLED``...) gives each area's default; a row here
overrides it for one environment. A change writes the row and queues an
``IntegrationConfigChanged`` (``llmops.config``) in the same transaction, so the workers switch
backend if and only if the change was committed. Setting the value a row already has changes
nothing and publishes nothing: retries and repeated rollbacks are free.

The row's ``revision`` is incremented under the row's lock (``SELECT ... FOR UPDATE`` on
PostgreSQL; SQLite serialises writers), so two concurrent changes get two revisions and the
workers keep the later one.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from llmops_gateway.config import GatewaySettings
from llmops_gateway.db.models import IntegrationConfig, utcnow
from llmops_gateway.db.session import SessionFactory
from llmops_gateway.domain.errors import ConflictError, InvalidRequestError
from llmops_gateway.domain.outbox import publish
from llmops_shared.config import Environment
from llmops_shared.events import AREA_SYSTEMS, IntegrationArea, IntegrationConfigChanged
from llmops_shared.integration_flags import AREA_SERVICES

Source = Literal["integration_configs", "environment"]


@dataclass(frozen=True, slots=True)
class EffectiveConfig:
    """One area's flag in one environment, and where it comes from."""

    environment: str
    area: IntegrationArea
    enabled: bool
    system: str
    source: Source
    revision: int
    changed_by: str | None
    reason: str | None
    updated_at: datetime | None

    @property
    def service(self) -> str:
        return AREA_SERVICES[self.area]


@dataclass(frozen=True, slots=True)
class ChangeConfig:
    environment: Environment
    area: IntegrationArea
    enabled: bool
    system: str | None
    changed_by: str | None
    reason: str | None
    correlation_id: str


def _effective(
    settings: GatewaySettings,
    environment: str,
    area: IntegrationArea,
    row: IntegrationConfig | None,
) -> EffectiveConfig:
    if row is not None:
        return EffectiveConfig(
            environment=environment, area=area, enabled=row.enabled, system=row.system,
            source="integration_configs", revision=row.revision, changed_by=row.changed_by,
            reason=row.reason, updated_at=row.updated_at,
        )  # fmt: skip
    flag = settings.environment_flag(area)
    return EffectiveConfig(
        environment=environment, area=area, enabled=flag.enabled, system=flag.system,
        source="environment", revision=0, changed_by=None, reason=None, updated_at=None,
    )  # fmt: skip


def list_configs(
    sessions: SessionFactory, settings: GatewaySettings, environments: Sequence[str]
) -> list[EffectiveConfig]:
    """Every area's flag in each of ``environments``, overrides first-class."""
    with sessions() as session:
        rows = {
            (row.environment, row.area): row
            for row in session.scalars(
                select(IntegrationConfig).where(IntegrationConfig.environment.in_(environments))
            )
        }
    return [
        _effective(settings, env, area, rows.get((env, area.value)))
        for env in environments
        for area in IntegrationArea
    ]


def effective_config(
    session: Session, settings: GatewaySettings, environment: str, area: IntegrationArea
) -> EffectiveConfig:
    """One area's flag, read in the caller's session."""
    row = session.scalars(
        select(IntegrationConfig).where(
            IntegrationConfig.environment == environment, IntegrationConfig.area == area.value
        )
    ).one_or_none()
    return _effective(settings, environment, area, row)


def registry_enabled(sessions: SessionFactory, settings: GatewaySettings) -> bool:
    """Whether model imports go through the registry worker in this gateway's environment."""
    with sessions() as session:
        config = effective_config(
            session, settings, settings.environment, IntegrationArea.MODEL_REGISTRY
        )
    return config.enabled


def change_config(
    sessions: SessionFactory, settings: GatewaySettings, command: ChangeConfig
) -> tuple[EffectiveConfig, bool]:
    """Set one area's flag; ``(config, changed)``. ``changed`` is false when it already was."""
    supported = AREA_SYSTEMS[command.area]
    system = command.system or None
    if system is not None and system not in supported:
        raise InvalidRequestError(
            f"system '{system}' is not supported for {command.area.value} "
            f"(supported: {', '.join(supported)})"
        )
    try:
        with sessions.begin() as session:
            row = session.scalars(
                select(IntegrationConfig)
                .where(
                    IntegrationConfig.environment == command.environment,
                    IntegrationConfig.area == command.area.value,
                )
                .with_for_update()
            ).one_or_none()
            current = _effective(settings, command.environment, command.area, row)
            system = system or current.system
            if row is not None and (row.enabled, row.system) == (command.enabled, system):
                return current, False
            if row is None:
                row = IntegrationConfig(
                    id=str(uuid.uuid4()),
                    environment=command.environment,
                    area=command.area.value,
                    config={},
                    revision=0,
                )
                session.add(row)
            row.enabled = command.enabled
            row.system = system
            row.revision += 1
            row.changed_by = command.changed_by
            row.reason = command.reason
            row.updated_at = utcnow()
            publish(
                session,
                IntegrationConfigChanged(
                    environment=command.environment,
                    area=command.area,
                    enabled=command.enabled,
                    system=system,
                    revision=row.revision,
                    changed_by=command.changed_by,
                    reason=command.reason,
                ),
                command.correlation_id,
            )
            session.flush()
            result = _effective(settings, command.environment, command.area, row)
    except IntegrityError as exc:  # two first changes of one area raced; the caller retries
        raise ConflictError(
            f"{command.area.value} in {command.environment} was changed concurrently; retry"
        ) from exc
    return result, True
