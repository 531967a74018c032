"""Run-time integration flags: the ``integration_configs`` table and its change events.

The environment (``EXPERIMENT_TRACKING_ENABLED``...) gives each area's default; a row here
overrides it for one environment. A change writes the row and queues an
``IntegrationConfigChanged`` (``llmops.config``) in the same transaction, so the workers switch
backend if and only if the change was committed. Setting the value a row already has changes
nothing and publishes nothing: retries and repeated rollbacks are free.

The write is conditional on the revision read (``UPDATE ... SET revision = revision + 1 WHERE
id = :id AND revision = :read``): on SQLite, where ``SELECT ... FOR UPDATE`` is a no-op and
pysqlite begins the transaction only at the first write, two concurrent changes may read the same
revision, and the one that lost re-reads and tries again (:data:`CHANGE_ATTEMPTS` times, then a
409). On PostgreSQL the row's lock (``FOR UPDATE``) already serialises them. Either way every
committed change has its own revision, one more than the last, and the row always holds the
highest revision on the stream, which is the one the workers keep.

:func:`resync_stream` (at the gateway's start) queues each row's current change again when
``llmops.config`` lost it (Redis failover without AOF, ``FLUSHALL``), so restarted workers do
not fall back to the environment while the table says otherwise.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal, cast

from sqlalchemy import CursorResult, select, update
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
from llmops_shared.logging import get_logger

Source = Literal["integration_configs", "environment"]

StreamRevisions = Callable[[Sequence[str]], Awaitable[Mapping[tuple[str, str], int]]]
"""Reads ``llmops.config``: the latest revision per ``(environment, area)`` of the given
environments (:func:`llmops_gateway.adapters.redis_config_stream.config_revisions`)."""


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


def environment_configs(settings: GatewaySettings, environment: str) -> list[EffectiveConfig]:
    """Every area's flag as the environment gives it, without reading the table (the fallback
    when the database does not answer)."""
    return [_effective(settings, environment, area, None) for area in IntegrationArea]


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


CHANGE_ATTEMPTS = 5
"""Read-compare-write rounds of one change before it gives up with a 409."""


class _ChangedMeanwhile(Exception):
    """Another change committed between this one's read and its write: roll back, re-read."""


def change_config(
    sessions: SessionFactory, settings: GatewaySettings, command: ChangeConfig
) -> tuple[EffectiveConfig, bool]:
    """Set one area's flag; ``(config, changed)``. ``changed`` is false when it already was.

    Raises :class:`ConflictError` when concurrent changes of the same area kept winning the
    race for :data:`CHANGE_ATTEMPTS` rounds (the caller retries)."""
    supported = AREA_SYSTEMS[command.area]
    system = command.system or None
    if system is not None and system not in supported:
        raise InvalidRequestError(
            f"system '{system}' is not supported for {command.area.value} "
            f"(supported: {', '.join(supported)})"
        )
    for _ in range(CHANGE_ATTEMPTS):
        try:
            return _change_once(sessions, settings, command, system)
        except (_ChangedMeanwhile, IntegrityError):
            # a concurrent change won (IntegrityError: two first changes both inserted)
            continue
    raise ConflictError(
        f"{command.area.value} in {command.environment} was changed concurrently; retry"
    )


def _change_once(
    sessions: SessionFactory, settings: GatewaySettings, command: ChangeConfig, system: str | None
) -> tuple[EffectiveConfig, bool]:
    """One read-compare-write; :class:`_ChangedMeanwhile` when the row moved under it."""
    with sessions.begin() as session:
        row = session.scalars(
            select(IntegrationConfig)
            .where(
                IntegrationConfig.environment == command.environment,
                IntegrationConfig.area == command.area.value,
            )
            .with_for_update()  # PostgreSQL: serialises changes; SQLite: no-op, see below
        ).one_or_none()
        current = _effective(settings, command.environment, command.area, row)
        system = system or current.system
        if row is not None and (row.enabled, row.system) == (command.enabled, system):
            return current, False
        now = utcnow()
        if row is None:
            row = IntegrationConfig(
                id=str(uuid.uuid4()),
                environment=command.environment,
                area=command.area.value,
                enabled=command.enabled,
                system=system,
                config={},
                revision=1,
                changed_by=command.changed_by,
                reason=command.reason,
                updated_at=now,
            )
            session.add(row)
            session.flush()  # a concurrent first change: IntegrityError (unique area+env)
        else:
            read_revision = row.revision
            written = cast(
                CursorResult[Any],
                session.execute(
                    update(IntegrationConfig)
                    .where(
                        IntegrationConfig.id == row.id,
                        IntegrationConfig.revision == read_revision,
                    )
                    .values(
                        enabled=command.enabled,
                        system=system,
                        revision=IntegrationConfig.revision + 1,
                        changed_by=command.changed_by,
                        reason=command.reason,
                        updated_at=now,
                    )
                    .execution_options(synchronize_session=False)
                ),
            )
            if written.rowcount != 1:
                raise _ChangedMeanwhile
            session.refresh(row)  # revision read_revision + 1, under this transaction's write
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
        result = _effective(settings, command.environment, command.area, row)
    return result, True


RESYNC_REDIS_TIMEOUT_S = 2.0
"""Bound of reading ``llmops.config`` at start; past it every row is queued again."""


def _row_environments(sessions: SessionFactory) -> list[str]:
    with sessions() as session:
        return sorted(set(session.scalars(select(IntegrationConfig.environment).distinct())))


def republish_configs(
    sessions: SessionFactory,
    on_stream: Mapping[tuple[str, str], int] | None,
    correlation_id: str,
) -> list[tuple[str, str, int]]:
    """Queue every row's current change again unless ``on_stream`` (the latest revision per
    ``(environment, area)`` on ``llmops.config``; ``None``: unknown) already has it; one
    transaction. Returns ``(environment, area, revision)`` of what was queued.

    A copy of a revision the stream still holds is harmless (the workers keep the highest
    revision, and an equal one changes nothing), so an unknown stream gets every row."""
    queued: list[tuple[str, str, int]] = []
    log = get_logger(__name__)
    with sessions.begin() as session:
        rows = session.scalars(
            select(IntegrationConfig).order_by(
                IntegrationConfig.environment, IntegrationConfig.area
            )
        ).all()
        for row in rows:
            latest = on_stream.get((row.environment, row.area), 0) if on_stream is not None else 0
            if latest > row.revision:  # published by someone else, or the table was restored
                log.warning(
                    "integration_config_stream_ahead",
                    environment=row.environment,
                    area=row.area,
                    table_revision=row.revision,
                    stream_revision=latest,
                    note="the workers follow the stream's revision",
                )
            if latest >= row.revision:
                continue
            try:
                change = IntegrationConfigChanged(
                    environment=row.environment,
                    area=IntegrationArea(row.area),
                    enabled=row.enabled,
                    system=row.system,
                    revision=row.revision,
                    changed_by=row.changed_by,
                    reason=row.reason,
                )
            except ValueError as exc:  # a row edited by hand into something no event can carry
                log.error(
                    "integration_config_not_republished",
                    environment=row.environment,
                    area=row.area,
                    revision=row.revision,
                    error=str(exc),
                )
                continue
            publish(session, change, correlation_id)
            queued.append((row.environment, row.area, row.revision))
    return queued


async def resync_stream(
    sessions: SessionFactory,
    revisions: StreamRevisions,
    *,
    timeout_s: float = RESYNC_REDIS_TIMEOUT_S,
) -> list[tuple[str, str, int]]:
    """At the gateway's start: put back on ``llmops.config`` (through the outbox) every row's
    current revision the stream lost, e.g. after a Redis failover without AOF or a FLUSHALL,
    so restarted workers follow the table rather than their environment. Unreachable Redis
    (``revisions`` fails or takes longer than ``timeout_s``): every row is queued. Returns what
    was queued."""
    log = get_logger(__name__)
    environments = await asyncio.to_thread(_row_environments, sessions)
    if not environments:
        return []
    on_stream: dict[tuple[str, str], int] | None
    try:
        on_stream = dict(await asyncio.wait_for(revisions(environments), timeout=timeout_s))
    except Exception as exc:  # noqa: BLE001 - unknown stream: queue every row (harmless copies)
        log.warning("integration_config_stream_unreadable", error=str(exc) or type(exc).__name__)
        on_stream = None
    queued = await asyncio.to_thread(
        republish_configs, sessions, on_stream, f"gateway-start-{uuid.uuid4()}"
    )
    if queued:
        log.info(
            "integration_configs_republished",
            changes=[f"{env}/{area}@{revision}" for env, area, revision in queued],
            stream_known=on_stream is not None,
        )
    return queued
