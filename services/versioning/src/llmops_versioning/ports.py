"""What the handlers need from a versioning backend, and the failure a backend reports.

The handlers decide *what* to report (status entity, phase, details); a backend only knows
*how* to record a version (git + DVC, or the built-in object store) and to put one back. A
backend raises :class:`VersioningFailed` with a one-line reason for every failure the user can
act on (missing data, duplicate tag, unreachable remote...), after undoing whatever it had
started; the handler turns it into a ``Failed`` report. Anything else is a bug: the backend
still rolls back, and the handler reports it as Failed ("... failed unexpectedly: Type: message")
so the version's row never stays Running.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal, Protocol

from llmops_shared.events.payloads.datasets import RestoreFacts, VersionFacts
from llmops_shared.streams import StatusSink as StatusSink  # re-exported for app.py

Stage = Literal["fetching", "hashing", "committing", "pushing", "restoring"]


class VersioningFailed(Exception):
    """A version or restore that cannot be done; the message is the report's reason."""


@dataclass(frozen=True, slots=True)
class Progress:
    """How far an operation is; ``restoring`` is the stage of a restore."""

    stage: Stage
    files_done: int = 0
    files_total: int = 0
    bytes_done: int = 0
    bytes_total: int = 0


ProgressCallback = Callable[[Progress], None]
"""Called by backends from their worker thread; must be cheap and never raise."""


def no_progress(_: Progress) -> None:
    """A progress callback that drops everything."""


@dataclass(frozen=True, slots=True)
class VersionRequest:
    """A version to record (from ``DatasetVersionRequested``)."""

    dataset_id: str
    version_id: str
    version_tag: str
    dataset_type: str
    storage_uri: str
    parent_version_id: str | None = None


@dataclass(frozen=True, slots=True)
class RestoreRequest:
    """A version to materialise (from ``DatasetRestoreRequested``)."""

    restore_id: str
    dataset_id: str
    version_id: str
    version_tag: str
    target_uri: str


class VersioningBackend(Protocol):
    """Records dataset versions and restores them.

    ``create_version`` is idempotent per ``(dataset_id, version_tag, version_id)``: called again
    for a recorded version it returns the same facts and changes nothing; a tag recorded for
    another version id raises :class:`VersioningFailed`. A failed call leaves no version behind.
    ``restore`` is idempotent per ``restore_id``. Both block only their own thread pool.
    """

    @property
    def name(self) -> Literal["dvc", "builtin"]:
        """Backend name reported in ``VersionFacts.backend``."""
        ...

    async def create_version(
        self, request: VersionRequest, progress: ProgressCallback
    ) -> VersionFacts:
        """Record ``request.storage_uri`` as a new version and return its facts."""
        ...

    async def restore(self, request: RestoreRequest, progress: ProgressCallback) -> RestoreFacts:
        """Write the version's files, byte for byte, to ``request.target_uri``."""
        ...

    async def ping(self) -> None:
        """Raise unless the backend can work now (readiness)."""
        ...


@dataclass
class DatasetLocks:
    """One asyncio lock per dataset id: a dataset's repository is mutated by one task at once."""

    _locks: dict[str, asyncio.Lock] = field(default_factory=dict)

    def __call__(self, dataset_id: str) -> asyncio.Lock:
        return self._locks.setdefault(dataset_id, asyncio.Lock())


@dataclass(frozen=True)
class VersioningPorts:
    """What the handlers are bound to in ``app.py``."""

    backend: VersioningBackend
    sink: StatusSink | None = None
    progress_interval_s: float = 0.5
    locks: DatasetLocks = field(default_factory=DatasetLocks)
