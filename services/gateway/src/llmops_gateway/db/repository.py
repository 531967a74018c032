"""Queries of the read model: small functions over an open session, no transactions here.

The caller (a domain function) owns the transaction, so several of these compose into one
unit of work.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Sequence
from typing import Any, TypeVar

from sqlalchemy import ColumnElement, Select, case, select
from sqlalchemy.orm import Session

from llmops_gateway.db.models import (
    CatalogDataset,
    CatalogModel,
    DatasetVersion,
    ExperimentRun,
    ModelVersion,
    RegistryModel,
    ServingDeployment,
    TrainingJob,
    WorkflowPipeline,
)

E = TypeVar(
    "E",
    CatalogDataset,
    CatalogModel,
    ModelVersion,
    ServingDeployment,
    TrainingJob,
    WorkflowPipeline,
)
R = TypeVar("R")


def _first(session: Session, query: Select[R], *, for_update: bool = False) -> R | None:
    """The first row ``query`` finds, locked (``SELECT ... FOR UPDATE``) with ``for_update``."""
    return session.scalars(query.with_for_update() if for_update else query).first()


def newest_first(
    session: Session, entity: type[E], *where: ColumnElement[Any] | None, limit: int, offset: int
) -> Sequence[E]:
    """One page of ``entity`` rows matching ``where`` (None: no condition), newest first;
    ``id`` breaks ties so pages are stable."""
    query = select(entity).where(*(clause for clause in where if clause is not None))
    query = query.order_by(entity.created_at.desc(), entity.id.desc()).limit(limit).offset(offset)
    return session.scalars(query).all()


def list_training_jobs(session: Session, *, limit: int, offset: int) -> Sequence[TrainingJob]:
    return newest_first(session, TrainingJob, limit=limit, offset=offset)


def training_job_by_idempotency_key(session: Session, key: str) -> TrainingJob | None:
    return session.scalars(select(TrainingJob).where(TrainingJob.idempotency_key == key)).first()


def catalog_model_by_name(session: Session, name: str) -> CatalogModel | None:
    return session.scalars(select(CatalogModel).where(CatalogModel.name == name)).first()


def list_catalog_models(session: Session, *, limit: int, offset: int) -> Sequence[CatalogModel]:
    return newest_first(session, CatalogModel, limit=limit, offset=offset)


def registry_links_of(session: Session, model_id: str) -> Sequence[RegistryModel]:
    """The model's registry links, oldest first."""
    query = (
        select(RegistryModel)
        .where(RegistryModel.catalog_model_id == model_id)
        .order_by(RegistryModel.created_at, RegistryModel.id)
    )
    return session.scalars(query).all()


def registry_link_of(
    session: Session, model_id: str, *, for_update: bool = False
) -> RegistryModel | None:
    """The link the model was imported through (imports make exactly one)."""
    query = (
        select(RegistryModel)
        .where(RegistryModel.catalog_model_id == model_id)
        .order_by(RegistryModel.created_at, RegistryModel.id)
        .limit(1)
    )
    return _first(session, query, for_update=for_update)


def catalog_dataset_by_name(session: Session, name: str) -> CatalogDataset | None:
    return session.scalars(select(CatalogDataset).where(CatalogDataset.name == name)).first()


def dataset_version_labels(
    session: Session, dataset_id: str, *, status: str = "Succeeded"
) -> frozenset[str]:
    """The tags of the dataset's versions in ``status`` (only Succeeded ones can be used)."""
    query = select(DatasetVersion.version).where(
        DatasetVersion.dataset_id == dataset_id, DatasetVersion.status == status
    )
    return frozenset(session.scalars(query).all())


def list_catalog_datasets(session: Session, *, limit: int, offset: int) -> Sequence[CatalogDataset]:
    return newest_first(session, CatalogDataset, limit=limit, offset=offset)


def dataset_version_by_tag(session: Session, dataset_id: str, tag: str) -> DatasetVersion | None:
    query = select(DatasetVersion).where(
        DatasetVersion.dataset_id == dataset_id, DatasetVersion.version == tag
    )
    return session.scalars(query).first()


def dataset_versions(session: Session, dataset_id: str) -> Sequence[DatasetVersion]:
    """Newest first."""
    query = (
        select(DatasetVersion)
        .where(DatasetVersion.dataset_id == dataset_id)
        .order_by(DatasetVersion.created_at.desc(), DatasetVersion.id.desc())
    )
    return session.scalars(query).all()


def latest_dataset_version(
    session: Session, dataset_id: str, *, status: str
) -> DatasetVersion | None:
    query = (
        select(DatasetVersion)
        .where(DatasetVersion.dataset_id == dataset_id, DatasetVersion.status == status)
        .order_by(DatasetVersion.created_at.desc(), DatasetVersion.id.desc())
        .limit(1)
    )
    return session.scalars(query).first()


def experiment_run_for_job(
    session: Session, job_id: str, *, for_update: bool = False
) -> ExperimentRun | None:
    query = select(ExperimentRun).where(ExperimentRun.job_id == job_id)
    return _first(session, query, for_update=for_update)


def catalog_model_by_id_or_name(session: Session, key: str) -> CatalogModel | None:
    """The catalog model whose id is ``key``, else the one named ``key``."""
    return session.get(CatalogModel, key) or catalog_model_by_name(session, key)


def training_job_producing(session: Session, artifact_name: str) -> TrainingJob | None:
    """The training job whose ``output.artifact_name`` is ``artifact_name``.

    Several jobs may have written the same artifact name (a retried job): the newest
    Succeeded one wins, else the newest one still Pending/Running; Failed and Cancelled jobs
    produced nothing and are skipped. The JSON path works on SQLite and PostgreSQL alike.
    """
    artifact = TrainingJob.spec[("output", "artifact_name")].as_string()
    query = (
        select(TrainingJob)
        .where(artifact == artifact_name, TrainingJob.status.not_in(("Failed", "Cancelled")))
        .order_by(
            case((TrainingJob.status == "Succeeded", 0), else_=1),
            TrainingJob.created_at.desc(),
            TrainingJob.id.desc(),
        )
        .limit(1)
    )
    return session.scalars(query).first()


def serving_endpoint(
    session: Session, endpoint_id: str, *, for_update: bool = False
) -> ServingDeployment | None:
    return session.get(ServingDeployment, endpoint_id, with_for_update=for_update)


def serving_endpoint_by_route(
    session: Session, environment: str, route: str
) -> ServingDeployment | None:
    query = select(ServingDeployment).where(
        ServingDeployment.environment == environment, ServingDeployment.route == route
    )
    return session.scalars(query).first()


def serving_endpoint_name_taken(session: Session, environment: str, name: str) -> bool:
    query = select(ServingDeployment.id).where(
        ServingDeployment.environment == environment, ServingDeployment.endpoint_name == name
    )
    return session.scalars(query).first() is not None


def list_serving_endpoints(
    session: Session, *, environments: Sequence[str], limit: int, offset: int
) -> Sequence[ServingDeployment]:
    where = ServingDeployment.environment.in_(environments)
    return newest_first(session, ServingDeployment, where, limit=limit, offset=offset)


def workflow_pipeline(
    session: Session, workflow_name: str, *, for_update: bool = False
) -> WorkflowPipeline | None:
    query = select(WorkflowPipeline).where(WorkflowPipeline.workflow_name == workflow_name)
    return _first(session, query, for_update=for_update)


def list_workflow_pipelines(
    session: Session, *, job_id: str | None, limit: int, offset: int
) -> Sequence[WorkflowPipeline]:
    """Newest (first reported) first."""
    where = None if job_id is None else WorkflowPipeline.job_id == job_id
    return newest_first(session, WorkflowPipeline, where, limit=limit, offset=offset)


def pipelines_of_jobs(session: Session, job_ids: Collection[str]) -> dict[str, WorkflowPipeline]:
    """The newest pipeline of each of ``job_ids`` that has one (one query for a whole page)."""
    if not job_ids:
        return {}
    query = (
        select(WorkflowPipeline)
        .where(WorkflowPipeline.job_id.in_(job_ids))
        .order_by(WorkflowPipeline.created_at, WorkflowPipeline.id)
    )
    return {p.job_id: p for p in session.scalars(query) if p.job_id is not None}


def list_model_versions(
    session: Session, *, name: str | None, limit: int, offset: int
) -> Sequence[ModelVersion]:
    where = None if name is None else ModelVersion.name == name
    return newest_first(session, ModelVersion, where, limit=limit, offset=offset)


def jobs_that_registered(
    session: Session, versions: Iterable[tuple[str, str]]
) -> list[TrainingJob]:
    """The training jobs whose pipelines registered these ``(name, version)`` model versions,
    newest first: one query by names and versions (``IN``, on the composite index), narrowed
    to the exact pairs here; an ``OR`` per pair would exceed SQLite's expression depth at a
    thousand pairs (the lineage asks for that many)."""
    wanted = set(versions)
    if not wanted:
        return []
    query = select(TrainingJob).where(
        TrainingJob.registered_model_name.in_(sorted({name for name, _ in wanted})),
        TrainingJob.registered_model_version.in_(sorted({version for _, version in wanted})),
    )
    return [
        job
        for job in session.scalars(query.order_by(TrainingJob.created_at.desc()))
        if (job.registered_model_name, job.registered_model_version) in wanted
    ]


def job_that_registered(session: Session, name: str, version: str) -> TrainingJob | None:
    """The (newest) training job whose pipeline registered ``name`` version ``version``
    (None: not a job the gateway knows, e.g. a version registered by hand in MLflow)."""
    return next(iter(jobs_that_registered(session, [(name, version)])), None)
