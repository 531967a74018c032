"""The health of the integrations, from what Redis and MLflow tell: ``/health/integrations``.

Read-only and bounded: the probes it is given
(:class:`~llmops_gateway.operations.health_probes.HealthProbes`) bound their own calls, and the
flags asked for (``integration_configs``) are read in a worker thread under
:data:`CONFIGS_TIMEOUT_S`, so the answer comes within about two seconds even when Redis or the
database is down. Nothing here raises on an unreachable dependency: what is known is reported
(a database that does not answer: the environment's flags stand in, and ``configs_error`` says
why).

Per integration area: the workers of its service (from their heartbeats, see
:mod:`llmops_shared.heartbeat`), the flag and backend they report, the service's consumer group
on its stream (lag, pending) and the size of the stream's dead-letter stream.

Status rules:

* ``unavailable``: Redis does not answer (the HTTP answer is then a 503);
* ``degraded``: an area that needs a worker has no live one, a worker reports a loop down
  (``healthy: false``) or cannot reach its backend (its readiness probe failed), a
  dead-letter stream is not empty, or MLflow is configured, tracking is
  not known to be off, and MLflow does not answer 200, or a live worker of this environment
  runs another flag than an ``integration_configs`` override asks for (it switches within
  seconds; longer means it does not read ``llmops.config``);
* ``ok``: none of these. Lag alone never degrades: a burst is not an outage.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from llmops_gateway.config import GatewaySettings
from llmops_gateway.db.session import SessionFactory
from llmops_gateway.operations.health_probes import (
    ConsumerGroup,
    HealthProbes,
    ProbeResult,
    StreamFacts,
    describe,
)
from llmops_gateway.operations.integration_configs import (
    EffectiveConfig,
    environment_configs,
    list_configs,
)
from llmops_shared.events import IntegrationArea, Stream
from llmops_shared.heartbeat import WorkerBeat
from llmops_shared.logging import get_logger

MLFLOW_TIMEOUT_S = 1.5
"""Bound of the MLflow probe (the gateway's ``mlflow_timeout_s`` when that is shorter)."""
CONFIGS_TIMEOUT_S = 1.0
"""Bound of the ``integration_configs`` read (it runs before the Redis and MLflow probes)."""

Status = Literal["ok", "degraded", "unavailable"]
AreaStatus = Literal["ok", "degraded", "disabled", "unknown"]


@dataclass(frozen=True)
class Area:
    """One integration area: the service whose workers serve it and the stream they consume."""

    name: str
    service: str
    stream: Stream
    flag: IntegrationArea | None = None


AREAS: tuple[Area, ...] = (
    Area("experiment_tracking", "tracking", Stream.TRAINING, IntegrationArea.EXPERIMENT_TRACKING),
    Area("serving", "serving", Stream.SERVING, IntegrationArea.SERVING_FRAMEWORK),
    Area(
        "workflow_orchestration",
        "workflow",
        Stream.TRAINING,
        IntegrationArea.WORKFLOW_ORCHESTRATION,
    ),
    Area("model_registry", "registry", Stream.CATALOG, IntegrationArea.MODEL_REGISTRY),
    Area("data_versioning", "versioning", Stream.DATASETS, IntegrationArea.DATA_VERSIONING),
    Area("github_sync", "github-sync", Stream.MODELS),
)
"""The worker areas; the gateway's own status consumer is added with its service name."""
STATUS_CONSUMER = "status_consumer"


@dataclass(frozen=True)
class Worker:
    """One worker as its last heartbeat describes it."""

    consumer: str
    host: str | None
    pid: int | None
    environment: str | None
    started_at: datetime | None
    last_seen: datetime | None
    age_s: float
    alive: bool
    healthy: bool | None
    backend: str | None
    enabled: bool | None
    facts: dict[str, str]


@dataclass(frozen=True)
class AreaHealth:
    name: str
    service: str
    stream: str
    status: AreaStatus
    enabled: bool | None
    backend: str | None
    configured: EffectiveConfig | None
    requires_worker: bool
    workers: list[Worker] | None
    workers_alive: int | None
    group: ConsumerGroup | None
    dead_letters: int | None
    problems: list[str]
    mlflow: ProbeResult | None = None
    reachable: bool | None = None
    latency_ms: float | None = None


@dataclass(frozen=True)
class IntegrationsReport:
    status: Status
    environment: str
    namespace: str
    redis: ProbeResult
    integrations: dict[str, AreaHealth]
    dead_letters: dict[str, int] | None
    checked_at: datetime
    configs_error: str | None = None


def _flag(value: str | None) -> bool | None:
    if value is None:
        return None
    return value.strip().lower() in {"true", "1", "yes", "on"}


@dataclass(frozen=True)
class _Probe:
    consumer: str
    name: str
    ok: bool
    latency_ms: float | None
    error: str | None


def _fact(worker: Worker, key: str) -> str | None:
    """A fact of the worker's heartbeat; an empty string (the worker's "none") is absent."""
    value = worker.facts.get(key)
    return value if value else None


def _probes(worker: Worker) -> list[_Probe]:
    """The ``probe.<check>.*`` facts a worker's heartbeat carries (see llmops_shared.worker):
    ``.ok``, ``.latency_ms`` and ``.error``, the last two empty when there is none."""
    names = {key.split(".")[1] for key in worker.facts if key.startswith("probe.")}
    probes = []
    for name in sorted(names):
        latency = _fact(worker, f"probe.{name}.latency_ms")
        try:
            latency_ms = float(latency) if latency is not None else None
        except ValueError:
            latency_ms = None
        probes.append(
            _Probe(
                consumer=worker.consumer,
                name=name,
                ok=_flag(_fact(worker, f"probe.{name}.ok")) is True,
                latency_ms=latency_ms,
                error=_fact(worker, f"probe.{name}.error"),
            )
        )
    return probes


def _worker(beat: WorkerBeat) -> Worker:
    pid = beat.fields.get("pid", "")
    return Worker(
        consumer=beat.consumer,
        host=beat.fields.get("host"),
        environment=beat.fields.get("environment"),
        pid=int(pid) if pid.isdigit() else None,
        started_at=beat.started_at,
        last_seen=beat.last_seen,
        age_s=beat.age_s,
        alive=beat.alive,
        healthy=_flag(beat.fields.get("healthy")),
        backend=beat.facts.get("backend"),
        enabled=_flag(beat.facts.get("enabled")),
        facts=dict(beat.facts),
    )


def _area(
    area: Area,
    settings: GatewaySettings,
    facts: StreamFacts | None,
    mlflow: ProbeResult | None,
    configs: Mapping[IntegrationArea, EffectiveConfig],
) -> AreaHealth:
    requires_worker = True
    enabled: bool | None = None
    backend: str | None = None
    configured = configs.get(area.flag) if area.flag is not None else None
    if (
        area.flag is IntegrationArea.MODEL_REGISTRY
        and configured is not None
        and not configured.enabled
    ):
        requires_worker, enabled, backend = False, False, "request"  # the gateway's fallback
    if area.name == STATUS_CONSUMER and not settings.consume_status:
        requires_worker = False  # another gateway process may consume; reported if it beats
    if facts is None:
        return AreaHealth(
            name=area.name, service=area.service, stream=area.stream.value, status="unknown",
            enabled=enabled, backend=backend, configured=configured,
            requires_worker=requires_worker, workers=None,
            workers_alive=None, group=None, dead_letters=None,
            problems=["Redis unavailable"], mlflow=mlflow,
        )  # fmt: skip
    workers = [_worker(b) for b in facts.beats if b.service == area.service]
    live = [w for w in workers if w.alive]
    if enabled is None and live:
        flags = {w.enabled for w in live}
        enabled = True if flags == {None} else any(f for f in flags if f is not None)
    if backend is None and live:
        backends = sorted({w.backend for w in live if w.backend})
        backend = ",".join(backends) or None
    problems: list[str] = []
    if requires_worker and not live:
        problems.append(f"no live {area.service} worker")
    problems.extend(f"worker {w.consumer} reports a loop down" for w in live if w.healthy is False)
    probes = [probe for w in live for probe in _probes(w)]
    # a failed probe has no latency worth showing (an old one would be stale): only the ok ones
    latencies = [p.latency_ms for p in probes if p.ok and p.latency_ms is not None]
    problems.extend(
        f"worker {p.consumer} cannot reach {p.name}: {p.error or 'failed'}"
        for p in probes
        if not p.ok
    )
    if area.flag is not IntegrationArea.MODEL_REGISTRY:
        problems.extend(_not_following(configured, live, settings.environment))
    dead = facts.dead_letters.get(area.stream, 0)
    if dead:
        problems.append(f"{dead} dead letter(s) in {area.stream}.dlq")
    if mlflow is not None and not mlflow.ok and enabled is not False:
        problems.append(f"MLflow unreachable: {mlflow.error}")
    if problems:
        status: AreaStatus = "degraded"
    elif not requires_worker and enabled is False:
        status = "disabled"
    else:
        status = "ok"
    return AreaHealth(
        name=area.name,
        service=area.service,
        stream=area.stream.value,
        status=status,
        enabled=enabled,
        backend=backend,
        reachable=all(p.ok for p in probes) if probes else None,
        latency_ms=max(latencies) if latencies else None,
        configured=configured,
        requires_worker=requires_worker,
        workers=workers,
        workers_alive=len(live),
        group=facts.groups.get(area.stream, {}).get(area.service),
        dead_letters=dead,
        problems=problems,
        mlflow=mlflow,
    )


def _not_following(
    configured: EffectiveConfig | None, live: list[Worker], environment: str
) -> list[str]:
    """The live workers of ``environment`` that run another flag than an override asks for."""
    if configured is None or configured.source != "integration_configs":
        return []
    return [
        f"worker {w.consumer} runs enabled={str(w.enabled).lower()}, configured "
        f"{str(configured.enabled).lower()} (switching, or not reading llmops.config)"
        for w in live
        if w.enabled is not None
        and w.enabled != configured.enabled
        and (w.environment or environment) == environment
    ]


async def configured_flags(
    sessions: SessionFactory, settings: GatewaySettings
) -> tuple[dict[IntegrationArea, EffectiveConfig], str | None]:
    """The flags asked for in the gateway's environment, and why the table's could not be read
    (then the environment's stand in, so ``MODEL_REGISTRY_ENABLED=false`` still holds)."""
    environment = settings.environment
    try:
        configs = await asyncio.wait_for(
            asyncio.to_thread(list_configs, sessions, settings, [environment]),
            timeout=CONFIGS_TIMEOUT_S,
        )
    except Exception as exc:  # noqa: BLE001 - the database is not this report's subject
        error = f"integration_configs unreadable ({describe(exc)}); showing the environment's flags"
        get_logger(__name__).warning("integration_configs_unreadable", error=describe(exc))
        return {c.area: c for c in environment_configs(settings, environment)}, error
    return {c.area: c for c in configs}, None


async def integrations_health(
    settings: GatewaySettings,
    sessions: SessionFactory,
    probes: HealthProbes,
    *,
    now: datetime,
) -> IntegrationsReport:
    """The whole report; never raises on a dependency being down."""
    configs, configs_error = await configured_flags(sessions, settings)

    async def mlflow_part() -> ProbeResult | None:
        if probes.mlflow is None:
            return None
        return await probes.mlflow(min(settings.mlflow_timeout_s, MLFLOW_TIMEOUT_S))

    (probe, facts), mlflow = await asyncio.gather(probes.redis(), mlflow_part())
    areas = [*AREAS, Area(STATUS_CONSUMER, settings.service_name, Stream.STATUS)]
    out = {
        area.name: _area(
            area, settings, facts, mlflow if area.name == AREAS[0].name else None, configs
        )
        for area in areas
    }
    if facts is None:
        status: Status = "unavailable"
    elif any(a.status == "degraded" for a in out.values()):
        status = "degraded"
    else:
        status = "ok"
    return IntegrationsReport(
        status=status,
        environment=settings.environment,
        namespace=settings.stream_namespace,
        redis=probe,
        integrations=out,
        dead_letters={s.value: n for s, n in facts.dead_letters.items()} if facts else None,
        configs_error=configs_error,
        checked_at=now,
    )
