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

from typing import Any, Final

from llmops_shared.events import (
    DatasetRestoreRequested,
    DatasetVersionRequested,
    Envelope,
    Event,
    Phase,
    StatusEntity,
    clip_reason,
    status_event,
)
from llmops_shared.events.payloads.datasets import RestoreFacts, VersionProgress
from llmops_shared.events.payloads.details import DatasetRestoreDetails, DatasetVersionDetails
from llmops_shared.logging import get_logger
from llmops_shared.progress import ProgressReporter
from llmops_versioning.adapters.storage import describe
from llmops_versioning.ports import (
    Progress,
    RestoreRequest,
    VersioningFailed,
    VersioningPorts,
    VersionRequest,
)

REPORTER: Final = "versioning"

_log = get_logger(__name__)


async def handle_datasets_event(event: Event, ports: VersioningPorts) -> list[Envelope]:
    """Dispatch one event of ``llmops.datasets``; other types are skipped."""
    payload = event.payload
    if isinstance(payload, DatasetVersionRequested):
        return await handle_version_requested(event, payload, ports)
    if isinstance(payload, DatasetRestoreRequested):
        return await handle_restore_requested(event, payload, ports)
    _log.info("event_not_for_versioning", event_type=event.type)
    return []


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
        return report(event, StatusEntity.DATASET_VERSION, payload.version_id, Phase.RUNNING,
                      details=details)  # fmt: skip

    reporter = ProgressReporter(ports.sink, running, interval_s=ports.progress_interval_s)
    log = _log.bind(
        dataset_id=payload.dataset_id, version_id=payload.version_id, tag=payload.version_tag
    )
    async with ports.locks(payload.dataset_id):
        try:
            facts = await ports.backend.create_version(request, reporter)
        except Exception as exc:  # noqa: BLE001 - logged and reported by _failure_reason
            reason = _failure_reason(
                exc, f"version {payload.version_tag}", "version", log, ports.backend.name
            )
            return [
                report(
                    event,
                    StatusEntity.DATASET_VERSION,
                    payload.version_id,
                    Phase.FAILED,
                    reason=reason,
                    details=DatasetVersionDetails(backend=ports.backend.name),
                )
            ]
        finally:
            await reporter.drain()
    log.info(
        "version_recorded",
        backend=facts.backend,
        digest=facts.digest,
        files=facts.file_count,
        bytes=facts.total_bytes,
        revision=facts.revision,
    )
    return [
        report(
            event,
            StatusEntity.DATASET_VERSION,
            payload.version_id,
            Phase.SUCCEEDED,
            details=DatasetVersionDetails(version=facts),
        )
    ]


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
        return report(event, StatusEntity.DATASET_RESTORE, payload.restore_id, Phase.RUNNING,
                      details=DatasetRestoreDetails(restore=facts))  # fmt: skip

    reporter = ProgressReporter(ports.sink, running, interval_s=ports.progress_interval_s)
    log = _log.bind(
        dataset_id=payload.dataset_id, version_id=payload.version_id, restore_id=payload.restore_id
    )
    base = DatasetRestoreDetails(
        restore=RestoreFacts(version_id=payload.version_id, target_uri=payload.target_uri)
    )
    async with ports.locks(payload.dataset_id):
        try:
            facts = await ports.backend.restore(request, reporter)
        except Exception as exc:  # noqa: BLE001 - logged and reported by _failure_reason
            reason = _failure_reason(
                exc, f"restore of version {payload.version_tag}", "restore", log, ports.backend.name
            )
            return [
                report(
                    event,
                    StatusEntity.DATASET_RESTORE,
                    payload.restore_id,
                    Phase.FAILED,
                    reason=reason,
                    details=base,
                )
            ]
        finally:
            await reporter.drain()
    log.info("version_restored", files=facts.files_done, bytes=facts.bytes_done)
    return [
        report(
            event,
            StatusEntity.DATASET_RESTORE,
            payload.restore_id,
            Phase.SUCCEEDED,
            details=DatasetRestoreDetails(restore=facts),
        )
    ]


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


def report(
    event: Event,
    entity: StatusEntity,
    entity_id: str,
    phase: Phase,
    *,
    reason: str | None = None,
    details: DatasetVersionDetails | DatasetRestoreDetails | None = None,
) -> Envelope:
    """A status event about ``entity_id``, correlated with ``event``."""
    return status_event(
        entity,
        entity_id=entity_id,
        phase=phase,
        reporter=REPORTER,
        correlation_id=event.envelope.correlationid,
        reason=reason,
        details=details,
    )
