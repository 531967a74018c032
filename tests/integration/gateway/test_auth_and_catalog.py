"""API-key authentication on mutating endpoints, and the model catalog."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from llmops_gateway.app import ConfigurationError, create_app
from llmops_gateway.config import GatewaySettings

from integration.gateway.harness import (
    API,
    API_KEY,
    BASE_MODEL,
    NO_CREDENTIAL,
    OTHER_API_KEY,
    Gateway,
    auth,
    new_id,
    seed_request,
)

pytestmark = pytest.mark.integration


@pytest.mark.parametrize(
    "headers",
    [
        pytest.param(NO_CREDENTIAL, id="no-header"),
        pytest.param(auth("wrong-key"), id="wrong-key"),
        pytest.param({"Authorization": f"Basic {API_KEY}"}, id="not-bearer"),
        pytest.param(auth(API_KEY + "x"), id="key-with-suffix"),
    ],
)
async def test_mutating_endpoints_need_a_valid_key(
    gateway: Gateway, headers: dict[str, str]
) -> None:
    for path, body in [
        (f"{API}/training/jobs", seed_request()),
        (f"{API}/catalog/models", BASE_MODEL),
        (f"{API}/training/jobs/{new_id()}/cancel", None),
    ]:
        response = await gateway.client.post(path, json=body, headers=headers)
        assert response.status_code == 401, (path, response.text)
        assert response.headers["WWW-Authenticate"] == "Bearer"
        assert "API key" in response.json()["detail"]
    assert gateway.count("training_jobs") + gateway.count("catalog_models") == 0


async def test_every_configured_key_works_and_reads_need_one_too(gateway: Gateway) -> None:
    first = await gateway.client.post(f"{API}/catalog/models", json=BASE_MODEL, headers=auth())
    assert first.status_code == 201
    second = await gateway.submit(headers=auth(OTHER_API_KEY))
    assert second.status_code == 202
    for path in (f"{API}/training/jobs", f"{API}/catalog/models", f"{API}/health"):
        assert (await gateway.client.get(path, headers=auth(OTHER_API_KEY))).status_code == 200
        refused = await gateway.client.get(path, headers=NO_CREDENTIAL)
        assert refused.status_code == 401, path
        assert "missing credential" in refused.json()["detail"]
    for path in ("/healthz", "/readyz", "/metrics", "/docs"):  # probes, metrics and the docs
        assert (await gateway.client.get(path, headers=NO_CREDENTIAL)).status_code == 200, path
    schema = (await gateway.client.get("/openapi.json", headers=NO_CREDENTIAL)).json()
    assert f"{API}/training/jobs" in schema["paths"]


def test_keys_come_comma_separated_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("API_KEYS", "alpha, beta,gamma")
    settings = GatewaySettings(_env_file=None)
    assert [k.get_secret_value() for k in settings.api_keys] == ["alpha", "beta", "gamma"]
    assert "alpha" not in repr(settings)


def test_no_keys_refuses_to_start_unless_auth_is_disabled(
    make_settings: Callable[..., GatewaySettings],
) -> None:
    with pytest.raises(ConfigurationError, match="API_KEYS"):
        create_app(make_settings(api_keys=[]))
    assert create_app(make_settings(api_keys=[], auth_disabled=True)) is not None


async def test_auth_disabled_accepts_requests_without_a_key(
    start_gateway: Callable[..., Any],
) -> None:
    gateway: Gateway = await start_gateway(api_keys=[], auth_disabled=True)
    response = await gateway.client.post(
        f"{API}/catalog/models", json=BASE_MODEL, headers=NO_CREDENTIAL
    )
    assert response.status_code == 201


async def test_catalog_register_list_get_and_duplicate(gateway: Gateway) -> None:
    created = await gateway.register_base_model()
    assert created["source"] == "manual"
    assert created["maxPositionEmbeddings"] == 8192
    other = await gateway.register_base_model(
        name="mistral-7b", family="mistral", maxPositionEmbeddings=32768, hfArchitecture=None
    )

    listed = (await gateway.client.get(f"{API}/catalog/models")).json()["items"]
    assert [m["id"] for m in listed] == [other["id"], created["id"]]
    one = await gateway.client.get(f"{API}/catalog/models/{created['id']}")
    assert one.json() == created
    missing = await gateway.client.get(f"{API}/catalog/models/{new_id()}")
    assert missing.status_code == 404

    duplicate = await gateway.client.post(f"{API}/catalog/models", json=BASE_MODEL, headers=auth())
    assert duplicate.status_code == 409
    assert duplicate.json() == {"detail": "catalog model 'llama-3-8b-pretrain-v1' already exists"}
    assert gateway.count("catalog_models") == 2


@pytest.mark.parametrize(
    ("change", "loc", "message"),
    [
        ({"family": "gpt"}, "family", "Model family 'gpt' is not supported"),
        ({"maxPositionEmbeddings": 0}, "maxPositionEmbeddings", "greater than 0"),
        ({"name": ""}, "name", "at least 1 character"),
        ({"owner": "me"}, "owner", "Extra inputs are not permitted"),
    ],
)
async def test_catalog_rejects_bad_models(
    gateway: Gateway, change: dict[str, Any], loc: str, message: str
) -> None:
    response = await gateway.client.post(
        f"{API}/catalog/models", json={**BASE_MODEL, **change}, headers=auth()
    )
    assert response.status_code == 422
    error = response.json()["detail"][0]
    assert error["loc"] == ["body", loc]
    assert message in error["msg"]
    assert gateway.count("catalog_models") == 0
