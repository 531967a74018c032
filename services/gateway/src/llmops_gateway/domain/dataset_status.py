"""Fold the versioning worker's reports into dataset versions and restores.

* a version report (entity id = version id): ``status`` / ``reason`` follow the phase;
  ``details.progress`` is kept while Running; a Succeeded report must carry
  ``details.version`` (backend, digest, counts, git revision and tag, remote, manifest), which
  is stored for diffs; a Failed version keeps no facts (the worker left nothing behind);
* a restore report (entity id = restore id): status, reason and the counts of
  ``details.restore``.

Both are ordered by ``seq``; reports about unknown rows change nothing.
"""

from __future__ import annotations

from sqlalchemy.orm import Session

from llmops_gateway.db.models import DatasetRestore, DatasetVersion, utcnow
from llmops_shared.events import DatasetRestoreStatusUpdated, DatasetVersionStatusUpdated, Phase
from llmops_shared.events.payloads.datasets import VersionFacts
from llmops_shared.streams import NonRetryableError


def apply_version_report(session: Session, report: DatasetVersionStatusUpdated) -> bool:
    """Apply one dataset-version report in the open transaction."""
    version = session.get(DatasetVersion, report.entity_id, with_for_update=True)
    if version is None or version.seq >= report.seq:
        return False
    facts = report.details.version
    if report.phase == Phase.SUCCEEDED and facts is None:
        raise NonRetryableError("a Succeeded dataset_version report needs details.version")
    progress = report.details.progress
    version.seq = report.seq
    version.status = report.phase.value
    version.reason = report.reason
    version.progress = progress.model_dump(mode="json") if progress is not None else None
    version.updated_at = utcnow()
    if report.phase == Phase.SUCCEEDED and facts is not None:
        _record(version, facts)
    elif report.phase == Phase.FAILED:
        _forget(version)
    return True


def _record(version: DatasetVersion, facts: VersionFacts) -> None:
    version.system = facts.backend
    version.digest = facts.digest
    version.file_count = facts.file_count
    version.total_bytes = facts.total_bytes
    version.revision = facts.revision
    version.tag = facts.tag
    version.remote_uri = facts.remote_uri
    version.files = [list(entry) for entry in facts.files]


def _forget(version: DatasetVersion) -> None:
    version.digest = version.revision = version.tag = version.remote_uri = None
    version.file_count = version.total_bytes = None
    version.files = None


def apply_restore_report(session: Session, report: DatasetRestoreStatusUpdated) -> bool:
    """Apply one restore report in the open transaction."""
    restore = session.get(DatasetRestore, report.entity_id, with_for_update=True)
    if restore is None or restore.seq >= report.seq:
        return False
    facts = report.details.restore
    restore.seq = report.seq
    restore.status = report.phase.value
    restore.reason = report.reason
    restore.updated_at = utcnow()
    if facts is not None:
        restore.files_done, restore.files_total = facts.files_done, facts.files_total
        restore.bytes_done, restore.bytes_total = facts.bytes_done, facts.bytes_total
    return True
