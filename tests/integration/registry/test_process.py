"""``python -m llmops_registry`` as a real process: ready while the Hub is down, a gated import
with ``HF_TOKEN``, the token in no log line, SIGTERM."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest
import redis.asyncio as aioredis

from llmops_shared.events import ModelStatusUpdated, Phase, Stream
from llmops_shared.streams import Publisher

from integration.registry.helpers import (
    TOKEN_VALUE,
    import_requested,
    model_facts,
    new_model_id,
    tiny_llama,
)
from support.hf_hub_server import HubServer
from support.mlflow_server import free_port
from support.streams import read_events, wait_until
from support.workers import module_process

pytestmark = pytest.mark.integration


@contextmanager
def worker_process(tmp_path: Path, **env: str) -> Iterator[Path]:
    """The worker in its own process, without the machine's Hub token and cache; its log."""
    hub_variables = {
        "HF_TOKEN",
        "HUGGINGFACE_HUB_TOKEN",
        "HF_HUB_CACHE",
        "HUGGINGFACE_HUB_CACHE_DIR",
    }
    inherited = {k: v for k, v in os.environ.items() if k.upper() not in hub_variables}
    log_path = tmp_path / "worker.log"
    with module_process(
        "llmops_registry",
        cwd=tmp_path,  # no stray .env; relative default dirs land in tmp_path
        env={**inherited, "LOG_JSON": "true", **env},
        log_path=log_path,
    ):
        yield log_path


async def test_worker_process_imports_a_gated_model_with_the_token(
    tmp_path: Path, redis_url: str, redis: aioredis.Redis, names: object, hub: HubServer
) -> None:
    namespace = f"test.{names.token}:"  # type: ignore[attr-defined]
    port = free_port()
    sha = hub.add_repo("meta/gated-llama", tiny_llama(), gated=True)
    hub.set_down(True)
    model_id = new_model_id()
    env = {
        "REDIS_URL": redis_url,
        "STREAM_NAMESPACE": namespace,
        "HEALTH_PORT": str(port),
        "HF_ENDPOINT": hub.url,
        "HF_TOKEN": TOKEN_VALUE,
        "HUB_RETRY_WAIT_S": "0.01",
        "HF_HUB_OFFLINE": "false",
    }
    with worker_process(tmp_path, **env) as log_path:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as client:

            async def ready() -> bool:
                try:
                    return (await client.get("/readyz")).status_code == 200
                except httpx.TransportError:
                    return False

            await wait_until(ready, timeout_s=20, interval_s=0.1)  # ready with the Hub down
        hub.set_down(False)
        await Publisher(redis, namespace=namespace).publish(
            import_requested("meta/gated-llama", model_id=model_id, download=True)
        )
        status_stream = f"{namespace}{Stream.STATUS}"

        async def succeeded() -> bool:
            events = await read_events(redis, status_stream)
            return any(
                e.payload_as(ModelStatusUpdated).phase is Phase.SUCCEEDED
                and e.payload_as(ModelStatusUpdated).entity_id == model_id
                for e in events
            )

        await wait_until(succeeded, timeout_s=20)

    final = (await read_events(redis, status_stream))[-1].payload_as(ModelStatusUpdated)
    facts = model_facts(final)
    assert (facts.revision, facts.gated) == (sha, True)
    snapshot = tmp_path / ".llmops" / "models" / "meta--gated-llama" / sha
    assert facts.snapshot_uri == snapshot.resolve().as_uri()
    log = log_path.read_text()
    assert '"token_configured": true' in log
    assert "hub_unreachable" in log or "hub_reachable" in log
    assert TOKEN_VALUE not in log
