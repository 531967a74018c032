"""Who may do what: the role x operation matrix, read from the OpenAPI document and exercised
against the real app (SQLite and PostgreSQL).

``DECISIONS`` is the table of every operation's rule. The app must state exactly these rules
(``x-llmops-access``) for exactly these operations: an endpoint added without a decision, or a
rule changed without changing the table, fails here. Then every operation is called as
nobody (401), as a principal one role short everywhere (403), as one holding the role only in
another environment (403, where the rule is scoped to one), and as the least principal that
may (its own answer, e.g. 202). Each refused call must change nothing: a refused mutation
leaves the tables as they were.
"""

from __future__ import annotations

import itertools
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
import sqlalchemy as sa

from integration.gateway.harness import (
    API,
    NO_CREDENTIAL,
    Gateway,
    auth,
    seed_request,
    serving_request,
)

pytestmark = pytest.mark.integration

Request = tuple[str, dict[str, Any] | None]
"""The path (under the API prefix) and the JSON body of one call."""

DECISIONS: dict[tuple[str, str], tuple[str, str, int]] = {
    # (method, path): (role, scope, the allowed caller's answer in the test's state)
    ("POST", "/training/jobs"): ("operator", "gateway", 202),
    ("GET", "/training/jobs"): ("viewer", "gateway", 200),
    ("GET", "/training/jobs/{job_id}"): ("viewer", "gateway", 200),
    ("POST", "/training/jobs/{job_id}/cancel"): ("operator", "gateway", 202),
    ("GET", "/training/jobs/{job_id}/experiment-run"): ("viewer", "gateway", 404),
    ("POST", "/serving/endpoints"): ("operator", "target", 202),
    ("GET", "/serving/endpoints"): ("viewer", "any", 200),  # filtered to the viewer's
    ("GET", "/serving/endpoints/{endpoint_id}"): ("viewer", "target", 200),
    ("DELETE", "/serving/endpoints/{endpoint_id}"): ("operator", "target", 202),
    ("GET", "/serving/endpoints/{endpoint_id}/deployment"): ("viewer", "target", 404),
    ("POST", "/serving/endpoints/{endpoint_id}/promote"): ("operator", "target", 202),
    ("POST", "/serving/endpoints/{endpoint_id}/rollback"): ("operator", "target", 202),
    ("GET", "/workflows/pipelines"): ("viewer", "gateway", 200),
    ("GET", "/workflows/pipelines/{pipeline_id}"): ("viewer", "gateway", 404),
    ("POST", "/catalog/models"): ("operator", "any", 201),
    ("GET", "/catalog/models"): ("viewer", "any", 200),
    ("POST", "/catalog/models/import"): ("operator", "any", 202),
    ("GET", "/catalog/models/{model_id}"): ("viewer", "any", 200),
    ("GET", "/catalog/models/{model_id}/registry-links"): ("viewer", "any", 200),
    ("POST", "/catalog/models/{model_id}/check-updates"): ("operator", "any", 409),
    ("GET", "/catalog/model-versions"): ("viewer", "any", 200),
    ("GET", "/catalog/model-versions/{name}/{version}"): ("viewer", "any", 404),
    ("GET", "/lineage/{kind}/{entity_id}"): ("viewer", "any", 200),
    ("POST", "/catalog/datasets"): ("operator", "any", 201),
    ("GET", "/catalog/datasets"): ("viewer", "any", 200),
    ("GET", "/catalog/datasets/{dataset_id}"): ("viewer", "any", 200),
    ("POST", "/catalog/datasets/{dataset_id}/versions"): ("operator", "any", 202),
    ("GET", "/catalog/datasets/{dataset_id}/versions"): ("viewer", "any", 200),
    ("GET", "/catalog/datasets/{dataset_id}/versions/{version_id}"): ("viewer", "any", 200),
    ("GET", "/catalog/datasets/{dataset_id}/versions/{version_id}/diff"): ("viewer", "any", 422),
    ("POST", "/catalog/datasets/{dataset_id}/versions/{version_id}/restore"): (
        "operator",
        "gateway",  # it writes files: where the stack runs
        409,
    ),
    ("GET", "/catalog/datasets/{dataset_id}/versions/{version_id}/restores/{restore_id}"): (
        "viewer",
        "any",
        404,
    ),
    ("GET", "/health"): ("viewer", "any", 200),
    ("GET", "/health/integrations"): ("viewer", "any", 200),
    ("GET", "/integrations/configs"): ("viewer", "any", 200),
    ("PUT", "/integrations/configs/{environment}/{area}"): ("admin", "path", 200),
    ("GET", "/events/dlq"): ("viewer", "any", 200),
    ("POST", "/events/dlq/{letter_id}/replay"): ("admin", "all", 404),
    ("GET", "/keys"): ("admin", "all", 200),
    ("POST", "/keys"): ("admin", "all", 201),
    ("DELETE", "/keys/{key_id}"): ("admin", "all", 200),
    ("GET", "/audit"): ("admin", "all", 200),
}

ROLES = ("viewer", "operator", "admin")
SERVED = "matrix-served-model"


def served(model_id: str, **changes: Any) -> dict[str, Any]:
    """The seed's endpoint request, serving the catalog model :data:`SERVED`."""
    body = serving_request(model_id, **changes)
    body["deploymentSpec"]["model_ref"] = SERVED
    return body


TABLES = ("training_jobs", "serving_deployments", "catalog_models", "catalog_datasets",
          "dataset_versions", "integration_configs", "api_keys")  # fmt: skip
"""What a refused call must leave as it was."""


@dataclass
class World:
    """The entities the calls address, made by an admin, and the keys of the principals."""

    gateway: Gateway
    keys: dict[str, str] = field(default_factory=dict)
    model_id: str = ""
    dataset_id: str = ""
    version_id: str = ""
    counter: itertools.count[int] = field(default_factory=itertools.count)

    async def admin(self, method: str, path: str, body: Any = None) -> dict[str, Any]:
        response = await self.gateway.client.request(method, API + path, json=body)
        assert response.status_code < 300, response.text
        answer: dict[str, Any] = response.json()
        return answer

    async def key(self, name: str, roles: dict[str, str]) -> None:
        made = await self.admin("POST", "/keys", {"name": name, "roles": roles})
        self.keys[name] = made["key"]

    async def job(self) -> str:
        return str((await self.admin("POST", "/training/jobs", seed_request()))["id"])

    async def endpoint(self) -> str:
        body = served(self.model_id, route=f"/matrix-{next(self.counter)}")
        return str((await self.admin("POST", "/serving/endpoints", body))["id"])

    async def new_key_id(self) -> str:
        made = await self.admin("POST", "/keys", {"name": f"k{next(self.counter)}",
                                                  "roles": {"dev": "viewer"}})  # fmt: skip
        return str(made["id"])


async def build_world(gateway: Gateway) -> World:
    world = World(gateway)
    for scope, role in itertools.product(("dev", "stg", "*"), ROLES):
        await world.key(f"{role}@{'all' if scope == '*' else scope}", {scope: role})
    # served by name, not by a job's artifact (the seed jobs the matrix submits name theirs)
    world.model_id = (await gateway.register_trained_model(name=SERVED))["id"]
    await gateway.register_base_model()  # the seed job's base model
    dataset = await world.admin("POST", "/catalog/datasets", {
        "name": "matrix-data", "type": "sft_pair", "storageUri": "s3://bucket/matrix"})  # fmt: skip
    world.dataset_id = dataset["id"]
    version = await world.admin(
        "POST", f"/catalog/datasets/{world.dataset_id}/versions", {"versionTag": "v1.0.0"}
    )
    world.version_id = version["id"]
    return world


def _calls(w: World) -> dict[tuple[str, str], Callable[[], Awaitable[Request]]]:
    """How to call each operation (fresh entities where the call uses one up)."""
    dataset = f"/catalog/datasets/{w.dataset_id}"
    version = f"{dataset}/versions/{w.version_id}"

    def fixed(path: str, body: dict[str, Any] | None = None) -> Callable[[], Awaitable[Request]]:
        async def call() -> Request:
            return path, body

        return call

    async def job(suffix: str = "") -> Request:
        return f"/training/jobs/{await w.job()}{suffix}", None

    async def endpoint(suffix: str = "") -> Request:
        return f"/serving/endpoints/{await w.endpoint()}{suffix}", None

    async def new_model() -> Request:
        body = {"name": f"m-{next(w.counter)}", "family": "llama",
                "maxPositionEmbeddings": 4096, "hfArchitecture": "LlamaForCausalLM"}  # fmt: skip
        return "/catalog/models", body

    async def new_dataset() -> Request:
        body = {"name": f"d-{next(w.counter)}", "type": "sft_pair",
                "storageUri": "s3://bucket/d"}  # fmt: skip
        return "/catalog/datasets", body

    async def new_version() -> Request:
        return f"{dataset}/versions", {"versionTag": f"v1.0.{next(w.counter) + 1}"}

    async def new_endpoint() -> Request:
        return "/serving/endpoints", served(w.model_id, route=f"/m-{next(w.counter)}")

    async def lineage_of_a_job() -> Request:
        return f"/lineage/training-job/{await w.job()}", None

    async def new_key() -> Request:
        return "/keys", {"name": f"new-{next(w.counter)}", "roles": {"dev": "viewer"}}

    async def key_to_revoke() -> Request:
        return f"/keys/{await w.new_key_id()}", None

    async def an_import() -> Request:
        body = {"registryType": "huggingface", "registryModelId": f"org/m{next(w.counter)}",
                "name": f"hf-{next(w.counter)}", "family": "llama",
                "maxPositionEmbeddings": 4096}  # fmt: skip
        return "/catalog/models/import", body

    return {
        ("POST", "/training/jobs"): fixed("/training/jobs", seed_request()),
        ("GET", "/training/jobs"): fixed("/training/jobs"),
        ("GET", "/training/jobs/{job_id}"): job,
        ("POST", "/training/jobs/{job_id}/cancel"): lambda: job("/cancel"),
        ("GET", "/training/jobs/{job_id}/experiment-run"): lambda: job("/experiment-run"),
        ("POST", "/serving/endpoints"): new_endpoint,
        ("GET", "/serving/endpoints"): fixed("/serving/endpoints"),
        ("GET", "/serving/endpoints/{endpoint_id}"): endpoint,
        ("DELETE", "/serving/endpoints/{endpoint_id}"): endpoint,
        ("GET", "/serving/endpoints/{endpoint_id}/deployment"): lambda: endpoint("/deployment"),
        ("POST", "/serving/endpoints/{endpoint_id}/promote"): lambda: endpoint("/promote"),
        ("POST", "/serving/endpoints/{endpoint_id}/rollback"): lambda: endpoint("/rollback"),
        ("GET", "/workflows/pipelines"): fixed("/workflows/pipelines"),
        ("GET", "/workflows/pipelines/{pipeline_id}"): fixed("/workflows/pipelines/train-x"),
        ("POST", "/catalog/models"): new_model,
        ("GET", "/catalog/models"): fixed("/catalog/models"),
        ("POST", "/catalog/models/import"): an_import,
        ("GET", "/catalog/models/{model_id}"): fixed(f"/catalog/models/{w.model_id}"),
        ("GET", "/catalog/models/{model_id}/registry-links"): fixed(
            f"/catalog/models/{w.model_id}/registry-links"
        ),
        ("POST", "/catalog/models/{model_id}/check-updates"): fixed(
            f"/catalog/models/{w.model_id}/check-updates"
        ),
        ("GET", "/catalog/model-versions"): fixed("/catalog/model-versions"),
        ("GET", "/catalog/model-versions/{name}/{version}"): fixed(
            "/catalog/model-versions/llama-sft/1"
        ),
        ("GET", "/lineage/{kind}/{entity_id}"): lineage_of_a_job,
        ("POST", "/catalog/datasets"): new_dataset,
        ("GET", "/catalog/datasets"): fixed("/catalog/datasets"),
        ("GET", "/catalog/datasets/{dataset_id}"): fixed(dataset),
        ("POST", "/catalog/datasets/{dataset_id}/versions"): new_version,
        ("GET", "/catalog/datasets/{dataset_id}/versions"): fixed(f"{dataset}/versions"),
        ("GET", "/catalog/datasets/{dataset_id}/versions/{version_id}"): fixed(version),
        ("GET", "/catalog/datasets/{dataset_id}/versions/{version_id}/diff"): fixed(
            f"{version}/diff"
        ),
        ("POST", "/catalog/datasets/{dataset_id}/versions/{version_id}/restore"): fixed(
            f"{version}/restore", {"targetUri": "/tmp/restore-here"}
        ),
        (
            "GET",
            "/catalog/datasets/{dataset_id}/versions/{version_id}/restores/{restore_id}",
        ): fixed(f"{version}/restores/nope"),
        ("GET", "/health"): fixed("/health"),
        ("GET", "/health/integrations"): fixed("/health/integrations"),
        ("GET", "/integrations/configs"): fixed("/integrations/configs"),
        ("PUT", "/integrations/configs/{environment}/{area}"): fixed(
            "/integrations/configs/dev/model_registry", {"enabled": True}
        ),
        ("GET", "/events/dlq"): fixed("/events/dlq"),
        ("POST", "/events/dlq/{letter_id}/replay"): fixed("/events/dlq/llmops.training:1-0/replay"),
        ("GET", "/keys"): fixed("/keys"),
        ("POST", "/keys"): new_key,
        ("DELETE", "/keys/{key_id}"): key_to_revoke,
        ("GET", "/audit"): fixed("/audit"),
    }


def _stated_rules(document: dict[str, Any]) -> dict[tuple[str, str], tuple[str, str]]:
    rules = {}
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            access = operation.get("x-llmops-access", {})
            key = (method.upper(), path.removeprefix(API))
            rules[key] = (access.get("role", "NO DECISION"), access.get("scope", "NO DECISION"))
            if path.startswith(API):
                assert {"401", "403"} <= set(operation["responses"]), key
    return rules


def _refusals(role: str, scope: str) -> list[str]:
    """The principals that must be refused an operation with this rule (the world's stateful
    entities are in dev, as is the gateway's own environment)."""
    below = ROLES[ROLES.index(role) - 1] if role != "viewer" else None
    refused = [f"{below}@all"] if below else []
    if scope in ("gateway", "path", "target"):
        refused.append(f"{role}@stg")  # the role, but in another environment
    if scope == "all":
        refused.append(f"{role}@dev")  # the role, but not in every environment
    return refused


def _allowed(role: str, scope: str) -> str:
    return "admin@all" if scope == "all" else f"{role}@dev"


async def test_every_operation_states_its_decided_rule(gateway: Gateway) -> None:
    document = (await gateway.client.get("/openapi.json")).json()
    stated = _stated_rules(document)
    decided = {key: (role, scope) for key, (role, scope, _) in DECISIONS.items()}
    assert stated == decided


def _last_audit(gateway: Gateway, since: int) -> list[tuple[str | None, str, str, int]]:
    """The audit records written after row ``since``: actor, operation, outcome, status."""
    with gateway.state.engine.connect() as conn:
        rows = conn.execute(
            sa.text("SELECT actor, operation, outcome, status_code FROM audit_log "
                    "WHERE id > :since ORDER BY id"), {"since": since},
        ).all()  # fmt: skip
    return [tuple(row) for row in rows]  # type: ignore[misc]


def _audit_head(gateway: Gateway) -> int:
    with gateway.state.engine.connect() as conn:
        return int(conn.execute(sa.text("SELECT coalesce(max(id), 0) FROM audit_log")).scalar_one())


async def test_each_cell_of_the_matrix(gateway: Gateway) -> None:
    """Every cell, and its audit record: exactly one per mutation and per refusal, naming the
    caller (none for nobody); none for a read that was answered."""
    world = await build_world(gateway)
    calls = _calls(world)
    assert calls.keys() == DECISIONS.keys()
    for (method, template), call in calls.items():
        role, scope, answer = DECISIONS[(method, template)]
        path, body = await call()
        url = API + path
        operation = f"{method} {template}"

        head = _audit_head(gateway)
        nobody = await gateway.client.request(method, url, json=body, headers=NO_CREDENTIAL)
        assert nobody.status_code == 401, (method, path, nobody.text)
        assert _last_audit(gateway, head) == [(None, operation, "refused", 401)]

        for name in _refusals(role, scope):
            before = {table: gateway.count(table) for table in TABLES}
            head = _audit_head(gateway)
            refused = await gateway.client.request(
                method, url, json=body, headers=auth(world.keys[name])
            )
            assert refused.status_code == 403, (method, path, name, refused.text)
            detail = refused.json()["detail"]
            assert f"'{name}' needs the {role} role" in detail, detail
            assert {table: gateway.count(table) for table in TABLES} == before, (method, path)
            assert _last_audit(gateway, head) == [(name, operation, "refused", 403)]

        name = _allowed(role, scope)
        head = _audit_head(gateway)
        allowed = await gateway.client.request(
            method, url, json=body, headers=auth(world.keys[name])
        )
        assert allowed.status_code == answer, (method, path, name, allowed.text)
        outcome = "succeeded" if answer < 400 else "failed"
        expected = [] if method == "GET" else [(name, operation, outcome, answer)]
        assert _last_audit(gateway, head) == expected, (method, path)


async def test_an_operator_of_dev_cannot_deploy_to_prod(gateway: Gateway) -> None:
    world = await build_world(gateway)
    body = served(world.model_id, environment="prod", route="/prod-route")
    refused = await gateway.client.post(
        f"{API}/serving/endpoints", json=body, headers=auth(world.keys["operator@dev"])
    )
    assert refused.status_code == 403
    assert refused.json()["detail"] == (
        "'operator@dev' needs the operator role in prod (holds no role there)"
    )
    assert gateway.count("serving_deployments") == 0
    allowed = await gateway.client.post(
        f"{API}/serving/endpoints", json=body, headers=auth(world.keys["operator@all"])
    )
    assert allowed.status_code == 202, allowed.text
    listed = await gateway.client.get(
        f"{API}/serving/endpoints", headers=auth(world.keys["viewer@dev"])
    )
    assert listed.json()["items"] == []  # a viewer of dev does not see prod's endpoints
