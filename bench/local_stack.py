"""Start the real local stack (``llmops up``) for a benchmark, and stop it.

Shared by the benchmarks that measure the platform end to end; each runs it in a temporary
directory with a private Redis, so nothing outside that directory is touched.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

from llmops_cli.embedded_redis import free_port


@dataclass(frozen=True)
class Stack:
    process: subprocess.Popen[bytes]
    gateway_url: str
    mlflow_url: str
    data_dir: Path


def start_stack(
    data_dir: Path, redis_url: str, extra_env: Mapping[str, str] | None = None
) -> tuple[subprocess.Popen[bytes], str]:
    """``llmops up`` in ``data_dir`` on ``redis_url``; (the process, the gateway URL) once the
    gateway answers ``/readyz``."""
    stack = _start(data_dir, redis_url, extra_env or {})
    return stack.process, stack.gateway_url


@contextmanager
def running_stack(
    data_dir: Path, redis_url: str, extra_env: Mapping[str, str] | None = None
) -> Iterator[Stack]:
    """The stack until the block ends, then Ctrl-C (and wait for it)."""
    stack = _start(data_dir, redis_url, extra_env or {})
    try:
        yield stack
    finally:
        stack.process.send_signal(signal.SIGINT)
        stack.process.wait(timeout=60)


def _start(data_dir: Path, redis_url: str, extra_env: Mapping[str, str]) -> Stack:
    port, mlflow_port = free_port(), free_port()
    env = {**os.environ, "REDIS_URL": redis_url, "LOG_LEVEL": "WARNING", **extra_env}
    env.pop("DATABASE_URL", None)
    env.pop("MLFLOW_TRACKING_URI", None)
    log = (data_dir / "stack.log").open("wb")
    process = subprocess.Popen(
        [sys.executable, "-m", "llmops_cli", "up", "--data-dir", str(data_dir),
         "--gateway-port", str(port), "--mlflow-port", str(mlflow_port)],
        env=env, stdout=log, stderr=subprocess.STDOUT,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"llmops up exited: see {data_dir / 'stack.log'}")
        try:
            if httpx.get(f"{url}/readyz", timeout=2).status_code == 200:
                return Stack(process, url, f"http://127.0.0.1:{mlflow_port}", data_dir)
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    process.kill()
    raise SystemExit("the stack did not become ready in 180 s")
