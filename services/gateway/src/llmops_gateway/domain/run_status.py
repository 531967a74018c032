"""Fold ``experiment_run`` reports (tracking) into the job's run record."""

from __future__ import annotations

import uuid

from sqlalchemy.orm import Session

from llmops_gateway.db import repository
from llmops_gateway.db.models import ExperimentRun, utcnow
from llmops_gateway.domain.finished_runs import finish_run_if_job_ended
from llmops_gateway.domain.reports import replace_given
from llmops_gateway.moves.experiments import MIGRATION_ERROR_TAG, kept_reason, move_error
from llmops_shared.events import ExperimentRunStatusUpdated
from llmops_shared.events.payloads.details import RunMove


def apply_experiment_run(session: Session, report: ExperimentRunStatusUpdated) -> bool:
    """Upsert the job's run. Missing or null fields keep their stored value and maps are merged,
    so a short "killed" report (the built-in backend's carries no params) does not erase what the
    "created" one reported.

    A migration's report (``details.migration``, see ``migrate experiments-to-mlflow``): one
    that moved a built-in record to a tracking system wins over the record whatever the seqs
    (the move is one-way, and clocks of two worker hosts may disagree), keeping the higher seq;
    backend, run id, experiment and URL become the new system's; a report without a reason
    keeps the record's (a cancel's), and the record's ``llmops.migration_error`` goes. One that
    failed is about the move, not the run: it never changes the record's status, reason, seq
    or times; it is kept as the record's ``llmops.migration_error`` tag (where the migrate
    command reads it) while the record is still built-in (it never undoes a move that
    succeeded), and never creates a record."""
    details = report.details
    migration = details.migration
    run = repository.experiment_run_for_job(session, details.job_id, for_update=True)
    if migration is not None and migration.outcome == "failed":
        return _keep_failed_move(run, migration, report)
    moved = (
        migration is not None
        and migration.outcome == "migrated"
        and run is not None
        and run.backend == "builtin"
        and details.backend not in (None, "builtin")
    )
    if run is not None and run.seq >= report.seq and not moved:
        return False
    if run is None:
        run = ExperimentRun(
            id=str(uuid.uuid4()),
            job_id=details.job_id,
            backend="builtin",
            params={},
            tags={},
            metrics={},
            created_at=utcnow(),
        )
        session.add(run)
    run.run_id = report.entity_id
    run.status = report.phase.value
    # a move's report has no reason: the record's (a cancel's) stays
    run.reason = kept_reason(run.reason) if moved and report.reason is None else report.reason
    run.seq = max(run.seq or 0, report.seq)
    run.updated_at = utcnow()
    replace_given(
        run, details, "experiment_id", "experiment_name", "backend", tracking_url="run_url"
    )
    if details.params:
        run.params = {**run.params, **details.params}
    if details.tags:
        run.tags = {**run.tags, **details.tags}
    if details.metrics:
        run.metrics = {**run.metrics, **details.metrics}
    if moved and MIGRATION_ERROR_TAG in run.tags:
        run.tags = {k: v for k, v in run.tags.items() if k != MIGRATION_ERROR_TAG}
    finish_run_if_job_ended(session, run)  # the job's end may have been folded first
    return True


def _keep_failed_move(
    run: ExperimentRun | None, migration: RunMove, report: ExperimentRunStatusUpdated
) -> bool:
    """A failed move is kept as the built-in record's ``llmops.migration_error`` tag."""
    if run is None or run.backend != "builtin":
        return False
    last = move_error(run.tags)
    if last is not None and int(last.get("seq") or 0) >= report.seq:
        return False
    error = {
        "request_id": migration.request_id,
        "reason": migration.reason or report.reason,
        "target": migration.target,
        "seq": report.seq,
    }
    run.tags = {**run.tags, MIGRATION_ERROR_TAG: error}
    run.updated_at = ExperimentRun.updated_at  # SET to itself: no onupdate bump
    return True
