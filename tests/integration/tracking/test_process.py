"""``python -m llmops_tracking`` as a real process: configuration, readiness, SIGTERM."""

from __future__ import annotations

import asyncio
import os
import sys
from contextlib import AbstractContextManager
from pathlib import Path
from subprocess import Popen

import pytest
import redis.asyncio as aioredis

from llmops_shared.events import ExperimentRunStatusUpdated, Stream
from llmops_shared.streams import Publisher

from integration.tracking.helpers import new_job_id, submitted, unreachable_uri
from support.mlflow_server import free_port
from support.streams import details_of, read_events, wait_until
from support.workers import module_process, readyz

pytestmark = pytest.mark.integration


def worker_process(tmp_path: Path, **env: str) -> AbstractContextManager[Popen[bytes]]:
    """The worker in its own process; SIGTERMed (and must exit 0) when the block ends."""
    return module_process(
        "llmops_tracking",
        cwd=tmp_path,  # no stray .env
        env={**os.environ, "LOG_JSON": "false", **env},
        log_path=tmp_path / "worker.log",
    )


async def test_builtin_worker_process_needs_no_mlflow(
    tmp_path: Path, redis_url: str, redis: aioredis.Redis, names: object
) -> None:
    namespace = f"test.{names.token}:"  # type: ignore[attr-defined]
    port = free_port()
    job_id = new_job_id()
    with worker_process(
        tmp_path,
        REDIS_URL=redis_url,
        STREAM_NAMESPACE=namespace,
        HEALTH_PORT=str(port),
        EXPERIMENT_TRACKING_ENABLED="false",
        MLFLOW_TRACKING_URI=unreachable_uri(),
    ):
        ready = await readyz(port)
        assert ready.status_code == 200, ready.text
        assert set(ready.json()["checks"]) == {"redis"}

        await Publisher(redis, namespace=namespace).publish(submitted(job_id))
        status_stream = f"{namespace}{Stream.STATUS}"

        async def reported() -> bool:
            return len(await read_events(redis, status_stream)) == 1

        await wait_until(reported, timeout_s=20)

    [event] = await read_events(redis, status_stream)
    status = event.payload_as(ExperimentRunStatusUpdated)
    assert status.entity_id == f"builtin-{job_id}"
    assert details_of(status)["backend"] == "builtin"


async def test_worker_is_not_ready_while_mlflow_is_unreachable(
    tmp_path: Path, redis_url: str, names: object
) -> None:
    port = free_port()
    with worker_process(
        tmp_path,
        REDIS_URL=redis_url,
        STREAM_NAMESPACE=f"test.{names.token}:",  # type: ignore[attr-defined]
        HEALTH_PORT=str(port),
        MLFLOW_TRACKING_URI=unreachable_uri(),
    ):
        not_ready = await readyz(port)

    assert not_ready.status_code == 503
    checks = not_ready.json()["checks"]
    assert checks["redis"]["ok"] is True
    assert checks["mlflow"]["ok"] is False
    assert "TrackingUnavailable" in checks["mlflow"]["error"]


async def test_an_unsupported_tracking_system_stops_the_worker_with_a_clear_message(
    tmp_path: Path,
) -> None:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "llmops_tracking",
        cwd=tmp_path,
        env={**os.environ, "EXPERIMENT_TRACKING_SYSTEM": "wandb"},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    _, stderr = await asyncio.wait_for(process.communicate(), timeout=30)

    assert process.returncode == 2
    assert "EXPERIMENT_TRACKING_SYSTEM='wandb' is not supported" in stderr.decode()
