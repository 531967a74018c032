"""The health of the integrations, as Redis and MLflow tell it: ``/health/integrations``.

Read-only and bounded: every Redis call runs under :data:`REDIS_TIMEOUT_S` and MLflow under
:data:`MLFLOW_TIMEOUT_S` (both at once), so the answer comes within about two seconds even when
Redis is down. Nothing here raises on an unreachable dependency: what is known is reported.

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
import time
from collections.abc import Awaitable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal, TypeVar

import httpx
import redis.asyncio as aioredis
from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel

from llmops_gateway.config import GatewaySettings
from llmops_gateway.domain.integration_configs import EffectiveConfig
from llmops_shared.events import IntegrationArea, Stream, dead_letter_stream
from llmops_shared.heartbeat import WorkerBeat, read_heartbeats
from llmops_shared.streams.connection import redact_url

REDIS_TIMEOUT_S = 1.0
"""Bound of the PING, and of the reads that follow it (one pipeline)."""
MLFLOW_TIMEOUT_S = 1.5
"""Bound of the MLflow probe (the gateway's ``mlflow_timeout_s`` when that is shorter)."""

T = TypeVar("T")
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


class Out(BaseModel):
    """camelCase on the wire, as every gateway response."""

    model_config = ConfigDict(alias_generator=to_camel, validate_by_name=True)


class Probe(Out):
    ok: bool
    latency_ms: float | None = None
    error: str | None = None


class MlflowProbe(Probe):
    url: str
    status_code: int | None = None


class WorkerOut(Out):
    consumer: str
    host: str | None
    pid: int | None
    environment: str | None
    started_at: datetime | None
    last_seen: datetime | None
    age_s: float = Field(description="Seconds since the last heartbeat (server clock).")
    alive: bool = Field(description="Beat within the last three heartbeat intervals.")
    healthy: bool | None = Field(description="All of the worker's loops alive at its last beat.")
    backend: str | None
    enabled: bool | None
    facts: dict[str, str] = Field(description="Everything the worker describes about itself.")


class GroupOut(Out):
    name: str
    consumers: int
    pending: int
    lag: int | None = Field(description="Entries not yet delivered to the group; null when "
                            "Redis cannot tell (entries deleted or trimmed).")  # fmt: skip
    last_delivered_id: str | None


class ConfiguredOut(Out):
    """The flag the platform asks for (``/integrations/configs``), in the gateway's environment."""

    enabled: bool
    system: str
    source: str = Field(description="integration_configs (a run-time override) or environment.")
    revision: int


class AreaOut(Out):
    name: str
    service: str
    stream: str
    status: AreaStatus
    enabled: bool | None = Field(description="The integration flag; null when no worker says.")
    backend: str | None = Field(description="What the live workers run (comma-joined if several).")
    reachable: bool | None = Field(
        default=None,
        description="Whether the live workers reach the integration's backend (their "
        "readiness probes, run every heartbeat); null when no worker probes one.",
    )
    latency_ms: float | None = Field(
        default=None,
        description="The slowest successful last probe of the backend by a live worker; null "
        "when none succeeded.",
    )
    configured: ConfiguredOut | None = Field(
        default=None, description="The flag asked for; the workers follow within seconds."
    )
    requires_worker: bool
    workers: list[WorkerOut] | None = Field(description="null when Redis is down.")
    workers_alive: int | None
    group: GroupOut | None
    dead_letters: int | None = Field(description="XLEN of <stream>.dlq (every group's).")
    problems: list[str]
    mlflow: MlflowProbe | None = None


class IntegrationsHealth(Out):
    status: Status
    environment: str
    namespace: str
    redis: Probe
    integrations: dict[str, AreaOut]
    dead_letters: dict[str, int] | None = Field(description="Per contract stream; null when "
                                                "Redis is down.")  # fmt: skip
    configs_error: str | None = Field(
        default=None,
        description="Why the integration_configs table could not be read; the flags shown as "
        "configured are then the environment's (source environment).",
    )
    checked_at: datetime


def _text(value: Any) -> str:
    return value.decode("utf-8", errors="replace") if isinstance(value, bytes) else str(value)


def describe(exc: BaseException) -> str:
    if isinstance(exc, TimeoutError):
        return "timed out"
    return f"{type(exc).__name__}: {exc}"[:300]


async def _bounded(call: Awaitable[T], timeout_s: float) -> T:
    return await asyncio.wait_for(call, timeout=timeout_s)


async def probe_redis(redis: aioredis.Redis | None) -> Probe:
    if redis is None:
        return Probe(ok=False, error="not connected (the gateway is starting or stopping)")
    started = time.perf_counter()
    try:
        await _bounded(redis.ping(), REDIS_TIMEOUT_S)
    except Exception as exc:  # noqa: BLE001 - any failure is the answer, never a 500
        return Probe(ok=False, error=describe(exc))
    return Probe(ok=True, latency_ms=round((time.perf_counter() - started) * 1000, 2))


async def probe_mlflow(http: httpx.AsyncClient, tracking_uri: str, timeout_s: float) -> MlflowProbe:
    """``GET /api/2.0/mlflow/experiments/search?max_results=1``: ok on a 200."""
    url = tracking_uri.rstrip("/") + "/api/2.0/mlflow/experiments/search"
    started = time.perf_counter()
    try:
        response = await _bounded(
            http.get(url, params={"max_results": 1}, timeout=timeout_s), timeout_s + 0.1
        )
    except Exception as exc:  # noqa: BLE001 - unreachable is an answer
        return MlflowProbe(ok=False, url=redact_url(tracking_uri), error=describe(exc))
    latency = round((time.perf_counter() - started) * 1000, 2)
    ok = response.status_code == httpx.codes.OK
    return MlflowProbe(
        ok=ok,
        url=redact_url(tracking_uri),
        latency_ms=latency,
        status_code=response.status_code,
        error=None if ok else f"MLflow answered {response.status_code}",
    )


@dataclass(frozen=True)
class _RedisFacts:
    beats: list[WorkerBeat]
    groups: dict[Stream, dict[str, GroupOut]]
    dead_letters: dict[Stream, int]


async def _read_redis(redis: aioredis.Redis, namespace: str) -> _RedisFacts:
    beats = await read_heartbeats(redis, namespace=namespace)
    streams = list(Stream)
    async with redis.pipeline(transaction=False) as pipe:
        for stream in streams:
            key = f"{namespace}{stream}"
            pipe.xinfo_groups(key)
            pipe.xlen(dead_letter_stream(key))
        replies = await pipe.execute(raise_on_error=False)
    groups: dict[Stream, dict[str, GroupOut]] = {}
    dead: dict[Stream, int] = {}
    for index, stream in enumerate(streams):
        infos, length = replies[2 * index], replies[2 * index + 1]
        dead[stream] = int(length) if isinstance(length, int) else 0
        found: dict[str, GroupOut] = {}
        if isinstance(infos, list):  # an error (no such stream yet) means no groups
            for info in infos:
                lag = info.get("lag")
                last = info.get("last-delivered-id")
                group = GroupOut(
                    name=_text(info["name"]),
                    consumers=int(info.get("consumers", 0)),
                    pending=int(info.get("pending", 0)),
                    lag=int(lag) if lag is not None else None,
                    last_delivered_id=_text(last) if last is not None else None,
                )
                found[group.name] = group
        groups[stream] = found
    return _RedisFacts(beats, groups, dead)


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


def _fact(worker: WorkerOut, key: str) -> str | None:
    """A fact of the worker's heartbeat; an empty string (the worker's "none") is absent."""
    value = worker.facts.get(key)
    return value if value else None


def _probes(worker: WorkerOut) -> list[_Probe]:
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


def _worker(beat: WorkerBeat) -> WorkerOut:
    pid = beat.fields.get("pid", "")
    return WorkerOut(
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
    facts: _RedisFacts | None,
    mlflow: MlflowProbe | None,
    configs: Mapping[IntegrationArea, EffectiveConfig],
) -> AreaOut:
    requires_worker = True
    enabled: bool | None = None
    backend: str | None = None
    config = configs.get(area.flag) if area.flag is not None else None
    configured = (
        ConfiguredOut(
            enabled=config.enabled,
            system=config.system,
            source=config.source,
            revision=config.revision,
        )
        if config is not None
        else None
    )
    if area.flag is IntegrationArea.MODEL_REGISTRY and config is not None and not config.enabled:
        requires_worker, enabled, backend = False, False, "request"  # the gateway's fallback
    if area.name == STATUS_CONSUMER and not settings.consume_status:
        requires_worker = False  # another gateway process may consume; reported if it beats
    problems: list[str] = []
    if facts is None:
        return AreaOut(
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
    if requires_worker and not live:
        problems.append(f"no live {area.service} worker")
    problems.extend(f"worker {w.consumer} reports a loop down" for w in live if w.healthy is False)
    probes = [probe for w in live for probe in _probes(w)]
    reachable = all(p.ok for p in probes) if probes else None
    # a failed probe has no latency worth showing (an old one would be stale): only the ok ones
    latencies = [p.latency_ms for p in probes if p.ok and p.latency_ms is not None]
    problems.extend(
        f"worker {p.consumer} cannot reach {p.name}: {p.error or 'failed'}"
        for p in probes
        if not p.ok
    )
    overridden = configured is not None and configured.source == "integration_configs"
    if configured is not None and overridden and area.flag is not IntegrationArea.MODEL_REGISTRY:
        problems.extend(
            f"worker {w.consumer} runs enabled={str(w.enabled).lower()}, configured "
            f"{str(configured.enabled).lower()} (switching, or not reading llmops.config)"
            for w in live
            if w.enabled is not None
            and w.enabled != configured.enabled
            and (w.environment or settings.environment) == settings.environment
        )
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
    return AreaOut(
        name=area.name,
        service=area.service,
        stream=area.stream.value,
        status=status,
        enabled=enabled,
        backend=backend,
        reachable=reachable,
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


async def integrations_health(
    settings: GatewaySettings,
    redis: aioredis.Redis | None,
    http: httpx.AsyncClient | None,
    *,
    now: datetime,
    configs: Mapping[IntegrationArea, EffectiveConfig] | None = None,
    configs_error: str | None = None,
) -> IntegrationsHealth:
    """The whole report; never raises on a dependency being down. ``configs`` are the flags
    asked for in the gateway's environment (none: the health report omits them);
    ``configs_error`` says why they are the environment's rather than the table's."""
    configs = configs or {}

    async def redis_part() -> tuple[Probe, _RedisFacts | None, str | None]:
        probe = await probe_redis(redis)
        if not probe.ok or redis is None:
            return probe, None, None
        try:
            facts = await _bounded(_read_redis(redis, settings.stream_namespace), REDIS_TIMEOUT_S)
        except Exception as exc:  # noqa: BLE001 - reported, never a 500
            return Probe(ok=False, latency_ms=probe.latency_ms, error=describe(exc)), None, None
        return probe, facts, None

    async def mlflow_part() -> MlflowProbe | None:
        if http is None or not settings.mlflow_tracking_uri:
            return None
        timeout = min(settings.mlflow_timeout_s, MLFLOW_TIMEOUT_S)
        return await probe_mlflow(http, settings.mlflow_tracking_uri, timeout)

    (probe, facts, _), mlflow = await asyncio.gather(redis_part(), mlflow_part())
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
    return IntegrationsHealth(
        status=status,
        environment=settings.environment,
        namespace=settings.stream_namespace,
        redis=probe,
        integrations=out,
        dead_letters={s.value: n for s, n in facts.dead_letters.items()} if facts else None,
        configs_error=configs_error,
        checked_at=now,
    )
