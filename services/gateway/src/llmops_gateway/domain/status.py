"""Fold ``llmops.status`` reports into the read model: idempotent and ordered by ``seq``.

One report is applied in one SQL transaction that (1) skips it when its event id is already in
``processed_events``, (2) changes the entity only when the report's ``seq`` is greater than the
one stored for it, and (3) records the event id and the report in its entity's timeline
(``status_history``, applied or not). So a redelivered report changes nothing and a
late report never overwrites a newer one, whatever order the workers' reports arrive in.

Each entity's fold lives next to its kind (``*_status`` modules) and reads the typed details of
its event type (:mod:`llmops_shared.events.payloads.details`), validated when the event was
decoded. With ``openlineage`` (``OPENLINEAGE_URL`` is set), a job report also queues the job's
OpenLineage run events in the same transaction (:mod:`llmops_gateway.openlineage.record`).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Final

from sqlalchemy import update
from sqlalchemy.orm import Session

from llmops_gateway.db.models import ProcessedEvent, StatusHistory, TrainingJob, utcnow
from llmops_gateway.db.session import SessionFactory
from llmops_gateway.domain.catalog_status import apply_model_report
from llmops_gateway.domain.dataset_status import apply_restore_report, apply_version_report
from llmops_gateway.domain.finished_runs import finish_run_of_job
from llmops_gateway.domain.model_version_status import apply_model_version
from llmops_gateway.domain.pipeline_status import apply_pipeline
from llmops_gateway.domain.run_status import apply_experiment_run
from llmops_gateway.domain.serving_status import apply_deployment
from llmops_gateway.domain.training import TERMINAL_PHASES
from llmops_gateway.openlineage.record import record_run_events
from llmops_shared.events import (
    DatasetRestoreStatusUpdated,
    DatasetVersionStatusUpdated,
    DeploymentStatusUpdated,
    Envelope,
    Event,
    ExperimentRunStatusUpdated,
    JobStatusUpdated,
    ModelStatusUpdated,
    ModelVersionStatusUpdated,
    PipelineStatusUpdated,
    StatusUpdated,
)
from llmops_shared.logging import get_logger

_log = get_logger(__name__)

_FINISHED: Final = tuple(sorted(phase.value for phase in TERMINAL_PHASES))
"""Job statuses no report changes any more."""


def _apply_job(session: Session, report: JobStatusUpdated) -> bool:
    """Newer reports set the job's status; a finished job (Succeeded, Failed, Cancelled) keeps
    its status whatever the seq: the worker may observe the workflow still Running after the
    user's cancel was committed, or report the stopped workflow as Failed, and neither may undo
    the cancel (the pipeline view shows what the workflow really did). A job that ends closes
    its run record (:mod:`llmops_gateway.domain.finished_runs`)."""
    result = session.execute(
        update(TrainingJob)
        .where(
            TrainingJob.id == report.entity_id,
            TrainingJob.status_seq < report.seq,
            TrainingJob.status.not_in(_FINISHED),
        )
        .values(
            status=report.phase.value,
            reason=report.reason,
            status_seq=report.seq,
            updated_at=utcnow(),
        )
    )
    changed = bool(getattr(result, "rowcount", 0))
    if changed:
        finish_run_of_job(session, report)
    return changed


FOLDED: Final[Mapping[type[StatusUpdated], Callable[[Session, Any], bool]]] = {
    JobStatusUpdated: _apply_job,
    ExperimentRunStatusUpdated: apply_experiment_run,
    DeploymentStatusUpdated: apply_deployment,
    PipelineStatusUpdated: apply_pipeline,
    ModelStatusUpdated: apply_model_report,
    DatasetVersionStatusUpdated: apply_version_report,
    DatasetRestoreStatusUpdated: apply_restore_report,
    ModelVersionStatusUpdated: apply_model_version,
}
"""Each report the read model folds today, and the fold that applies it to its entity in the
open session (True when something changed); reports about other entities are ignored."""


def _history(event: Event, report: StatusUpdated, *, applied: bool) -> StatusHistory:
    """The report's line in its entity's timeline (``reason`` as reported, whole)."""
    return StatusHistory(
        event_id=event.id,
        event_type=event.type,
        source=event.envelope.source,
        entity=str(report.entity),
        entity_id=report.entity_id,
        phase=report.phase.value,
        reason=report.reason,
        seq=report.seq,
        applied=applied,
        occurred_at=event.envelope.time,
        recorded_at=utcnow(),
    )


def _fold_of(report: StatusUpdated) -> Callable[[Session, Any], bool] | None:
    """The fold of ``report``'s kind; None for a report the read model does not fold."""
    return next((fold for kind, fold in FOLDED.items() if isinstance(report, kind)), None)


def apply_status_event(
    sessions: SessionFactory, event: Event, *, consumer: str, openlineage: bool = False
) -> bool:
    """Apply one status event in one transaction; True when the read model changed. With
    ``openlineage``, a job report queues the job's run events in that transaction."""
    report = event.payload_as(StatusUpdated)
    fold = _fold_of(report)
    if fold is None:
        _log.debug("status_entity_ignored", entity=str(report.entity))
        return False
    with sessions.begin() as session:
        if session.get(ProcessedEvent, event.id) is not None:
            _log.debug("status_event_duplicate")
            return False
        changed = fold(session, report)
        if openlineage and isinstance(report, JobStatusUpdated):
            record_run_events(session, report, applied=changed, at=event.envelope.time)
        session.add(
            ProcessedEvent(
                event_id=event.id, consumer=consumer, event_type=event.type, processed_at=utcnow()
            )
        )
        session.add(_history(event, report, applied=changed))
    if not changed:
        _log.debug("status_event_stale", entity=str(report.entity), seq=report.seq)
    return changed


async def handle_status_event(
    event: Event, *, sessions: SessionFactory, consumer: str, openlineage: bool = False
) -> Sequence[Envelope]:
    """The consumer handler: the blocking SQL work runs in a thread; no events are emitted."""
    await asyncio.to_thread(
        apply_status_event, sessions, event, consumer=consumer, openlineage=openlineage
    )
    return ()
