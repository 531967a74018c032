"""Fold the registry worker's model reports into the catalog (entity id = catalog model id).

* ``Running`` with ``details.progress``: the import's progress;
* ``Succeeded`` with ``details.model``: the model becomes ``Ready``, verified, with the facts
  it read (family, context length, architectures, license, files...) and its link pinned to
  the commit; a downloaded snapshot (``snapshot_uri``) becomes the model's ``storage_uri``,
  where training jobs read it; a Succeeded report without the facts is malformed
  (dead-lettered);
* ``Failed``: the model and its link are ``Failed`` with the reason, and keep no facts;
* ``details.upstream`` (a check-updates answer): only the link's check fields change, ordered
  by their own ``check_seq``; the model's status is not touched.

Reports about an unknown (deleted) model change nothing.
"""

from __future__ import annotations

from typing import Final

from sqlalchemy.orm import Session

from llmops_gateway.db import repository
from llmops_gateway.db.models import CatalogModel, RegistryModel, utcnow
from llmops_gateway.domain.catalog import FAILED, READY
from llmops_gateway.domain.locations import as_uri
from llmops_gateway.domain.reports import observed_at
from llmops_shared.events import ModelStatusUpdated, Phase
from llmops_shared.events.payloads.catalog import ImportedModel, UpstreamCheck
from llmops_shared.streams import NonRetryableError

_STATUS_OF_PHASE: Final = {Phase.SUCCEEDED: READY, Phase.READY: READY}
"""An import that succeeded leaves a model that is ready to use; other phases keep their name."""

_FACTS_EXCLUDED: Final = frozenset(
    {"registry_type", "repo_id", "revision", "url", "family", "max_position_embeddings"}
)
"""Facts that have their own columns (model or link) are not repeated in ``facts``."""


def apply_model_report(session: Session, report: ModelStatusUpdated) -> bool:
    """Apply one model report in the open transaction; True when something changed."""
    model = session.get(CatalogModel, report.entity_id, with_for_update=True)
    if model is None:
        return False
    link = repository.registry_link_of(session, model.id, for_update=True)
    upstream = report.details.upstream
    if upstream is not None:
        return link is not None and _apply_check(link, upstream, report.seq)
    if model.seq >= report.seq:
        return False
    imported = report.details.model
    if report.phase == Phase.SUCCEEDED and imported is None:
        raise NonRetryableError("a Succeeded model report needs details.model")
    model.seq = report.seq
    model.status = _STATUS_OF_PHASE.get(report.phase, report.phase.value)
    model.reason = report.reason
    model.updated_at = utcnow()
    progress = report.details.progress
    model.progress = progress.model_dump(mode="json") if progress is not None else None
    if imported is not None and report.phase == Phase.SUCCEEDED:
        _record_import(model, imported)
    if link is not None and link.seq < report.seq:
        link.seq = report.seq
        link.status = model.status
        link.reason = report.reason
        if imported is not None and report.phase == Phase.SUCCEEDED:
            link.resolved_revision = imported.revision
            link.url = imported.url
            link.last_synced_at = observed_at(report.seq)
    if model.status == FAILED and not model.verified:
        model.family = model.max_position_embeddings = None  # nothing half-imported
    return True


def _record_import(model: CatalogModel, imported: ImportedModel) -> None:
    model.family = imported.family
    model.max_position_embeddings = imported.max_position_embeddings
    model.hf_architecture = imported.architectures[0] if imported.architectures else None
    model.verified = True
    model.facts = imported.model_dump(mode="json", exclude=set(_FACTS_EXCLUDED))
    # The snapshot is the model's location, explicitly (``facts`` keeps it as reported). A
    # value that is not a URI the event contract accepts would only fail a later submission.
    if (snapshot := as_uri(imported.snapshot_uri)) is not None:
        model.storage_uri = snapshot


def _apply_check(link: RegistryModel, check: UpstreamCheck, seq: int) -> bool:
    if link.check_seq is not None and link.check_seq >= seq:
        return False
    link.check_seq = seq
    link.upstream_checked_at = check.checked_at
    link.check_error = check.error
    if check.error is None:
        link.upstream_revision = check.upstream_revision
        link.update_available = check.updated
    return True
