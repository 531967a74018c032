"""A real MLflow tracking server for tests: SQLite store and artifacts in a directory of ours.

MLflow is real in tests, always (ARCHITECTURE.md). The server runs the venv's own mlflow with
the lean settings measured on this machine (one worker, no job execution: ~250 MiB instead of
~3 GiB). It can be stopped and started again on the same port and store, which is how the
tracking tests simulate an outage::

    with MlflowServer(tmp_path) as server:
        client = MlflowClient(server.url)
        server.stop()      # MLflow is down
        server.start()     # back, with the same data

Starting takes ~10 s the first time (schema migrations) and ~6 s afterwards, so test suites
share one server per session (see tests/integration/tracking/conftest.py).

``MlflowServer(root, webhooks=True)`` lets the server deliver webhooks to http receivers on
localhost (:func:`webhook_env`), with a webhook-secret encryption key fixed for the instance
(MLflow otherwise makes a new one per process, and a restarted server cannot read the secrets
it stored) and a webhook-list cache of ``webhook_cache_ttl_s`` (default 0: none; MLflow's
60 s would hide a webhook a test registers from events it fires a moment later).
"""

from __future__ import annotations

import base64
import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Mapping
from pathlib import Path
from types import TracebackType
from typing import IO, Self

LEAN_ENV = {"MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"}
"""Environment of the server process, on top of ours: no background job runner."""


def new_webhook_encryption_key() -> str:
    """A key for ``MLFLOW_WEBHOOK_SECRET_ENCRYPTION_KEY`` (Fernet: urlsafe base64 of 32 bytes)."""
    return base64.urlsafe_b64encode(os.urandom(32)).decode()


def webhook_env(encryption_key: str, *, cache_ttl_s: int | None = None) -> dict[str, str]:
    """Server environment that allows webhooks to http receivers on private addresses."""
    env = {
        "MLFLOW_WEBHOOK_ALLOWED_SCHEMES": "http,https",
        "MLFLOW_WEBHOOK_ALLOW_PRIVATE_IPS": "true",
        "MLFLOW_WEBHOOK_SECRET_ENCRYPTION_KEY": encryption_key,
    }
    if cache_ttl_s is not None:
        env["MLFLOW_WEBHOOK_CACHE_TTL"] = str(cache_ttl_s)
    return env


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


class MlflowServerError(RuntimeError):
    """The server did not start (or stop); the message ends with its log."""


class MlflowServer:
    """``mlflow server`` on a free port with ``root/mlflow.db`` and ``root/artifacts``."""

    def __init__(
        self,
        root: Path,
        *,
        host: str = "127.0.0.1",
        port: int | None = None,
        startup_timeout_s: float = 60.0,
        stop_timeout_s: float = 10.0,
        python: str = sys.executable,
        webhooks: bool = False,
        webhook_cache_ttl_s: int = 0,
        env: Mapping[str, str] | None = None,
    ) -> None:
        self.root = Path(root)
        self.host = host
        self.port = port or free_port(host)
        self.startup_timeout_s = startup_timeout_s
        self.stop_timeout_s = stop_timeout_s
        self.python = python
        self.log_path = self.root / "mlflow-server.log"
        self.env = {**LEAN_ENV, **(env or {})}
        if webhooks:
            self.env = {
                **webhook_env(new_webhook_encryption_key(), cache_ttl_s=webhook_cache_ttl_s),
                **self.env,
            }
        self._process: subprocess.Popen[bytes] | None = None
        self._log_file: IO[bytes] | None = None

    @property
    def url(self) -> str:
        """The tracking URI (and UI address) of the server."""
        return f"http://{self.host}:{self.port}"

    @property
    def backend_store_uri(self) -> str:
        return f"sqlite:///{self.root / 'mlflow.db'}"

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def command(self) -> list[str]:
        """The server command line (the venv's mlflow, one worker, served artifacts)."""
        return [
            self.python,
            "-m",
            "mlflow",
            "server",
            "--backend-store-uri",
            self.backend_store_uri,
            "--artifacts-destination",
            str(self.root / "artifacts"),
            "--host",
            self.host,
            "--port",
            str(self.port),
            "--workers",
            "1",
        ]

    def start(self) -> Self:
        """Start the server and wait until ``/health`` answers; raise with its log if not."""
        if self.running:
            return self
        self.root.mkdir(parents=True, exist_ok=True)
        self._log_file = self.log_path.open("ab")
        self._process = subprocess.Popen(
            self.command(),
            cwd=self.root,
            env={**os.environ, **self.env},
            stdin=subprocess.DEVNULL,
            stdout=self._log_file,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group: stop() reaches uvicorn's worker too
        )
        try:
            self._wait_healthy()
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        """SIGTERM the server's process group, SIGKILL it if it has not exited in time."""
        process, self._process = self._process, None
        if process is not None:
            if process.poll() is None:
                self._signal_group(process, signal.SIGTERM)
                try:
                    process.wait(timeout=self.stop_timeout_s)
                except subprocess.TimeoutExpired:
                    self._signal_group(process, signal.SIGKILL)
                    process.wait(timeout=self.stop_timeout_s)
            # uvicorn's worker may outlive its parent for a moment; make sure the group is gone
            self._signal_group(process, signal.SIGKILL)
            self._wait_port_closed()
        if self._log_file is not None:
            self._log_file.close()
            self._log_file = None

    def restart(self) -> Self:
        """Stop and start again on the same port and store."""
        self.stop()
        return self.start()

    def healthy(self, timeout_s: float = 2.0) -> bool:
        """Whether ``GET /health`` answers 200 now."""
        try:
            with urllib.request.urlopen(f"{self.url}/health", timeout=timeout_s) as response:
                return bool(response.status == 200)
        except (urllib.error.URLError, OSError):
            return False

    def log_tail(self, lines: int = 40) -> str:
        """The last lines the server wrote, for failure messages."""
        if not self.log_path.exists():
            return "(no log)"
        text = self.log_path.read_text(errors="replace").splitlines()
        return "\n".join(text[-lines:])

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def _wait_healthy(self) -> None:
        deadline = time.monotonic() + self.startup_timeout_s
        while time.monotonic() < deadline:
            assert self._process is not None
            code = self._process.poll()
            if code is not None:
                raise MlflowServerError(
                    f"mlflow server exited with code {code} before answering /health "
                    f"({' '.join(self.command())}); log tail:\n{self.log_tail()}"
                )
            if self.healthy(timeout_s=1.0):
                return
            time.sleep(0.2)
        raise MlflowServerError(
            f"mlflow server on {self.url} did not answer /health within "
            f"{self.startup_timeout_s:.0f}s; log tail:\n{self.log_tail()}"
        )

    def _wait_port_closed(self, timeout_s: float = 5.0) -> None:
        """So that a restart on the same port does not race the old listener."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
                sock.settimeout(0.2)
                if sock.connect_ex((self.host, self.port)) != 0:
                    return
            time.sleep(0.05)

    @staticmethod
    def _signal_group(process: subprocess.Popen[bytes], sig: signal.Signals) -> None:
        with contextlib.suppress(ProcessLookupError):  # the group has already exited
            os.killpg(process.pid, sig)
