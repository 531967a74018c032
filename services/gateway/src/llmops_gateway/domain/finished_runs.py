"""A finished job's run is finished too: the run record follows the job to its end.

The tracking worker reports a job's run when it creates it (Running) and when a cancel kills
it; the end of a training run is the pipeline's: its ``register`` stage ends the MLflow run
FINISHED, and a failing stage ends it FAILED (llmops_trainer), which no service observes. So
when a job reaches Succeeded or Failed, a run record still Running (or Pending) takes the job's
phase, with the job report's ``seq``: a later tracking report (a newer observation) still wins,
an older one cannot reopen it. Reports arrive in any order, so a run report folded after the
job's end closes its record the same way. A built-in run (tracking disabled) ends the same way.
"""

from __future__ import annotations

from typing import Final

from sqlalchemy import update
from sqlalchemy.orm import Session

from llmops_gateway.db.models import ExperimentRun, TrainingJob, utcnow
from llmops_shared.events import Phase, StatusUpdated

ENDING_PHASES: Final = frozenset({Phase.SUCCEEDED, Phase.FAILED})
_OPEN: Final = (Phase.PENDING.value, Phase.RUNNING.value)


def finish_run_of_job(session: Session, report: StatusUpdated) -> bool:
    """Close the run record of the job ``report`` ended; True when it changed."""
    if report.phase not in ENDING_PHASES:
        return False
    result = session.execute(
        update(ExperimentRun)
        .where(
            ExperimentRun.job_id == report.entity_id,
            ExperimentRun.status.in_(_OPEN),
            ExperimentRun.seq < report.seq,
        )
        .values(
            status=report.phase.value,
            reason=report.reason,
            seq=report.seq,
            updated_at=utcnow(),
        )
        .execution_options(synchronize_session=False)
    )
    return bool(getattr(result, "rowcount", 0))


def finish_run_if_job_ended(session: Session, run: ExperimentRun) -> None:
    """Close ``run`` (just folded) when its job already ended after what the run says."""
    if run.status not in _OPEN:
        return
    job = session.get(TrainingJob, run.job_id)
    ended = {phase.value for phase in ENDING_PHASES}
    if job is None or job.status not in ended or job.status_seq <= (run.seq or 0):
        return
    run.status, run.reason, run.seq = job.status, job.reason, job.status_seq
