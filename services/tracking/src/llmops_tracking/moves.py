"""Moving a built-in run record to the tracking system, on request (``migrate
experiments-to-mlflow``): the ``ExperimentMigrationRequested`` handler and its answers.

The run a record moves to is the run its job would have had (:func:`move_request`), plus what
the record holds; the report is the run's usual one with ``details.migration``
(:class:`~llmops_shared.events.payloads.details.RunMove`, built by :func:`move_facts`), and a
move that cannot be done is answered on the built-in record (:func:`move_failed`).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Final

from pydantic import JsonValue

from llmops_shared.events import (
    Envelope,
    Event,
    ExperimentMigrationRequested,
    Phase,
    TrainingJobSubmitted,
)
from llmops_shared.events.payloads.details import ExperimentRunDetails, RunMove
from llmops_shared.logging import get_logger
from llmops_tracking.adapters.builtin import builtin_run_id
from llmops_tracking.mapping import (
    JOB_ID_TAG,
    PHASES,
    run_details,
    run_request,
    run_status,
)
from llmops_tracking.ports import RunRequest, RunStatus, TrackingPorts, TrackingRejected

MIGRATED_FROM_TAG: Final = "llmops.migrated_from"
"""Set on a run that ``migrate experiments-to-mlflow`` moved from the built-in backend."""
MOVED_FROM: Final = "builtin"
"""Where a moved run comes from: the tag's value and ``details.migration.source``."""
STARTED_AT_TAG: Final = "llmops.builtin_started_at"
"""ISO 8601 time the built-in record was created: a moved run's MLflow ``start_time``."""
ENDED_AT_TAG: Final = "llmops.builtin_ended_at"
"""ISO 8601 time the built-in record (or its job) ended: a moved run's MLflow ``end_time``."""

CARRIED_STATUSES: Final = {
    **{status.value.lower(): status for status in RunStatus},
    **{phase.value.lower(): status for status, phase in PHASES.items()},
}
"""``run_status`` of a move request: MLflow's names (``FINISHED``) or the gateway's phases
(``Succeeded``), case-insensitive."""

_log = get_logger(__name__)


async def handle_move(
    event: Event, move: ExperimentMigrationRequested, ports: TrackingPorts
) -> list[Envelope]:
    """Move a built-in run record to the tracking system and report it like any run.

    The run is the job's own (created or reused by the job id tag, so a redelivery or a second
    request reuses it), with the record's params and tags, tagged ``llmops.migrated_from`` and
    ended like the record when its status is terminal. The report is the normal one (backend,
    run id, experiment, URL) plus ``details.migration``; its ``seq`` is now, later than any
    report of the built-in record. A move that cannot be done (the built-in backend runs
    here, the tracking system refuses the record, an unknown ``run_status``) is answered on
    the built-in run with ``details.migration.outcome = failed``, the reason and the request's
    id, so the command does not wait forever; that answer is about the move, not the run: the
    gateway keeps the record's status and reason. An unreachable tracking system keeps the
    event pending like any other.
    """
    status = CARRIED_STATUSES.get(move.run_status.strip().lower())
    if status is None:
        expected = ", ".join(s.value for s in RunStatus)
        return [
            move_failed(
                event,
                move,
                f"unknown run_status {move.run_status!r} (expected one of {expected})",
            )
        ]
    request = move_request(
        move,
        environment=ports.environment,
        experiment_name_template=ports.experiment_name_template,
    )
    try:
        async with ports.locks.hold(move.job_id) as lease:
            run = await ports.backend.migrate_run(request, status, lease)
    except TrackingRejected as exc:
        _log.warning(
            "run_move_failed",
            job_id=move.job_id,
            target=move.target,
            backend=ports.backend.name,
            reason=str(exc),
        )
        return [move_failed(event, move, str(exc))]
    _log.info(
        "run_moved",
        job_id=move.job_id,
        run_id=run.run_id,
        experiment=run.experiment_name,
        status=run.status.value,
    )
    details = run_details(run, job_id=move.job_id, backend=ports.backend.name)
    details.migration = move_facts(move, outcome="migrated")
    return [run_status(event, run.run_id, PHASES[run.status], details=details)]


def move_facts(
    move: ExperimentMigrationRequested,
    *,
    outcome: str,
    reason: str | None = None,
    request_id: str | None = None,
) -> RunMove:
    """``details.migration`` of a move's report (a failure's has its reason and the
    request's id)."""
    failure = {"reason": reason, "request_id": request_id} if outcome == "failed" else {}
    return RunMove(
        source=MOVED_FROM,
        target=move.target,
        outcome=outcome,
        run_status=move.run_status,
        **failure,
    )


def move_failed(event: Event, move: ExperimentMigrationRequested, reason: str) -> Envelope:
    """The answer to a move that failed, on the built-in run record: ``Failed`` with the
    reason, and ``details.migration`` saying it is the move that failed (with the reason and
    the request's envelope id, which the gateway keeps so the command can tell this request's
    failure from an older one's). No ``backend`` nor experiment in the details: the record
    stays what it was, built-in; the gateway never takes the phase or reason of such a report
    as the run's."""
    reason = f"migration to {move.target} failed: {reason}"
    details = ExperimentRunDetails(
        job_id=move.job_id,
        migration=move_facts(move, outcome="failed", reason=reason, request_id=event.id),
    )
    return run_status(
        event, builtin_run_id(move.job_id), Phase.FAILED, reason=reason, details=details
    )


def epoch_ms(value: JsonValue) -> int | None:
    """An ISO 8601 time (naive means UTC) as epoch milliseconds; ``None`` when it is not one."""
    if not isinstance(value, str):
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return int(moment.timestamp() * 1000)


def recorded_value(value: JsonValue) -> str:
    """A param or tag value the gateway recorded, as MLflow stores it: strings as they are,
    scalars as :func:`~llmops_tracking.mapping.flatten_params` writes them (``str()``), objects
    and lists as JSON."""
    if isinstance(value, str):
        return value
    if isinstance(value, dict | list):
        return json.dumps(value, separators=(",", ":"), sort_keys=True)
    return str(value)


def _recorded(values: Mapping[str, JsonValue]) -> dict[str, str]:
    return {key: recorded_value(value) for key, value in values.items() if value is not None}


def move_request(
    move: ExperimentMigrationRequested, *, environment: str, experiment_name_template: str
) -> RunRequest:
    """The run a built-in run record moves to: the run its job would have had (same experiment,
    name, spec params and tags), plus what the built-in record holds (recorded values win: they
    are what users saw), tagged ``llmops.migrated_from=builtin``. The job id tag is always the
    event's, so a redelivered request (or the job's own earlier run) is found and reused.
    The record's times, sent as the tags ``llmops.builtin_started_at`` / ``_ended_at`` (the
    event has no timestamps), become the run's start and end time."""
    job = TrainingJobSubmitted(job_id=move.job_id, spec=move.spec)
    base = run_request(
        job, environment=environment, experiment_name_template=experiment_name_template
    )
    return RunRequest(
        job_id=move.job_id,
        experiment_name=base.experiment_name,
        run_name=base.run_name,
        params={**base.params, **_recorded(move.params)},
        tags={
            **base.tags,
            **_recorded(move.tags),
            JOB_ID_TAG: move.job_id,
            MIGRATED_FROM_TAG: MOVED_FROM,
        },
        start_time_ms=epoch_ms(move.tags.get(STARTED_AT_TAG)),
        end_time_ms=epoch_ms(move.tags.get(ENDED_AT_TAG)),
    )
