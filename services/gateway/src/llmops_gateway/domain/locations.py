"""Where a training job's inputs are: the base model's files and the exact dataset version.

The gateway resolves both at submission, from what the catalog recorded, and puts them on
``TrainingJobSubmitted`` (``base_model_uri``, ``dataset_version``): the trainer then reads
exactly what the catalog vouched for when the job was accepted, not whatever a name points to
when a stage happens to run (a re-import, a new dataset version, files changed in place).
"""

from __future__ import annotations

import re
from typing import Final

from pydantic import ValidationError
from sqlalchemy.orm import Session

from llmops_gateway.db import repository
from llmops_gateway.db.models import CatalogDataset, CatalogModel
from llmops_gateway.domain.reports import brief
from llmops_shared.events.fields import URI_PATTERN
from llmops_shared.events.payloads.training import DatasetVersionPin
from llmops_shared.logging import get_logger
from llmops_shared.specs import DatasetRef

_log = get_logger(__name__)

_URI: Final = re.compile(URI_PATTERN)
_MAX_URI: Final = 2048
HUGGINGFACE: Final = "huggingface"
SUCCEEDED: Final = "Succeeded"


def as_uri(value: str | None) -> str | None:
    """``value`` when it is a :data:`llmops_shared.events.fields.Uri` (a scheme or an absolute
    path, no whitespace), else None: a location the event contract would refuse is no
    location (and must not make a submission fail with a 500)."""
    if value is None or len(value) > _MAX_URI or _URI.fullmatch(value) is None:
        return None
    return value


def model_location(session: Session, model: CatalogModel) -> str | None:
    """Where a catalog model's files are, for a job that trains on it.

    The model's ``storage_uri`` (typed in with a manual entry, or the snapshot its import
    downloaded); else, for a model imported from the Hub and pinned to a commit,
    ``hf://<repo id>@<commit>`` (the trainer downloads exactly that commit); else None (a
    manual entry without a location, or an import recorded with the registry off, which has
    no commit).
    """
    if (stored := as_uri(model.storage_uri)) is not None:
        return stored
    link = repository.registry_link_of(session, model.id)
    if link is None or link.registry_kind != HUGGINGFACE or not link.resolved_revision:
        return None
    return as_uri(f"hf://{link.repo_id}@{link.resolved_revision}")


def dataset_version_pin(
    session: Session, dataset: CatalogDataset, ref: DatasetRef
) -> DatasetVersionPin | None:
    """The recorded content of the version ``ref`` names: the dataset's Succeeded version
    tagged ``ref.version``, as the versioning worker reported it (backend, tag, the manifest's
    '.dir' digest, the remote holding the objects, the git revision).

    None when the dataset has no such Succeeded version (the training rules refuse a job on
    it first; a dataset the catalog does not know, accepted with
    ``TRAINING_REQUIRES_DATASET_VERSION=false``, never gets here) or its recorded facts do not
    make a pin (a row without a backend, digest or remote): the trainer then reads the spec's
    ``storage_uri`` as it is, which is what it did before pins existed.
    """
    version = repository.dataset_version_by_tag(session, dataset.id, ref.version)
    if version is None or version.status != SUCCEEDED:
        return None
    try:
        return DatasetVersionPin.model_validate(
            {
                "version_id": version.id,
                "dataset_id": version.dataset_id,
                "backend": version.system,
                # the worker tags a version with its label: the label stands in for a row
                # recorded without the tag
                "tag": version.tag or version.version,
                "digest": version.digest,
                "remote_uri": version.remote_uri,
                "revision": version.revision,
            }
        )
    except ValidationError as exc:
        _log.warning(
            "dataset_version_not_pinned",
            dataset=dataset.name,
            version=ref.version,
            version_id=version.id,
            error=brief(exc),
        )
        return None
