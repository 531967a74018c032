"""Settings read from the environment and .env; logs are JSON lines with the event context."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from pathlib import Path

import pytest
import structlog

from llmops_shared.config import ServiceSettings
from llmops_shared.logging import configure_logging, event_log_context, get_logger
from llmops_shared.streams import redact_url

pytestmark = pytest.mark.unit


def test_settings_come_from_env_and_dotenv(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / ".env").write_text("ENVIRONMENT=stg\nCONSUMER__MAX_DELIVERIES=9\n")
    monkeypatch.setenv("REDIS_URL", "redis://app:s3cret@redis:6379/0")
    monkeypatch.setenv("CONSUMER__BATCH_SIZE", "25")

    settings = ServiceSettings()

    assert settings.environment == "stg"
    assert settings.consumer.max_deliveries == 9
    assert settings.consumer.batch_size == 25
    assert settings.redis_url is not None
    assert settings.redis_url.get_secret_value() == "redis://app:s3cret@redis:6379/0"
    assert "s3cret" not in repr(settings)
    assert "s3cret" not in str(settings.model_dump())


def test_invalid_settings_are_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ENVIRONMENT", "qa")
    with pytest.raises(ValueError, match="environment"):
        ServiceSettings(_env_file=None)  # type: ignore[call-arg]


def test_redis_urls_are_logged_without_password() -> None:
    assert redact_url("redis://app:s3cret@redis:6379/0") == "redis://app:***@redis:6379/0"
    assert redact_url("redis://127.0.0.1:6379/0") == "redis://127.0.0.1:6379/0"


@pytest.fixture
def restore_logging() -> Iterator[None]:
    """configure_logging changes process-wide state; put it back for the next tests."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)
    structlog.reset_defaults()
    structlog.contextvars.clear_contextvars()


@pytest.mark.usefixtures("restore_logging")
def test_log_lines_are_json_with_service_and_event_context(
    capsys: pytest.CaptureFixture[str],
) -> None:
    configure_logging(service="tracking", level="INFO", json=True)
    log = get_logger("test")
    with event_log_context(event_id="e-1", correlation_id="req-7"):
        log.info("handled", run_id="r-1")
    log.info("outside")
    logging.getLogger("stdlib").warning("from the stdlib")

    lines = [json.loads(line) for line in capsys.readouterr().err.splitlines()]
    handled, outside, stdlib = lines
    assert handled["event"] == "handled"
    assert handled["service"] == "tracking"
    assert handled["correlation_id"] == "req-7"
    assert handled["event_id"] == "e-1"
    assert handled["run_id"] == "r-1"
    assert "correlation_id" not in outside
    assert stdlib["event"] == "from the stdlib"
    assert stdlib["service"] == "tracking"


def test_a_batch_larger_than_one_commit_script_can_ack_is_refused() -> None:
    from llmops_shared.config import ConsumerSettings

    with pytest.raises(ValueError, match="batch_size"):
        ConsumerSettings(batch_size=5_000)
