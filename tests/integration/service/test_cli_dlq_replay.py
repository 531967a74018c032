"""``llmops dlq replay`` against a real Redis."""

from __future__ import annotations

import pytest
import redis.asyncio as aioredis
from typer.testing import CliRunner

from llmops_cli.app import app
from llmops_shared.streams import DeadLetter, move_to_dead_letters

pytestmark = pytest.mark.integration


async def test_dlq_lists_all_streams_and_replays_one(
    redis: aioredis.Redis, redis_url: str, names: object, monkeypatch: pytest.MonkeyPatch
) -> None:
    namespace = f"test.{names.token}:"  # type: ignore[attr-defined]
    stream = f"{namespace}llmops.datasets"
    await redis.xgroup_create(stream, "versioning", id="0", mkstream=True)
    message_id = await redis.xadd(stream, {"event": '{"id": "e-1"}'})
    await redis.xreadgroup("versioning", "c1", {stream: ">"})
    letter = DeadLetter(message_id, b'{"id": "e-1"}', "boom", "RuntimeError", 5, "max_deliveries")
    await move_to_dead_letters(redis, [letter], stream=stream, group="versioning", consumer="c1")
    [(entry_id, _)] = await redis.xrange(f"{stream}.dlq")
    letter_id = f"llmops.datasets:{entry_id.decode()}"
    monkeypatch.setenv("REDIS_URL", redis_url)
    monkeypatch.setenv("STREAM_NAMESPACE", namespace)
    monkeypatch.setenv("COLUMNS", "250")
    runner = CliRunner()

    listed = runner.invoke(app, ["dlq"])
    assert listed.exit_code == 0, listed.output
    assert letter_id in listed.output
    assert "max_deliveries" in listed.output

    replayed = runner.invoke(app, ["dlq", "replay", letter_id])
    assert replayed.exit_code == 0, replayed.output
    assert f"replayed {letter_id}" in replayed.output
    assert await redis.xlen(f"{stream}.dlq") == 0
    entries = await redis.xrange(stream)
    assert [fields[b"event"] for _, fields in entries] == [b'{"id": "e-1"}'] * 2

    again = runner.invoke(app, ["dlq", "replay", letter_id])
    assert again.exit_code == 1
    assert "already replayed" in again.output
    unknown = runner.invoke(app, ["dlq", "replay", "llmops.datasets:1-0"])
    assert unknown.exit_code == 1
    assert "not found" in unknown.output
    assert runner.invoke(app, ["dlq", "replay"]).exit_code == 2
    assert runner.invoke(app, ["dlq", "llmops.nope"]).exit_code == 2
