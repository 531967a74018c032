"""Handlers of ``llmops.datasets``: record a dataset version, restore one.

Plain async functions ``(event, ports) -> status events``; ``app.py`` binds ``ports`` with
``functools.partial``. Each handled event ends with one status report, returned to the runtime
(committed with the ack): ``dataset_version`` Succeeded with ``details.version``
(:class:`VersionFacts`) or Failed with the reason; ``dataset_restore`` Succeeded with
``details.restore`` (:class:`RestoreFacts`) or Failed. While the backend works, Running reports
with ``details.progress`` / ``details.restore`` are published directly (see ``progress.py``).
Work on one dataset is serialized (one repository must not be mutated concurrently).

Any exception of the backend ends as a Failed report, never as a retry: a :class:`VersioningFailed`
with its own reason, anything else (a bug, an unreadable ``data.dvc``...) as ``version <tag>
failed unexpectedly: <Type>: <message>``, logged with its traceback. The backend has rolled
back by then, so the gateway's row leaves Pending/Running and the tag can be requested again.
``BaseException`` (cancellation, shutdown) still propagates.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from functools import partial
from typing import Any, Final, TypeVar

from llmops_shared.dispatch import Dispatcher
from llmops_shared.events import (
    DatasetRestoreRequested,
    DatasetVersionRequested,
    Envelope,
    Event,
    Phase,
    StatusEntity,
    clip_reason,
    reply_status,
)
from llmops_shared.events.payloads.datasets import RestoreFacts, VersionProgress
from llmops_shared.events.payloads.details import DatasetRestoreDetails, DatasetVersionDetails
from llmops_shared.logging import get_logger
from llmops_shared.progress import ProgressReporter
from llmops_versioning.adapters.storage import describe
from llmops_versioning.ports import (
    Progress,
    ProgressCallback,
    RestoreRequest,
    VersioningFailed,
    VersioningPorts,
    VersionRequest,
)

REPORTER: Final = "versioning"

_log = get_logger(__name__)

version_status: Final = partial(reply_status, StatusEntity.DATASET_VERSION, reporter=REPORTER)
"""The ``dataset_version`` status event (entity id = version id) answering a handled event."""
restore_status: Final = partial(reply_status, StatusEntity.DATASET_RESTORE, reporter=REPORTER)
"""The ``dataset_restore`` status event (entity id = restore id) answering a handled event."""

T = TypeVar("T")


async def handle_version_requested(
    event: Event, payload: DatasetVersionRequested, ports: VersioningPorts
) -> list[Envelope]:
    """Record the version and report Succeeded with its facts, or Failed with the reason."""
    request = VersionRequest(
        dataset_id=payload.dataset_id,
        version_id=payload.version_id,
        version_tag=payload.version_tag,
        dataset_type=str(payload.dataset_type),
        storage_uri=payload.storage_uri,
        parent_version_id=payload.parent_version_id,
    )

    def running(progress: Progress) -> Envelope | None:
        if progress.stage == "restoring":
            return None
        facts = VersionProgress(
            stage=progress.stage,
            files_done=progress.files_done,
            files_total=progress.files_total,
            bytes_done=progress.bytes_done,
            bytes_total=progress.bytes_total,
        )
        details = DatasetVersionDetails(progress=facts, backend=ports.backend.name)
        return version_status(event, payload.version_id, Phase.RUNNING, details=details)

    log = _log.bind(
        dataset_id=payload.dataset_id, version_id=payload.version_id, tag=payload.version_tag
    )
    work = partial(ports.backend.create_version, request)
    facts = await _reported_work(
        ports, payload.dataset_id, work, running, f"version {payload.version_tag}", "version", log
    )
    if isinstance(facts, _Failure):
        failed = DatasetVersionDetails(backend=ports.backend.name)
        return [
            version_status(
                event, payload.version_id, Phase.FAILED, reason=facts.reason, details=failed
            )
        ]
    log.info(
        "version_recorded",
        backend=facts.backend,
        digest=facts.digest,
        files=facts.file_count,
        bytes=facts.total_bytes,
        revision=facts.revision,
    )
    recorded = DatasetVersionDetails(version=facts)
    return [version_status(event, payload.version_id, Phase.SUCCEEDED, details=recorded)]


async def handle_restore_requested(
    event: Event, payload: DatasetRestoreRequested, ports: VersioningPorts
) -> list[Envelope]:
    """Materialise the version at the target; Succeeded with the counts, or Failed."""
    request = RestoreRequest(
        restore_id=payload.restore_id,
        dataset_id=payload.dataset_id,
        version_id=payload.version_id,
        version_tag=payload.version_tag,
        target_uri=payload.target_uri,
    )

    def running(progress: Progress) -> Envelope:
        facts = RestoreFacts(
            version_id=payload.version_id,
            target_uri=payload.target_uri,
            files_done=progress.files_done,
            files_total=progress.files_total,
            bytes_done=progress.bytes_done,
            bytes_total=progress.bytes_total,
        )
        details = DatasetRestoreDetails(restore=facts)
        return restore_status(event, payload.restore_id, Phase.RUNNING, details=details)

    log = _log.bind(
        dataset_id=payload.dataset_id, version_id=payload.version_id, restore_id=payload.restore_id
    )
    subject = f"restore of version {payload.version_tag}"
    work = partial(ports.backend.restore, request)
    facts = await _reported_work(ports, payload.dataset_id, work, running, subject, "restore", log)
    if isinstance(facts, _Failure):
        base = DatasetRestoreDetails(
            restore=RestoreFacts(version_id=payload.version_id, target_uri=payload.target_uri)
        )
        return [
            restore_status(
                event, payload.restore_id, Phase.FAILED, reason=facts.reason, details=base
            )
        ]
    log.info("version_restored", files=facts.files_done, bytes=facts.bytes_done)
    restored = DatasetRestoreDetails(restore=facts)
    return [restore_status(event, payload.restore_id, Phase.SUCCEEDED, details=restored)]


@dataclass(frozen=True)
class _Failure:
    """Work that ended in an exception: the Failed report's reason."""

    reason: str | None


async def _reported_work(
    ports: VersioningPorts,
    dataset_id: str,
    work: Callable[[ProgressCallback], Awaitable[T]],
    running: Callable[[Progress], Envelope | None],
    subject: str,
    kind: str,
    log: Any,
) -> T | _Failure:
    """Run ``work`` under the dataset's lock with throttled Running reports (``running``),
    drained before the final report is built; any exception ends as a :class:`_Failure`."""
    reporter = ProgressReporter(ports.sink, running, interval_s=ports.progress_interval_s)
    async with ports.locks(dataset_id):
        try:
            return await work(reporter)
        except Exception as exc:  # noqa: BLE001 - logged and reported by _failure_reason
            return _Failure(_failure_reason(exc, subject, kind, log, ports.backend.name))
        finally:
            await reporter.drain()


def _failure_reason(exc: Exception, subject: str, kind: str, log: Any, backend: str) -> str | None:
    """The Failed report's reason. A :class:`VersioningFailed` says why itself; anything else is
    unforeseen (a bug, a corrupt object): it is logged with its traceback and still ends the
    work as Failed, so a version or restore never stays Running."""
    if isinstance(exc, VersioningFailed):
        reason = clip_reason(str(exc))
        log.warning(f"{kind}_failed", reason=reason, backend=backend)
        return reason
    log.exception(f"{kind}_failed_unexpectedly", backend=backend)
    return clip_reason(f"{subject} failed unexpectedly: {describe(exc)}")


handle_datasets_event: Final[Dispatcher[VersioningPorts]] = Dispatcher(
    "versioning",
    {
        DatasetVersionRequested: handle_version_requested,
        DatasetRestoreRequested: handle_restore_requested,
    },
)
"""The handler of ``llmops.datasets``: ``handler(event, ports)``; other types are skipped."""
