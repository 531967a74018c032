"""The model catalog: base models the training rules check against."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from sqlalchemy.exc import IntegrityError

from llmops_gateway.db import repository
from llmops_gateway.db.models import CatalogModel, utcnow
from llmops_gateway.db.session import SessionFactory
from llmops_gateway.domain.errors import ConflictError, NotFoundError


@dataclass(frozen=True, slots=True)
class RegisterModel:
    """A manual catalog entry (the family was checked against the whitelist already)."""

    name: str
    family: str
    max_position_embeddings: int
    hf_architecture: str | None = None
    source: str = "manual"


def register_model(sessions: SessionFactory, command: RegisterModel) -> CatalogModel:
    """Add the model; a name already in the catalog is a :class:`ConflictError`.

    The check before the insert gives the common case a clear message; the unique index
    settles a race between two requests with the same name.
    """
    duplicate = ConflictError(f"catalog model '{command.name}' already exists")
    try:
        with sessions.begin() as session:
            if repository.catalog_model_by_name(session, command.name) is not None:
                raise duplicate
            model = CatalogModel(
                id=str(uuid.uuid4()),
                name=command.name,
                family=command.family,
                max_position_embeddings=command.max_position_embeddings,
                hf_architecture=command.hf_architecture,
                source=command.source,
                created_at=utcnow(),
            )
            session.add(model)
    except IntegrityError as exc:
        raise duplicate from exc
    return model


def get_model(sessions: SessionFactory, model_id: str) -> CatalogModel:
    """The catalog model, or :class:`NotFoundError`."""
    with sessions() as session:
        model = session.get(CatalogModel, model_id)
    if model is None:
        raise NotFoundError(f"catalog model {model_id} not found")
    return model
