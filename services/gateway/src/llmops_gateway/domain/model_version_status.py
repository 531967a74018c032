"""Fold github-sync's model-version reports (entity id ``<name>/<version>``) into
``model_versions``: which values file it wrote for the version, in which commit or pull
request, and whether the sync worked.

Reports are ordered by ``seq``; a stale or repeated one changes nothing. A Succeeded report
states the whole sync (github-sync sends each fact again, null where nothing was written: a
skipped version has no file), so it replaces the facts; a Failed one says only why, so the
file and commit of the last sync that worked stay (they are still in Git). A report without
the ``<name>/<version>`` shape is dead-lettered: nothing else could read it.
"""

from __future__ import annotations

from sqlalchemy.orm import Session

from llmops_gateway.db.models import ModelVersion, utcnow
from llmops_shared.events import ModelVersionStatusUpdated, Phase
from llmops_shared.streams import NonRetryableError


def apply_model_version(session: Session, report: ModelVersionStatusUpdated) -> bool:
    """Apply one report in the open transaction; True when something changed."""
    name, slash, version = report.entity_id.rpartition("/")
    if not slash or not name or not version:
        raise NonRetryableError(
            f"model_version entity id {report.entity_id!r} is not <name>/<version>"
        )
    row = session.get(ModelVersion, report.entity_id, with_for_update=True)
    if row is None:
        row = ModelVersion(id=report.entity_id, name=name, version=version, seq=0)
        session.add(row)
    elif row.seq >= report.seq:
        return False
    row.seq = report.seq
    row.status = report.phase.value
    row.reason = report.reason
    row.updated_at = utcnow()
    if report.phase is not Phase.SUCCEEDED:
        return True
    details = report.details
    row.backend = details.backend
    row.path = details.path
    row.action = details.action
    row.commit = details.commit
    row.pull_request = details.pull_request
    row.max_model_len = details.max_model_len
    row.capped = details.capped
    return True
