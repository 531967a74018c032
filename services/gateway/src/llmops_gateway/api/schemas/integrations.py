"""Response body of ``GET /health/integrations`` (the report of
:mod:`llmops_gateway.operations.integrations_health`, read from its attributes)."""

from __future__ import annotations

from datetime import datetime

from pydantic import Field

from llmops_gateway.api.schemas.common import CamelOut
from llmops_gateway.operations.integrations_health import (
    AreaStatus,
    IntegrationsReport,
    Status,
)


class Probe(CamelOut):
    ok: bool
    latency_ms: float | None = None
    error: str | None = None


class MlflowProbe(Probe):
    url: str
    status_code: int | None = None


class WorkerOut(CamelOut):
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


class GroupOut(CamelOut):
    name: str
    consumers: int
    pending: int
    lag: int | None = Field(description="Entries not yet delivered to the group; null when "
                            "Redis cannot tell (entries deleted or trimmed).")  # fmt: skip
    last_delivered_id: str | None


class ConfiguredOut(CamelOut):
    """The flag the platform asks for (``/integrations/configs``), in the gateway's environment."""

    enabled: bool
    system: str
    source: str = Field(description="integration_configs (a run-time override) or environment.")
    revision: int


class AreaOut(CamelOut):
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


class IntegrationsHealth(CamelOut):
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

    @classmethod
    def of(cls, report: IntegrationsReport) -> IntegrationsHealth:
        return cls.model_validate(report, from_attributes=True)
