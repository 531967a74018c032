"""An in-memory :class:`~llmops_tracking.ports.TrackingBackend` (runs in a dict by job id) and
in-memory :class:`~llmops_tracking.ports.RunLocks`.

Both may write to one shared ``journal`` (``lock <job>``, ``ensure_run <job>``, ``create
<job>``, ``unlock <job>``...), so a test sees what happened under which lock, in order.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field, replace

from llmops_tracking.ports import (
    RunLease,
    RunLeaseLost,
    RunLockBusy,
    RunLocks,
    RunRequest,
    RunStatus,
    TrackedRun,
    TrackingBackend,
)


@dataclass
class FakeRunLease:
    job_id: str
    lost: bool = False

    def check(self, margin_s: float = 0.0) -> None:
        if self.lost:
            raise RunLeaseLost(f"the run lock of job {self.job_id} was taken over")


@dataclass
class FakeRunLocks:
    """One ``asyncio.Lock`` per job (the replicas of a test share one instance). ``busy``: jobs
    another replica holds for longer than we wait (:class:`RunLockBusy`); ``lose``: jobs whose
    lease is taken over once held (``check`` raises); ``fail``: raised by every ``hold`` (a
    :class:`~llmops_tracking.ports.RunLockUnavailable` outage)."""

    journal: list[str] = field(default_factory=list)
    busy: set[str] = field(default_factory=set)
    lose: set[str] = field(default_factory=set)
    fail: Exception | None = None
    held: set[str] = field(default_factory=set)
    _locks: dict[str, asyncio.Lock] = field(default_factory=dict)

    @asynccontextmanager
    async def hold(self, job_id: str) -> AsyncIterator[RunLease]:
        if self.fail is not None:
            raise self.fail
        if job_id in self.busy:
            raise RunLockBusy(f"the run of job {job_id} is being changed by another replica")
        async with self._locks.setdefault(job_id, asyncio.Lock()):
            self.held.add(job_id)
            self.journal.append(f"lock {job_id}")
            try:
                yield FakeRunLease(job_id, lost=job_id in self.lose)
            finally:
                self.held.discard(job_id)
                self.journal.append(f"unlock {job_id}")


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
    journal: list[str] = field(default_factory=list)

    @property
    def name(self) -> str:
        return self.backend_name

    async def ensure_run(self, request: RunRequest, lease: RunLease) -> TrackedRun:
        self._maybe_fail()
        self.journal.append(f"ensure_run {request.job_id}")
        self.requests.append(request)
        return await self._run_of(request, lease)

    async def cancel_run(self, job_id: str, reason: str) -> TrackedRun | None:
        self._maybe_fail()
        self.journal.append(f"cancel_run {job_id}")
        self.cancels.append((job_id, reason))
        run = self.runs.get(job_id)
        if run is None or run.status.terminal:
            return run
        killed = replace(run, status=RunStatus.KILLED)
        self.runs[job_id] = killed
        return killed

    async def migrate_run(
        self, request: RunRequest, status: RunStatus, lease: RunLease
    ) -> TrackedRun:
        self._maybe_fail()
        self.journal.append(f"migrate_run {request.job_id}")
        if self.reject_migration is not None:
            raise self.reject_migration
        self.migrations.append((request, status))
        run = replace(
            await self._run_of(request, lease),
            params=dict(request.params),
            tags=dict(request.tags),
        )
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

    async def _run_of(self, request: RunRequest, lease: RunLease) -> TrackedRun:
        """The job's run, found or created as the MLflow adapter does: a search, a window in
        which another caller may run (what the job's lock closes), then a create, only under
        a valid lease."""
        found = self.runs.get(request.job_id)
        await asyncio.sleep(0)
        if found is not None:
            return self.runs[request.job_id]
        lease.check()
        self.journal.append(f"create {request.job_id}")
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


def _conforms(backend: FakeTracking, locks: FakeRunLocks) -> tuple[TrackingBackend, RunLocks]:
    return backend, locks  # mypy: the fakes implement the ports
