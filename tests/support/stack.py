"""Run the real local stack (`llmops up`) from tests: start, wait until ready, Ctrl-C."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import httpx
import redis as redis_sync
import yaml

from llmops_cli.client import GatewayClient
from llmops_cli.embedded_redis import free_port

EXAMPLE = Path(__file__).parents[2] / "examples" / "sft-train-job.yaml"
BASE_MODEL = {
    "name": "llama-3-8b-pretrain-v1",
    "family": "llama",
    "max_position_embeddings": 8192,
}
DATASET_NAME = "enterprise-instruction"
DATASET_VERSION = "v1.0.0"
"""The dataset version examples/sft-train-job.yaml trains on."""
T = TypeVar("T")


def example_body() -> dict[str, Any]:
    """A fresh copy of examples/sft-train-job.yaml (the seed's SFT job) to send or change."""
    body: dict[str, Any] = yaml.safe_load(EXAMPLE.read_text())
    return body


@dataclass
class RunningStack:
    process: subprocess.Popen[bytes]
    log: Path
    gateway_url: str
    mlflow_url: str
    api_key: str
    namespace: str
    redis: redis_sync.Redis
    data_dir: Path

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


@contextmanager
def local_stack(redis_url: str, data_dir: Path, **extra_env: str) -> Iterator[RunningStack]:
    """Run `llmops up` as a real process until the block ends (then Ctrl-C it)."""
    log = data_dir / "stack.log"
    gateway_port, mlflow_port = free_port(), free_port()
    namespace = f"e2e.{uuid.uuid4().hex[:8]}:"
    env = {
        **os.environ,
        "REDIS_URL": redis_url,
        "STREAM_NAMESPACE": namespace,
        "COLUMNS": "200",
        "CONSUMER__CLAIM_IDLE_MS": "2000",
        **extra_env,
    }
    env.pop("DATABASE_URL", None)  # the stack's own SQLite
    env.pop("MLFLOW_TRACKING_URI", None)  # the stack's own MLflow server
    with log.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "llmops_cli", "up", "--data-dir", str(data_dir),
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
            data_dir=data_dir,
        )
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGINT)
            try:
                process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                process.kill()


def write_dataset_files(root: Path, records: int = 3) -> Path:
    """A small sft_pair dataset (two JSONL files) under ``root``."""
    root.mkdir(parents=True, exist_ok=True)
    for split, count in (("train", records), ("valid", 1)):
        lines = [f'{{"prompt": "question {i}", "completion": "answer {i}"}}' for i in range(count)]
        (root / f"{split}.jsonl").write_text("\n".join(lines) + "\n")
    return root


def ensure_dataset_version(
    client: GatewayClient, data_dir: Path, *, timeout_s: float = 120
) -> dict[str, Any]:
    """Register the example's dataset and version it as DATASET_VERSION (through the
    versioning worker); the Succeeded version."""
    source = write_dataset_files(data_dir / "datasets" / DATASET_NAME)
    dataset = client.create_dataset(
        {"name": DATASET_NAME, "type": "sft_pair", "storageUri": str(source)}
    )
    version = client.create_dataset_version(dataset["id"], DATASET_VERSION)

    def settled() -> dict[str, Any] | None:
        current = client.dataset_version(dataset["id"], version["id"])
        assert current["status"] != "Failed", current["reason"]
        return current if current["status"] == "Succeeded" else None

    return eventually(settled, timeout_s=timeout_s, what="the dataset version")
