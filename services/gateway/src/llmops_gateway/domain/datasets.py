"""Catalog datasets and their versions: create, version, diff, restore.

A version is stored (Pending) together with its ``DatasetVersionRequested`` in one
transaction; the versioning worker snapshots the data (DVC, or the built-in content-hash
store) and reports the version's facts and manifest, which the gateway keeps so that a diff
between any two versions is answered from the database, without touching the data.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from llmops_gateway.db import repository
from llmops_gateway.db.models import CatalogDataset, DatasetRestore, DatasetVersion, utcnow
from llmops_gateway.db.session import SessionFactory
from llmops_gateway.domain.errors import ConflictError, InvalidRequestError, found
from llmops_gateway.domain.outbox import publish
from llmops_shared.events import DatasetRestoreRequested, DatasetVersionRequested, Phase
from llmops_shared.events.payloads.datasets import ManifestEntry
from llmops_shared.manifest_diff import ManifestDiff, diff_manifests
from llmops_shared.specs import DatasetType

SUCCEEDED: Final = Phase.SUCCEEDED.value
FAILED: Final = Phase.FAILED.value
PENDING: Final = Phase.PENDING.value


@dataclass(frozen=True, slots=True)
class CreateDataset:
    name: str
    type: DatasetType
    storage_uri: str
    schema_ref: str | None
    description: str | None


@dataclass(frozen=True, slots=True)
class CreateVersion:
    dataset_id: str
    version_tag: str
    storage_uri: str | None
    correlation_id: str


def create_dataset(sessions: SessionFactory, command: CreateDataset) -> CatalogDataset:
    """Add the dataset; a name already in the catalog is a :class:`ConflictError`."""
    duplicate = ConflictError(f"dataset '{command.name}' already exists")
    try:
        with sessions.begin() as session:
            if repository.catalog_dataset_by_name(session, command.name) is not None:
                raise duplicate
            dataset = CatalogDataset(
                id=str(uuid.uuid4()),
                name=command.name,
                type=command.type.value,
                storage_uri=command.storage_uri,
                schema_ref=command.schema_ref,
                description=command.description,
                created_at=utcnow(),
            )
            session.add(dataset)
    except IntegrityError as exc:
        raise duplicate from exc
    return dataset


def get_dataset(sessions: SessionFactory, dataset_id: str) -> CatalogDataset:
    with sessions() as session:
        return _dataset(session, dataset_id)


def list_catalog_datasets(
    sessions: SessionFactory, *, limit: int, offset: int
) -> Sequence[CatalogDataset]:
    """One page of the datasets, newest first."""
    with sessions() as session:
        return repository.list_catalog_datasets(session, limit=limit, offset=offset)


def _dataset(session: Session, dataset_id: str) -> CatalogDataset:
    return found(session.get(CatalogDataset, dataset_id), f"dataset {dataset_id}")


def _version(session: Session, dataset_id: str, version_id: str) -> DatasetVersion:
    version = session.get(DatasetVersion, version_id)
    if version is not None and version.dataset_id != dataset_id:
        version = None
    return found(version, f"version {version_id} of dataset {dataset_id}")


def create_version(sessions: SessionFactory, command: CreateVersion) -> DatasetVersion:
    """Store the version (Pending) and queue its snapshot.

    A tag already used by the dataset is a :class:`ConflictError`, except a Failed version's
    tag: asking again retries that version in place (the worker left nothing of the failed
    attempt). The parent is the newest Succeeded version, for lineage and default diffs.
    """
    try:
        with sessions.begin() as session:
            dataset = _dataset(session, command.dataset_id)
            storage_uri = command.storage_uri or dataset.storage_uri
            if storage_uri is None:
                raise InvalidRequestError(
                    f"dataset {dataset.id} has no storage_uri: give one in the request"
                )
            if dataset.type is None:
                raise InvalidRequestError(
                    f"dataset {dataset.id} has no type: it cannot be versioned"
                )
            existing = repository.dataset_version_by_tag(session, dataset.id, command.version_tag)
            if existing is not None and existing.status != FAILED:
                raise _tag_taken(dataset, existing)
            parent = repository.latest_dataset_version(session, dataset.id, status=SUCCEEDED)
            version = existing or DatasetVersion(
                id=str(uuid.uuid4()), dataset_id=dataset.id, version=command.version_tag,
                seq=0, created_at=utcnow(),
            )  # fmt: skip
            version.status = PENDING
            version.reason = version.progress = None
            version.storage_uri = storage_uri
            version.parent_version_id = parent.id if parent is not None else None
            version.correlation_id = command.correlation_id
            version.updated_at = utcnow()
            session.add(version)
            session.flush()  # the (dataset, tag) unique index speaks before the event is queued
            publish(
                session,
                DatasetVersionRequested(
                    dataset_id=dataset.id,
                    version_id=version.id,
                    version_tag=command.version_tag,
                    dataset_type=DatasetType(dataset.type),
                    storage_uri=storage_uri,
                    parent_version_id=version.parent_version_id,
                ),
                command.correlation_id,
            )
    except IntegrityError as exc:
        raise ConflictError(
            f"version tag '{command.version_tag}' already exists for dataset {command.dataset_id}"
        ) from exc
    return version


def _tag_taken(dataset: CatalogDataset, version: DatasetVersion) -> ConflictError:
    return ConflictError(
        f"version tag '{version.version}' already exists for dataset '{dataset.name}' "
        f"(version {version.id}, {version.status})"
    )


def list_versions(sessions: SessionFactory, dataset_id: str) -> list[DatasetVersion]:
    with sessions() as session:
        _dataset(session, dataset_id)
        return list(repository.dataset_versions(session, dataset_id))


def get_version(sessions: SessionFactory, dataset_id: str, version_id: str) -> DatasetVersion:
    with sessions() as session:
        return _version(session, dataset_id, version_id)


def diff_versions(
    sessions: SessionFactory, dataset_id: str, version_id: str, base_version_id: str | None
) -> tuple[DatasetVersion, DatasetVersion, ManifestDiff]:
    """The base, the version and what changed between them; the base defaults to the
    version's parent. Both must have Succeeded (only they have a manifest)."""
    with sessions() as session:
        version = _version(session, dataset_id, version_id)
        base_id = base_version_id or version.parent_version_id
        if base_id is None:
            raise InvalidRequestError(
                f"version {version_id} has no parent version: give baseVersionId"
            )
        base = _version(session, dataset_id, base_id)
    return base, version, diff_manifests(_manifest(base), _manifest(version))


def _manifest(version: DatasetVersion) -> list[ManifestEntry]:
    """The stored ``[path, md5, size]`` rows as entries; only Succeeded versions have them."""
    if version.status != SUCCEEDED or version.files is None:
        raise ConflictError(
            f"version {version.id} ({version.version}) is {version.status}: a diff needs two "
            "Succeeded versions"
        )
    return [(str(path), str(md5), int(size)) for path, md5, size in version.files]


def request_restore(
    sessions: SessionFactory,
    dataset_id: str,
    version_id: str,
    *,
    target_uri: str,
    correlation_id: str,
) -> DatasetRestore:
    """Store the restore (Pending) and queue it; only a Succeeded version can be restored."""
    with sessions.begin() as session:
        version = _version(session, dataset_id, version_id)
        if version.status != SUCCEEDED:
            raise ConflictError(
                f"version {version.id} ({version.version}) is {version.status}: only a "
                "Succeeded version can be restored"
            )
        now = utcnow()
        restore = DatasetRestore(
            id=str(uuid.uuid4()), version_id=version.id, target_uri=target_uri,
            status=PENDING, seq=0, created_at=now, updated_at=now,
        )  # fmt: skip
        session.add(restore)
        publish(
            session,
            DatasetRestoreRequested(
                restore_id=restore.id,
                dataset_id=dataset_id,
                version_id=version.id,
                version_tag=version.version,
                target_uri=target_uri,
            ),
            correlation_id,
        )
    return restore


def get_restore(
    sessions: SessionFactory, dataset_id: str, version_id: str, restore_id: str
) -> DatasetRestore:
    with sessions() as session:
        _version(session, dataset_id, version_id)
        restore = session.get(DatasetRestore, restore_id)
    if restore is not None and restore.version_id != version_id:
        restore = None
    return found(restore, f"restore {restore_id} of version {version_id}")
