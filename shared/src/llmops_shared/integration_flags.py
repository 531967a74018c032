"""Integration flags at run time: the environment's defaults, overridden by ``llmops.config``.

A worker starts on the flag its environment variables give (``EXPERIMENT_TRACKING_ENABLED``...).
The gateway's ``integration_configs`` table overrides it per environment, and every change is an
:class:`~llmops_shared.events.IntegrationConfigChanged` event on ``llmops.config``. Each worker
process reads that stream itself, without a consumer group (every replica must see every
change), keeps the highest ``revision`` per area of its own environment, and, when the flag of the
area it runs differs from what it runs, stops its consumers after the batch in hand and starts
again on the other backend (:func:`llmops_shared.worker.serve_with_flags`). No redeploy.

The stream is the whole history of changes, so a worker that starts (or restarts after Redis was
down) reads the current flags from it: there is no second copy to keep in step.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from llmops_shared.events import (
    EventDecodeError,
    IntegrationArea,
    IntegrationConfigChanged,
    Stream,
    decode_event,
)
from llmops_shared.logging import get_logger
from llmops_shared.streams.publisher import EVENT_FIELD, stream_key

SYSTEM_SETTINGS: Final[dict[IntegrationArea, str]] = {
    IntegrationArea.EXPERIMENT_TRACKING: "experiment_tracking_system",
    IntegrationArea.SERVING_FRAMEWORK: "serving_framework_default",
    IntegrationArea.WORKFLOW_ORCHESTRATION: "workflow_orchestration_system",
    IntegrationArea.MODEL_REGISTRY: "model_registry_default",
    IntegrationArea.DATA_VERSIONING: "data_versioning_system",
}
"""The settings field (environment variable, lower-cased) naming each area's system, as the
integration quickstart spells them; the flag itself is always ``<area>_enabled``."""

AREA_SERVICES: Final[dict[IntegrationArea, str]] = {
    IntegrationArea.EXPERIMENT_TRACKING: "tracking",
    IntegrationArea.SERVING_FRAMEWORK: "serving",
    IntegrationArea.WORKFLOW_ORCHESTRATION: "workflow",
    IntegrationArea.MODEL_REGISTRY: "gateway",
    IntegrationArea.DATA_VERSIONING: "versioning",
}
"""Which service switches backend on each area's flag (model imports fall back in the gateway)."""

SCAN_LIMIT: Final = 10_000
"""Newest config entries read at start; thousands of flag changes is far beyond real use."""


@dataclass(frozen=True)
class IntegrationFlag:
    """Whether an area is on, on which system, and which change said so (0: the environment)."""

    enabled: bool
    system: str
    revision: int = 0

    def same_backend(self, other: IntegrationFlag) -> bool:
        """Whether ``other`` selects the backend this one does (revisions aside)."""
        return (self.enabled, self.system) == (other.enabled, other.system)

    @classmethod
    def of(cls, change: IntegrationConfigChanged) -> IntegrationFlag:
        return cls(enabled=change.enabled, system=change.system, revision=change.revision)


Flags = dict[IntegrationArea, IntegrationFlag]


def _fold(flags: Flags, raw: Any, environment: str) -> None:
    """Keep ``raw`` if it is a newer change of ``environment``; ignore anything else."""
    fields = raw if isinstance(raw, dict) else {}
    data = fields.get(EVENT_FIELD) or fields.get(EVENT_FIELD.decode())
    if data is None:
        return
    try:
        event = decode_event(data, expected_stream=Stream.CONFIG)
    except EventDecodeError as exc:
        get_logger(__name__).warning("integration_config_event_invalid", reason=str(exc))
        return
    change = event.payload
    if not isinstance(change, IntegrationConfigChanged) or change.environment != environment:
        return
    known = flags.get(change.area)
    if known is None or change.revision > known.revision:
        flags[change.area] = IntegrationFlag.of(change)


async def read_flags(
    redis: aioredis.Redis, *, namespace: str, environment: str, limit: int = SCAN_LIMIT
) -> tuple[Flags, str]:
    """The current overrides of ``environment`` and the id to read new changes after."""
    entries = list(await redis.xrevrange(stream_key(namespace, Stream.CONFIG), count=limit) or [])
    flags: Flags = {}
    for _, fields in reversed(entries):
        _fold(flags, fields, environment)
    last = entries[0][0] if entries else b"0-0"
    return flags, last.decode() if isinstance(last, bytes) else str(last)


class FlagWatcher:
    """Watches ``llmops.config`` for a change of one area's flag in one environment.

    :meth:`changed` returns the new flag as soon as the effective one selects another backend
    than ``running``; it returns ``None`` when ``stop`` is set. A Redis outage is logged and
    retried: it never stops the worker (the flag in force stays in force).

    ``accept`` says why a flag cannot be applied (the worker's settings refuse it, e.g. Argo
    through an Argo Server with no URL), or ``None``: a refused flag is logged once, reported
    as :attr:`refused`, and the worker stays on what it runs instead of restarting into a crash.
    """

    def __init__(
        self,
        redis: aioredis.Redis,
        *,
        namespace: str,
        environment: str,
        area: IntegrationArea,
        running: IntegrationFlag,
        block_ms: int = 1_000,
        retry_s: float = 1.0,
        accept: Callable[[IntegrationFlag], str | None] | None = None,
    ) -> None:
        self._redis = redis
        self._namespace = namespace
        self._environment = environment
        self._area = area
        self._running = running
        self._block_ms = block_ms
        self._retry_s = retry_s
        self._key = stream_key(namespace, Stream.CONFIG)
        self._accept = accept
        self._flags: Flags = {}
        self._last_id: str | None = None
        self._log = get_logger(__name__)
        self.refused: tuple[IntegrationFlag, str] | None = None

    @property
    def effective(self) -> IntegrationFlag:
        """The override if there is one, else the flag the worker was started with."""
        return self._flags.get(self._area, self._running)

    @property
    def in_force(self) -> IntegrationFlag:
        """The flag the worker runs: the effective one once it selects the running backend."""
        flag = self.effective
        return flag if flag.same_backend(self._running) else self._running

    def _differs(self) -> IntegrationFlag | None:
        flag = self.effective
        if flag.same_backend(self._running):
            self.refused = None
            return None
        reason = self._accept(flag) if self._accept is not None else None
        if reason is None:
            self.refused = None
            return flag
        if self.refused is None or self.refused[0] != flag:
            self._log.error(
                "integration_flag_not_applicable",
                area=self._area.value,
                enabled=flag.enabled,
                system=flag.system,
                revision=flag.revision,
                reason=reason,
                action="staying on the running backend",
            )
        self.refused = (flag, reason)
        return None

    async def load(self) -> IntegrationFlag | None:
        """Read the current overrides; the new flag if the worker runs the wrong backend."""
        self._flags, self._last_id = await read_flags(
            self._redis, namespace=self._namespace, environment=self._environment
        )
        return self._differs()

    async def changed(self, stop: asyncio.Event) -> IntegrationFlag | None:
        """Block until the flag selects another backend (returned) or ``stop`` (``None``)."""
        while not stop.is_set():
            try:
                if self._last_id is None:
                    flag = await self.load()
                    if flag is not None:
                        return flag
                    continue
                reply = await self._redis.xread(
                    {self._key: self._last_id}, count=100, block=self._block_ms
                )
            except (RedisError, OSError) as exc:
                self._log.warning("integration_config_read_failed", error=str(exc))
                self._last_id = None  # re-read everything: the stream may have been recreated
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), timeout=self._retry_s)
                continue
            for _, entries in _streams(reply):
                for entry_id, fields in entries:
                    self._last_id = entry_id.decode() if isinstance(entry_id, bytes) else entry_id
                    _fold(self._flags, fields, self._environment)
            flag = self._differs()
            if flag is not None:
                return flag
        return None


def _streams(reply: Any) -> list[tuple[Any, list[tuple[Any, Any]]]]:
    """XREAD's reply as ``[(stream, entries)]`` under RESP2 (list) and RESP3 (dict)."""
    if not reply:
        return []
    if isinstance(reply, dict):
        return list(reply.items())
    return [(name, entries) for name, entries in reply]
