"""``migrate serving-to-kserve`` and ``rollback integrations`` end to end.

The gateway (relay and status consumer), the serving worker through ``serve_with_flags`` (what
``python -m llmops_serving`` runs, its backend built from a kubeconfig that points at the
Kubernetes API test double, tests/support/k8s_server.py, with the real ``kubernetes`` client),
real Redis and the gateway's database; the commands run through typer's ``CliRunner`` as
``llmops migrate serving-to-kserve`` / ``llmops rollback integrations`` would. Flags change
through ``PUT /integrations/configs`` (or the rollback) and the running worker switches backend
by itself. The test server plays the controllers: ``set_status`` makes an InferenceService or
a Deployment Ready.
"""

from __future__ import annotations

import asyncio
import copy
from collections.abc import Callable, Iterator
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
import yaml
from click.testing import Result

from llmops_gateway.db.models import IntegrationConfig, ServingDeployment
from llmops_serving.app import serve
from llmops_serving.config import ServingSettings
from llmops_shared.events import IntegrationConfigChanged, Stream
from llmops_shared.specs.examples import SEED_DEPLOYMENT_SPEC
from llmops_shared.worker import serve_with_flags

from integration.gateway.harness import Gateway, auth, serving_request
from integration.serving.helpers import ISVC, worker_settings
from support import scripts
from support.k8s_server import KubeApiServer
from support.kserve_crd import schema_errors
from support.kube_objects import AVAILABLE, DEPLOYMENT, NS, SERVICE
from support.scripts import logs_on_stderr  # noqa: F401 - an autouse fixture
from support.streams import read_events, wait_until
from support.workers import in_process

pytestmark = pytest.mark.integration

AREAS = [
    "experiment_tracking",
    "serving_framework",
    "workflow_orchestration",
    "model_registry",
    "data_versioning",
]


@pytest.fixture
def kube() -> Iterator[KubeApiServer]:
    with KubeApiServer() as server:
        yield server


def write_kubeconfig(path: Path, server_url: str) -> Path:
    """A kubeconfig for the test server: what the worker's ``KUBECONFIG`` would name."""
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "test", "cluster": {"server": server_url}}],
        "users": [{"name": "test", "user": {}}],
        "contexts": [{"name": "test", "context": {"cluster": "test", "user": "test"}}],
        "current-context": "test",
    }
    path.write_text(yaml.safe_dump(config))
    return path


def blue_green(model_id: str, route: str) -> dict[str, Any]:
    spec = {**copy.deepcopy(SEED_DEPLOYMENT_SPEC), "rollout": {"strategy": "blue-green"}}
    return serving_request(model_id, route=route, deploymentSpec=spec)


@dataclass
class Scene:
    gateway: Gateway
    kube: KubeApiServer
    serving: ServingSettings
    env: dict[str, str]

    async def run(self, *args: str, input: str | None = None) -> Result:
        """A command, in a thread: the gateway and the worker keep running meanwhile."""
        return await scripts.run_script(args, self.env, input=input)

    async def run_json(self, *args: str, code: int = 0, input: str | None = None) -> dict[str, Any]:
        return scripts.json_document(await self.run(*args, "--json", input=input), code)

    def serving_worker(self) -> AbstractAsyncContextManager[None]:
        """The serving worker as ``python -m llmops_serving`` runs it (flags followed)."""
        return in_process(
            lambda stop: serve_with_flags(serve, self.serving, stop=stop), stop_timeout_s=20
        )

    async def heartbeats(self) -> list[dict[str, str]]:
        """The serving workers' heartbeat hashes (``llmops:workers:serving:*``)."""
        redis = self.gateway.redis
        keys = await redis.keys(f"{self.gateway.namespace}llmops:workers:serving:*")
        hashes = [await redis.hgetall(key) for key in keys]
        return [{_text(k): _text(v) for k, v in fields.items()} for fields in hashes if fields]

    async def wait_backend(self, backend: str, enabled: bool) -> None:
        async def running() -> bool:
            beats = await self.heartbeats()
            return [(b.get("backend"), b.get("enabled")) for b in beats] == [
                (backend, str(enabled).lower())
            ]

        await wait_until(running, timeout_s=20)

    async def set_serving(self, enabled: bool) -> None:
        await scripts.set_flag(self.gateway.client, "serving_framework", enabled, headers=auth())

    async def create(self, body: dict[str, Any]) -> tuple[str, str]:
        response = await self.gateway.create_endpoint(body)
        assert response.status_code == 202, response.text
        created = response.json()
        return created["id"], created["name"]

    def rows(self) -> dict[str, ServingDeployment]:
        with self.gateway.state.sessions() as session:
            return {row.id: row for row in session.scalars(sa.select(ServingDeployment))}

    async def wait_rows(self, check: Callable[[ServingDeployment], bool], *ids: str) -> None:
        async def reached() -> bool:
            rows = self.rows()
            return all(i in rows and check(rows[i]) for i in ids)

        await wait_until(reached, timeout_s=20)

    def kinds(self, name: str) -> set[str]:
        """Which of the endpoint's objects exist on the (test) cluster."""
        found = {
            "InferenceService": self.kube.get(*ISVC, NS, name),
            "Deployment": self.kube.get(*DEPLOYMENT, NS, name),
            "Service": self.kube.get(*SERVICE, NS, name),
        }
        return {kind for kind, obj in found.items() if obj is not None}

    def outbox(self) -> int:
        return self.gateway.count("outbox")

    async def config_events(self) -> list[IntegrationConfigChanged]:
        """The distinct changes on ``llmops.config`` (on SQLite the command's relay and the
        gateway's may both publish a row: same event id, which readers skip)."""
        events = await read_events(self.gateway.redis, f"{self.gateway.namespace}{Stream.CONFIG}")
        unique = {e.id: e for e in events}
        return [e.payload_as(IntegrationConfigChanged) for e in unique.values()]


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


async def _exists(scene: Scene, resource: tuple[str, str], name: str) -> bool:
    return scene.kube.get(*resource, NS, name) is not None


def kind_of(row: ServingDeployment) -> str | None:
    """The format the row shows: InferenceService, or Deployment for the built-in objects (the
    handler reports their ``List``, the watcher the Deployment)."""
    kind = (row.manifest or {}).get("kind")
    return "Deployment" if kind == "List" else kind


@pytest.fixture
async def scene(
    start_gateway: Callable[..., Any],
    gateway_db_url: str,
    redis_url: str,
    kube: KubeApiServer,
    tmp_path: Path,
) -> Scene:
    gateway: Gateway = await start_gateway()
    kubeconfig = write_kubeconfig(tmp_path / "kubeconfig", kube.url)
    serving = worker_settings(
        redis_url,
        gateway.namespace,
        serving_backend="kserve",
        kubeconfig=str(kubeconfig),
        environment="dev",
        heartbeat_interval_s=0.2,
    )
    env = scripts.script_env(gateway_db_url, redis_url, gateway.namespace, COLUMNS="200")
    return Scene(gateway, kube, serving, env)


@pytest.mark.parametrize("gateway_db_url", ["postgresql"], indirect=True)
async def test_migrate_builtin_endpoints_to_kserve_then_nothing_is_left(scene: Scene) -> None:
    async with scene.serving_worker():
        await scene.wait_backend("kserve", enabled=True)
        await scene.set_serving(False)  # built-in endpoints, made the production way
        await scene.wait_backend("deployment", enabled=False)
        model = await scene.gateway.register_trained_model()
        first, first_name = await scene.create(blue_green(model["id"], "/chat"))
        second, second_name = await scene.create(blue_green(model["id"], "/chat-2"))
        await scene.wait_rows(lambda r: kind_of(r) == "Deployment", first, second)
        for name in (first_name, second_name):
            scene.kube.set_status(*DEPLOYMENT, NS, name, AVAILABLE)
        await scene.wait_rows(lambda r: r.status == "Ready", first, second)
        outbox = scene.outbox()

        # --dry-run: the plan, and nothing else (the flag is off: it says so)
        plan = await scene.run_json("migrate", "serving-to-kserve", "--dry-run")
        assert plan["dry_run"] is True
        assert plan["serving_framework"] == {
            "enabled": False, "system": "kserve", "source": "integration_configs"
        }  # fmt: skip
        assert [(p["endpoint_id"], p["current"], p["action"]) for p in plan["planned"]] == [
            (first, "builtin", "migrate"), (second, "builtin", "migrate")
        ]  # fmt: skip
        assert scene.outbox() == outbox

        # with the flag off nothing is queued: the worker would refuse
        refused = await scene.run("migrate", "serving-to-kserve")
        assert refused.exit_code == 1, refused.output
        assert "Turn it on first" in refused.stderr
        assert scene.outbox() == outbox

        await scene.set_serving(True)
        await scene.wait_backend("kserve", enabled=True)

        async def play_kserve() -> None:
            # the controller: each InferenceService becomes Ready a while after it is applied;
            # until then the built-in objects keep serving and the move is pending
            for name in (first_name, second_name):
                await wait_until(partial(_exists, scene, ISVC, name), timeout_s=20)
                assert scene.kinds(name) == {"InferenceService", "Deployment", "Service"}
                rows = scene.rows()
                assert all(r.status != "Failed" for r in rows.values())
                scene.kube.set_status(*ISVC, NS, name, {
                    "url": f"http://{name}.{NS}.example.com",
                    "conditions": [{"type": "Ready", "status": "True"}],
                })  # fmt: skip

        controller = asyncio.create_task(play_kserve())
        document = await scene.run_json("migrate", "serving-to-kserve", "--timeout", "30")
        await controller
        assert sorted(document["queued"]) == sorted([first, second])
        assert (document["migrated"], document["failed"], document["timed_out"]) == (2, 0, 0)
        assert {r["endpoint_id"]: r["backend"] for r in document["results"]} == {
            first: "kserve", second: "kserve"
        }  # fmt: skip

        async def only_inference_services() -> bool:
            # the row shows the InferenceService as soon as the worker's watcher sees it; the
            # built-in objects go a moment later, in the same handler
            return all(
                scene.kinds(name) == {"InferenceService"} for name in (first_name, second_name)
            )

        await wait_until(only_inference_services, timeout_s=10)
        for name in (first_name, second_name):
            isvc = scene.kube.get(*ISVC, NS, name)
            assert isvc is not None
            assert schema_errors(isvc) == []
            assert "llm-ops.io/migrating-from" not in isvc["metadata"]["annotations"]
        await scene.wait_rows(lambda r: r.status == "Ready" and r.serve_url is not None, first)
        row = scene.rows()[first]
        assert (row.backend, kind_of(row), row.deployment_mode) == (
            "kserve", "InferenceService", "Serverless"
        )  # fmt: skip
        assert row.serve_url == f"http://{first_name}.{NS}.example.com"
        outbox = scene.outbox()
        served = len(await scene.gateway.serving_events())

        # the second run finds nothing built-in and changes nothing
        again = await scene.run("migrate", "serving-to-kserve")
        assert again.exit_code == 0, again.output
        assert "nothing to migrate" in again.stderr
        assert scene.outbox() == outbox
        assert len(await scene.gateway.serving_events()) == served


@pytest.mark.parametrize("gateway_db_url", ["sqlite"], indirect=True)
async def test_rollback_turns_flags_off_and_moves_kserve_endpoints_to_builtin(
    scene: Scene,
) -> None:
    async with scene.serving_worker():
        await scene.wait_backend("kserve", enabled=True)
        model = await scene.gateway.register_trained_model()
        first, first_name = await scene.create(blue_green(model["id"], "/chat"))
        second, second_name = await scene.create(blue_green(model["id"], "/chat-2"))
        canary, canary_name = await scene.create(serving_request(model["id"], route="/canary"))
        await scene.wait_rows(lambda r: kind_of(r) == "InferenceService", first, second, canary)
        for name in (first_name, second_name):
            scene.kube.set_status(*ISVC, NS, name, {
                "url": f"http://{name}.{NS}.example.com",
                "conditions": [{"type": "Ready", "status": "True"}],
            })  # fmt: skip
        await scene.wait_rows(lambda r: r.status == "Ready", first, second)
        outbox = scene.outbox()

        # --dry-run: the plan, nothing changed
        plan = await scene.run_json(
            "rollback", "integrations", "--environment", "dev", "--remove-kserve", "--dry-run"
        )
        assert [(f["area"], f["enabled"], f["action"]) for f in plan["flags"]] == [
            (area, True, "turn_off") for area in AREAS
        ]
        moves = {e["endpoint_id"]: e["action"] for e in plan["endpoints"]}
        assert moves == {first: "migrate", second: "migrate", canary: "skip"}
        assert plan["applied"] is None

        # asked, and declined: nothing changed
        declined = await scene.run(
            "rollback", "integrations", "--environment", "dev", "--remove-kserve", input="n\n"
        )
        assert declined.exit_code == 1, declined.output
        assert "declined: nothing was changed" in declined.stderr
        assert "turn off" in declined.stdout  # the plan came first
        assert scene.outbox() == outbox
        assert scene.gateway.count("integration_configs") == 0

        async def play_deployments() -> None:
            # the Deployment controller: each becomes available a while after it is applied;
            # until then the InferenceService keeps serving, and the Service waits
            for name in (first_name, second_name):
                await wait_until(partial(_exists, scene, DEPLOYMENT, name), timeout_s=20)
                assert scene.kinds(name) == {"InferenceService", "Deployment"}
                scene.kube.set_status(*DEPLOYMENT, NS, name, AVAILABLE)

        controller = asyncio.create_task(play_deployments())
        document = await scene.run_json(
            "rollback", "integrations", "--environment", "dev", "--remove-kserve", "--yes",
            "--timeout", "30", code=1,
        )  # fmt: skip
        await controller
        applied = document["applied"]
        assert [(f["area"], f["changed"], f["enabled"]) for f in applied["flags"]] == [
            (area, True, False) for area in AREAS
        ]
        assert sorted(applied["queued"]) == sorted([first, second])

        with scene.gateway.state.sessions() as session:
            rows = list(session.scalars(sa.select(IntegrationConfig)))
        assert sorted((r.area, r.enabled, r.changed_by) for r in rows) == sorted(
            (area, False, "rollback integrations") for area in AREAS
        )
        changes = await scene.config_events()
        assert sorted((c.area.value, c.enabled) for c in changes) == sorted(
            (area, False) for area in AREAS
        )

        # the worker switched to the built-in backend by itself
        await scene.wait_backend("deployment", enabled=False)

        async def moved() -> bool:
            return all(
                scene.kinds(name) == {"Deployment", "Service"} for name in (first_name, second_name)
            )

        await wait_until(moved, timeout_s=20)
        assert scene.kinds(canary_name) == {"InferenceService"}  # left where it serves
        await scene.wait_rows(
            lambda r: r.status == "Ready" and kind_of(r) == "Deployment", first, second
        )
        row = scene.rows()[first]
        assert (row.backend, row.deployment_mode) == ("deployment", None)
        assert row.serve_url == f"http://{first_name}.{NS}.svc.cluster.local"

        # a new deployment is served by the built-in backend
        new, new_name = await scene.create(blue_green(model["id"], "/after-rollback"))
        await scene.wait_rows(lambda r: kind_of(r) == "Deployment", new)

        async def served() -> bool:
            return scene.kinds(new_name) == {"Deployment", "Service"}

        await wait_until(served, timeout_s=10)
        assert scene.rows()[new].backend == "deployment"

        # a second rollback changes nothing
        outbox = scene.outbox()
        again = await scene.run_json(
            "rollback", "integrations", "--environment", "dev", "--remove-kserve", "--yes",
            code=1,  # the canary is still listed as staying
        )  # fmt: skip
        assert [f["action"] for f in again["flags"]] == ["unchanged"] * len(AREAS)
        assert [e["endpoint_id"] for e in again["endpoints"]] == [canary]
        assert scene.outbox() == outbox
        assert len(await scene.config_events()) == len(AREAS)


async def test_a_flag_off_only_in_the_gateways_environment_is_pinned_off(scene: Scene) -> None:
    """The workers read their own environment, which may say on: the rollback writes an
    explicit row for a flag that only the gateway's environment has off, then nothing more."""
    scene.env["DATA_VERSIONING_ENABLED"] = "false"
    planned = await scene.run_json(
        "rollback", "integrations", "--environment", "dev", "--area", "data_versioning",
        "--dry-run",
    )  # fmt: skip
    [flag] = planned["flags"]
    assert (flag["enabled"], flag["source"], flag["action"]) == (False, "environment", "pin_off")
    assert scene.gateway.count("integration_configs") == 0

    applied = await scene.run_json(
        "rollback", "integrations", "--environment", "dev", "--area", "data_versioning", "--yes"
    )
    assert [(f["changed"], f["enabled"]) for f in applied["applied"]["flags"]] == [(True, False)]
    [event] = await scene.config_events()
    assert (event.area.value, event.enabled, event.revision) == ("data_versioning", False, 1)
    again = await scene.run_json(
        "rollback", "integrations", "--environment", "dev", "--area", "data_versioning", "--yes"
    )
    [flag] = again["flags"]
    assert (flag["source"], flag["action"], again["applied"]) == (
        "integration_configs", "unchanged", None,
    )  # fmt: skip
    assert len(await scene.config_events()) == 1
