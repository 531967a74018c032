"""``GET /health/integrations`` on a real Redis and database: a live worker with its backend,
consumer-group numbers that match the streams, a stopped worker, a stopped Redis."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from pydantic import SecretStr
from sqlalchemy.exc import OperationalError
from typer.testing import CliRunner

from llmops_cli.client import GatewayClient, GatewayError
from llmops_cli.commands.integrations import integrations_app
from llmops_cli.embedded_redis import EmbeddedRedis
from llmops_shared.config import ServiceSettings
from llmops_shared.events import Envelope, Event, Stream
from llmops_shared.worker import Subscription, WorkerContext, run_worker

from integration.gateway.harness import API, Gateway
from support.streams import FAST_CONSUMER, wait_until

pytestmark = pytest.mark.integration

URL = f"{API}/health/integrations"
INTERVAL_S = 0.2


async def _nothing(event: Event) -> list[Envelope]:
    return []


def _training(_: WorkerContext[ServiceSettings]) -> Sequence[Subscription]:
    return [Subscription(Stream.TRAINING, _nothing)]


async def _body(gateway: Gateway) -> dict[str, Any]:
    response = await gateway.client.get(URL)
    assert response.status_code in (200, 503), response.text
    body: dict[str, Any] = response.json()
    return body


async def test_a_live_worker_its_backend_and_the_stream_numbers(gateway: Gateway) -> None:
    ns = gateway.namespace
    redis = gateway.redis
    # serving: a group that has read 1 of 3 entries (pending 1, lag 2), 2 dead letters
    serving = f"{ns}{Stream.SERVING}"
    await redis.xgroup_create(serving, "serving", id="0", mkstream=True)
    for n in range(3):
        await redis.xadd(serving, {"event": f"e{n}"})
    await redis.xreadgroup("serving", "s-1", {serving: ">"}, count=1)
    for n in range(2):
        await redis.xadd(f"{serving}.dlq", {"event": f"d{n}", "reason": "x"})

    stop = asyncio.Event()
    settings = ServiceSettings(
        service_name="tracking", redis_url=SecretStr(gateway.settings.redis_url.get_secret_value()),  # type: ignore[union-attr]
        stream_namespace=ns, consumer=FAST_CONSUMER, health_port=0,
        heartbeat_interval_s=INTERVAL_S,
    )  # fmt: skip
    worker = asyncio.create_task(
        run_worker(
            settings, _training, consumer_name="tracking-t1", stop=stop,
            describe={"backend": "builtin", "enabled": "false"},
        )
    )  # fmt: skip
    try:

        async def tracking_alive() -> bool:
            area = (await _body(gateway))["integrations"]["experiment_tracking"]
            return bool(area["workersAlive"])

        await wait_until(tracking_alive, timeout_s=10)
        response = await gateway.client.get(URL)
        assert response.status_code == 200
        body = response.json()
        assert body["redis"]["ok"] is True
        assert body["redis"]["latencyMs"] >= 0
        assert body["status"] == "degraded"  # other workers missing, dead letters
        tracking = body["integrations"]["experiment_tracking"]
        assert tracking["backend"] == "builtin"
        assert tracking["enabled"] is False
        [w] = tracking["workers"]
        assert w["consumer"] == "tracking-t1"
        assert w["alive"] is True
        assert w["healthy"] is True
        assert w["ageS"] < 3 * INTERVAL_S
        assert tracking["group"]["name"] == "tracking"
        assert tracking["group"]["pending"] == 0
        assert tracking["problems"] == []
        assert tracking["status"] == "ok"

        area = body["integrations"]["serving"]
        assert area["group"]["pending"] == 1
        assert area["group"]["lag"] == 2
        assert area["deadLetters"] == 2
        assert area["workers"] == []
        assert area["status"] == "degraded"
        assert "no live serving worker" in area["problems"]
        assert body["deadLetters"]["llmops.serving"] == 2
        assert body["deadLetters"]["llmops.training"] == 0
        # the gateway's own status consumer beats too
        status_consumer = body["integrations"]["status_consumer"]
        assert status_consumer["service"] == "gateway"
        assert status_consumer["group"]["name"] == "gateway"
        # the gateway's flag: model_registry is on, and its worker is missing
        assert body["integrations"]["model_registry"]["requiresWorker"] is True
    finally:
        stop.set()
        await asyncio.wait_for(worker, timeout=10)

    started = time.monotonic()

    async def tracking_gone() -> bool:
        area = (await _body(gateway))["integrations"]["experiment_tracking"]
        return area["workersAlive"] == 0

    await wait_until(tracking_gone, timeout_s=5)
    assert time.monotonic() - started < 2
    tracking = (await _body(gateway))["integrations"]["experiment_tracking"]
    assert tracking["status"] == "degraded"
    assert "no live tracking worker" in tracking["problems"]


async def test_reachability_and_latency_come_from_the_workers_probes(gateway: Gateway) -> None:
    """The gateway cannot reach a cluster or a DVC remote; the workers' readiness probes,
    carried by their heartbeats, say whether the integration's backend answers and how fast."""
    reachable = True

    async def kserve_api() -> None:
        await asyncio.sleep(0.01)
        if not reachable:
            raise ConnectionError("connection refused by kube-apiserver")

    stop = asyncio.Event()
    settings = ServiceSettings(
        service_name="serving",
        redis_url=SecretStr(gateway.settings.redis_url.get_secret_value()),  # type: ignore[union-attr]
        stream_namespace=gateway.namespace, consumer=FAST_CONSUMER, health_port=0,
        heartbeat_interval_s=INTERVAL_S,
    )  # fmt: skip
    worker = asyncio.create_task(
        run_worker(
            settings, lambda _: [Subscription(Stream.SERVING, _nothing)],
            consumer_name="serving-p1", stop=stop, readiness={"kserve": kserve_api},
            describe={"backend": "kserve"},
        )
    )  # fmt: skip
    try:

        async def serving() -> dict[str, Any]:
            area: dict[str, Any] = (await _body(gateway))["integrations"]["serving"]
            return area

        async def probed() -> bool:
            return (await serving())["reachable"] is True

        await wait_until(probed, timeout_s=10)
        area = await serving()
        assert area["latencyMs"] >= 10
        assert area["problems"] == []
        assert area["workers"][0]["facts"]["probe.kserve.ok"] == "true"
        # the probes run every max(interval, 5 s): a failure shows at the next one
        reachable = False

        async def unreachable() -> bool:
            return (await serving())["reachable"] is False

        await wait_until(unreachable, timeout_s=10)
        area = await serving()
        assert area["latencyMs"] is None  # not the last successful probe's, kept stale
        assert area["status"] == "degraded"
        assert area["problems"] == [
            "worker serving-p1 cannot reach kserve: ConnectionError: connection refused by "
            "kube-apiserver"
        ]
    finally:
        stop.set()
        await asyncio.wait_for(worker, timeout=10)


async def _beat(gateway: Gateway, consumer: str, **facts: str) -> None:
    """A live serving worker's heartbeat with ``facts``, as a worker writes it."""
    key = f"{gateway.namespace}llmops:workers:serving:{consumer}"
    await gateway.redis.hset(
        key, mapping={"service": "serving", "consumer": consumer, "interval_s": "5", **facts}
    )
    await gateway.redis.pexpire(key, 15_000)
    index = f"{gateway.namespace}llmops:workers"
    await gateway.redis.zadd(index, {f"serving:{consumer}": time.time()})


async def test_latency_counts_only_successful_probes(gateway: Gateway) -> None:
    """Review finding: a failed probe kept its last latency, so the area showed a stale one.
    Only ok probes count; an empty ``.latency_ms`` / ``.error`` (the worker's "none") is absent."""
    await _beat(gateway, "serving-a", backend="kserve", **{
        "probe.kserve.ok": "false", "probe.kserve.latency_ms": "250.0",
        "probe.kserve.error": "",
    })  # fmt: skip
    area = (await _body(gateway))["integrations"]["serving"]
    assert (area["reachable"], area["latencyMs"]) == (False, None)
    assert area["problems"] == ["worker serving-a cannot reach kserve: failed"]

    await _beat(gateway, "serving-b", backend="kserve", **{
        "probe.kserve.ok": "true", "probe.kserve.latency_ms": "3.5", "probe.kserve.error": "",
    })  # fmt: skip
    await _beat(gateway, "serving-c", backend="kserve", **{
        "probe.kserve.ok": "true", "probe.kserve.latency_ms": "", "probe.kserve.error": "",
    })  # fmt: skip
    area = (await _body(gateway))["integrations"]["serving"]
    assert (area["reachable"], area["latencyMs"]) == (False, 3.5)
    assert area["problems"] == ["worker serving-a cannot reach kserve: failed"]


async def test_a_crashed_worker_shows_as_gone_within_three_intervals(gateway: Gateway) -> None:
    """A worker that dies without clearing: its last heartbeat ages out."""
    key = f"{gateway.namespace}llmops:workers:serving:dead-1"
    beat = {"service": "serving", "consumer": "dead-1", "interval_s": str(INTERVAL_S),
            "backend": "kserve"}  # fmt: skip
    await gateway.redis.hset(key, mapping=beat)
    await gateway.redis.pexpire(key, int(3 * INTERVAL_S * 1000))
    index = f"{gateway.namespace}llmops:workers"
    await gateway.redis.zadd(index, {"serving:dead-1": time.time()})
    serving = (await _body(gateway))["integrations"]["serving"]
    assert serving["workersAlive"] == 1
    assert serving["backend"] == "kserve"
    await asyncio.sleep(3 * INTERVAL_S + 0.1)
    serving = (await _body(gateway))["integrations"]["serving"]
    assert serving["workersAlive"] == 0
    assert serving["backend"] is None


async def test_model_registry_off_needs_no_worker(start_gateway: Callable[..., Any]) -> None:
    gateway: Gateway = await start_gateway(model_registry_enabled=False)
    area = (await _body(gateway))["integrations"]["model_registry"]
    assert area["enabled"] is False
    assert area["backend"] == "request"
    assert area["requiresWorker"] is False
    assert area["status"] == "disabled"


@pytest.mark.parametrize("delay_s", [0.0, 3.0], ids=["failing", "hanging"])
async def test_an_unreadable_database_falls_back_to_the_environments_flags(
    start_gateway: Callable[..., Any], monkeypatch: pytest.MonkeyPatch, delay_s: float
) -> None:
    """Review finding: the ``integration_configs`` read ran on the event loop, unbounded. Now
    it runs in a thread under a 1 s bound; a database that fails or hangs leaves the loop free
    and the environment's flags stand in (``MODEL_REGISTRY_ENABLED=false`` still holds)."""
    gateway: Gateway = await start_gateway(model_registry_enabled=False)
    assert (await _body(gateway))["configsError"] is None

    def unreachable() -> Any:
        time.sleep(delay_s)
        raise OperationalError("SELECT", {}, ConnectionRefusedError("connection refused"))

    monkeypatch.setattr(gateway.state, "sessions", unreachable)

    async def timed(path: str) -> tuple[Any, float]:
        started = time.monotonic()
        response = await gateway.client.get(path)
        return response, time.monotonic() - started

    (response, elapsed), (liveness, liveness_elapsed) = await asyncio.gather(
        timed(URL), timed("/healthz")
    )
    assert response.status_code in (200, 503), response.text
    assert elapsed < 2
    assert liveness.status_code == 200
    assert liveness_elapsed < 1  # the event loop was not blocked by the database
    body = response.json()
    assert "integration_configs unreadable" in body["configsError"]
    assert ("timed out" if delay_s else "OperationalError") in body["configsError"]
    registry = body["integrations"]["model_registry"]
    assert (registry["enabled"], registry["backend"], registry["status"]) == (
        False, "request", "disabled",
    )  # fmt: skip
    assert registry["requiresWorker"] is False
    assert registry["configured"]["source"] == "environment"
    assert body["integrations"]["serving"]["configured"]["enabled"] is True


async def test_a_stopped_redis_is_a_503_within_two_seconds(
    start_gateway: Callable[..., Any],
) -> None:
    server = EmbeddedRedis().start()
    try:
        gateway: Gateway = await start_gateway(redis_url=server.url)
        assert (await gateway.client.get(URL)).status_code in (200, 503)
        server.stop()
        started = time.monotonic()
        response = await gateway.client.get(URL)
        elapsed = time.monotonic() - started
        assert response.status_code == 503, response.text
        assert elapsed < 2.5
        body = response.json()
        assert body["status"] == "unavailable"
        assert body["redis"]["ok"] is False
        assert body["redis"]["error"]
        assert body["deadLetters"] is None
        tracking = body["integrations"]["experiment_tracking"]
        assert tracking["status"] == "unknown"
        assert tracking["workers"] is None
        # the gateway's own flag is still known
        assert body["integrations"]["model_registry"]["requiresWorker"] is True
    finally:
        server.close()


@pytest.fixture
def mlflow_api() -> Iterator[str]:
    """A stand-in MLflow answering experiments/search."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            ok = self.path.startswith("/api/2.0/mlflow/experiments/search")
            body = b'{"experiments": []}' if ok else b"{}"
            self.send_response(200 if ok else 404)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


async def test_mlflow_reachability_and_latency(
    start_gateway: Callable[..., Any], mlflow_api: str
) -> None:
    gateway: Gateway = await start_gateway(mlflow_tracking_uri=mlflow_api)
    mlflow = (await _body(gateway))["integrations"]["experiment_tracking"]["mlflow"]
    assert mlflow["ok"] is True
    assert mlflow["statusCode"] == 200
    assert mlflow["latencyMs"] >= 0

    down: Gateway = await start_gateway(mlflow_tracking_uri="http://127.0.0.1:1")
    area = (await _body(down))["integrations"]["experiment_tracking"]
    assert area["mlflow"]["ok"] is False
    assert any("MLflow unreachable" in p for p in area["problems"])


@pytest.fixture
def stand_in_gateway() -> Iterator[tuple[str, list[tuple[int, str, bytes]]]]:
    """A stand-in gateway answering every GET with the last of ``answers`` (status, content
    type, body)."""
    answers: list[tuple[int, str, bytes]] = []

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            status, content_type, body = answers[-1]
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", answers
    server.shutdown()
    server.server_close()


def test_the_cli_health_refuses_cleanly_without_a_report(
    stand_in_gateway: tuple[str, list[tuple[int, str, bytes]]],
) -> None:
    """Review finding: ``llmops integrations health`` showed a traceback on an answer that is
    not JSON or on no answer; now a :class:`GatewayError`, printed as ``refused (...)``. A 503
    with the report (Redis down) is still the report."""
    url, answers = stand_in_gateway
    report = {"status": "unavailable", "environment": "dev", "integrations": {}}
    answers.append((503, "application/json", json.dumps(report).encode()))
    with GatewayClient(url) as client:
        assert client.integrations_health() == report
    answers.append((502, "text/html", b"<html>Bad Gateway</html>"))
    with GatewayClient(url) as client, pytest.raises(GatewayError) as bad:
        client.integrations_health()
    assert bad.value.status_code == 502
    assert "<html>Bad Gateway</html>" in str(bad.value.detail)
    answers.append((200, "text/plain", b"ok"))
    with GatewayClient(url) as client, pytest.raises(GatewayError) as plain:
        client.integrations_health()
    assert plain.value.status_code == 200
    answers.append((404, "application/json", b'{"detail": "Not Found"}'))
    with GatewayClient(url) as client, pytest.raises(GatewayError) as missing:
        client.integrations_health()
    assert (missing.value.status_code, missing.value.detail) == (404, "Not Found")
    with GatewayClient("http://127.0.0.1:1") as client, pytest.raises(GatewayError) as down:
        client.integrations_health()
    assert down.value.status_code == 0
    assert "ConnectError" in str(down.value.detail)

    runner = CliRunner()
    for gateway, expected in ((url, "refused (404)"), ("http://127.0.0.1:1", "refused (0)")):
        result = runner.invoke(integrations_app, ["health", "--gateway", gateway])
        assert result.exit_code == 1, result.output
        assert expected in result.output
        assert "Traceback" not in result.output
        assert not isinstance(result.exception, GatewayError | ValueError)
    answers.append((503, "application/json", json.dumps(report).encode()))
    result = runner.invoke(integrations_app, ["health", "--gateway", url])
    assert result.exit_code == 0, result.output
    assert "unavailable" in result.output
