"""Fixtures of the gateway suite: a migrated database (SQLite and PostgreSQL) and a live app.

``gateway_db_url`` is parametrized over both databases. On PostgreSQL each test gets a fresh
schema, selected through the URL's ``options=-csearch_path=...`` so that the app builds its own
engine from settings exactly as in production.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis.asyncio as aioredis
import sqlalchemy as sa

from llmops_gateway.app import create_app
from llmops_gateway.config import GatewaySettings

from integration.gateway.harness import API_KEY, OTHER_API_KEY, Gateway, auth
from support.streams import FAST_CONSUMER as BASE_FAST_CONSUMER

FAST_CONSUMER = BASE_FAST_CONSUMER.model_copy(
    update={
        "batch_size": 50,
        "claim_idle_ms": 1_000,
        "janitor_interval_ms": 500,
        "max_deliveries": 5,
        "retry_max_backoff_s": 0.05,
    }
)


@pytest.fixture(params=["sqlite", "postgresql"])
def gateway_db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A URL of an empty database: a SQLite file, or a fresh PostgreSQL schema."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path}/gateway.db"
        return
    postgres_url: str = request.getfixturevalue("postgres_url")
    schema = f"gw_{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(postgres_url)
    with admin.begin() as conn:
        conn.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    separator = "&" if "?" in postgres_url else "?"
    yield f"{postgres_url}{separator}options=-csearch_path%3D{schema}"
    with admin.begin() as conn:
        conn.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
    admin.dispose()


@pytest.fixture
def make_settings(
    gateway_db_url: str, redis_url: str, tmp_path: Path
) -> Callable[..., GatewaySettings]:
    """Settings for this test's database, Redis and stream namespace; override any field."""
    namespace = f"test.{uuid.uuid4().hex[:10]}:"

    def make(**overrides: Any) -> GatewaySettings:
        values: dict[str, Any] = {
            "database_url": gateway_db_url,
            "redis_url": redis_url,
            "api_keys": [API_KEY, OTHER_API_KEY],
            "stream_namespace": namespace,
            "data_dir": tmp_path / "data",
            "relay_poll_interval_s": 0.05,
            "consumer": FAST_CONSUMER,
            "log_json": False,
            "mlflow_tracking_uri": None,
            # the seed's job names a dataset version; suites about datasets turn this on
            "training_requires_dataset_version": False,
            **overrides,
        }
        return GatewaySettings(_env_file=None, **values)

    return make


@pytest.fixture
async def start_gateway(
    make_settings: Callable[..., GatewaySettings], redis: aioredis.Redis
) -> AsyncIterator[Callable[..., Any]]:
    """Start the app (lifespan and all) with settings overrides; stopped after the test."""
    async with AsyncExitStack() as stack:

        async def start(**overrides: Any) -> Gateway:
            settings = make_settings(**overrides)
            app = create_app(settings)
            await stack.enter_async_context(app.router.lifespan_context(app))
            client = httpx.AsyncClient(  # an admin of every environment unless a test says
                transport=httpx.ASGITransport(app=app), base_url="http://gateway", headers=auth()
            )
            stack.push_async_callback(client.aclose)
            return Gateway(app=app, client=client, settings=settings, redis=redis)

        yield start


@pytest.fixture
async def gateway(start_gateway: Callable[..., Any]) -> Gateway:
    """The gateway with default test settings."""
    gw: Gateway = await start_gateway()
    return gw
