"""The built-in backend (``EXPERIMENT_TRACKING_ENABLED=false``): no tracking system at all.

The platform keeps working without MLflow: the run record lives in the gateway's database only,
built from the status events this worker reports. The run id is derived from the job id
(``builtin-<job_id>``), so it is stable across redeliveries without any state here.
"""

from __future__ import annotations

from typing import Final

from llmops_tracking.ports import RunLease, RunRequest, RunStatus, TrackedRun, TrackingRejected

EXPERIMENT_ID: Final = "builtin"
NOTE: Final = (
    "experiment tracking is disabled (EXPERIMENT_TRACKING_ENABLED=false): "
    "the run record lives in the gateway DB only"
)
MIGRATION_REFUSED: Final = (
    "experiment tracking is disabled (EXPERIMENT_TRACKING_ENABLED=false): "
    "enable it before migrating"
)


def builtin_run_id(job_id: str) -> str:
    """The run id of a job when no tracking system is used."""
    return f"builtin-{job_id}"


class BuiltinTracking:
    """A :class:`~llmops_tracking.ports.TrackingBackend` that records nothing itself."""

    @property
    def name(self) -> str:
        return "builtin"

    async def ensure_run(self, request: RunRequest, lease: RunLease) -> TrackedRun:
        """The record's run id is the job's, so there is nothing to create (nor to fence)."""
        return TrackedRun(
            run_id=builtin_run_id(request.job_id),
            experiment_id=EXPERIMENT_ID,
            experiment_name=request.experiment_name,
            run_url=None,
            status=RunStatus.RUNNING,
            params=dict(request.params),
            tags=dict(request.tags),
            note=NOTE,
        )

    async def cancel_run(self, job_id: str, reason: str) -> TrackedRun | None:
        """Always a killed run: whether the job exists is the gateway's to know, not ours.

        The cancel event carries no spec, so the experiment name, params and tags are unknown
        here; the gateway keeps the ones the submission reported.
        """
        return TrackedRun(
            run_id=builtin_run_id(job_id),
            experiment_id=EXPERIMENT_ID,
            experiment_name=None,
            run_url=None,
            status=RunStatus.KILLED,
            tags={"llmops.job_id": job_id},
            note=NOTE,
        )

    async def migrate_run(
        self, request: RunRequest, status: RunStatus, lease: RunLease
    ) -> TrackedRun:
        """Refused: a run can only move to a tracking system, and this worker runs none."""
        raise TrackingRejected(MIGRATION_REFUSED)

    async def ping(self) -> None:
        """Always ready: there is nothing to reach."""
