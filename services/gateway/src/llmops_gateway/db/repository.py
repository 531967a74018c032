"""Queries of the read model: small functions over an open session, no transactions here.

The caller (a domain function) owns the transaction, so several of these compose into one
unit of work.
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.orm import Session

from llmops_gateway.db.models import (
    CatalogDataset,
    CatalogModel,
    DatasetVersion,
    ExperimentRun,
    TrainingJob,
)


def list_training_jobs(session: Session, *, limit: int, offset: int) -> Sequence[TrainingJob]:
    """Newest first; ``id`` breaks ties so pages are stable."""
    query = (
        select(TrainingJob)
        .order_by(TrainingJob.created_at.desc(), TrainingJob.id.desc())
        .limit(limit)
        .offset(offset)
    )
    return session.scalars(query).all()


def training_job_by_idempotency_key(session: Session, key: str) -> TrainingJob | None:
    return session.scalars(select(TrainingJob).where(TrainingJob.idempotency_key == key)).first()


def catalog_model_by_name(session: Session, name: str) -> CatalogModel | None:
    return session.scalars(select(CatalogModel).where(CatalogModel.name == name)).first()


def list_catalog_models(session: Session, *, limit: int, offset: int) -> Sequence[CatalogModel]:
    query = (
        select(CatalogModel)
        .order_by(CatalogModel.created_at.desc(), CatalogModel.id.desc())
        .limit(limit)
        .offset(offset)
    )
    return session.scalars(query).all()


def catalog_dataset_by_name(session: Session, name: str) -> CatalogDataset | None:
    return session.scalars(select(CatalogDataset).where(CatalogDataset.name == name)).first()


def dataset_version_labels(session: Session, dataset_id: str) -> frozenset[str]:
    query = select(DatasetVersion.version).where(DatasetVersion.dataset_id == dataset_id)
    return frozenset(session.scalars(query).all())


def experiment_run_for_job(
    session: Session, job_id: str, *, for_update: bool = False
) -> ExperimentRun | None:
    query = select(ExperimentRun).where(ExperimentRun.job_id == job_id)
    if for_update:
        query = query.with_for_update()
    return session.scalars(query).first()
