"""The operator CLI against a real Redis."""

from __future__ import annotations

from pathlib import Path

import pytest
import redis.asyncio as aioredis
from typer.testing import CliRunner

from llmops_cli.app import app
from llmops_shared.streams import DeadLetter, move_to_dead_letters

pytestmark = pytest.mark.integration


async def test_streams_and_dlq_show_what_is_in_redis(
    redis: aioredis.Redis, redis_url: str, names: object, monkeypatch: pytest.MonkeyPatch
) -> None:
    namespace = f"test.{names.token}:"  # type: ignore[attr-defined]
    stream = f"{namespace}llmops.training"
    await redis.xgroup_create(stream, "tracking", id="0", mkstream=True)
    message_id = await redis.xadd(stream, {"event": "not json"})
    await redis.xreadgroup("tracking", "c1", {stream: ">"})
    letter = DeadLetter(message_id, b"not json", "not JSON: expected value", "EventDecodeError", 1,
                        "non_retryable")  # fmt: skip
    await move_to_dead_letters(redis, [letter], stream=stream, group="tracking", consumer="c1")
    monkeypatch.setenv("REDIS_URL", redis_url)
    monkeypatch.setenv("STREAM_NAMESPACE", namespace)
    monkeypatch.setenv("COLUMNS", "200")

    status = CliRunner().invoke(app, ["streams"])
    assert status.exit_code == 0, status.output
    [row] = [line for line in status.output.splitlines() if "llmops.training " in line]
    assert "tracking" in row
    assert row.split("│")[-2].strip() == "1"  # one dead letter

    dlq = CliRunner().invoke(app, ["dlq", "llmops.training"])
    assert dlq.exit_code == 0, dlq.output
    assert "not JSON: expected value" in dlq.output
    assert "non_retryable" in dlq.output


def test_without_redis_url_the_cli_says_how_to_get_one(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.delenv("REDIS_URL", raising=False)
    monkeypatch.setenv("LLMOPS_DATA_DIR", str(tmp_path))
    result = CliRunner().invoke(app, ["streams"])
    assert result.exit_code == 2
    assert "REDIS_URL is not set" in result.output


def test_the_cli_finds_the_redis_of_a_running_local_stack(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, redis_url: str
) -> None:
    monkeypatch.delenv("REDIS_URL", raising=False)
    monkeypatch.setenv("LLMOPS_DATA_DIR", str(tmp_path))
    (tmp_path / "redis-url").write_text(redis_url + "\n")  # what `llmops up` writes
    monkeypatch.setenv("COLUMNS", "200")
    result = CliRunner().invoke(app, ["streams"])
    assert result.exit_code == 0, result.output
    assert "llmops.training" in result.output


@pytest.mark.parametrize(
    "command",
    [
        ["train", "status", "some-job"],
        ["models", "check-updates", "some-model"],
        ["integrations", "list"],
        ["lineage", "training-job", "some-job"],
    ],
)
def test_every_gateway_command_says_when_the_gateway_does_not_answer(command: list[str]) -> None:
    """One handling for every command that calls the gateway (``answered``): a refusal in the
    gateway's words, no answer as one line, exit 1, never a traceback."""
    result = CliRunner().invoke(
        app, [*command, "--gateway", "http://127.0.0.1:1", "--api-key", "k"]
    )
    assert result.exit_code == 1, result.output
    assert "no answer from the gateway at http://127.0.0.1:1: ConnectError" in result.output
    assert "Traceback" not in result.output
