"""Folding job and experiment-run reports (``llmops_gateway.domain.status``), and the rules
every fold shares: ordered by ``seq``, idempotent per event id, unknown kinds ignored."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import select

from llmops_gateway.db.models import ExperimentRun, ProcessedEvent, TrainingJob
from llmops_gateway.db.session import SessionFactory
from llmops_gateway.domain.status import FOLDED, apply_status_event
from llmops_gateway.moves.experiments import MIGRATION_ERROR_TAG
from llmops_shared.events import Phase, StatusEntity, StatusUpdated
from llmops_shared.events.payloads.status import STATUS_PAYLOADS

from unit.gateway.folds import (
    CONSUMER,
    SEQ,
    count,
    event_of,
    fold,
    report,
    run_of,
    seed_job,
    seed_run,
    stored,
)

pytestmark = pytest.mark.unit

RUN_ID = "3f1d2a7c9b104c8e9a516f1e0b6f3c9e"
RUN_URL = f"http://mlflow.local/#/experiments/7/runs/{RUN_ID}"


def job_report(job_id: str, phase: Phase, seq: int, *, reason: str | None = None) -> StatusUpdated:
    return report(StatusEntity.JOB, job_id, phase, seq, reason=reason)


def run_report(
    job_id: str,
    phase: Phase,
    seq: int,
    *,
    run_id: str = RUN_ID,
    reason: str | None = None,
    **details: Any,
) -> StatusUpdated:
    """What the tracking worker reports about a job's MLflow run; ``details`` are added."""
    body: dict[str, Any] = {
        "job_id": job_id,
        "experiment_id": "7",
        "experiment_name": "llama-3-8b-sft-v1",
        "run_url": RUN_URL,
        "backend": "mlflow",
        "params": {"method": "lora", "hyperparams.lr": "0.0001"},
        "tags": {"llmops.job_id": job_id},
        **details,
    }
    return report(StatusEntity.EXPERIMENT_RUN, run_id, phase, seq, reason=reason, **body)


def failed_move(job_id: str, seq: int, *, request_id: str = "req-1") -> StatusUpdated:
    """The tracking worker's answer to a move of a built-in record that failed."""
    reason = "migration to mlflow failed: MLflow answered 503"
    return report(
        StatusEntity.EXPERIMENT_RUN,
        f"builtin-{job_id}",
        Phase.FAILED,
        seq,
        reason=reason,
        job_id=job_id,
        migration={
            "from": "builtin",
            "target": "mlflow",
            "outcome": "failed",
            "run_status": "Running",
            "reason": reason,
            "request_id": request_id,
        },
    )


def moved(job_id: str, seq: int, phase: Phase = Phase.RUNNING) -> StatusUpdated:
    """The tracking worker's report of a built-in record moved to MLflow."""
    return run_report(
        job_id,
        phase,
        seq,
        migration={"from": "builtin", "target": "mlflow", "outcome": "migrated"},
    )


def builtin_record(sessions: SessionFactory, job_id: str, **columns: Any) -> None:
    values: dict[str, Any] = {
        "experiment_id": "builtin",
        "experiment_name": "llama-3-8b-sft-v1",
        "params": {"method": "lora"},
        **columns,
    }
    seed_run(sessions, job_id, backend="builtin", **values)


# ----------------------------------------------------------------- shared fold rules


def test_a_newer_job_report_sets_status_reason_and_seq(sessions: SessionFactory) -> None:
    job_id = seed_job(sessions)
    assert fold(sessions, job_report(job_id, Phase.RUNNING, SEQ, reason="step 1 of 3"))
    job = stored(sessions, TrainingJob, job_id)
    assert (job.status, job.reason, job.status_seq) == ("Running", "step 1 of 3", SEQ)


def test_a_stale_job_report_is_ignored(sessions: SessionFactory) -> None:
    job_id = seed_job(sessions)
    fold(sessions, job_report(job_id, Phase.RUNNING, SEQ + 2))
    assert not fold(sessions, job_report(job_id, Phase.PENDING, SEQ + 1))
    job = stored(sessions, TrainingJob, job_id)
    assert (job.status, job.status_seq) == ("Running", SEQ + 2)


def test_a_job_report_with_the_stored_seq_is_ignored(sessions: SessionFactory) -> None:
    job_id = seed_job(sessions)
    fold(sessions, job_report(job_id, Phase.RUNNING, SEQ))
    assert not fold(sessions, job_report(job_id, Phase.PENDING, SEQ))
    assert stored(sessions, TrainingJob, job_id).status == "Running"


def test_a_redelivered_event_changes_nothing(sessions: SessionFactory) -> None:
    job_id = seed_job(sessions)
    event = event_of(job_report(job_id, Phase.RUNNING, SEQ))
    assert apply_status_event(sessions, event, consumer=CONSUMER)
    assert not apply_status_event(sessions, event, consumer=CONSUMER)
    assert count(sessions, ProcessedEvent) == 1


def test_an_event_id_already_processed_is_skipped_whatever_it_carries(
    sessions: SessionFactory,
) -> None:
    """The SQL ledger is keyed by event id: a forged or re-encoded event with a known id and a
    newer report is not applied."""
    job_id = seed_job(sessions)
    first = event_of(job_report(job_id, Phase.RUNNING, SEQ))
    apply_status_event(sessions, first, consumer=CONSUMER)
    assert not fold(sessions, job_report(job_id, Phase.FAILED, SEQ + 9), event_id=first.id)
    job = stored(sessions, TrainingJob, job_id)
    assert (job.status, job.status_seq) == ("Running", SEQ)


def test_a_stale_report_is_still_recorded_in_the_ledger(sessions: SessionFactory) -> None:
    job_id = seed_job(sessions)
    fold(sessions, job_report(job_id, Phase.RUNNING, SEQ + 2))
    stale = event_of(job_report(job_id, Phase.PENDING, SEQ + 1))
    apply_status_event(sessions, stale, consumer=CONSUMER)
    processed = stored(sessions, ProcessedEvent, stale.id)
    assert (processed.consumer, processed.event_type) == (CONSUMER, stale.type)


def test_a_report_about_an_unknown_job_changes_nothing(sessions: SessionFactory) -> None:
    assert not fold(sessions, job_report("no-such-job", Phase.RUNNING, SEQ))
    assert count(sessions, TrainingJob) == 0


def test_every_status_entity_has_a_fold() -> None:
    """github-sync's model-version reports were the last ones ignored; a new kind of status
    entity without a fold fails here rather than being dropped in silence."""
    assert set(FOLDED) == set(STATUS_PAYLOADS.values())


# ------------------------------------------------------------------------------ jobs


@pytest.mark.parametrize("finished", ["Succeeded", "Failed", "Cancelled"])
def test_a_finished_job_keeps_its_status_whatever_the_seq(
    sessions: SessionFactory, finished: str
) -> None:
    """A cancel is not undone by a worker that still observed the workflow Running."""
    job_id = seed_job(sessions, status=finished, status_seq=SEQ, reason="cancelled by alice")
    assert not fold(sessions, job_report(job_id, Phase.RUNNING, SEQ + 1_000))
    job = stored(sessions, TrainingJob, job_id)
    assert (job.status, job.reason, job.status_seq) == (finished, "cancelled by alice", SEQ)


def test_a_pipeline_failing_after_a_cancel_does_not_replace_it(sessions: SessionFactory) -> None:
    job_id = seed_job(sessions, status="Cancelled", status_seq=SEQ)
    assert not fold(sessions, job_report(job_id, Phase.FAILED, SEQ + 1, reason="terminated"))
    assert stored(sessions, TrainingJob, job_id).status == "Cancelled"


@pytest.mark.parametrize("phase", [Phase.SUCCEEDED, Phase.FAILED])
def test_a_job_that_ends_closes_its_open_run(sessions: SessionFactory, phase: Phase) -> None:
    job_id = seed_job(sessions, status="Running", status_seq=SEQ)
    fold(sessions, run_report(job_id, Phase.RUNNING, SEQ + 1))
    fold(sessions, job_report(job_id, phase, SEQ + 3, reason="the end"))
    run = run_of(sessions, job_id)
    assert run is not None
    assert (run.status, run.reason, run.seq) == (phase.value, "the end", SEQ + 3)


def test_a_closed_run_keeps_its_record(sessions: SessionFactory) -> None:
    job_id = seed_job(sessions, status="Running", status_seq=SEQ)
    fold(sessions, run_report(job_id, Phase.RUNNING, SEQ + 1))
    fold(sessions, job_report(job_id, Phase.SUCCEEDED, SEQ + 3))
    run = run_of(sessions, job_id)
    assert run is not None
    assert (run.run_id, run.params["hyperparams.lr"]) == (RUN_ID, "0.0001")


def test_a_cancelled_job_leaves_its_run_to_the_tracking_worker(sessions: SessionFactory) -> None:
    """Only Succeeded and Failed end a run; a cancel's kill is reported by tracking itself."""
    job_id = seed_job(sessions, status="Running", status_seq=SEQ)
    fold(sessions, run_report(job_id, Phase.RUNNING, SEQ + 1))
    fold(sessions, job_report(job_id, Phase.CANCELLED, SEQ + 3))
    run = run_of(sessions, job_id)
    assert run is not None
    assert (run.status, run.seq) == ("Running", SEQ + 1)


def test_an_older_run_report_cannot_reopen_a_run_its_job_closed(sessions: SessionFactory) -> None:
    job_id = seed_job(sessions, status="Running", status_seq=SEQ)
    fold(sessions, run_report(job_id, Phase.RUNNING, SEQ + 1))
    fold(sessions, job_report(job_id, Phase.SUCCEEDED, SEQ + 3))
    assert not fold(sessions, run_report(job_id, Phase.RUNNING, SEQ + 2))
    run = run_of(sessions, job_id)
    assert run is not None
    assert run.status == "Succeeded"


def test_a_newer_run_report_wins_over_the_job_end(sessions: SessionFactory) -> None:
    job_id = seed_job(sessions, status="Running", status_seq=SEQ)
    fold(sessions, run_report(job_id, Phase.RUNNING, SEQ + 1))
    fold(sessions, job_report(job_id, Phase.SUCCEEDED, SEQ + 3))
    assert fold(sessions, run_report(job_id, Phase.CANCELLED, SEQ + 4, reason="killed"))
    run = run_of(sessions, job_id)
    assert run is not None
    assert (run.status, run.reason, run.seq) == ("Cancelled", "killed", SEQ + 4)


def test_a_run_folded_after_its_job_ended_is_closed_too(sessions: SessionFactory) -> None:
    """Reports arrive in any order: the run's creation folded after the job's end."""
    job_id = seed_job(sessions, status="Running", status_seq=SEQ)
    fold(sessions, job_report(job_id, Phase.SUCCEEDED, SEQ + 3))
    assert fold(sessions, run_report(job_id, Phase.RUNNING, SEQ + 1))
    run = run_of(sessions, job_id)
    assert run is not None
    assert (run.status, run.seq, run.run_id) == ("Succeeded", SEQ + 3, RUN_ID)


def test_a_run_observed_after_its_job_ended_stays_as_reported(sessions: SessionFactory) -> None:
    job_id = seed_job(sessions, status="Running", status_seq=SEQ)
    fold(sessions, job_report(job_id, Phase.SUCCEEDED, SEQ + 3))
    fold(sessions, run_report(job_id, Phase.RUNNING, SEQ + 4))
    run = run_of(sessions, job_id)
    assert run is not None
    assert (run.status, run.seq) == ("Running", SEQ + 4)


# ----------------------------------------------------------------------- experiment runs


def test_the_first_run_report_creates_the_record(sessions: SessionFactory) -> None:
    job_id = seed_job(sessions)
    assert fold(sessions, run_report(job_id, Phase.RUNNING, SEQ, metrics={"loss": 0.5}))
    run = run_of(sessions, job_id)
    assert run is not None
    assert (run.run_id, run.status, run.seq, run.backend) == (RUN_ID, "Running", SEQ, "mlflow")
    assert (run.experiment_id, run.experiment_name, run.tracking_url) == (
        "7",
        "llama-3-8b-sft-v1",
        RUN_URL,
    )
    assert (run.params, run.tags, run.metrics) == (
        {"method": "lora", "hyperparams.lr": "0.0001"},
        {"llmops.job_id": job_id},
        {"loss": 0.5},
    )


def test_missing_or_null_run_fields_keep_their_stored_values(sessions: SessionFactory) -> None:
    """A short "killed" report does not erase what the "created" one reported."""
    job_id = seed_job(sessions)
    fold(sessions, run_report(job_id, Phase.RUNNING, SEQ))
    killed = report(
        StatusEntity.EXPERIMENT_RUN,
        RUN_ID,
        Phase.CANCELLED,
        SEQ + 1,
        reason="job cancelled",
        job_id=job_id,
        experiment_name=None,
        run_url=None,
    )
    assert fold(sessions, killed)
    run = run_of(sessions, job_id)
    assert run is not None
    assert (run.status, run.experiment_id, run.experiment_name, run.tracking_url) == (
        "Cancelled",
        "7",
        "llama-3-8b-sft-v1",
        RUN_URL,
    )
    assert (run.backend, run.params["method"]) == ("mlflow", "lora")


def test_run_maps_are_merged_key_by_key(sessions: SessionFactory) -> None:
    job_id = seed_job(sessions)
    fold(sessions, run_report(job_id, Phase.RUNNING, SEQ, metrics={"loss": 0.9, "step": 1}))
    fold(
        sessions,
        run_report(
            job_id,
            Phase.RUNNING,
            SEQ + 1,
            params={"epochs": "3"},
            tags={"team": "nlp"},
            metrics={"loss": 0.4},
        ),
    )
    run = run_of(sessions, job_id)
    assert run is not None
    assert run.params == {"method": "lora", "hyperparams.lr": "0.0001", "epochs": "3"}
    assert run.tags == {"llmops.job_id": job_id, "team": "nlp"}
    assert run.metrics == {"loss": 0.4, "step": 1}


def test_empty_run_maps_keep_the_stored_ones(sessions: SessionFactory) -> None:
    """The built-in backend's cancel report carries ``params: {}``."""
    job_id = seed_job(sessions)
    fold(sessions, run_report(job_id, Phase.RUNNING, SEQ))
    fold(sessions, run_report(job_id, Phase.CANCELLED, SEQ + 1, params={}, tags={}))
    run = run_of(sessions, job_id)
    assert run is not None
    assert (run.params, run.tags) == (
        {"method": "lora", "hyperparams.lr": "0.0001"},
        {"llmops.job_id": job_id},
    )


def test_a_stale_run_report_is_ignored(sessions: SessionFactory) -> None:
    job_id = seed_job(sessions)
    fold(sessions, run_report(job_id, Phase.RUNNING, SEQ + 2))
    assert not fold(sessions, run_report(job_id, Phase.FAILED, SEQ + 1, reason="older"))
    run = run_of(sessions, job_id)
    assert run is not None
    assert (run.status, run.reason, run.seq) == ("Running", None, SEQ + 2)


def test_a_failed_move_is_kept_as_a_tag_of_the_builtin_record(sessions: SessionFactory) -> None:
    job_id = seed_job(sessions)
    builtin_record(sessions, job_id, seq=SEQ)
    assert fold(sessions, failed_move(job_id, SEQ + 5, request_id="req-7"))
    run = run_of(sessions, job_id)
    assert run is not None
    assert run.tags[MIGRATION_ERROR_TAG] == {
        "request_id": "req-7",
        "reason": "migration to mlflow failed: MLflow answered 503",
        "target": "mlflow",
        "seq": SEQ + 5,
    }


def test_a_failed_move_does_not_change_the_runs_status(sessions: SessionFactory) -> None:
    job_id = seed_job(sessions)
    builtin_record(sessions, job_id, seq=SEQ, reason="cancelled by alice")
    fold(sessions, failed_move(job_id, SEQ + 5))
    run = run_of(sessions, job_id)
    assert run is not None
    assert (run.status, run.reason, run.seq, run.backend) == (
        "Running",
        "cancelled by alice",
        SEQ,
        "builtin",
    )


def test_a_failed_move_never_creates_a_record(sessions: SessionFactory) -> None:
    job_id = seed_job(sessions)
    assert not fold(sessions, failed_move(job_id, SEQ))
    assert count(sessions, ExperimentRun) == 0


def test_a_failed_move_never_undoes_one_that_succeeded(sessions: SessionFactory) -> None:
    job_id = seed_job(sessions)
    seed_run(sessions, job_id, backend="mlflow", run_id=RUN_ID, seq=SEQ)
    assert not fold(sessions, failed_move(job_id, SEQ + 5))
    run = run_of(sessions, job_id)
    assert run is not None
    assert (run.backend, MIGRATION_ERROR_TAG in run.tags) == ("mlflow", False)


def test_an_older_failed_move_does_not_replace_a_newer_one(sessions: SessionFactory) -> None:
    job_id = seed_job(sessions)
    builtin_record(sessions, job_id, seq=SEQ)
    fold(sessions, failed_move(job_id, SEQ + 5, request_id="newer"))
    assert not fold(sessions, failed_move(job_id, SEQ + 4, request_id="older"))
    run = run_of(sessions, job_id)
    assert run is not None
    assert run.tags[MIGRATION_ERROR_TAG]["request_id"] == "newer"


def test_a_move_switches_the_record_to_the_new_backend_whatever_the_seq(
    sessions: SessionFactory,
) -> None:
    """The move is one-way and two hosts' clocks may disagree: it wins with a lower seq."""
    job_id = seed_job(sessions)
    builtin_record(sessions, job_id, seq=SEQ + 10)
    assert fold(sessions, moved(job_id, SEQ + 1, Phase.SUCCEEDED))
    run = run_of(sessions, job_id)
    assert run is not None
    assert (run.backend, run.run_id, run.experiment_id, run.tracking_url, run.status) == (
        "mlflow",
        RUN_ID,
        "7",
        RUN_URL,
        "Succeeded",
    )
    assert run.seq == SEQ + 10


def test_a_move_without_a_reason_keeps_the_records_reason(sessions: SessionFactory) -> None:
    job_id = seed_job(sessions)
    builtin_record(sessions, job_id, status="Cancelled", reason="cancelled by alice: wrong data")
    fold(sessions, moved(job_id, SEQ + 1, Phase.CANCELLED))
    run = run_of(sessions, job_id)
    assert run is not None
    assert run.reason == "cancelled by alice: wrong data"


def test_a_move_drops_the_last_failed_moves_tag(sessions: SessionFactory) -> None:
    job_id = seed_job(sessions)
    builtin_record(sessions, job_id, seq=SEQ)
    fold(sessions, failed_move(job_id, SEQ + 1))
    fold(sessions, moved(job_id, SEQ + 2))
    run = run_of(sessions, job_id)
    assert run is not None
    assert MIGRATION_ERROR_TAG not in run.tags


def test_only_one_run_record_is_kept_per_job(sessions: SessionFactory) -> None:
    job_id = seed_job(sessions)
    fold(sessions, run_report(job_id, Phase.RUNNING, SEQ))
    fold(sessions, run_report(job_id, Phase.SUCCEEDED, SEQ + 1))
    with sessions() as session:
        runs = session.scalars(select(ExperimentRun)).all()
    assert [(run.job_id, run.status) for run in runs] == [(job_id, "Succeeded")]
