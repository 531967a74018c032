"""Creating, reading, promoting and rolling back serving endpoints through the REST API
(both databases)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from llmops_gateway.domain.serving_names import endpoint_name, max_name_length
from llmops_shared.events import (
    DeploymentPromoted,
    DeploymentRequested,
    DeploymentRolledBack,
    Phase,
    StatusEntity,
    status_updated,
)
from llmops_shared.specs.examples import SEED_DEPLOYMENT_SPEC

from integration.gateway.harness import (
    API,
    MODEL_STORAGE_URI,
    NO_CREDENTIAL,
    OTHER_API_KEY,
    Gateway,
    auth,
    serving_request,
)

pytestmark = pytest.mark.integration

ENDPOINTS = f"{API}/serving/endpoints"


async def test_seed_deployment_is_accepted_stored_and_published_once(gateway: Gateway) -> None:
    model = await gateway.register_trained_model()
    response = await gateway.create_endpoint(
        serving_request(model["id"]), headers={"X-Correlation-ID": "corr-seed-52"}
    )

    assert response.status_code == 202, response.text
    endpoint = response.json()
    assert endpoint["status"] == "Pending"
    assert endpoint["name"] == "test-model"
    assert endpoint["route"] == "/test-model"
    assert endpoint["environment"] == "dev"
    assert endpoint["modelId"] == model["id"]
    assert endpoint["deploymentSpec"] == SEED_DEPLOYMENT_SPEC
    assert endpoint["statusUrl"] == f"{ENDPOINTS}/{endpoint['id']}"
    assert endpoint["createdAt"].endswith("Z")
    assert gateway.count("serving_deployments") == 1

    events = await gateway.wait_for_serving_events(1)
    assert len(events) == 1
    event = events[0]
    assert event.type == "llmops.serving.deployment.requested.v1"
    assert event.envelope.correlationid == "corr-seed-52"
    assert event.envelope.subject == endpoint["id"]
    payload = event.payload_as(DeploymentRequested)
    assert payload.endpoint_id == endpoint["id"]
    assert payload.name == "test-model"
    assert payload.environment == "dev"
    assert payload.route == "/test-model"
    assert payload.model_id == model["id"]
    assert payload.spec.model_dump(mode="json") == SEED_DEPLOYMENT_SPEC
    assert payload.mlflow_run_id is None  # no training job produced the model here
    assert payload.storage_uri is None  # so the serving worker's template locates it
    assert endpoint["storageUri"] is None

    read = await gateway.client.get(f"{ENDPOINTS}/{endpoint['id']}")
    assert read.status_code == 200
    assert read.json() == endpoint


async def test_model_id_may_be_the_catalog_name(gateway: Gateway) -> None:
    model = await gateway.register_trained_model()
    response = await gateway.create_endpoint(serving_request("llama-3-8b-sft-v1"))
    assert response.status_code == 202, response.text
    assert response.json()["modelId"] == model["id"]


def _spec(**changes: Any) -> Callable[[dict[str, Any]], None]:
    def change(body: dict[str, Any]) -> None:
        body["deploymentSpec"].update(changes)

    return change


def _runtime(**changes: Any) -> Callable[[dict[str, Any]], None]:
    def change(body: dict[str, Any]) -> None:
        body["deploymentSpec"]["runtime"].update(changes)

    return change


def _top(**changes: Any) -> Callable[[dict[str, Any]], None]:
    def change(body: dict[str, Any]) -> None:
        body.update(changes)

    return change


INVALID_REQUESTS = [
    pytest.param(
        _spec(model_family="mistral"), ("deploymentSpec", "model_family"),
        "Deployment model_family must match the training job's ('mistral' != 'llama')",
        id="family-mismatch",
    ),
    pytest.param(
        _spec(model_family="gpt"), ("deploymentSpec", "model_family"),
        "Model family 'gpt' is not supported", id="unsupported-family",
    ),
    pytest.param(
        _spec(serve_target="RAG"), ("deploymentSpec", "serve_target"),
        "Serve target 'RAG' is not compatible with job_type 'SFT'", id="serve-target-mismatch",
    ),
    pytest.param(
        _spec(rollout={"strategy": "canary"}), ("deploymentSpec", "rollout", "traffic_split"),
        "rollout.traffic_split is required when rollout.strategy is 'canary'",
        id="canary-without-split",
    ),
    pytest.param(
        _spec(rollout={"strategy": "canary", "traffic_split": {"old": 90, "new": 20}}),
        ("deploymentSpec", "rollout", "traffic_split"),
        "traffic_split old + new must sum to 100 (got 90 + 20 = 110)", id="split-not-100",
    ),
    pytest.param(
        _runtime(max_input_tokens=8000), ("deploymentSpec", "runtime", "max_input_tokens"),
        "runtime.max_input_tokens + runtime.max_output_tokens must be <= "
        "model.max_position_embeddings (8000 + 1024 = 9024 > 8192)",
        id="tokens-over-max-position-embeddings",
    ),
    pytest.param(
        _top(modelId="no-such-model"), ("modelId",),
        "Model 'no-such-model' was not found in the catalog", id="unknown-model-id",
    ),
    pytest.param(
        _top(environment="qa"), ("environment",),
        "Input should be 'dev', 'stg' or 'prod'", id="bad-environment",
    ),
    pytest.param(
        _top(route="test-model"), ("route",),
        "String should match pattern", id="route-without-slash",
    ),
    pytest.param(
        _top(replicas=3), ("replicas",), "Extra inputs are not permitted", id="unknown-field",
    ),
    pytest.param(
        _spec(autoscale=True), ("deploymentSpec", "autoscale"),
        "Extra inputs are not permitted", id="unknown-spec-field",
    ),
]  # fmt: skip


@pytest.mark.parametrize(("change", "loc", "message"), INVALID_REQUESTS)
async def test_every_rule_is_a_422_and_nothing_is_stored_or_published(
    gateway: Gateway,
    change: Callable[[dict[str, Any]], None],
    loc: tuple[str, ...],
    message: str,
) -> None:
    model = await gateway.register_trained_model()
    body = serving_request(model["id"])
    change(body)

    response = await gateway.create_endpoint(body)

    assert response.status_code == 422, response.text
    errors = response.json()["detail"]
    matching = [e for e in errors if message in e["msg"]]
    assert matching, errors
    assert tuple(matching[0]["loc"]) == ("body", *loc)
    assert gateway.count("serving_deployments") == 0
    assert gateway.count("outbox") == 0
    assert await gateway.serving_events() == []


async def _trained_by_a_job(gateway: Gateway, *, run_id: str | None = None) -> dict[str, Any]:
    """The seed's training job (output.artifact_name = llama-3-8b-sft-v1), Succeeded with its
    model registered, and its catalog entry; with ``run_id``, tracking has reported the job's
    MLflow run."""
    await gateway.register_base_model()
    job = (await gateway.submit()).json()
    await gateway.report_trained(job["id"])
    model = await gateway.register_trained_model()
    if run_id is not None:
        report = status_updated(
            StatusEntity.EXPERIMENT_RUN,
            entity_id=run_id,
            phase=Phase.SUCCEEDED,
            reporter="tracking",
            details={"job_id": job["id"], "backend": "mlflow", "experiment_id": "7"},
        )
        before = gateway.count("processed_events")
        await gateway.publish_status(report)
        await gateway.wait_processed(before + 1)
    return model


async def test_the_producing_training_job_must_agree_and_its_mlflow_run_is_passed_on(
    gateway: Gateway,
) -> None:
    model = await _trained_by_a_job(gateway, run_id="0123456789abcdef")
    rlhf = serving_request(model["id"])
    rlhf["deploymentSpec"]["job_type"] = "RLHF"  # GENERATION fits RLHF; the job was SFT

    rejected = await gateway.create_endpoint(rlhf)
    assert rejected.status_code == 422, rejected.text
    [error] = rejected.json()["detail"]
    assert error["msg"] == "Deployment job_type must match the training job's ('RLHF' != 'SFT')"
    assert error["loc"] == ["body", "deploymentSpec", "job_type"]
    assert gateway.count("serving_deployments") == 0

    accepted = await gateway.create_endpoint(serving_request(model["id"]))
    assert accepted.status_code == 202, accepted.text
    [event] = await gateway.wait_for_serving_events(1)
    payload = event.payload_as(DeploymentRequested)
    assert payload.mlflow_run_id == "0123456789abcdef"
    assert payload.storage_uri == MODEL_STORAGE_URI  # what the job's register stage made


async def test_a_taken_route_is_a_409_but_other_environments_are_free(gateway: Gateway) -> None:
    model = await gateway.register_trained_model()
    first = await gateway.create_endpoint(serving_request(model["id"]))
    assert first.status_code == 202

    again = await gateway.create_endpoint(serving_request(model["id"]))
    assert again.status_code == 409
    detail = again.json()["detail"]
    assert detail == (
        f"route '/test-model' is already used by endpoint {first.json()['id']} (Pending) "
        "in environment 'dev'"
    )
    prod = await gateway.create_endpoint(serving_request(model["id"], environment="prod"))
    assert prod.status_code == 202, prod.text
    assert prod.json()["name"] == "test-model"  # names are unique per environment only
    assert gateway.count("serving_deployments") == 2
    assert len(await gateway.wait_for_serving_events(2)) == 2
    assert gateway.count("outbox") == 2


async def test_routes_with_the_same_label_get_distinct_names(gateway: Gateway) -> None:
    model = await gateway.register_trained_model()
    first = await gateway.create_endpoint(serving_request(model["id"], route="/test_model"))
    second = await gateway.create_endpoint(serving_request(model["id"], route="/Test.Model"))
    assert first.status_code == second.status_code == 202
    assert first.json()["name"] == "test-model"
    suffix = second.json()["id"].replace("-", "")[:8]
    assert second.json()["name"] == f"test-model-{suffix}"


@pytest.mark.parametrize(
    ("route", "model_ref", "expected"),
    [
        ("/test-model", "x", "test-model"),
        ("/team/llama/v1.2", "x", "team-llama-v1-2"),
        ("/", "llama-3-8b-sft-v1", "llama-3-8b-sft-v1"),
        ("/8b-chat", "x", "ep-8b-chat"),
        ("/" + "a" * 80, "x", "a" * 63),
    ],
)
def test_endpoint_names_are_dns_1035_labels(route: str, model_ref: str, expected: str) -> None:
    assert endpoint_name(route, model_ref) == expected
    long = endpoint_name("/" + "b" * 80, model_ref, unique_suffix="0a1b2c3d")
    assert len(long) == 63
    assert long.endswith("-0a1b2c3d")


@pytest.mark.parametrize(("environment", "longest"), [("dev", 34), ("stg", 34), ("prod", 33)])
def test_names_leave_room_for_kserve_host_labels(environment: str, longest: int) -> None:
    assert max_name_length(environment) == longest
    # <name>-predictor-<namespace>, with the canary tag prefix, stays a 63-character label
    assert len(f"latest-{'n' * longest}-predictor-llm-ops-{environment}") == 63


async def test_a_long_route_gives_a_name_kserve_can_serve(gateway: Gateway) -> None:
    model = await gateway.register_trained_model()
    body = serving_request(model["id"], route="/" + "r" * 80, environment="prod")
    endpoint = (await gateway.create_endpoint(body)).json()
    assert endpoint["name"] == "r" * 33


async def test_list_is_newest_first_with_an_environment_filter(gateway: Gateway) -> None:
    model = await gateway.register_trained_model()
    ids = []
    for route, environment in (("/a", "dev"), ("/b", "stg"), ("/c", "dev")):
        response = await gateway.create_endpoint(
            serving_request(model["id"], route=route, environment=environment)
        )
        ids.append(response.json()["id"])

    listed = (await gateway.client.get(ENDPOINTS)).json()
    assert [e["id"] for e in listed["items"]] == ids[::-1]
    dev = (await gateway.client.get(ENDPOINTS, params={"environment": "dev"})).json()
    assert [e["id"] for e in dev["items"]] == [ids[2], ids[0]]
    page = (await gateway.client.get(ENDPOINTS, params={"limit": 1, "offset": 1})).json()
    assert [e["id"] for e in page["items"]] == [ids[1]]
    bad = await gateway.client.get(ENDPOINTS, params={"environment": "qa"})
    assert bad.status_code == 422


async def test_unknown_endpoints_are_404_with_a_clear_message(gateway: Gateway) -> None:
    for method, path in (
        ("GET", "nope"),
        ("GET", "nope/deployment"),
        ("POST", "nope/promote"),
        ("POST", "nope/rollback"),
        ("DELETE", "nope"),
    ):
        response = await gateway.client.request(method, f"{ENDPOINTS}/{path}", headers=auth())
        assert response.status_code == 404, (method, path)
        assert response.json() == {"detail": "serving endpoint nope not found"}


async def test_every_mutating_call_needs_an_api_key(gateway: Gateway) -> None:
    model = await gateway.register_trained_model()
    endpoint = (await gateway.create_endpoint(serving_request(model["id"]))).json()
    calls = [
        ("POST", ENDPOINTS, serving_request(model["id"], route="/other")),
        ("POST", f"{ENDPOINTS}/{endpoint['id']}/promote", None),
        ("POST", f"{ENDPOINTS}/{endpoint['id']}/rollback", None),
        ("DELETE", f"{ENDPOINTS}/{endpoint['id']}", None),
    ]
    for method, url, body in calls:
        missing = await gateway.client.request(method, url, json=body, headers=NO_CREDENTIAL)
        assert missing.status_code == 401, (method, url)
        assert missing.headers["WWW-Authenticate"] == "Bearer"
        wrong = await gateway.client.request(method, url, json=body, headers=auth("wrong"))
        assert wrong.status_code == 401, (method, url)
    assert gateway.count("serving_deployments") == 1
    assert gateway.count("outbox") == 1
    # Either configured key works.
    promoted = await gateway.client.post(
        f"{ENDPOINTS}/{endpoint['id']}/promote", headers=auth(OTHER_API_KEY)
    )
    assert promoted.status_code == 202
    assert (await gateway.client.get(f"{ENDPOINTS}/{endpoint['id']}")).status_code == 200


async def test_promote_then_rollback_publish_their_events_and_repeats_are_409(
    gateway: Gateway,
) -> None:
    model = await gateway.register_trained_model()
    endpoint = (await gateway.create_endpoint(serving_request(model["id"]))).json()
    url = f"{ENDPOINTS}/{endpoint['id']}"

    promoted = await gateway.client.post(
        f"{url}/promote", headers={**auth(), "X-Correlation-ID": "corr-promote"}
    )
    assert promoted.status_code == 202, promoted.text
    assert promoted.json()["rolloutAction"] == "promoted"
    again = await gateway.client.post(f"{url}/promote", headers=auth())
    assert again.status_code == 409
    assert again.json()["detail"] == (
        f"the canary of endpoint {endpoint['id']} is already promoted"
    )

    after_promote = await gateway.client.post(f"{url}/rollback", headers=auth())
    assert after_promote.status_code == 409
    assert "was promoted" in after_promote.json()["detail"]

    other = (
        await gateway.create_endpoint(serving_request(model["id"], route="/other-model"))
    ).json()
    other_url = f"{ENDPOINTS}/{other['id']}"
    rolled_back = await gateway.client.post(
        f"{other_url}/rollback", json={"reason": "p99 latency doubled"}, headers=auth()
    )
    assert rolled_back.status_code == 202, rolled_back.text
    assert rolled_back.json()["rolloutAction"] == "rolled_back"
    twice = await gateway.client.post(f"{other_url}/rollback", headers=auth())
    assert twice.status_code == 409
    assert twice.json()["detail"] == f"endpoint {other['id']} is already rolled back"
    after = await gateway.client.post(f"{other_url}/promote", headers=auth())
    assert after.status_code == 409
    assert "was rolled back" in after.json()["detail"]

    _, promote, _, rollback = await gateway.wait_for_serving_events(4)
    assert promote.type == "llmops.serving.deployment.promoted.v1"
    assert promote.envelope.correlationid == "corr-promote"
    assert promote.payload_as(DeploymentPromoted).name == "test-model"
    assert rollback.type == "llmops.serving.deployment.rolled_back.v1"
    back = rollback.payload_as(DeploymentRolledBack)
    assert (back.endpoint_id, back.environment, back.reason) == (
        other["id"],
        "dev",
        "p99 latency doubled",
    )
    assert len(await gateway.serving_events()) == 4


async def test_a_blue_green_endpoint_can_be_neither_promoted_nor_rolled_back(
    gateway: Gateway,
) -> None:
    model = await gateway.register_trained_model()
    body = serving_request(model["id"])
    body["deploymentSpec"]["rollout"] = {"strategy": "blue-green"}
    endpoint = (await gateway.create_endpoint(body)).json()
    url = f"{ENDPOINTS}/{endpoint['id']}"

    promote = await gateway.client.post(f"{url}/promote", headers=auth())
    assert promote.status_code == 409
    assert promote.json()["detail"] == (
        f"endpoint {endpoint['id']} uses a blue-green rollout: only a canary can be promoted"
    )
    rollback = await gateway.client.post(f"{url}/rollback", headers=auth())
    assert rollback.status_code == 409
    assert "only a canary in progress can be rolled back" in rollback.json()["detail"]
    assert len(await gateway.wait_for_serving_events(1)) == 1  # the request only


async def test_a_value_the_database_cannot_store_is_a_422_not_a_500(gateway: Gateway) -> None:
    model = await gateway.register_trained_model()
    body = serving_request(model["id"])
    body["deploymentSpec"]["model_ref"] = "m" * 300  # the column holds 256 characters
    response = await gateway.create_endpoint(body)
    if gateway.settings.sqlalchemy_url().startswith("sqlite"):
        assert response.status_code == 202  # SQLite does not enforce VARCHAR lengths
        return
    assert response.status_code == 422, response.text
    assert "cannot be stored" in response.json()["detail"]
    assert gateway.count("serving_deployments") == 0
