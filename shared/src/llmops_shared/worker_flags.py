"""The integration flag in the worker host: its watcher, its first read, the heartbeat's facts.

Split out of :mod:`llmops_shared.worker`, which runs the process: this module only knows the
flag of the service's integration area (:mod:`llmops_shared.integration_flags`) — which
settings it is applied to, how the first read of ``llmops.config`` waits for Redis, and what the
heartbeat says of the flag in force.
"""

from __future__ import annotations

import asyncio
import contextlib
from contextvars import ContextVar

import redis.asyncio as aioredis
from pydantic import ValidationError
from redis.exceptions import RedisError

from llmops_shared.config import ServiceSettings
from llmops_shared.events import IntegrationArea
from llmops_shared.integration_flags import FlagWatcher, IntegrationFlag
from llmops_shared.logging import get_logger

CONFIGURED: ContextVar[ServiceSettings | None] = ContextVar("llmops_configured", default=None)
"""The settings the process started with, set by :func:`~llmops_shared.worker.serve_with_flags`:
a flag is always applied to them (and checked against them), never to an already switched copy."""


def flag_watcher(settings: ServiceSettings, redis: aioredis.Redis) -> FlagWatcher | None:
    """The watcher of the service's integration area, if it has one."""
    running = settings.integration_flag()
    if running is None or settings.integration_area is None:
        return None
    configured = CONFIGURED.get() or settings

    def accept(flag: IntegrationFlag) -> str | None:
        """Why the settings refuse ``flag`` (a contradiction a validator catches), or None."""
        try:
            configured.with_integration_flag(flag.enabled, flag.system)
        except ValidationError as exc:
            return "; ".join(str(error["msg"]) for error in exc.errors())
        except ValueError as exc:
            return str(exc)
        return None

    return FlagWatcher(
        redis,
        namespace=settings.stream_namespace,
        environment=settings.environment,
        area=IntegrationArea(settings.integration_area),
        running=IntegrationFlag(enabled=running[0], system=running[1]),
        accept=accept,
    )


async def load_flags(
    flags: FlagWatcher, requested: asyncio.Event, *, attempts: int = 20, retry_s: float = 0.5
) -> IntegrationFlag | None:
    """The first read of ``llmops.config``, retried for about ten seconds while Redis does not
    answer (the consumers cannot work without it anyway); then the worker starts on the
    environment's flag and the watcher keeps trying."""
    log = get_logger(__name__)
    for attempt in range(1, attempts + 1):
        try:
            return await flags.load()
        except (RedisError, OSError) as exc:
            if attempt == attempts:
                log.warning("integration_config_unreadable", error=str(exc), action="starting "
                            "on the environment's flag; the watcher keeps trying")  # fmt: skip
                return None
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(requested.wait(), timeout=retry_s)
        if requested.is_set():
            return None
    return None


def flag_facts(watcher: FlagWatcher | None) -> dict[str, str]:
    """What the heartbeat says of the flag in force: value, system and where it came from."""
    if watcher is None:
        return {}
    flag = watcher.in_force
    refused = watcher.refused
    return {
        "enabled": str(flag.enabled).lower(),
        "system": flag.system,
        "config_revision": str(flag.revision),
        "config_source": "llmops.config" if flag.revision else "environment",
        "config_error": f"revision {refused[0].revision} not applied: {refused[1]}"
        if refused
        else "",
    }
