"""Rolling integrations back: flags off, KServe endpoints moved back.

The integration quickstart's rollback procedure, as pure logic over the gateway's database for
``rollback integrations`` (the script does the console, the confirmation and Redis):

* :func:`plan_rollback` reads each area's effective flag in the environment (an
  ``integration_configs`` row, else the environment's default) and, with ``remove_kserve``, the
  endpoints whose last report shows a KServe InferenceService
  (:func:`llmops_gateway.moves.serving.plan` with target ``builtin``);
* :func:`apply_rollback` queues one ``DeploymentMigrationRequested`` (target ``builtin``) per
  movable endpoint (retried once when another rollback queued the same moves at the same moment;
  a second conflict raises :class:`~llmops_gateway.moves.requests.QueueConflict` before
  any flag changed), then turns each flag that is on off through
  :func:`~llmops_gateway.operations.integration_configs.change_config` (row and
  ``IntegrationConfigChanged`` in one transaction, ``changed_by`` "rollback integrations").

Flags already off are left as they are, so a second rollback changes nothing; the workers
switch to their built-in backends by themselves when the change events reach them. The serving
worker moves each endpoint to the built-in Deployment + Service before it removes the
InferenceService, whichever backend it runs at that moment, so the endpoints keep serving.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any, Final

from llmops_gateway.config import GatewaySettings
from llmops_gateway.db.session import SessionFactory
from llmops_gateway.moves.requests import Queued, queue_with_retry
from llmops_gateway.moves.serving import BUILTIN, PlannedEndpoint, plan, queue
from llmops_gateway.operations.integration_configs import ChangeConfig, change_config, list_configs
from llmops_shared.config import Environment
from llmops_shared.events import IntegrationArea
from llmops_shared.integration_flags import AREA_SERVICES

CHANGED_BY: Final = "rollback integrations"
# The reason on each flag change (stored and published, so its wording stays); "seed section 8"
# in it is the integration quickstart's rollback procedure.
REASON: Final = "rollback: integrations disabled, built-in backends take over (seed section 8)"
ALL_AREAS: Final[tuple[IntegrationArea, ...]] = tuple(IntegrationArea)


@dataclass(frozen=True)
class FlagPlan:
    """One area's flag now, and whether the rollback turns it off."""

    area: IntegrationArea
    enabled: bool
    system: str
    source: str
    revision: int

    @property
    def service(self) -> str:
        return AREA_SERVICES[self.area]

    @property
    def changes(self) -> bool:
        """On, or off only by the gateway's own environment: the workers read their own
        environment, which may say on, so the rollback writes an explicit ``false`` row."""
        return self.enabled or self.source != "integration_configs"

    @property
    def action(self) -> str:
        """``turn_off``; ``pin_off`` (off by the environment only: written as a row);
        ``unchanged`` (already off in ``integration_configs``)."""
        if self.enabled:
            return "turn_off"
        return "pin_off" if self.changes else "unchanged"

    def as_dict(self) -> dict[str, Any]:
        return {
            "area": self.area.value,
            "service": self.service,
            "enabled": self.enabled,
            "system": self.system,
            "source": self.source,
            "revision": self.revision,
            "new_enabled": False,
            "action": self.action,
        }


@dataclass(frozen=True)
class RollbackPlan:
    """What a rollback of ``environment`` would change."""

    environment: Environment
    flags: list[FlagPlan]
    endpoints: list[PlannedEndpoint]
    remove_kserve: bool

    @property
    def flag_changes(self) -> list[FlagPlan]:
        return [flag for flag in self.flags if flag.changes]

    @property
    def movable(self) -> list[PlannedEndpoint]:
        return [e for e in self.endpoints if e.skipped is None]

    @property
    def nothing_to_do(self) -> bool:
        return not self.flag_changes and not self.movable

    def as_dict(self) -> dict[str, Any]:
        return {
            "environment": self.environment,
            "remove_kserve": self.remove_kserve,
            "flags": [flag.as_dict() for flag in self.flags],
            "endpoints": [endpoint.as_dict() for endpoint in self.endpoints],
        }


def plan_rollback(
    sessions: SessionFactory,
    settings: GatewaySettings,
    environment: Environment,
    *,
    areas: Sequence[IntegrationArea] = ALL_AREAS,
    remove_kserve: bool = False,
) -> RollbackPlan:
    """The flags of ``areas`` in ``environment`` and, with ``remove_kserve``, the KServe
    endpoints to move back to the built-in Deployment + Service."""
    wanted = set(areas)
    flags = [
        FlagPlan(
            area=config.area,
            enabled=config.enabled,
            system=config.system,
            source=config.source,
            revision=config.revision,
        )
        for config in list_configs(sessions, settings, [environment])
        if config.area in wanted
    ]
    endpoints: list[PlannedEndpoint] = []
    if remove_kserve:
        with sessions() as session:
            endpoints = plan(session, target=BUILTIN, environment=environment)
    return RollbackPlan(
        environment=environment, flags=flags, endpoints=endpoints, remove_kserve=remove_kserve
    )


@dataclass(frozen=True)
class FlagResult:
    """One area after the rollback."""

    area: IntegrationArea
    changed: bool
    enabled: bool
    revision: int

    def as_dict(self) -> dict[str, Any]:
        """Every field, the area by its value (as in the plan's rows)."""
        return {**asdict(self), "area": self.area.value}


@dataclass(frozen=True)
class RollbackResult:
    flags: list[FlagResult]
    endpoints: Queued[PlannedEndpoint]

    def as_dict(self) -> dict[str, Any]:
        return {
            "flags": [flag.as_dict() for flag in self.flags],
            "queued": [e.endpoint_id for e in self.endpoints.queued],
            "already_requested": [e.endpoint_id for e in self.endpoints.already_requested],
        }


def apply_rollback(
    sessions: SessionFactory,
    settings: GatewaySettings,
    rollback: RollbackPlan,
    *,
    correlation_id: str,
) -> RollbackResult:
    """Queue the endpoint moves, then turn the flags off (each in its own transaction; a
    repeated rollback queues and changes nothing). Raises
    :class:`~llmops_gateway.moves.requests.QueueConflict` when the moves could not be
    queued (another rollback queued them at the same moment, twice): no flag was changed."""
    queued = queue_with_retry(
        sessions, lambda session: queue(session, rollback.endpoints, correlation_id=correlation_id)
    )
    results: list[FlagResult] = []
    for flag in rollback.flags:
        if not flag.changes:
            results.append(FlagResult(flag.area, False, flag.enabled, flag.revision))
            continue
        config, changed = change_config(
            sessions,
            settings,
            ChangeConfig(
                environment=rollback.environment,
                area=flag.area,
                enabled=False,
                system=None,
                changed_by=CHANGED_BY,
                reason=REASON,
                correlation_id=correlation_id,
            ),
        )
        results.append(FlagResult(flag.area, changed, config.enabled, config.revision))
    return RollbackResult(flags=results, endpoints=queued)
