"""Run a worker for a test: in process (its ``serve``) or as ``python -m <package>``.

Every worker exposes ``serve(settings, stop=...)`` and a ``__main__`` that ends on SIGTERM; the
tests drive both the same way, so the start/stop (and the check that the worker stopped cleanly
instead of hanging or crashing) is written once here.
"""

from __future__ import annotations

import asyncio
import signal
import subprocess
import sys
from collections.abc import AsyncIterator, Callable, Coroutine, Iterator, Mapping
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path
from typing import Any

import httpx

from support.streams import wait_until


@asynccontextmanager
async def in_process(
    serve: Callable[[asyncio.Event], Coroutine[Any, Any, None]], *, stop_timeout_s: float = 10.0
) -> AsyncIterator[None]:
    """``serve(stop)`` as a task until the block ends; then ``stop`` is set and the worker must
    return within ``stop_timeout_s`` (its exception, if it crashed, is raised here)."""
    stop = asyncio.Event()
    task = asyncio.create_task(serve(stop))
    try:
        yield
    finally:
        stop.set()
        await asyncio.wait_for(task, timeout=stop_timeout_s)


@contextmanager
def module_process(
    module: str, *, cwd: Path, env: Mapping[str, str], log_path: Path
) -> Iterator[subprocess.Popen[bytes]]:
    """``python -m <module>`` in ``cwd`` with exactly ``env``, stdout and stderr to ``log_path``.

    When the block ends the process gets SIGTERM (unless it already exited) and must exit 0
    within 20 s, else the test fails with its log: a worker that does not drain on SIGTERM is a
    bug the process tests exist to catch.
    """
    log = log_path.open("wb")
    process = subprocess.Popen(
        [sys.executable, "-m", module],
        cwd=cwd,
        env=dict(env),
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        yield process
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
        try:
            code = process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
            raise
        finally:
            log.close()
    assert code == 0, log_path.read_text()


async def readyz(port: int, *, timeout_s: float = 20.0) -> httpx.Response:
    """``/readyz`` of the worker's health server on ``port``, once it answers at all."""
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as client:
        response: httpx.Response | None = None

        async def answered() -> bool:
            nonlocal response
            try:
                response = await client.get("/readyz")
            except httpx.TransportError:
                return False
            return True

        await wait_until(answered, timeout_s=timeout_s, interval_s=0.1)
        assert response is not None
        return response
