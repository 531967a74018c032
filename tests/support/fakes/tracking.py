"""An in-memory :class:`~llmops_tracking.ports.TrackingBackend`: runs in a dict by job id."""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from llmops_tracking.ports import RunRequest, RunStatus, TrackedRun, TrackingBackend


@dataclass
class FakeTracking:
    """Idempotent per job id, as the port requires: a second ``ensure_run`` returns the run the
    first one made. ``fail`` is raised by every call (a :class:`TrackingUnavailable` outage, a
    :class:`TrackingRejected` refusal); ``reject_migration`` only by ``migrate_run``."""

    backend_name: str = "fake"
    ui_url: str | None = "http://tracking.test"
    note: str | None = None
    fail: Exception | None = None
    reject_migration: Exception | None = None
    runs: dict[str, TrackedRun] = field(default_factory=dict)
    """job id -> its run, as the backend holds it now."""
    requests: list[RunRequest] = field(default_factory=list)
    cancels: list[tuple[str, str]] = field(default_factory=list)
    migrations: list[tuple[RunRequest, RunStatus]] = field(default_factory=list)
    experiments: dict[str, str] = field(default_factory=dict)
    """experiment name -> id, created on first use."""
    pings: int = 0

    @property
    def name(self) -> str:
        return self.backend_name

    async def ensure_run(self, request: RunRequest) -> TrackedRun:
        self._maybe_fail()
        self.requests.append(request)
        return self._run_of(request)

    async def cancel_run(self, job_id: str, reason: str) -> TrackedRun | None:
        self._maybe_fail()
        self.cancels.append((job_id, reason))
        run = self.runs.get(job_id)
        if run is None or run.status.terminal:
            return run
        killed = replace(run, status=RunStatus.KILLED)
        self.runs[job_id] = killed
        return killed

    async def migrate_run(self, request: RunRequest, status: RunStatus) -> TrackedRun:
        self._maybe_fail()
        if self.reject_migration is not None:
            raise self.reject_migration
        self.migrations.append((request, status))
        run = replace(self._run_of(request), params=dict(request.params), tags=dict(request.tags))
        if status.terminal and not run.status.terminal:
            run = replace(run, status=status)
        self.runs[request.job_id] = run
        return run

    async def ping(self) -> None:
        self._maybe_fail()
        self.pings += 1

    def set_status(self, job_id: str, status: RunStatus) -> None:
        """What the trainer does to a run outside this worker (finishes it, fails it)."""
        self.runs[job_id] = replace(self.runs[job_id], status=status)

    def _run_of(self, request: RunRequest) -> TrackedRun:
        if (run := self.runs.get(request.job_id)) is not None:
            return run
        experiment_id = self.experiments.setdefault(
            request.experiment_name, str(len(self.experiments) + 1)
        )
        run_id = f"run{len(self.runs) + 1:04d}"
        run = TrackedRun(
            run_id=run_id,
            experiment_id=experiment_id,
            experiment_name=request.experiment_name,
            run_url=f"{self.ui_url}/#/experiments/{experiment_id}/runs/{run_id}"
            if self.ui_url
            else None,
            status=RunStatus.RUNNING,
            params=dict(request.params),
            tags=dict(request.tags),
            note=self.note,
        )
        self.runs[request.job_id] = run
        return run

    def _maybe_fail(self) -> None:
        if self.fail is not None:
            raise self.fail


def _conforms(backend: FakeTracking) -> TrackingBackend:
    return backend  # mypy: the fake is a TrackingBackend
