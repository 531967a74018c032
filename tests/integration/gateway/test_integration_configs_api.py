"""``/integrations/configs`` on a real database and Redis: defaults from the environment, an
override stored and announced on ``llmops.config`` in one step, no-op changes that publish
nothing, bad changes refused, and the gateway's own model-registry fallback following the row."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest
import redis.asyncio as aioredis
import sqlalchemy as sa

from llmops_gateway.app import create_app
from llmops_gateway.config import GatewaySettings
from llmops_shared.events import IntegrationConfigChanged, Stream
from llmops_shared.integration_flags import read_flags

from integration.gateway.harness import API, NO_CREDENTIAL, Gateway, auth
from support.streams import read_events, wait_until

pytestmark = pytest.mark.integration

CONFIGS = f"{API}/integrations/configs"


async def _configs(gateway: Gateway, environment: str = "dev") -> dict[str, dict[str, Any]]:
    response = await gateway.client.get(CONFIGS, params={"environment": environment})
    assert response.status_code == 200, response.text
    return {item["area"]: item for item in response.json()["items"]}


async def _config_events(gateway: Gateway) -> list[IntegrationConfigChanged]:
    events = await read_events(gateway.redis, f"{gateway.namespace}{Stream.CONFIG}")
    payloads = [event.payload for event in events]
    assert all(isinstance(p, IntegrationConfigChanged) for p in payloads)
    return payloads  # type: ignore[return-value]


async def _put(gateway: Gateway, path: str, body: dict[str, Any], **headers: str) -> Any:
    return await gateway.client.put(f"{CONFIGS}/{path}", json=body, headers=headers or auth())


async def test_defaults_come_from_the_environment(start_gateway: Any) -> None:
    gateway: Gateway = await start_gateway(
        experiment_tracking_enabled=False, model_registry_enabled=True
    )
    configs = await _configs(gateway)
    assert set(configs) == {
        "experiment_tracking", "serving_framework", "workflow_orchestration", "model_registry",
        "data_versioning",
    }  # fmt: skip
    tracking = configs["experiment_tracking"]
    assert (tracking["enabled"], tracking["system"], tracking["source"]) == (
        False, "mlflow", "environment",
    )  # fmt: skip
    assert (tracking["service"], tracking["revision"]) == ("tracking", 0)
    assert configs["serving_framework"]["system"] == "kserve"
    every = (await gateway.client.get(CONFIGS)).json()["items"]
    assert {item["environment"] for item in every} == {"dev", "stg", "prod"}


async def test_a_change_is_stored_and_announced_once(gateway: Gateway) -> None:
    changed = await _put(
        gateway, "prod/serving_framework",
        {"enabled": False, "reason": "KServe upgrade", "changedBy": "oncall"},
    )  # fmt: skip
    assert changed.status_code == 200, changed.text
    body = changed.json()
    assert (body["enabled"], body["system"], body["source"]) == (
        False,
        "kserve",
        "integration_configs",
    )
    # the verified caller (the client's own "oncall" is only a note in the audit log)
    assert (body["revision"], body["changed"], body["changedBy"]) == (1, True, "API_KEYS#1")

    async def published() -> bool:
        return len(await _config_events(gateway)) == 1

    await wait_until(published, timeout_s=10)
    [event] = await _config_events(gateway)
    assert (event.environment, event.area.value, event.enabled, event.revision) == (
        "prod", "serving_framework", False, 1,
    )  # fmt: skip
    assert event.reason == "KServe upgrade"
    # other environments keep their defaults
    assert (await _configs(gateway, "dev"))["serving_framework"]["source"] == "environment"
    assert (await _configs(gateway, "prod"))["serving_framework"]["enabled"] is False

    again = (await _put(gateway, "prod/serving_framework", {"enabled": False})).json()
    assert (again["changed"], again["revision"]) == (False, 1)
    back_on = (await _put(gateway, "prod/serving_framework", {"enabled": True})).json()
    assert (back_on["changed"], back_on["revision"], back_on["enabled"]) == (True, 2, True)

    async def two() -> bool:
        return len(await _config_events(gateway)) == 2

    await wait_until(two, timeout_s=10)
    assert [e.revision for e in await _config_events(gateway)] == [1, 2]
    # what a worker of prod reads from the stream: the latest revision
    flags, _ = await read_flags(gateway.redis, namespace=gateway.namespace, environment="prod")
    assert {area.value: (f.enabled, f.revision) for area, f in flags.items()} == {
        "serving_framework": (True, 2)
    }
    assert (await read_flags(gateway.redis, namespace=gateway.namespace, environment="dev"))[
        0
    ] == {}


@pytest.mark.parametrize(
    ("path", "body", "loc"),
    [
        ("dev/serving_framework", {"enabled": True, "system": "seldon"}, None),
        ("qa/serving_framework", {"enabled": True}, ["path", "environment"]),
        ("dev/feature_store", {"enabled": True}, ["path", "area"]),
        ("dev/serving_framework", {"enabled": "maybe"}, ["body", "enabled"]),
        ("dev/serving_framework", {"enabled": True, "colour": "red"}, ["body", "colour"]),
        # review finding: a changedBy the event cannot carry was a 500 after the row was read
        (
            "dev/serving_framework",
            {"enabled": False, "changedBy": "x" * 257},
            ["body", "changedBy"],
        ),
    ],
)
async def test_bad_changes_are_refused_and_change_nothing(
    gateway: Gateway, path: str, body: dict[str, Any], loc: list[str] | None
) -> None:
    response = await _put(gateway, path, body)
    assert response.status_code == 422, response.text
    detail = response.json()["detail"]
    if loc is None:
        assert "system 'seldon' is not supported for serving_framework" in str(detail)
    else:
        assert [error["loc"] for error in detail] == [loc]
    assert gateway.count("integration_configs") == 0
    assert gateway.count("outbox") == 0


async def test_changing_a_flag_needs_the_api_key(gateway: Gateway) -> None:
    response = await gateway.client.put(
        f"{CONFIGS}/dev/data_versioning", json={"enabled": False}, headers=NO_CREDENTIAL
    )
    assert response.status_code == 401
    assert gateway.count("integration_configs") == 0


async def test_the_model_registry_row_switches_the_gateways_own_fallback(
    gateway: Gateway,
) -> None:
    """``MODEL_REGISTRY_ENABLED`` is applied by the gateway itself: the row takes effect on the
    next import, with no restart."""
    body = {"registryType": "huggingface", "registryModelId": "org/tiny"}
    imports = f"{API}/catalog/models/import"
    off = await _put(gateway, "dev/model_registry", {"enabled": False})
    assert off.status_code == 200
    refused = await gateway.client.post(imports, json=body, headers=auth())
    assert refused.status_code == 422  # the fallback needs family and maxPositionEmbeddings
    recorded = await gateway.client.post(
        imports, json={**body, "family": "bert", "maxPositionEmbeddings": 512}, headers=auth()
    )
    assert recorded.status_code == 202, recorded.text
    assert (recorded.json()["status"], recorded.json()["verified"]) == ("Ready", False)
    health = (await gateway.client.get(f"{API}/health/integrations")).json()
    registry = health["integrations"]["model_registry"]
    assert (registry["enabled"], registry["backend"], registry["status"]) == (
        False, "request", "disabled",
    )  # fmt: skip
    assert registry["configured"]["source"] == "integration_configs"

    await _put(gateway, "dev/model_registry", {"enabled": True})
    pending = await gateway.client.post(
        imports, json={**body, "registryModelId": "org/other"}, headers=auth()
    )
    assert pending.status_code == 202, pending.text
    assert pending.json()["status"] == "Pending"


async def _all_published(gateway: Gateway) -> None:
    async def drained() -> bool:
        with gateway.state.engine.connect() as conn:
            left = conn.execute(sa.text("SELECT count(*) FROM outbox WHERE published_at IS NULL"))
            return int(left.scalar_one()) == 0

    await wait_until(drained, timeout_s=20)


@pytest.mark.parametrize("first_exists", [True, False], ids=["update", "insert"])
async def test_concurrent_changes_get_consecutive_revisions_and_the_last_one_wins(
    gateway: Gateway, first_exists: bool
) -> None:
    """Review finding: on SQLite ``SELECT ... FOR UPDATE`` is a no-op and pysqlite begins the
    transaction only at the first write, so concurrent PUTs read the same revision and the
    stream could end on a revision the table no longer holds. The write is conditional on the
    revision read; every committed change gets its own revision, in order."""
    path = "dev/serving_framework"
    if first_exists:
        assert (await _put(gateway, path, {"enabled": True})).status_code == 200
    answers = []
    for _ in range(4):  # rounds of concurrent PUTs (sync handlers: one thread each)
        answers += await asyncio.gather(
            *(_put(gateway, path, {"enabled": n % 2 == 0, "changedBy": f"t{n}"}) for n in range(8))
        )
    assert {a.status_code for a in answers} <= {200, 409}, [a.text for a in answers]
    changed = [
        a.json()["revision"] for a in answers if a.status_code == 200 and a.json()["changed"]
    ]
    assert len(changed) == len(set(changed)), sorted(changed)
    await _all_published(gateway)
    events = [e for e in await _config_events(gateway) if e.area.value == "serving_framework"]
    revisions = [e.revision for e in events]
    assert sorted(revisions) == list(range(1, len(revisions) + 1)), revisions
    last = max(events, key=lambda e: e.revision)
    row = (await _configs(gateway))["serving_framework"]
    assert (row["enabled"], row["revision"]) == (last.enabled, last.revision)
    flags, _ = await read_flags(gateway.redis, namespace=gateway.namespace, environment="dev")
    [flag] = flags.values()
    assert (flag.enabled, flag.revision) == (row["enabled"], row["revision"])


@asynccontextmanager
async def _running(settings: GatewaySettings, redis: aioredis.Redis) -> AsyncIterator[Gateway]:
    """One gateway process's life (start-up included), stopped on leaving."""
    app = create_app(settings)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://gw") as client,
    ):
        yield Gateway(app=app, client=client, settings=settings, redis=redis)


async def test_a_lost_config_stream_is_refilled_from_the_table_at_start(
    make_settings: Callable[..., GatewaySettings], redis: aioredis.Redis
) -> None:
    """Review finding: nothing re-synced ``llmops.config`` with the table, so after Redis lost
    the stream (failover without AOF, FLUSHALL) restarted workers fell back to the environment
    while the table said otherwise. At start the gateway queues each row's current change the
    stream does not hold, with the row's revision; nothing when the stream has it."""
    settings = make_settings()
    key = f"{settings.stream_namespace}{Stream.CONFIG}"

    def summary(events: list[IntegrationConfigChanged]) -> list[tuple[str, str, bool, int]]:
        return sorted((e.environment, e.area.value, e.enabled, e.revision) for e in events)

    async with _running(settings, redis) as gateway:
        await _put(gateway, "prod/serving_framework", {"enabled": False, "reason": "upgrade"})
        await _put(gateway, "dev/data_versioning", {"enabled": False})
        await _put(gateway, "dev/data_versioning", {"enabled": True})
        await _all_published(gateway)
        assert len(await _config_events(gateway)) == 3
    await redis.delete(key)  # Redis lost the stream

    async with _running(settings, redis) as gateway:
        await _all_published(gateway)
        events = await _config_events(gateway)
        assert summary(events) == [
            ("dev", "data_versioning", True, 2), ("prod", "serving_framework", False, 1),
        ]  # fmt: skip
        assert [e.reason for e in events if e.area.value == "serving_framework"] == ["upgrade"]
        prod, _ = await read_flags(redis, namespace=gateway.namespace, environment="prod")
        assert {a.value: (f.enabled, f.revision) for a, f in prod.items()} == {
            "serving_framework": (False, 1)
        }
        queued = gateway.count("outbox")
    entries = await redis.xrange(key)

    async with _running(settings, redis) as gateway:  # the stream has every row: nothing queued
        await _all_published(gateway)
        assert gateway.count("outbox") == queued
        assert await redis.xrange(key) == entries

    # the stream lost only the dev change: only that one comes back
    await redis.delete(key)
    serving = next(fields for _, fields in entries if b"serving_framework" in fields[b"event"])
    await redis.xadd(key, serving)
    async with _running(settings, redis) as gateway:
        await _all_published(gateway)
        assert summary(await _config_events(gateway)) == [
            ("dev", "data_versioning", True, 2), ("prod", "serving_framework", False, 1),
        ]  # fmt: skip
        assert gateway.count("outbox") == queued + 1


async def test_an_unreachable_redis_at_start_queues_every_row(
    make_settings: Callable[..., GatewaySettings], redis: aioredis.Redis
) -> None:
    """Redis down at start: the stream cannot be compared, so every row's current change is
    queued (a copy of a revision the stream holds changes nothing for the workers)."""
    settings = make_settings()
    async with _running(settings, redis) as gateway:
        await _put(gateway, "stg/workflow_orchestration", {"enabled": False})
        await _all_published(gateway)
        published = gateway.count("outbox")
    down = make_settings(redis_url="redis://127.0.0.1:1/0")
    async with _running(down, redis) as gateway:
        with gateway.state.engine.connect() as conn:
            rows = conn.execute(
                sa.text("SELECT payload FROM outbox WHERE published_at IS NULL")
            ).all()
        assert gateway.count("outbox") == published + 1
        [payload] = [row.payload for row in rows]
        assert '"revision":1' in payload.replace(" ", "")
        assert "workflow_orchestration" in payload
