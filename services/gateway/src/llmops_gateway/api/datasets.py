"""``/catalog/datasets``: datasets, their versions (DVC or built-in), diffs and restores."""

from __future__ import annotations

from typing import Annotated

from fastapi import Query, status

from llmops_gateway.api.deps import CorrelationId, Pagination, State
from llmops_gateway.api.routes import Routes
from llmops_gateway.api.schemas.datasets import (
    DatasetList,
    DatasetOut,
    DatasetRequest,
    DiffOut,
    RestoreOut,
    RestoreRequest,
    VersionList,
    VersionOut,
    VersionRequest,
)
from llmops_gateway.domain.datasets import (
    CreateDataset,
    CreateVersion,
    create_dataset,
    create_version,
    diff_versions,
    get_dataset,
    get_restore,
    get_version,
    list_catalog_datasets,
    list_versions,
    request_restore,
)
from llmops_gateway.security.access import Scope

routes = Routes.at(
    "/catalog/datasets",
    tag="datasets",
    scope=Scope.ANY,
    not_found="No such dataset, version or restore",
    conflict="A duplicate name or tag, or a version not in the needed state",
)
router = routes.router


@routes.command("", status_code=status.HTTP_201_CREATED, summary="Register a dataset")
def create(body: DatasetRequest, state: State) -> DatasetOut:
    command = CreateDataset(
        name=body.name,
        type=body.type,
        storage_uri=body.storage_uri,
        schema_ref=body.schema_ref,
        description=body.description,
    )
    return DatasetOut.of(create_dataset(state.sessions, command))


@routes.page(summary="List datasets, newest first")
def list_datasets(state: State, page: Pagination) -> DatasetList:
    datasets = list_catalog_datasets(state.sessions, limit=page.limit, offset=page.offset)
    return DatasetList.of([DatasetOut.of(d) for d in datasets], page)


@routes.read("/{dataset_id}", summary="Read one")
def read(dataset_id: str, state: State) -> DatasetOut:
    return DatasetOut.of(get_dataset(state.sessions, dataset_id))


@routes.command(
    "/{dataset_id}/versions", summary="Create a version: snapshot the dataset's data now"
)
def create_dataset_version(
    dataset_id: str, body: VersionRequest, state: State, correlation_id: CorrelationId
) -> VersionOut:
    """Store the version as Pending and queue the snapshot; the versioning worker reports
    progress and, when done, the version's digest, counts and manifest. Follow ``statusUrl``.
    A Failed version's tag may be asked for again: that retries it."""
    command = CreateVersion(
        dataset_id=dataset_id,
        version_tag=body.version_tag,
        storage_uri=body.storage_uri,
        correlation_id=correlation_id,
    )
    version = create_version(state.sessions, command)
    state.wake_relay()
    return VersionOut.of(version)


@routes.read("/{dataset_id}/versions", summary="List the dataset's versions, newest first")
def read_versions(dataset_id: str, state: State) -> VersionList:
    versions = list_versions(state.sessions, dataset_id)
    return VersionList(items=[VersionOut.of(v) for v in versions])


@routes.read("/{dataset_id}/versions/{version_id}", summary="Read a version")
def read_version(dataset_id: str, version_id: str, state: State) -> VersionOut:
    return VersionOut.of(get_version(state.sessions, dataset_id, version_id))


@routes.read(
    "/{dataset_id}/versions/{version_id}/diff",
    responses={422: {"description": "No base: the version has no parent"}},
    summary="Files added, modified and deleted since a base version",
)
def diff(
    dataset_id: str,
    version_id: str,
    state: State,
    base_version_id: Annotated[
        str | None,
        Query(alias="baseVersionId", description="Default: the version's parent."),
    ] = None,
) -> DiffOut:
    """Computed from the two versions' stored manifests (path, md5, size): fast, and the data
    is never read. Both versions must have Succeeded."""
    base, version, changes = diff_versions(state.sessions, dataset_id, version_id, base_version_id)
    return DiffOut.of(base, version, changes)


@routes.command(
    "/{dataset_id}/versions/{version_id}/restore",
    summary="Materialise the version's files at a target URI",
    scope=Scope.GATEWAY,  # it writes files where the worker's credentials reach
)
def restore(
    dataset_id: str,
    version_id: str,
    body: RestoreRequest,
    state: State,
    correlation_id: CorrelationId,
) -> RestoreOut:
    """Queue the restore; the versioning worker writes the version byte for byte into the
    (empty) target and reports progress. Follow ``statusUrl``."""
    record = request_restore(
        state.sessions,
        dataset_id,
        version_id,
        target_uri=body.target_uri,
        correlation_id=correlation_id,
    )
    state.wake_relay()
    return RestoreOut.of(record, dataset_id)


@routes.read("/{dataset_id}/versions/{version_id}/restores/{restore_id}", summary="Read a restore")
def read_restore(dataset_id: str, version_id: str, restore_id: str, state: State) -> RestoreOut:
    return RestoreOut.of(
        get_restore(state.sessions, dataset_id, version_id, restore_id), dataset_id
    )
