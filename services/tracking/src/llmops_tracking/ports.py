"""What the handlers need from a tracking backend, and the errors a backend may raise.

The handlers decide *what* to record (names, params, tags, which status to report); a backend
only knows *how* (MLflow REST calls, or nothing at all for the built-in one). Backends translate
their failures into the two errors below, which are the consumer runtime's own vocabulary, so
the handlers never see an MLflow exception and the runtime knows whether to wait or give up.
"""

from __future__ import annotations

from collections.abc import Mapping
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Protocol

from llmops_shared.streams import DependencyUnavailableError, NonRetryableError


class TrackingUnavailable(DependencyUnavailableError):
    """The tracking system cannot be reached or answered 5xx/429: wait and retry the event."""


class TrackingRejected(NonRetryableError):
    """The tracking system refused the request (4xx); retrying the same event cannot help."""


class RunLockBusy(Exception):
    """Another replica held the job's run lock for longer than we wait (a plain retryable
    error: the event is retried, and after ``max_deliveries`` dead-lettered)."""


class RunLeaseLost(Exception):
    """Our hold on the job's run lock expired or was taken over before we created anything
    (retryable: the retry searches again and finds the run the new holder made)."""


class RunLockUnavailable(DependencyUnavailableError):
    """The store of the run locks (Redis) cannot be reached: wait and retry the event."""


class RunStatus(StrEnum):
    """A run's lifecycle in the tracking system (MLflow's ``RunStatus`` names)."""

    SCHEDULED = "SCHEDULED"
    RUNNING = "RUNNING"
    FINISHED = "FINISHED"
    FAILED = "FAILED"
    KILLED = "KILLED"

    @property
    def terminal(self) -> bool:
        """Finished one way or another: a cancel no longer changes it."""
        return self in {RunStatus.FINISHED, RunStatus.FAILED, RunStatus.KILLED}


@dataclass(frozen=True)
class RunRequest:
    """The run a training job should have, derived from the submitted event alone.

    Everything here is deterministic in the event, so a redelivery asks for the same run.
    """

    job_id: str
    experiment_name: str
    run_name: str
    params: Mapping[str, str]
    tags: Mapping[str, str]
    start_time_ms: int | None = None
    """When the run started, in epoch ms (a migrated record's creation); ``None``: now. Only
    used when the run is created."""
    end_time_ms: int | None = None
    """When the run ended, in epoch ms (a migrated record's end); ``None``: now. Only used
    when the run is ended here."""


@dataclass(frozen=True)
class TrackedRun:
    """A run as the backend holds it (``run_url`` is ``None`` when there is no UI).

    ``note`` is something the backend wants every report to say (the built-in backend: the
    record lives in the gateway only); it becomes the status event's ``reason``.
    """

    run_id: str
    experiment_id: str
    experiment_name: str | None
    run_url: str | None
    status: RunStatus
    params: Mapping[str, str] = field(default_factory=dict)
    tags: Mapping[str, str] = field(default_factory=dict)
    note: str | None = None


class RunLease(Protocol):
    """A hold on one job's run lock, valid until its lease runs out (renewed while held)."""

    @property
    def job_id(self) -> str: ...

    def check(self, margin_s: float = 0.0) -> None:
        """Raise :class:`RunLeaseLost` unless the lock is still ours for at least ``margin_s``
        more seconds. Cheap and synchronous (no I/O): safe to call from a worker thread right
        before a create, with ``margin_s`` the longest that create may take."""
        ...


class RunLocks(Protocol):
    """One lock per job, shared by every replica of the worker: whoever finds-or-creates,
    changes or cancels a job's run holds it, so two replicas never both miss the run and both
    create one (docs/tracking.md, "Two events for one job, two replicas")."""

    def hold(self, job_id: str) -> AbstractAsyncContextManager[RunLease]:
        """Wait for the job's lock and hold it for the block; raises :class:`RunLockBusy`
        when another holder keeps it too long, :class:`RunLockUnavailable` when the store is
        down. Released at the end of the block whatever happens in it."""
        ...


class TrackingBackend(Protocol):
    """Creates, finds and stops the run of a training job.

    Implementations must be idempotent per ``job_id``: ``ensure_run`` twice for one job returns
    the same run, and ``cancel_run`` on an already stopped run reports it without changing it.
    Across replicas this holds because callers hold the job's :class:`RunLocks` lock and pass
    its ``lease``: a backend that creates a run checks the lease right before creating it.
    Failures are raised as :class:`TrackingUnavailable` or :class:`TrackingRejected` (and
    :class:`RunLeaseLost` from ``lease.check``).
    """

    @property
    def name(self) -> str:
        """Short backend name reported in status details (``mlflow``, ``builtin``)."""
        ...

    async def ensure_run(self, request: RunRequest, lease: RunLease) -> TrackedRun:
        """The job's run, created (with its experiment, params and tags) if it does not exist."""
        ...

    async def cancel_run(self, job_id: str, reason: str) -> TrackedRun | None:
        """Stop the job's run as killed (unless it already ended); ``None`` if it has none."""
        ...

    async def migrate_run(
        self, request: RunRequest, status: RunStatus, lease: RunLease
    ) -> TrackedRun:
        """Move a built-in run record here: the job's run, created or reused as by
        ``ensure_run``, with ``request``'s params and tags, ended as ``status`` when that is
        terminal and the run has not ended yet. A backend that cannot hold runs (the built-in
        one) raises :class:`TrackingRejected` saying why."""
        ...

    async def ping(self) -> None:
        """Raise unless the backend can serve requests now (readiness)."""
        ...


@dataclass(frozen=True)
class TrackingPorts:
    """What the handlers are bound to in ``app.py``: the backend, the per-job locks shared
    with the other replicas, and how to name things."""

    backend: TrackingBackend
    locks: RunLocks
    environment: str
    experiment_name_template: str
