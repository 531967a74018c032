"""The Redis ACL users of deploy/redis/acl.py on a real, private ``redis-server`` (Redis >= 7.0: the
users need selectors), started with deploy/redis/redis.conf: each service can do exactly what
its code does and nothing else, and a real worker, the gateway's status consumer and dead-letter
replay run end to end under their users without a single ACL denial."""

from __future__ import annotations

import asyncio
import functools
import os
import re
import secrets
import subprocess
import time
import types
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import redis
import redis.asyncio as aioredis
from prometheus_client import CollectorRegistry
from pydantic import SecretStr
from redis.exceptions import NoPermissionError

from deploy.helpers import DEPLOY, SERVICES
from llmops_cli.embedded_redis import find_redis_server_binary, free_port
from llmops_serving.tombstones import RedisTombstones
from llmops_shared.events import (
    DatasetVersionRequested,
    Event,
    StatusUpdated,
    Stream,
    new_event,
)
from llmops_shared.heartbeat import Heartbeat, read_heartbeats
from llmops_shared.streams import Publisher
from llmops_shared.streams.connection import async_redis, sync_redis
from llmops_shared.streams.consumer import ConsumerRunner
from llmops_shared.streams.dead_letters import list_dead_letters, replay_dead_letter
from llmops_shared.streams.metrics import StreamMetrics
from llmops_tracking.model_versions import PublishedVersions, delivery_key, state_key
from llmops_versioning.app import serve as serve_versioning
from llmops_versioning.config import VersioningSettings

from support.streams import FAST_CONSUMER, wait_until

pytestmark = pytest.mark.integration

IN_CI = os.environ.get("CI", "").lower() in {"1", "true", "yes"}
ADMIN = "acl-test-admin"
CONSUMED = {
    "gateway": "llmops.status",
    "tracking": "llmops.training",
    "workflow": "llmops.training",
    "serving": "llmops.serving",
    "registry": "llmops.catalog",
    "versioning": "llmops.datasets",
    "github-sync": "llmops.models",
}
REQUESTS = ("llmops.training", "llmops.serving", "llmops.catalog", "llmops.datasets")


@dataclass
class AclServer:
    port: int
    passwords: dict[str, str]
    admin: redis.Redis

    def url(self, user: str) -> str:
        return f"redis://{user}:{self.passwords[user]}@127.0.0.1:{self.port}/0"

    def client(self, user: str) -> redis.Redis:
        """A client configured exactly as the services configure theirs."""
        return sync_redis(self.url(user))

    def denials(self) -> list[dict[str, Any]]:
        """``ACL LOG``: every command refused since the last reset (user, command, key)."""
        entries = self.admin.execute_command("ACL", "LOG")
        return [
            dict(entry)
            if isinstance(entry, dict)
            else dict(zip(entry[::2], entry[1::2], strict=True))
            for entry in entries
        ]


def _redis_server() -> str:
    binary = find_redis_server_binary()
    version = subprocess.run(
        [binary, "--version"], capture_output=True, text=True, check=True
    ).stdout
    match = re.search(r"v=(\d+)\.", version)
    if match is None or int(match[1]) < 7:
        message = f"{binary} is not Redis >= 7.0 ({version.strip()}): ACL selectors need 7.0"
        if IN_CI:
            pytest.fail(message + " -- required in CI")
        pytest.skip(message)
    return binary


@pytest.fixture(scope="module")
def server(acl: types.ModuleType, tmp_path_factory: pytest.TempPathFactory) -> Iterator[AclServer]:
    binary = _redis_server()
    root = tmp_path_factory.mktemp("redis-acl")
    names = [u.name for u in acl.users()] + [u.name for u in acl.users("stg:", "stg-")]
    passwords = {name: secrets.token_urlsafe(16) for name in names}
    passwords[ADMIN] = secrets.token_urlsafe(16)
    text = acl.render(passwords=passwords)
    text += acl.render("stg:", "stg-", passwords=passwords, default_user=False)
    text += f"user {ADMIN} on >{passwords[ADMIN]} ~* &* +@all\n"  # the test's own eyes
    (root / "users.acl").write_text(text)
    (root / "redis.conf").write_text((DEPLOY / "redis" / "redis.conf").read_text())
    port = free_port()
    command = [binary, str(root / "redis.conf"), "--port", str(port), "--bind", "127.0.0.1"]
    command += ["--save", "", "--appendonly", "no", "--dir", str(root)]
    command += ["--aclfile", str(root / "users.acl")]
    process = subprocess.Popen(
        command,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.STDOUT,
    )
    admin = redis.Redis(
        port=port, username=ADMIN, password=passwords[ADMIN], protocol=2, decode_responses=True
    )
    try:
        for _ in range(100):
            try:
                admin.ping()
                break
            except redis.ConnectionError:
                if process.poll() is not None:
                    pytest.fail(f"redis-server exited with {process.returncode}")
                time.sleep(0.05)
        yield AclServer(port, passwords, admin)
    finally:
        admin.close()
        process.terminate()
        process.wait(timeout=10)


@pytest.fixture(autouse=True)
def fresh(server: AclServer) -> None:
    server.admin.flushall()
    server.admin.execute_command("ACL", "LOG", "RESET")


def _denied(call: Any) -> bool:
    try:
        call()
    except NoPermissionError:
        return True
    return False


def test_the_reference_config_and_every_user_are_loaded(server: AclServer, acl: Any) -> None:
    admin = server.admin
    assert admin.config_get("maxmemory-policy") == {"maxmemory-policy": "noeviction"}
    assert admin.config_get("appendfsync") == {"appendfsync": "everysec"}
    users = set(admin.execute_command("ACL", "USERS"))
    assert {u.name for u in acl.users()} | {"default"} <= users
    # the default user: PING (health checks), nothing else
    anonymous = redis.Redis(port=server.port, protocol=2)
    assert anonymous.ping()
    assert _denied(lambda: anonymous.get("llmops:idem:x"))
    assert _denied(lambda: anonymous.flushall())
    anonymous.close()


def test_a_worker_consumes_its_stream_and_writes_only_status(server: AclServer) -> None:
    server.admin.xadd("llmops.datasets", {"event": "{}"})
    versioning = server.client("versioning")
    versioning.xgroup_create("llmops.datasets", "versioning", id="0", mkstream=True)
    [[_, [(entry_id, _)]]] = versioning.xreadgroup(
        "versioning", "c1", {"llmops.datasets": ">"}, count=1
    )
    assert versioning.xack("llmops.datasets", "versioning", entry_id) == 1
    assert versioning.xadd("llmops.status", {"event": "{}"})
    assert versioning.xadd("llmops.datasets.dlq", {"event": "{}"})
    assert versioning.set("llmops:idem:versioning:e1", "1", nx=True, ex=60)
    assert versioning.xrevrange("llmops.config", count=1) == []
    # refused: other streams, writing what it consumes, reading status, others' keys
    assert _denied(lambda: versioning.xadd("llmops.training", {"event": "{}"}))
    assert _denied(lambda: versioning.xadd("llmops.datasets", {"event": "{}"}))
    assert _denied(lambda: versioning.xadd("llmops.config", {"event": "{}"}))
    assert _denied(lambda: versioning.xrange("llmops.status"))
    assert _denied(lambda: versioning.xreadgroup("versioning", "c1", {"llmops.training": ">"}))
    assert _denied(lambda: versioning.set("llmops:idem:tracking:e1", "1"))
    assert _denied(lambda: versioning.hset("llmops:workers:gateway:x", "a", "b"))
    assert _denied(lambda: versioning.keys("*"))
    assert _denied(lambda: versioning.flushall())
    assert _denied(lambda: versioning.config_get("*"))
    versioning.close()


@pytest.mark.parametrize("service", SERVICES)
def test_each_service_user_is_confined(server: AclServer, service: str) -> None:
    client = server.client(service)
    own = CONSUMED[service]
    client.xgroup_create(own, service, id="0", mkstream=True)
    assert client.xreadgroup(service, "c1", {own: ">"}, count=1, block=1) == []
    assert client.xinfo_groups(own)
    assert client.xadd("llmops.status", {"event": "{}"})
    assert client.xadd(f"{own}.dlq", {"event": "{}"})
    assert client.hset(f"llmops:attempts:{own}:{service}", "1-0:attempts", 1)
    assert client.hset(f"llmops:workers:{service}:c1", "service", service)
    assert client.zadd("llmops:workers", {f"{service}:c1": 1}) == 1
    for stream in REQUESTS:
        if stream != own:
            assert _denied(lambda s=stream: client.xreadgroup(service, "c1", {s: ">"}))
    writes_requests = service == "gateway"
    for stream in (*REQUESTS, "llmops.config"):
        refused = _denied(lambda s=stream: client.xadd(s, {"event": "{}"}))
        assert refused is not writes_requests, stream
    writes_models = service in {"gateway", "tracking"}
    assert _denied(lambda: client.xadd("llmops.models", {"event": "{}"})) is not writes_models
    other = next(s for s in SERVICES if s != service)
    assert _denied(lambda: client.set(f"llmops:idem:{other}:e1", "1"))
    assert _denied(lambda: client.hset(f"llmops:workers:{other}:c1", "a", "b"))
    reads_everything = service == "gateway"  # integrations report, dead letters
    assert _denied(lambda: client.xlen("llmops.training.dlq")) is not reads_everything
    assert _denied(lambda: client.hgetall(f"llmops:workers:{other}:c1")) is not reads_everything
    client.close()


def test_the_operator_reads_and_replays_but_never_consumes(server: AclServer) -> None:
    operator = server.client("operator")
    assert operator.xlen("llmops.training") == 0
    assert operator.xrevrange("llmops.training.dlq") == []
    assert _denied(lambda: operator.xreadgroup("x", "c1", {"llmops.training": ">"}))
    assert _denied(lambda: operator.set("llmops:idem:gateway:e1", "1"))
    assert _denied(lambda: operator.xadd("llmops.training.dlq", {"event": "{}"}))
    operator.close()


def test_namespaced_users_stay_in_their_namespace(server: AclServer) -> None:
    staging = server.client("stg-versioning")
    assert staging.xadd("stg:llmops.status", {"event": "{}"})
    staging.xgroup_create("stg:llmops.datasets", "versioning", id="0", mkstream=True)
    assert _denied(lambda: staging.xadd("llmops.status", {"event": "{}"}))
    assert _denied(lambda: staging.xgroup_create("llmops.datasets", "versioning", mkstream=True))
    staging.close()


async def test_tracking_state_keys_under_its_user(server: AclServer) -> None:
    tracking = async_redis(server.url("tracking"))
    try:
        await tracking.set(state_key("", "watermark"), "123")
        assert await tracking.get(state_key("", "watermark")) == b"123"
        published = PublishedVersions(tracking, "")
        assert await published.since(None) == set()
        await published.trim_below(0)
        key = delivery_key("", "delivery-1")
        assert not await tracking.exists(key)
        await tracking.set(key, "model_version.created", ex=60)
        assert await tracking.xadd("llmops.models", {"event": "{}"})
    finally:
        await tracking.aclose()
    assert server.denials() == []


async def test_tracking_run_locks_under_its_user(server: AclServer) -> None:
    """The tracking worker's per-job run locks (llmops_tracking.adapters.redis_locks): taken,
    renewed and released (scripts whose inner GET/PEXPIRE/DEL the ACL checks too)."""
    from llmops_tracking.adapters.redis_locks import RedisRunLocks, run_lock_key

    for user, namespace in (("tracking", ""), ("stg-tracking", "stg:")):
        tracking = async_redis(server.url(user))
        try:
            locks = RedisRunLocks(tracking, namespace=namespace, ttl_s=5)
            async with locks.hold("job-1") as lease:
                assert server.admin.exists(run_lock_key(namespace, "job-1"))
                await locks.renew(lease)  # type: ignore[arg-type]
            assert not server.admin.exists(run_lock_key(namespace, "job-1"))  # released
        finally:
            await tracking.aclose()
    assert server.denials() == []


async def test_serving_tombstones_under_its_user(server: AclServer) -> None:
    """The serving worker's tombstones (llmops_serving.tombstones), in each namespace."""
    for user, namespace in (("serving", ""), ("stg-serving", "stg:")):
        serving = async_redis(server.url(user))
        try:
            tombstones = RedisTombstones(serving, namespace=namespace, retention_s=60)
            assert await tombstones.buried("endpoint-1") is None
            await tombstones.bury("endpoint-1", event_id="event-1")
            assert await tombstones.buried("endpoint-1") == "event-1"
            assert _denied(functools.partial(server.client(user).set, "llmops:serving:x", "x"))
        finally:
            await serving.aclose()
    assert server.admin.ttl("stg:llmops:serving:tombstones:endpoint-1") > 0
    assert {d["object"] for d in server.denials()} == {"llmops:serving:x"}  # only the probes


async def test_workflow_pipeline_ledger_under_its_user(server: AclServer) -> None:
    """The workflow worker's pipeline ledger (llmops_workflow.adapters.ledger), in each
    namespace: every command its optimistic transactions send, and nothing else."""
    from llmops_workflow.adapters.ledger import RedisLedger
    from llmops_workflow.ledger import Transitions

    for user, namespace in (("workflow", ""), ("stg-workflow", "stg:")):
        workflow = async_redis(server.url(user))
        try:
            ledger = RedisLedger(workflow, namespace=namespace, ttl_s=60)
            of = Transitions("job-1", "llm-ops-dev", "argo")
            await ledger.update("job-1", of.claim)
            await ledger.update("job-1", of.claim)  # unchanged: UNWATCH
            await ledger.update("job-1", of.applied(True))
            assert [r.job_id for r in await ledger.watched()] == ["job-1"]
            await ledger.update("job-2", Transitions("job-2", "ns", "argo").claim)
            assert await ledger.update("job-2", Transitions.release) is None
            assert (await ledger.get("job-1")) is not None
            probe = server.client(user)
            assert _denied(lambda p=probe: p.set("llmops:serving:other", "x"))  # nothing else
            probe.close()
        finally:
            await workflow.aclose()
    assert server.admin.ttl("stg:llmops:workflow:pipeline:job-1") > 0
    assert {d["object"] for d in server.denials()} == {"llmops:serving:other"}


@pytest.fixture
async def gateway_redis(server: AclServer) -> AsyncIterator[aioredis.Redis]:
    client = async_redis(server.url("gateway"))
    yield client
    await client.aclose()


async def test_a_real_worker_and_the_gateway_run_without_an_acl_denial(
    server: AclServer, gateway_redis: aioredis.Redis, tmp_path: Path
) -> None:
    """The versioning worker (built-in backend) under its user, requests and the status
    consumer, heartbeats and dead-letter replay under the gateway's: every command works."""
    dataset = tmp_path / "dataset"
    dataset.mkdir()
    (dataset / "train.jsonl").write_text('{"prompt": "a", "completion": "b"}\n')
    settings = VersioningSettings(
        redis_url=SecretStr(server.url("versioning")),
        data_versioning_enabled=False,
        builtin_store_dir=tmp_path / "builtin",
        dvc_repos_dir=tmp_path / "repos",
        dvc_remote_url=str(tmp_path / "remote"),
        health_port=0,
        heartbeat_interval_s=1.0,  # a 3 s expiry: a busy CI machine delays beats
        consumer=FAST_CONSUMER,
    )
    received: list[Event] = []

    async def fold(event: Event) -> None:
        received.append(event)

    status = ConsumerRunner(
        gateway_redis,
        stream=Stream.STATUS,
        group="gateway",
        consumer="gateway-test",
        handler=fold,
        settings=FAST_CONSUMER,
        metrics=StreamMetrics(CollectorRegistry()),
    )
    beat = Heartbeat(
        gateway_redis, namespace="", service="gateway", consumer="gateway-test", interval_s=1.0
    )
    stop = asyncio.Event()
    worker = asyncio.create_task(serve_versioning(settings, stop=stop))
    folding = asyncio.create_task(status.run(stop))
    beating = asyncio.create_task(beat.run(stop))
    try:
        version_id = str(uuid.uuid4())
        request = DatasetVersionRequested(
            dataset_id=str(uuid.uuid4()),
            version_id=version_id,
            version_tag="v1.0.0",
            dataset_type="sft_pair",
            storage_uri=str(dataset),
        )
        await Publisher(gateway_redis).publish(new_event(request, source="gateway"))

        async def succeeded() -> bool:
            reports = [e.payload_as(StatusUpdated) for e in received]
            return any(r.entity_id == version_id and r.phase == "Succeeded" for r in reports)

        await wait_until(succeeded, timeout_s=30)

        # a poison entry: the worker dead-letters it; the gateway lists and replays it
        await gateway_redis.xadd(Stream.DATASETS.value, {"event": b"not an event"})

        async def dead_lettered() -> bool:
            return bool(await list_dead_letters(gateway_redis, stream=Stream.DATASETS))

        await wait_until(dead_lettered, timeout_s=15)
        [letter] = await list_dead_letters(gateway_redis, stream=Stream.DATASETS)
        replayed = await replay_dead_letter(gateway_redis, letter.id)
        assert replayed.stream is Stream.DATASETS

        async def dead_again() -> bool:
            letters = await list_dead_letters(gateway_redis, stream=Stream.DATASETS)
            return [x.id for x in letters] not in ([], [letter.id])

        await wait_until(dead_again, timeout_s=15)
        beats = await read_heartbeats(gateway_redis)
        assert {b.service for b in beats} == {"versioning", "gateway"}
        groups = await gateway_redis.xinfo_groups(Stream.DATASETS.value)
        assert [g["name"] for g in groups] == [b"versioning"]
        assert await gateway_redis.xlen("llmops.datasets.dlq") == 1
    finally:
        stop.set()
        await asyncio.wait_for(asyncio.gather(worker, folding, beating), timeout=30)
    assert server.denials() == []  # not one command of either refused, start to stop
    assert server.admin.xpending(Stream.DATASETS.value, "versioning")["pending"] == 0
