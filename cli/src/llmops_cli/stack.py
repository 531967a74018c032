"""The local stack: every process of the platform on one machine, from one command.

``llmops up`` starts, each as its own process with its output prefixed by its name:

* Redis: ``REDIS_URL`` when set, else a private ``redis-server`` with AOF under the data dir;
* an MLflow server on SQLite (lean settings: one worker, no job execution) unless
  ``MLFLOW_TRACKING_URI`` is set or experiment tracking is disabled;
* the gateway and every worker service that is installed and runnable (``python -m
  llmops_<name>``); skeleton services without a ``__main__`` are skipped.

Training pipelines run on this machine (``WORKFLOW_BACKEND=local``, unless set): the workflow
worker runs each stage of the rendered pipeline with the trainer of this Python environment,
artifacts under ``<data dir>/artifacts``, so a submitted job trains, registers its model in the
stack's MLflow and the loop closes. ``MLFLOW_ARTIFACTS_DESTINATION`` tells the stages where the
stack's MLflow keeps artifacts, so a registered model's location is a path a server can read.

MLflow notifies the tracking worker of new model versions by webhook: the MLflow server it
starts may call http receivers on localhost (``MLFLOW_WEBHOOK_ALLOWED_SCHEMES=http,https``,
``MLFLOW_WEBHOOK_ALLOW_PRIVATE_IPS=true``) and encrypts the stored webhook secrets with a key kept
in ``<data dir>/mlflow/webhook-encryption-key`` (MLflow would otherwise pick a new key per start
and could no longer read them). The webhook secret is made once per data dir
(``<data dir>/webhook-secret``, mode 0600); the tracking worker gets it as
``MLFLOW_WEBHOOK_SECRET`` and registers ``MLFLOW_WEBHOOK_URL`` (its own health port) in MLflow.

It writes a fresh API key to ``<data dir>/api-key`` (the CLI reads it), waits until the gateway
answers ``/readyz``, and on Ctrl-C (or SIGTERM) stops everything in reverse order: SIGTERM, a
grace period, then SIGKILL. A process that dies once it was up is started again after a short,
growing wait, and the log says so; one that keeps dying (a crash loop, see
:mod:`llmops_cli.restarts`) stops the stack, named. A process that dies while the stack starts
stops it at once (a setting or a port is wrong: restarting would not help).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import importlib.util
import os
import secrets
import signal
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import httpx
from rich.console import Console
from rich.markup import escape

from llmops_cli.embedded_redis import EmbeddedRedis, free_port
from llmops_cli.restarts import RestartPolicy
from llmops_shared.config import redis_url_path

WORKERS = ("tracking", "serving", "workflow", "registry", "versioning", "github-sync")
_COLORS = ("cyan", "magenta", "green", "yellow", "blue", "red", "bright_cyan", "bright_magenta")
_GRACE_S = 15.0
_CHUNK = 64 * 1024


@dataclass
class StackOptions:
    """What ``llmops up`` was asked for; defaults are the embedded local setup."""

    data_dir: Path = Path(".llmops")
    gateway_port: int = 8000
    mlflow_port: int = 5000
    environ: Mapping[str, str] = field(default_factory=lambda: dict(os.environ))

    @property
    def tracking_enabled(self) -> bool:
        return self.environ.get("EXPERIMENT_TRACKING_ENABLED", "true").lower() not in {
            "0",
            "false",
            "no",
        }


@dataclass
class _Process:
    name: str
    process: asyncio.subprocess.Process
    pump: asyncio.Task[None]
    command: list[str]
    env: dict[str, str]
    color: str
    restarts: RestartPolicy = field(default_factory=RestartPolicy)
    restart_at: float | None = None
    """When a dead process is due to start again (monotonic); None while it runs."""


def runnable_services() -> list[str]:
    """The services installed with a ``__main__`` (the gateway first)."""
    found = []
    for name in ("gateway", *WORKERS):
        module = f"llmops_{name.replace('-', '_')}.__main__"
        try:
            if importlib.util.find_spec(module) is not None:
                found.append(name)
        except ModuleNotFoundError:
            continue
    return found


def api_key_path(data_dir: Path) -> Path:
    return data_dir / "api-key"


def webhook_secret_path(data_dir: Path) -> Path:
    return data_dir / "webhook-secret"


def webhook_encryption_key_path(data_dir: Path) -> Path:
    return data_dir / "mlflow" / "webhook-encryption-key"


def _private_value(path: Path, make: Callable[[], str]) -> str:
    """The value kept in ``path`` (mode 0600), made and written on first use."""
    if path.exists():
        value = path.read_text().strip()
        if value:
            return value
    value = make()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.touch(mode=0o600)
    path.chmod(0o600)
    path.write_text(value + "\n")
    return value


def new_fernet_key() -> str:
    """A key for ``MLFLOW_WEBHOOK_SECRET_ENCRYPTION_KEY`` (Fernet: urlsafe base64, 32 bytes)."""
    return base64.urlsafe_b64encode(secrets.token_bytes(32)).decode()


class Stack:
    """Start, watch and stop the local processes."""

    def __init__(self, options: StackOptions, console: Console | None = None) -> None:
        self.options = options
        self.console = console or Console()
        self._processes: list[_Process] = []
        self._redis: EmbeddedRedis | None = None
        self._mlflow_local = False
        self.env: dict[str, str] = dict(options.environ)

    async def run(self, stop: asyncio.Event) -> int:
        """Run until ``stop`` or a process dies; returns the exit code for the command."""
        try:
            await self._start_all()
            gateway = f"http://127.0.0.1:{self.options.gateway_port}"
            self.console.print(
                f"[bold green]ready[/bold green]: console {gateway}/console, API {gateway}/docs "
                f"(sign in with the API key in {api_key_path(self.options.data_dir)}; Ctrl-C "
                "stops everything)"
            )
            return await self._watch(stop)
        finally:
            await self._stop_all()

    # ------------------------------------------------------------------ start

    async def _start_all(self) -> None:
        data = self.options.data_dir.resolve()
        data.mkdir(parents=True, exist_ok=True)
        self._prepare_redis(data)
        self._prepare_api_key(data)
        services = runnable_services()
        if "tracking" in services and self.options.tracking_enabled:
            await self._start_mlflow(data)
        self.env.setdefault("DATABASE_URL", f"sqlite:///{data / 'gateway.db'}")
        self.env.setdefault("LLMOPS_DATA_DIR", str(data))
        self.env.setdefault("LOG_JSON", "false")  # a person reads these lines; services say JSON
        self.env.setdefault("WORKFLOW_BACKEND", "local")  # jobs train here, not only render
        for index, name in enumerate(services):
            env = {**self.env, "HEALTH_PORT": str(free_port())}
            if name == "gateway":
                env["PORT"] = str(self.options.gateway_port)
            if name == "tracking" and self.options.tracking_enabled:
                self._tracking_webhook_env(data, env)
            if name == "workflow" and not env.get("MLFLOW_TRACKING_URI"):
                env["MLFLOW_TRACKING_URI"] = ""  # no MLflow here: stages train untracked
            await self._spawn(name, [sys.executable, "-m", f"llmops_{name.replace('-', '_')}"],
                              env, _COLORS[index % len(_COLORS)])  # fmt: skip
        if "gateway" in services:
            await self._wait_http(f"http://127.0.0.1:{self.options.gateway_port}/readyz", "gateway")

    def _prepare_redis(self, data: Path) -> None:
        if self.env.get("REDIS_URL"):
            self.console.print("[dim]redis: using REDIS_URL[/dim]")
            return
        redis_dir = data / "redis"
        redis_dir.mkdir(exist_ok=True)
        self._redis = EmbeddedRedis(data_dir=redis_dir, appendonly=True, appendfsync="everysec")
        self._redis.start()
        self.env["REDIS_URL"] = self._redis.url
        redis_url_path(data).write_text(self._redis.url + "\n")  # for `llmops streams`
        self.console.print(
            f"[dim]redis: private redis-server on {self._redis.url} (data in {redis_dir})[/dim]"
        )

    def _prepare_api_key(self, data: Path) -> None:
        if self.env.get("API_KEYS"):
            return
        key = secrets.token_urlsafe(24)
        path = api_key_path(data)
        path.write_text(key + "\n")
        path.chmod(0o600)
        self.env["API_KEYS"] = key

    def _tracking_webhook_env(self, data: Path, env: dict[str, str]) -> None:
        """The webhook secret, and the receiver URL when MLflow is ours (a remote MLflow
        cannot reach 127.0.0.1: set ``MLFLOW_WEBHOOK_URL`` for it yourself)."""
        if not env.get("MLFLOW_WEBHOOK_SECRET"):
            path = webhook_secret_path(data)
            env["MLFLOW_WEBHOOK_SECRET"] = _private_value(path, lambda: secrets.token_urlsafe(32))
        if self._mlflow_local and not env.get("MLFLOW_WEBHOOK_URL"):
            env["MLFLOW_WEBHOOK_URL"] = f"http://127.0.0.1:{env['HEALTH_PORT']}/mlflow/webhook"

    async def _start_mlflow(self, data: Path) -> None:
        if self.env.get("MLFLOW_TRACKING_URI"):
            self.console.print("[dim]mlflow: using MLFLOW_TRACKING_URI[/dim]")
            return
        store = data / "mlflow"
        (store / "artifacts").mkdir(parents=True, exist_ok=True)
        port = self.options.mlflow_port
        command = [
            sys.executable, "-m", "mlflow", "server",
            "--host", "127.0.0.1", "--port", str(port), "--workers", "1",
            "--backend-store-uri", f"sqlite:///{store / 'mlflow.db'}",
            "--artifacts-destination", str(store / "artifacts"),
        ]  # fmt: skip
        env = {
            "MLFLOW_WEBHOOK_ALLOWED_SCHEMES": "http,https",
            "MLFLOW_WEBHOOK_ALLOW_PRIVATE_IPS": "true",
            "MLFLOW_WEBHOOK_CACHE_TTL": "5",  # MLflow's 60 s would delay a new webhook
            **self.env,
            "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false",
        }
        if not env.get("MLFLOW_WEBHOOK_SECRET_ENCRYPTION_KEY"):
            env["MLFLOW_WEBHOOK_SECRET_ENCRYPTION_KEY"] = _private_value(
                webhook_encryption_key_path(data), new_fernet_key
            )
        self._mlflow_local = True
        await self._spawn("mlflow", command, env, "white")
        uri = f"http://127.0.0.1:{port}"
        await self._wait_http(f"{uri}/health", "mlflow", timeout_s=120)
        self.env["MLFLOW_TRACKING_URI"] = uri
        self.env.setdefault("MLFLOW_ARTIFACTS_DESTINATION", str(store / "artifacts"))

    async def _spawn(self, name: str, command: list[str], env: dict[str, str], color: str) -> None:
        process, pump = await self._launch(name, command, env, color)
        self._processes.append(_Process(name, process, pump, command, env, color))

    async def _launch(
        self, name: str, command: list[str], env: dict[str, str], color: str
    ) -> tuple[asyncio.subprocess.Process, asyncio.Task[None]]:
        process = await asyncio.create_subprocess_exec(
            *command,
            env=env,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
            start_new_session=True,  # Ctrl-C reaches us only; we stop children in order
        )
        assert process.stdout is not None
        return process, asyncio.create_task(self._pump(name, process.stdout, color))

    async def _pump(self, name: str, stream: asyncio.StreamReader, color: str) -> None:
        """Copy a child's output line by line with its prefix; never stops before EOF.

        Reads chunks rather than ``readline`` so a huge line (a long traceback, a JSON log
        with a big payload) is printed in pieces instead of killing the pump and, with it,
        blocking the child on a full pipe.
        """
        prefix = f"[{color}]{name:>11} |[/{color}] "
        pending = b""
        while chunk := await stream.read(_CHUNK):
            pending += chunk
            *lines, pending = pending.split(b"\n")
            if len(pending) > _CHUNK:
                lines, pending = [*lines, pending], b""
            for line in lines:
                self._print_line(prefix, line)
        if pending:
            self._print_line(prefix, pending)

    def _print_line(self, prefix: str, line: bytes) -> None:
        text = escape(line.decode(errors="replace").rstrip())
        self.console.print(prefix + text, highlight=False, soft_wrap=True)  # the terminal wraps

    async def _wait_http(self, url: str, name: str, timeout_s: float = 60.0) -> None:
        deadline = time.monotonic() + timeout_s
        async with httpx.AsyncClient(timeout=2.0) as client:
            while time.monotonic() < deadline:
                self._raise_if_any_died()
                try:
                    if (await client.get(url)).status_code == 200:
                        return
                except httpx.HTTPError:
                    pass
                await asyncio.sleep(0.25)
        raise StackError(f"{name} did not become ready at {url} within {timeout_s:.0f}s")

    # ------------------------------------------------------------------ watch and stop

    async def _watch(self, stop: asyncio.Event, tick_s: float = 0.5) -> int:
        """Until ``stop``: restart what died (see the module); 1 when a process crash-loops."""
        while not stop.is_set():
            now = time.monotonic()
            for entry in self._processes:
                if entry.process.returncode is None:
                    continue
                if entry.restart_at is None and not self._judge(entry, now):
                    return 1
                if entry.restart_at is not None and now >= entry.restart_at:
                    await self._restart(entry)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=tick_s)
        return 0

    def _judge(self, entry: _Process, now: float) -> bool:
        """A process found dead: schedule its restart (True), or say it crash-loops (False)."""
        code = entry.process.returncode
        verdict = entry.restarts.exited(now)
        if not verdict.restart:
            self.console.print(
                f"[bold red]{entry.name} keeps exiting ({verdict.recent_exits} times in "
                f"{entry.restarts.window_s:.0f}s, last with code {code}): a crash loop; "
                "stopping the stack[/bold red]"
            )
            return False
        entry.restart_at = now + verdict.delay_s
        self.console.print(
            f"[bold yellow]{entry.name} exited with code {code}; restarting it in "
            f"{verdict.delay_s:.0f}s (exit {verdict.recent_exits} of at most "
            f"{entry.restarts.crash_loop_exits - 1} in {entry.restarts.window_s:.0f}s)"
            "[/bold yellow]"
        )
        return True

    async def _restart(self, entry: _Process) -> None:
        with contextlib.suppress(TimeoutError):  # the old output is drained (EOF) first
            await asyncio.wait_for(asyncio.shield(entry.pump), timeout=2)
        if not entry.pump.done():  # a grandchild still holds the old pipe open
            entry.pump.cancel()
        entry.process, entry.pump = await self._launch(
            entry.name, entry.command, entry.env, entry.color
        )
        entry.restart_at = None
        self.console.print(
            f"[bold green]{entry.name} restarted[/bold green] (pid {entry.process.pid})"
        )

    def _dead(self) -> _Process | None:
        return next((p for p in self._processes if p.process.returncode is not None), None)

    def _raise_if_any_died(self) -> None:
        died = self._dead()
        if died:
            raise StackError(f"{died.name} exited with code {died.process.returncode} at start")

    async def _stop_all(self) -> None:
        for entry in reversed(self._processes):  # workers first, MLflow last
            if entry.process.returncode is None:
                _signal_group(entry.process, signal.SIGTERM)
        for entry in reversed(self._processes):
            try:
                await asyncio.wait_for(entry.process.wait(), timeout=_GRACE_S)
            except TimeoutError:
                self.console.print(f"[red]{entry.name} ignored SIGTERM; killing it[/red]")
                _signal_group(entry.process, signal.SIGKILL)  # its children too (MLflow's)
                await entry.process.wait()
            try:
                await asyncio.wait_for(entry.pump, timeout=5)
            except TimeoutError:  # a grandchild still holds the pipe open
                entry.pump.cancel()
        if self._redis is not None:
            self._redis.close()  # its data dir is ours (under the data dir): kept
        self.console.print("[dim]stack stopped[/dim]")


def _signal_group(process: asyncio.subprocess.Process, sig: signal.Signals) -> None:
    """Signal the child's whole process group (each child leads its own session)."""
    with contextlib.suppress(ProcessLookupError):  # it is gone already
        os.killpg(process.pid, sig)


class StackError(RuntimeError):
    """A process of the stack failed to start."""
