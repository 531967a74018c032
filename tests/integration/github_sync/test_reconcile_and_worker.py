"""POST /poll against a real MLflow server, the API endpoints, and the worker end to end
through real Redis (``serve()`` in process, the real PyGithub against the GitHub double)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import redis.asyncio as aioredis
import yaml
from mlflow.tracking import MlflowClient
from pydantic import SecretStr

from llmops_github_sync.app import Activity, build_api, build_ports, serve
from llmops_shared.events import ModelVersionStatusUpdated, Phase, Stream
from llmops_shared.streams import Publisher

from integration.github_sync.helpers import (
    GOLDEN,
    OWNER,
    POLL_KEY,
    REPO,
    registered,
    settings,
    worker_settings,
)
from support.github_server import GitHubServer
from support.mlflow_server import MlflowServer
from support.streams import details_of, read_events, wait_until

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def mlflow_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MlflowServer]:
    with MlflowServer(tmp_path_factory.mktemp("mlflow")) as server:
        yield server


def register_versions(uri: str, count: int) -> list[tuple[str, str, str]]:
    """``count`` runs in one experiment, one model version each (the last two on one model),
    plus a version without a run; returns (model, version, run id)."""
    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    experiment = client.create_experiment("github-sync-poll")
    out = []
    for i in range(count):
        name = f"poll-model-{i % 3}"
        if not client.search_registered_models(filter_string=f"name = '{name}'"):
            client.create_registered_model(name)
        run = client.create_run(experiment)
        mv = client.create_model_version(
            name,
            f"{run.info.artifact_uri}/model",
            run_id=run.info.run_id,
            tags={"max_position_embeddings": "1024"} if i == 0 else None,
        )
        out.append((name, str(mv.version), run.info.run_id))
    client.create_registered_model("no-run-model")
    client.create_model_version("no-run-model", "s3://bucket/model")
    return out


def api_client(settings_obj, **kw):  # type: ignore[no-untyped-def]
    api = build_api(settings_obj, build_ports(settings_obj, **kw), Activity())
    return httpx.AsyncClient(
        transport=httpx.ASGITransport(app=api),
        base_url="http://gs",
        headers={"Authorization": f"Bearer {POLL_KEY}"},
    )


async def test_poll_reconciles_every_version_in_one_commit_and_the_api_answers(
    mlflow_server: MlflowServer, gh: GitHubServer, tmp_path: Path
) -> None:
    versions = register_versions(mlflow_server.url, 7)
    s = settings(
        tmp_path,
        github_token=SecretStr(gh.token),
        github_base_url=gh.url,
        github_repo_owner=OWNER,
        github_repo_name=REPO,
        github_values_path="values",
        mlflow_tracking_uri=mlflow_server.url,
        mlflow_page_size=3,  # several pages
    )
    async with api_client(s) as client:
        answer = await client.post("/poll")
        assert answer.status_code == 200, answer.text
        report = answer.json()
        assert report["files"] == 7
        assert report["created"] == 7
        assert report["skipped_without_run"] == 1
        assert report["versions"] == 8
        commits = gh.commits(OWNER, REPO)
        assert len(commits) == 2  # the initial one and ONE reconcile commit
        assert report["commit"] == commits[0]["sha"]
        name, version, run_id = versions[0]
        content = yaml.safe_load(gh.file(OWNER, REPO, f"values/{run_id}.yaml") or b"")
        assert content["global"]["runid"] == run_id
        assert content["global"]["modelName"] == name
        assert content["global"]["modelVersion"] == version
        assert content["vllm"]["vllm"]["maxModelLen"] == 1024
        assert report["capped"] == [f"values/{run_id}.yaml"]

        again = (await client.post("/poll")).json()  # idempotent
        assert again["unchanged"] == 7
        assert again["commit"] is None
        assert len(gh.commits(OWNER, REPO)) == 2

        connections = (await client.get("/connections")).json()
        assert connections["mlflow"]["ok"] is True
        assert connections["git"]["ok"] is True
        assert connections["git"]["repository"] == f"{OWNER}/{REPO}"
        assert connections["git"]["branch"] == "main"
        health = (await client.get("/health")).json()
        assert health["status"] == "healthy"
        assert health["backend"] == "github"
        assert gh.token not in str(health) + str(connections)
        docs = await client.get("/docs")
        assert docs.status_code == 200
        assert "swagger" in docs.text.lower()
        assert (await client.get("/openapi.json")).json()["paths"].keys() >= {
            "/poll",
            "/connections",
            "/health",
        }


async def test_poll_needs_one_of_the_api_keys(tmp_path: Path) -> None:
    """POST /poll writes to Git: no key, a wrong key, or no keys configured at all is a 401;
    the reads stay open like the health endpoints."""
    s = settings(tmp_path, git_remote_url=str(tmp_path / "missing.git"))
    async with api_client(s) as client:
        for headers in ({"Authorization": ""}, {"Authorization": "Bearer nope"}):
            refused = await client.post("/poll", headers=headers)
            assert refused.status_code == 401
            assert refused.json()["detail"] == "missing or invalid API key"
        assert (await client.get("/health")).status_code == 200
    async with api_client(settings(tmp_path, api_keys=[])) as client:
        refused = await client.post("/poll")
        assert refused.status_code == 401
        assert "no API_KEYS set on github-sync" in refused.json()["detail"]


async def test_poll_without_mlflow_and_unreachable_git(tmp_path: Path) -> None:
    s = settings(tmp_path, git_remote_url=str(tmp_path / "missing.git"), git_timeout_s=10)
    async with api_client(s) as client:
        assert (await client.post("/poll")).status_code == 409
        connections = (await client.get("/connections")).json()
        assert connections["git"]["ok"] is False
        assert connections["mlflow"]["ok"] is False


async def test_worker_end_to_end_through_redis(
    redis: aioredis.Redis, redis_url: str, names: object, gh: GitHubServer, tmp_path: Path
) -> None:
    namespace = f"test.{names.token}:"  # type: ignore[attr-defined]
    s = worker_settings(
        redis_url,
        namespace,
        tmp_path,
        github_token=SecretStr(gh.token),
        github_base_url=gh.url,
        github_repo_owner=OWNER,
        github_repo_name=REPO,
    )
    stop = asyncio.Event()
    task = asyncio.create_task(serve(s, stop=stop))
    status_stream = f"{namespace}{Stream.STATUS}"
    try:
        publisher = Publisher(redis, namespace=namespace)
        event = registered()
        await publisher.publish(event)
        await publisher.publish(event)  # a redelivered copy (same event id)

        async def reported() -> bool:
            return bool(await read_events(redis, status_stream))

        await wait_until(reported, timeout_s=20)
        models = f"{namespace}{Stream.MODELS}"
        [(last_id, _)] = await redis.xrevrange(models, count=1)

        async def both_settled() -> bool:
            # the duplicate too was delivered to the group and acked (handled or skipped)
            groups = await redis.xinfo_groups(models)
            group = next(g for g in groups if _text(g["name"]) == "github-sync")
            return _text(group["last-delivered-id"]) == _text(last_id) and group["pending"] == 0

        await wait_until(both_settled, timeout_s=20)
    finally:
        stop.set()
        await asyncio.wait_for(task, timeout=10)
    statuses = [
        e.payload_as(ModelVersionStatusUpdated) for e in await read_events(redis, status_stream)
    ]
    assert len(statuses) == 1
    assert statuses[0].phase is Phase.SUCCEEDED
    assert statuses[0].entity_id == "Qwen/Qwen3-0.6B/1"
    assert statuses[0].reporter == "github-sync"
    assert gh.file(OWNER, REPO, "abc123def456.yaml") == GOLDEN.read_bytes()
    assert len(gh.commits(OWNER, REPO)) == 2
    assert not await redis.exists(f"{namespace}{Stream.MODELS}.dlq")


def _text(value: object) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


async def test_a_run_gone_from_mlflow_is_permanent_and_poll_skips_it(
    mlflow_server: MlflowServer, tmp_path: Path
) -> None:
    from llmops_github_sync.adapters.mlflow import MlflowRegistry
    from llmops_github_sync.handlers import SyncPorts, reconcile
    from llmops_github_sync.ports import ModelVersionRecord, RunNotFound

    from integration.github_sync.helpers import CREATED, git_repo

    registry = MlflowRegistry(mlflow_server.url)
    with pytest.raises(RunNotFound, match="RESOURCE_DOES_NOT_EXIST"):
        await registry.experiment_of("0" * 32)

    class Registry:
        async def list_versions(self) -> list[ModelVersionRecord]:
            return [
                ModelVersionRecord("m", "1", "a" * 32, None, CREATED, run_missing="gone"),
                ModelVersionRecord("m", "2", "../x", "1", CREATED),
                ModelVersionRecord("m", "3", "b" * 32, "1", CREATED),
            ]

        async def experiment_of(self, run_id: str) -> str:
            raise AssertionError("not asked")

    repo = git_repo(tmp_path / "gs")
    report = await reconcile(SyncPorts(repository=repo, registry=Registry()))  # type: ignore[arg-type]
    assert (report.files, report.created) == (1, 1)
    assert report.skipped_missing_run == 1
    assert report.skipped_invalid_run_id == 1


async def test_rate_limit_beyond_the_bound_pauses_the_consumer_without_dead_letters(
    redis: aioredis.Redis, redis_url: str, names: object, gh: GitHubServer, tmp_path: Path
) -> None:
    namespace = f"test.{names.token}:"  # type: ignore[attr-defined]
    s = worker_settings(
        redis_url,
        namespace,
        tmp_path,
        github_token=SecretStr(gh.token),
        github_base_url=gh.url,
        github_repo_owner=OWNER,
        github_repo_name=REPO,
        github_max_rate_limit_wait_s=5,
    )
    gh.rate_limit_next(4, retry_after_s=3600)  # more outages than max_deliveries (3)
    stop = asyncio.Event()
    task = asyncio.create_task(serve(s, stop=stop))
    status_stream = f"{namespace}{Stream.STATUS}"
    try:
        await Publisher(redis, namespace=namespace).publish(registered())

        async def reported() -> bool:
            return bool(await read_events(redis, status_stream))

        await wait_until(reported, timeout_s=30)
    finally:
        stop.set()
        await asyncio.wait_for(task, timeout=10)
    [status] = [
        e.payload_as(ModelVersionStatusUpdated) for e in await read_events(redis, status_stream)
    ]
    assert status.phase is Phase.SUCCEEDED
    assert details_of(status)["action"] == "created"
    assert not await redis.exists(f"{namespace}{Stream.MODELS}.dlq")
    assert len(gh.commits(OWNER, REPO)) == 2
