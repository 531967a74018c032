"""Redis connections for the runtime: one place that decides client options.

``decode_responses=False`` keeps entries as bytes, which pydantic parses without a copy, and
``protocol=2`` pins reply shapes (redis-py 8 defaults to RESP3, whose XREAD replies are maps).
"""

from __future__ import annotations

from contextlib import AsyncExitStack

import redis
import redis.asyncio as aioredis

from llmops_shared.config import ServiceSettings
from llmops_shared.logging import get_logger

SOCKET_TIMEOUT_S = 30.0
"""Longer than any blocking read we issue (``block_ms`` is at most 20 s), so a read that does
not return in time is a dead connection (half-open TCP), not a quiet stream."""

_OPTIONS: dict[str, object] = {
    "decode_responses": False,
    "protocol": 2,
    "socket_connect_timeout": 5,
    "socket_timeout": SOCKET_TIMEOUT_S,
    "socket_keepalive": True,
    "health_check_interval": 30,
    "retry_on_timeout": False,
    # no CLIENT SETINFO on connect: per-service ACL users (deploy/redis) are not granted it,
    # Redis 7.0 does not know it, and on 7.2+ every refusal would land in ACL LOG
    "driver_info": None,
}


def async_redis(url: str) -> aioredis.Redis:
    """An asyncio client; connections are opened lazily, on first command."""
    return aioredis.Redis.from_url(url, **_OPTIONS)  # type: ignore[arg-type]


def sync_redis(url: str) -> redis.Redis:
    """A blocking client, for code that runs in a worker thread (the outbox relay)."""
    return redis.Redis.from_url(url, **_OPTIONS)


def redact_url(url: str) -> str:
    """``redis://user:***@host:port/db``: safe to log."""
    scheme, sep, rest = url.partition("://")
    if not sep or "@" not in rest:
        return url
    credentials, _, host = rest.rpartition("@")
    user = credentials.split(":", 1)[0]
    return f"{scheme}://{user}:***@{host}"


class RedisNotConfiguredError(RuntimeError):
    """``REDIS_URL`` is unset and there is no embedded Redis to fall back on."""


def resolve_redis_url(settings: ServiceSettings, stack: AsyncExitStack) -> str:
    """``REDIS_URL`` or a private embedded server that lives as long as ``stack``.

    The embedded server is ``llmops-cli``'s (a development fallback, imported only here): a
    service installed without it (an image) needs ``REDIS_URL``.
    """
    if settings.redis_url is not None:
        return settings.redis_url.get_secret_value()
    try:
        from llmops_cli.embedded_redis import EmbeddedRedis
    except ModuleNotFoundError as exc:
        if exc.name not in {"llmops_cli", "llmops_cli.embedded_redis"}:
            raise
        raise RedisNotConfiguredError(
            "REDIS_URL is not set and the embedded Redis is not installed: set REDIS_URL, "
            "or install llmops-cli / run the stack with `llmops up`"
        ) from exc
    embedded = EmbeddedRedis().start()
    stack.callback(embedded.close)
    get_logger(__name__).warning(
        "embedded_redis_started",
        url=embedded.url,
        note="REDIS_URL is not set; using a private redis-server. Not for production.",
    )
    return embedded.url
