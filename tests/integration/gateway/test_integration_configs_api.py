"""``/integrations/configs`` on a real database and Redis: defaults from the environment, an
override stored and announced on ``llmops.config`` in one step, no-op changes that publish
nothing, bad changes refused, and the gateway's own model-registry fallback following the row."""

from __future__ import annotations

from typing import Any

import pytest

from llmops_shared.events import IntegrationConfigChanged, Stream
from llmops_shared.integration_flags import read_flags

from integration.gateway.harness import API, Gateway, auth
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
    assert (body["revision"], body["changed"], body["changedBy"]) == (1, True, "oncall")

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
    response = await gateway.client.put(f"{CONFIGS}/dev/data_versioning", json={"enabled": False})
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
