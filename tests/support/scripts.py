"""Running the gateway's operator scripts (``llmops migrate ...``, ``llmops rollback ...``) in a
test, next to a running gateway and running workers.

A command runs through typer's ``CliRunner``, in a thread, so the event loop keeps serving the
gateway and the workers meanwhile; its settings come from ``env``, as an operator's shell gives
them. Import :func:`logs_on_stderr` into the test module: it is an autouse fixture.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import httpx
import pytest
import structlog
from click.testing import Result
from typer.testing import CliRunner

from llmops_gateway.api.schemas.common import API_PREFIX
from llmops_gateway.scripts.cli import app as scripts_app
from llmops_shared.logging import configure_logging


@pytest.fixture(autouse=True)
def logs_on_stderr() -> Iterator[None]:
    """Worker logs go to stderr, never into the command's stdout while ``CliRunner`` swaps
    ``sys.stdout`` (structlog's default prints to whatever stdout is at the time)."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    configure_logging(service="tests", level="WARNING", json=False)
    yield
    root.handlers[:] = handlers
    root.setLevel(level)
    structlog.reset_defaults()
    structlog.contextvars.clear_contextvars()


def script_env(database_url: str, redis_url: str, namespace: str, **extra: str) -> dict[str, str]:
    """The environment of a command run beside the gateway under test: its database, Redis and
    stream namespace, in ``dev``; ``extra`` on top."""
    return {
        "DATABASE_URL": database_url,
        "REDIS_URL": redis_url,
        "STREAM_NAMESPACE": namespace,
        "ENVIRONMENT": "dev",
        **extra,
    }


async def run_script(
    args: Sequence[str], env: Mapping[str, str], *, input: str | None = None
) -> Result:
    """A command of the scripts' app, in a thread: the gateway and the workers keep running
    meanwhile. ``input`` answers its prompts."""

    def invoke() -> Result:
        return CliRunner().invoke(
            scripts_app, list(args), env=env, input=input, catch_exceptions=False
        )

    return await asyncio.to_thread(invoke)


def json_document(result: Result, code: int = 0) -> dict[str, Any]:
    """The ``--json`` document a command printed, once it exited ``code``."""
    assert result.exit_code == code, result.output
    document: dict[str, Any] = json.loads(result.stdout)
    return document


async def set_flag(
    client: httpx.AsyncClient, area: str, enabled: bool, *, headers: Mapping[str, str]
) -> None:
    """Turn ``area``'s flag in ``dev`` on or off as an operator does (``PUT
    /integrations/configs``): the running workers of the area switch backend by themselves."""
    response = await client.put(
        f"{API_PREFIX}/integrations/configs/dev/{area}",
        json={"enabled": enabled, "reason": "migration test"},
        headers=dict(headers),
    )
    assert response.status_code == 200, response.text
