"""What ``llmops.config`` holds: the latest revision of each area's flag per environment."""

from __future__ import annotations

from collections.abc import Sequence

import redis.asyncio as aioredis

from llmops_shared.integration_flags import read_flags


async def config_revisions(
    redis: aioredis.Redis, environments: Sequence[str], *, namespace: str
) -> dict[tuple[str, str], int]:
    """``(environment, area) -> revision`` of the newest change on the stream (unbounded: the
    caller bounds it)."""
    found: dict[tuple[str, str], int] = {}
    for environment in environments:
        flags, _ = await read_flags(redis, namespace=namespace, environment=environment)
        found.update({(environment, area.value): flag.revision for area, flag in flags.items()})
    return found
