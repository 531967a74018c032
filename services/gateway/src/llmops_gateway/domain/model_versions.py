"""Reads of the model versions github-sync reported (``model_versions``): one page, or one
version with the training job whose pipeline registered it."""

from __future__ import annotations

from collections.abc import Sequence

from llmops_gateway.db import repository
from llmops_gateway.db.models import ModelVersion, TrainingJob
from llmops_gateway.db.session import SessionFactory
from llmops_gateway.domain.errors import found


def list_model_versions(
    sessions: SessionFactory, *, name: str | None, limit: int, offset: int
) -> Sequence[ModelVersion]:
    """One page, newest first (of one registered model when ``name`` is given)."""
    with sessions() as session:
        return repository.list_model_versions(session, name=name, limit=limit, offset=offset)


def get_model_version(
    sessions: SessionFactory, name: str, version: str
) -> tuple[ModelVersion, TrainingJob | None]:
    """The version and the job that registered it (None for one registered outside the
    platform); :class:`~llmops_gateway.domain.errors.NotFoundError` until github-sync has
    reported it."""
    with sessions() as session:
        row = found(
            session.get(ModelVersion, f"{name}/{version}"), f"model version {name}/{version}"
        )
        return row, repository.job_that_registered(session, name, version)
