"""The shared status-event builder: reason clipping and the envelope every worker publishes."""

from __future__ import annotations

import pytest

from llmops_shared.events import (
    REASON_MAX_LENGTH,
    DeploymentStatusUpdated,
    JobStatusUpdated,
    Phase,
    StatusEntity,
    clip_reason,
    decode_event,
    encode_event,
    status_event,
)

pytestmark = pytest.mark.unit

ENDPOINT_ID = "0b6f3c9e-6f1e-4c8e-9a51-3f1d2a7c9b10"


@pytest.mark.parametrize("blank", [None, "", "   ", "\n\t "])
def test_a_blank_reason_is_none(blank: str | None) -> None:
    assert clip_reason(blank) is None


def test_a_reason_is_put_on_one_line() -> None:
    assert clip_reason("Traceback:\n  File x\r\n\tValueError:  bad ") == (
        "Traceback: File x ValueError: bad"
    )


def test_a_reason_at_the_limit_is_kept_whole() -> None:
    text = "x" * REASON_MAX_LENGTH
    assert clip_reason(text) == text


def test_a_longer_reason_keeps_its_start_and_ends_in_an_ellipsis() -> None:
    clipped = clip_reason("start " + "y" * 5000)
    assert clipped is not None
    assert len(clipped) == REASON_MAX_LENGTH
    assert clipped.startswith("start y")
    assert clipped.endswith("...")


def test_clipping_is_idempotent() -> None:
    once = clip_reason("a\nb " * 3000)
    assert clip_reason(once) == once


def test_status_event_builds_the_envelope_from_the_reporter() -> None:
    envelope = status_event(
        StatusEntity.DEPLOYMENT,
        entity_id=ENDPOINT_ID,
        phase=Phase.FAILED,
        reporter="serving",
        correlation_id="corr-1",
        reason="admission webhook denied:\n" + "z" * 3000,
        details={"backend": "kserve"},
        seq=42,
    )
    assert envelope.source == "serving"
    assert envelope.correlationid == "corr-1"
    assert envelope.type == DeploymentStatusUpdated.event_type
    payload = decode_event(encode_event(envelope)).payload
    assert isinstance(payload, DeploymentStatusUpdated)
    assert payload.reporter == "serving"
    assert payload.entity_id == ENDPOINT_ID
    assert payload.phase is Phase.FAILED
    assert payload.seq == 42
    assert payload.model_dump(mode="json")["details"] == {"backend": "kserve"}
    assert payload.reason is not None
    assert len(payload.reason) == REASON_MAX_LENGTH
    assert "\n" not in payload.reason


def test_status_event_without_a_reason_or_correlation() -> None:
    envelope = status_event(
        "job", entity_id=ENDPOINT_ID, phase="Running", reporter="workflow", correlation_id=None
    )
    payload = decode_event(encode_event(envelope)).payload
    assert isinstance(payload, JobStatusUpdated)
    assert payload.reason is None
    assert envelope.correlationid is None
