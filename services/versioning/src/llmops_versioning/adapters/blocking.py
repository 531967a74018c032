"""What the two backends share: blocking work behind the async port, and per-dataset locks.

Both backends do their work with blocking file I/O (and DVC with subprocesses), so the async
surface of :class:`~llmops_versioning.ports.VersioningBackend` is the same thin layer over a
thread for each; so is turning an ``OSError`` (a full disk, a store that is not writable) into
a :class:`VersioningFailed` with a reason the gateway can show, and so is the file lock that
keeps two worker processes on one volume from working on one dataset at the same time.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import os
from abc import ABC, abstractmethod
from collections.abc import Iterator
from pathlib import Path

from llmops_shared.events.payloads.datasets import RestoreFacts, VersionFacts
from llmops_versioning.adapters.storage import describe
from llmops_versioning.ports import (
    ProgressCallback,
    RestoreRequest,
    VersioningFailed,
    VersionRequest,
)
from llmops_versioning.safety import check_name


class BlockingBackend(ABC):
    """A backend whose work is blocking: the async port runs it in a thread.

    Subclasses implement :meth:`_create_version`, :meth:`_restore` and :meth:`_ping_sync`; the
    ``*_sync`` methods are the blocking entry points (tests call them directly).
    """

    async def create_version(
        self, request: VersionRequest, progress: ProgressCallback
    ) -> VersionFacts:
        return await asyncio.to_thread(self.create_version_sync, request, progress)

    async def restore(self, request: RestoreRequest, progress: ProgressCallback) -> RestoreFacts:
        return await asyncio.to_thread(self.restore_sync, request, progress)

    async def ping(self) -> None:
        await asyncio.to_thread(self._ping_sync)

    def create_version_sync(
        self, request: VersionRequest, progress: ProgressCallback
    ) -> VersionFacts:
        """Record a version (blocking); an ``OSError`` fails the version with its reason."""
        try:
            return self._create_version(request, progress)
        except OSError as exc:  # the store is not writable, the disk is full...
            raise VersioningFailed(
                f"cannot record version {request.version_tag}: {describe(exc)}"
            ) from exc

    def restore_sync(self, request: RestoreRequest, progress: ProgressCallback) -> RestoreFacts:
        """Materialise a version at the target (blocking); an ``OSError`` fails the restore."""
        try:
            return self._restore(request, progress)
        except OSError as exc:
            raise VersioningFailed(
                f"cannot restore version {request.version_tag}: {describe(exc)}"
            ) from exc

    @abstractmethod
    def _create_version(
        self, request: VersionRequest, progress: ProgressCallback
    ) -> VersionFacts: ...

    @abstractmethod
    def _restore(self, request: RestoreRequest, progress: ProgressCallback) -> RestoreFacts: ...

    @abstractmethod
    def _ping_sync(self) -> None:
        """Raise unless the backend can work now."""


def check_writable(directory: Path) -> None:
    """Create ``directory`` if needed; raise ``PermissionError`` unless it is writable.

    Readiness checks this before any event arrives, so a read-only volume shows as not ready
    instead of failing every version.
    """
    directory.mkdir(parents=True, exist_ok=True)
    if not os.access(directory, os.W_OK):
        raise PermissionError(f"{directory} is not writable")


@contextlib.contextmanager
def dataset_lock(locks_dir: Path, dataset_id: str) -> Iterator[None]:
    """An exclusive file lock on the dataset (two worker processes on one volume).

    ``flock`` and not an in-process lock: the worker also serializes per dataset in process,
    but several workers may share the store or the repositories.
    """
    locks_dir.mkdir(parents=True, exist_ok=True)
    with open(locks_dir / f"{check_name(dataset_id, what='dataset id')}.lock", "a+b") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
