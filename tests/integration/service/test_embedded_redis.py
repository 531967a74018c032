"""The embedded redis-server: the local default and the fault tests' private server."""

from __future__ import annotations

from pathlib import Path

import pytest
import redis

from llmops_cli.embedded_redis import EmbeddedRedis, EmbeddedRedisError

pytestmark = pytest.mark.integration


def test_aof_keeps_acknowledged_writes_across_a_kill(tmp_path: Path) -> None:
    with EmbeddedRedis(data_dir=tmp_path, appendonly=True) as server:
        client = redis.Redis.from_url(server.url)
        client.xadd("s", {"event": "1"})
        server.restart(hard=True)  # SIGKILL, then start on the same port and directory
        assert client.xlen("s") == 1


def test_a_taken_port_is_refused_not_mistaken_for_ours(tmp_path: Path) -> None:
    with EmbeddedRedis() as first:
        second = EmbeddedRedis(port=first.port, data_dir=tmp_path)
        with pytest.raises(EmbeddedRedisError, match="already in use"):
            second.start()
