"""End to end: `llmops up` runs the real processes; a job sent over REST becomes an MLflow run.

Real Redis (the test session's, under a private stream namespace), a real MLflow server on
SQLite started by the stack, the gateway and the tracking worker as separate processes.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest
import redis as redis_sync
import yaml
from mlflow.tracking import MlflowClient

from llmops_shared.client import GatewayClient, GatewayError
from llmops_shared.embedded_redis import free_port
from llmops_shared.events import DeadLetterEntry, Stream

pytestmark = pytest.mark.e2e

EXAMPLE = Path(__file__).parents[2] / "examples" / "sft-train-job.yaml"
BASE_MODEL = {
    "name": "llama-3-8b-pretrain-v1",
    "family": "llama",
    "max_position_embeddings": 8192,
}
T = TypeVar("T")


@dataclass
class RunningStack:
    process: subprocess.Popen[bytes]
    log: Path
    gateway_url: str
    mlflow_url: str
    api_key: str
    namespace: str
    redis: redis_sync.Redis

    def client(self) -> GatewayClient:
        return GatewayClient(self.gateway_url, api_key=self.api_key)

    def log_text(self) -> str:
        return self.log.read_text(errors="replace")


def eventually(probe: Callable[[], T | None], *, timeout_s: float = 60, what: str = "") -> T:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        result = probe()
        if result:
            return result
        time.sleep(0.25)
    raise AssertionError(f"{what or 'condition'} not met within {timeout_s}s")


@pytest.fixture(scope="module")
def stack(redis_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningStack]:
    data_dir = tmp_path_factory.mktemp("stack")
    log = data_dir / "stack.log"
    gateway_port, mlflow_port = free_port(), free_port()
    namespace = f"e2e.{uuid.uuid4().hex[:8]}:"
    env = {
        **os.environ,
        "REDIS_URL": redis_url,
        "STREAM_NAMESPACE": namespace,
        "COLUMNS": "200",
        "CONSUMER__CLAIM_IDLE_MS": "2000",
    }
    env.pop("DATABASE_URL", None)  # the stack's own SQLite
    env.pop("MLFLOW_TRACKING_URI", None)  # the stack's own MLflow server
    with log.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "llmops_shared.cli", "up", "--data-dir", str(data_dir),
             "--gateway-port", str(gateway_port), "--mlflow-port", str(mlflow_port)],
            env=env, stdout=out, stderr=subprocess.STDOUT,
        )  # fmt: skip
    gateway_url = f"http://127.0.0.1:{gateway_port}"

    def ready() -> bool:
        assert process.poll() is None, f"llmops up exited:\n{log.read_text()[-4000:]}"
        try:
            return httpx.get(f"{gateway_url}/readyz", timeout=2).status_code == 200
        except httpx.HTTPError:
            return False

    try:
        eventually(ready, timeout_s=180, what="the stack to be ready")
        yield RunningStack(
            process=process,
            log=log,
            gateway_url=gateway_url,
            mlflow_url=f"http://127.0.0.1:{mlflow_port}",
            api_key=(data_dir / "api-key").read_text().strip(),
            namespace=namespace,
            redis=redis_sync.Redis.from_url(redis_url),
        )
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGINT)
            try:
                process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                process.kill()


@pytest.fixture(scope="module")
def base_model(stack: RunningStack) -> dict[str, Any]:
    with stack.client() as client:
        return client.add_model(BASE_MODEL)


def example_body() -> dict[str, Any]:
    body: dict[str, Any] = yaml.safe_load(EXAMPLE.read_text())
    return body


@pytest.mark.usefixtures("base_model")
def test_a_submitted_job_becomes_an_mlflow_run_with_flattened_params(stack: RunningStack) -> None:
    with stack.client() as client:
        job = client.submit_training_job(example_body())
        assert job["status"] == "Pending"
        run = eventually(lambda: client.experiment_run(job["id"]), timeout_s=30, what="the run")

    assert run["backend"] == "mlflow"
    assert run["trackingUrl"].startswith(stack.mlflow_url)
    mlflow_run = MlflowClient(tracking_uri=stack.mlflow_url).get_run(run["runId"])
    assert mlflow_run.data.params["hyperparams.lr"] == "0.0001"
    assert mlflow_run.data.params["hyperparams.max_seq_len"] == "4096"
    assert mlflow_run.data.params["dataset_ref.name"] == "enterprise-instruction"
    assert mlflow_run.data.tags["llmops.job_id"] == job["id"]
    assert run["params"]["method"] == "lora"


@pytest.mark.usefixtures("base_model")
def test_cancel_kills_the_run(stack: RunningStack) -> None:
    with stack.client() as client:
        job = client.submit_training_job(example_body())
        run = eventually(lambda: client.experiment_run(job["id"]), timeout_s=30, what="the run")
        client.cancel_training_job(job["id"])

        def killed() -> bool:
            status = MlflowClient(tracking_uri=stack.mlflow_url).get_run(run["runId"]).info.status
            return status == "KILLED"

        eventually(killed, timeout_s=30, what="the MLflow run KILLED")
        reported = eventually(
            lambda: (r := client.experiment_run(job["id"])) and r["status"] == "Cancelled" and r,
            timeout_s=30,
            what="the cancelled status in the gateway",
        )
    assert reported["runId"] == run["runId"]


@pytest.mark.usefixtures("base_model")
def test_a_too_long_sequence_is_refused_with_the_seed_message(stack: RunningStack) -> None:
    body = example_body()
    body["trainJobSpec"]["hyperparams"]["max_seq_len"] = 16384
    with stack.client() as client, pytest.raises(GatewayError) as refused:
        client.submit_training_job(body)
    assert refused.value.status_code == 422
    assert any(
        "SFT max_seq_len must be <= base_model.max_position_embeddings" in line
        for line in refused.value.messages()
    )


@pytest.mark.usefixtures("base_model")
def test_a_bad_event_on_the_stream_is_dead_lettered_and_tracking_keeps_serving(
    stack: RunningStack,
) -> None:
    stream = f"{stack.namespace}{Stream.TRAINING}"
    stack.redis.xadd(stream, {"event": '{"specversion": "1.0", "type": "nope"}'})

    def dead_letter() -> DeadLetterEntry | None:
        for _, fields in stack.redis.xrange(f"{stream}.dlq"):
            letter = DeadLetterEntry.from_fields(fields)
            if letter.group == "tracking":
                return letter
        return None

    letter = eventually(dead_letter, timeout_s=30, what="a dead letter from tracking")
    assert "invalid envelope" in letter.reason
    with stack.client() as client:
        job = client.submit_training_job(example_body())
        eventually(lambda: client.experiment_run(job["id"]), timeout_s=30, what="the next run")


def test_ctrl_c_stops_every_process(stack: RunningStack) -> None:
    stack.process.send_signal(signal.SIGINT)
    assert stack.process.wait(timeout=60) == 0
    log = stack.log_text()
    assert "stack stopped" in log
    for name in ("gateway", "tracking", "mlflow"):
        assert f"{name} |" in log, f"no output from {name}"
    with pytest.raises(httpx.HTTPError):
        httpx.get(f"{stack.gateway_url}/healthz", timeout=2)
