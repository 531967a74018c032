"""``llmops models add ... --storage-uri``: the command as an operator runs it, over HTTP
against the gateway under test (served by uvicorn on a free local port), on both databases."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
import uvicorn
from typer.testing import CliRunner

from llmops_cli.app import app as cli_app

from integration.gateway.harness import API, API_KEY, Gateway

pytestmark = pytest.mark.integration


@contextmanager
def served(gateway: Gateway) -> Iterator[str]:
    """The gateway's app over real HTTP (its lifespan already runs in the test); the URL."""
    config = uvicorn.Config(
        gateway.app, host="127.0.0.1", port=0, lifespan="off", log_level="warning"
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.01)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)


def add(url: str, *args: str) -> tuple[int, str]:
    result = CliRunner().invoke(
        cli_app,
        ["models", "add", "llama-3-8b-pretrain-v1", "--family", "llama",
         "--max-position-embeddings", "8192", *args, "--gateway", url, "--api-key", API_KEY],
        env={"COLUMNS": "200"},
    )  # fmt: skip
    return result.exit_code, result.output


async def test_models_add_records_the_storage_uri(gateway: Gateway) -> None:
    uri = "s3://llm-models/llama-3-8b-pretrain-v1"
    with served(gateway) as url:
        code, output = add(url, "--storage-uri", uri)
        assert code == 0, output
        refused_code, refused_output = add(url, "--storage-uri", "s3://bucket/a b")
    assert "registered" in output
    [model] = (await gateway.client.get(f"{API}/catalog/models")).json()["items"]
    assert (model["name"], model["storageUri"]) == ("llama-3-8b-pretrain-v1", uri)
    assert refused_code == 1, refused_output
    assert "storage_uri: String should match pattern" in refused_output  # as it was sent
    assert gateway.count("catalog_models") == 1


async def test_models_add_without_a_storage_uri_records_none(gateway: Gateway) -> None:
    with served(gateway) as url:
        code, output = add(url)
    assert code == 0, output
    [model] = (await gateway.client.get(f"{API}/catalog/models")).json()["items"]
    assert model["storageUri"] is None
