"""Fold ``llmops.status`` reports into the read model: idempotent and ordered by ``seq``.

One report is applied in one SQL transaction that (1) skips it when its event id is already in
``processed_events``, (2) changes the entity only when the report's ``seq`` is greater than the
one stored for it, and (3) records the event id. So a redelivered report changes nothing and a
late report never overwrites a newer one, whatever order the workers' reports arrive in.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Final

from sqlalchemy import update
from sqlalchemy.orm import Session

from llmops_gateway.db import repository
from llmops_gateway.db.models import ExperimentRun, ProcessedEvent, TrainingJob, utcnow
from llmops_gateway.db.session import SessionFactory
from llmops_shared.events import Envelope, Event, StatusEntity, StatusUpdated
from llmops_shared.logging import get_logger
from llmops_shared.streams import NonRetryableError

_log = get_logger(__name__)

Applier = Callable[[Session, StatusUpdated], bool]
"""Apply one report to its entity in the open session; True when something changed."""


def _apply_job(session: Session, report: StatusUpdated) -> bool:
    result = session.execute(
        update(TrainingJob)
        .where(TrainingJob.id == report.entity_id, TrainingJob.status_seq < report.seq)
        .values(
            status=report.phase.value,
            reason=report.reason,
            status_seq=report.seq,
            updated_at=utcnow(),
        )
    )
    return bool(getattr(result, "rowcount", 0))


def _text(details: Mapping[str, Any], key: str) -> str | None:
    value = details.get(key)
    return None if value is None else str(value)


def _mapping(details: Mapping[str, Any], key: str) -> dict[str, Any] | None:
    value = details.get(key)
    if value is None:
        return None
    if not isinstance(value, dict):
        raise NonRetryableError(f"details.{key} must be an object, got {type(value).__name__}")
    return value


def _apply_experiment_run(session: Session, report: StatusUpdated) -> bool:
    """Upsert the job's run. Missing or null fields keep their stored value and maps are merged,
    so a short "killed" report (the built-in backend's carries no params) does not erase what the
    "created" one reported."""
    details = report.details
    job_id = details.get("job_id")
    if not isinstance(job_id, str) or not job_id:
        raise NonRetryableError("experiment_run status without details.job_id")
    run = repository.experiment_run_for_job(session, job_id, for_update=True)
    if run is not None and run.seq >= report.seq:
        return False
    if run is None:
        run = ExperimentRun(
            id=str(uuid.uuid4()),
            job_id=job_id,
            backend="builtin",
            params={},
            tags={},
            metrics={},
            created_at=utcnow(),
        )
        session.add(run)
    run.run_id = report.entity_id
    run.status = report.phase.value
    run.reason = report.reason
    run.seq = report.seq
    run.updated_at = utcnow()
    if (experiment_id := _text(details, "experiment_id")) is not None:
        run.experiment_id = experiment_id
    if (experiment_name := _text(details, "experiment_name")) is not None:
        run.experiment_name = experiment_name
    if (run_url := _text(details, "run_url")) is not None:
        run.tracking_url = run_url
    if (backend := _text(details, "backend")) is not None:
        run.backend = backend
    for key in ("params", "tags", "metrics"):
        value = _mapping(details, key)
        if value:
            setattr(run, key, {**getattr(run, key), **value})
    return True


APPLIERS: Final[Mapping[StatusEntity, Applier]] = {
    StatusEntity.JOB: _apply_job,
    StatusEntity.EXPERIMENT_RUN: _apply_experiment_run,
}
"""The entities the read model folds today; reports about others are ignored."""


def apply_status_event(sessions: SessionFactory, event: Event, *, consumer: str) -> bool:
    """Apply one status event in one transaction; True when the read model changed."""
    report = event.payload_as(StatusUpdated)
    applier = APPLIERS.get(report.entity)
    if applier is None:
        _log.debug("status_entity_ignored", entity=str(report.entity))
        return False
    with sessions.begin() as session:
        if session.get(ProcessedEvent, event.id) is not None:
            _log.debug("status_event_duplicate")
            return False
        changed = applier(session, report)
        session.add(
            ProcessedEvent(
                event_id=event.id, consumer=consumer, event_type=event.type, processed_at=utcnow()
            )
        )
    if not changed:
        _log.debug("status_event_stale", entity=str(report.entity), seq=report.seq)
    return changed


async def handle_status_event(
    event: Event, *, sessions: SessionFactory, consumer: str
) -> Sequence[Envelope]:
    """The consumer handler: the blocking SQL work runs in a thread; no events are emitted."""
    await asyncio.to_thread(apply_status_event, sessions, event, consumer=consumer)
    return ()
