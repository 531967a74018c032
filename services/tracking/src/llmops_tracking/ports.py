"""What the handlers need from a tracking backend, and the errors a backend may raise.

The handlers decide *what* to record (names, params, tags, which status to report); a backend
only knows *how* (MLflow REST calls, or nothing at all for the built-in one). Backends translate
their failures into the two errors below, which are the consumer runtime's own vocabulary, so
the handlers never see an MLflow exception and the runtime knows whether to wait or give up.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Protocol

from llmops_shared.streams import DependencyUnavailableError, NonRetryableError


class TrackingUnavailable(DependencyUnavailableError):
    """The tracking system cannot be reached or answered 5xx/429: wait and retry the event."""


class TrackingRejected(NonRetryableError):
    """The tracking system refused the request (4xx); retrying the same event cannot help."""


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


class TrackingBackend(Protocol):
    """Creates, finds and stops the run of a training job.

    Implementations must be idempotent per ``job_id``: ``ensure_run`` twice for one job returns
    the same run, and ``cancel_run`` on an already stopped run reports it without changing it.
    Failures are raised as :class:`TrackingUnavailable` or :class:`TrackingRejected`.
    """

    @property
    def name(self) -> str:
        """Short backend name reported in status details (``mlflow``, ``builtin``)."""
        ...

    async def ensure_run(self, request: RunRequest) -> TrackedRun:
        """The job's run, created (with its experiment, params and tags) if it does not exist."""
        ...

    async def cancel_run(self, job_id: str, reason: str) -> TrackedRun | None:
        """Stop the job's run as killed (unless it already ended); ``None`` if it has none."""
        ...

    async def migrate_run(self, request: RunRequest, status: RunStatus) -> TrackedRun:
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
    """What the handlers are bound to in ``app.py``: the backend and how to name things."""

    backend: TrackingBackend
    environment: str
    experiment_name_template: str
