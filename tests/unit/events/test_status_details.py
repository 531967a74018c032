"""The typed status details: what the reporter set goes out, by alias or by name, and nothing
else; unknown facts are ignored and bad ones refused."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from llmops_shared.events import (
    DeploymentDetails,
    Phase,
    PipelineDetails,
    PipelineStatusUpdated,
    StatusEntity,
    decode_event,
    encode_event,
    new_event,
    status_updated,
)
from llmops_shared.events.payloads.details import FormatMove, RunMove

pytestmark = pytest.mark.unit


def test_only_the_facts_the_reporter_set_are_sent_and_an_explicit_null_is_kept() -> None:
    details = DeploymentDetails(name="x", url=None)
    assert details.model_dump(mode="json") == {"name": "x", "url": None}


def test_a_move_is_sent_with_its_wire_name_and_dumps_by_name_too() -> None:
    move = FormatMove(outcome="migrated", source="kserve", target="builtin")
    assert move.model_dump(mode="json") == {
        "outcome": "migrated",
        "from": "kserve",
        "target": "builtin",
    }
    assert move.model_dump(mode="json", by_alias=False) == {
        "outcome": "migrated",
        "source": "kserve",
        "target": "builtin",
    }
    assert RunMove.model_validate({"from": "builtin", "outcome": "failed"}).source == "builtin"


def test_details_survive_the_wire_as_their_entitys_model() -> None:
    payload = status_updated(
        StatusEntity.PIPELINE,
        entity_id="train-1",
        phase=Phase.RUNNING,
        reporter="workflow",
        details={"job_id": "1", "progress": {"done": 1, "total": 4}, "newer_fact": True},
    )
    decoded = decode_event(encode_event(new_event(payload, source="workflow"))).payload
    assert isinstance(decoded, PipelineStatusUpdated)
    assert decoded.details.progress is not None
    assert (decoded.details.job_id, decoded.details.progress.done) == ("1", 1)
    # an unknown fact is ignored (a newer reporter may add facts), never sent on
    assert decoded.details.model_dump(mode="json") == {
        "job_id": "1",
        "progress": {"done": 1, "total": 4},
    }


def test_details_of_another_entity_are_refused() -> None:
    with pytest.raises(ValueError, match="instance of PipelineDetails"):
        status_updated(
            StatusEntity.PIPELINE,
            entity_id="train-1",
            phase=Phase.RUNNING,
            reporter="workflow",
            details=DeploymentDetails(name="x"),
        )


def test_an_experiment_run_report_needs_its_job() -> None:
    with pytest.raises(ValueError, match=r"details\.job_id"):
        status_updated(
            StatusEntity.EXPERIMENT_RUN, entity_id="r1", phase=Phase.RUNNING, reporter="tracking"
        )


def test_reported_times_are_aware_utc_a_naive_one_taken_as_utc() -> None:
    details = PipelineDetails.model_validate(
        {
            "started_at": "2026-01-02T03:04:05",
            "finished_at": "2026-01-02T06:00:00+02:00",
            "nodes": [{"name": "train", "started_at": "2026-01-02T03:04:05"}],
        }
    )
    assert details.started_at == datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    assert details.finished_at == datetime(2026, 1, 2, 4, 0, 0, tzinfo=UTC)
    assert details.finished_at is not None
    assert details.finished_at.tzinfo is UTC
    assert details.nodes is not None
    assert details.nodes[0].started_at == datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
