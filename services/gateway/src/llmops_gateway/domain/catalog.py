"""The model catalog: manual entries, imports from a registry, and their readiness.

An import stores the entry (Pending) and its ``ModelImportRequested`` in one transaction; the
registry worker's reports then make it Ready with the facts it read, or Failed with why (see
``llmops_gateway.domain.status``). With the registry integration off, an import records the
request's own facts at once, marked unverified: the built-in fallback.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from llmops_gateway.db import repository
from llmops_gateway.db.models import CatalogModel, RegistryModel, utcnow
from llmops_gateway.db.session import SessionFactory
from llmops_gateway.domain.errors import CatalogRuleError, ConflictError, found
from llmops_gateway.domain.outbox import publish
from llmops_shared.events import ModelImportRequested, ModelUpdateCheckRequested
from llmops_shared.specs import ModelFacts, RuleViolation

READY: Final = "Ready"
FAILED: Final = "Failed"
PENDING: Final = "Pending"


@dataclass(frozen=True, slots=True)
class RegisterModel:
    """A manual catalog entry (the family was checked against the whitelist already)."""

    name: str
    family: str
    max_position_embeddings: int
    hf_architecture: str | None = None
    storage_uri: str | None = None
    """Where the model's files are (a URI or an absolute path), when the person knows."""
    source: str = "manual"


@dataclass(frozen=True, slots=True)
class ImportModel:
    """An import request (``registry_model_id`` matched the registry's repo id syntax)."""

    registry_type: str
    registry_model_id: str
    revision: str | None
    name: str | None
    download: bool
    family: str | None
    max_position_embeddings: int | None
    correlation_id: str

    @property
    def catalog_name(self) -> str:
        """The entry's name: the one asked for, else the repo id."""
        return self.name or self.registry_model_id


def _duplicate(name: str) -> ConflictError:
    return ConflictError(f"catalog model '{name}' already exists")


def register_model(sessions: SessionFactory, command: RegisterModel) -> CatalogModel:
    """Add the model (Ready); a name already in the catalog is a :class:`ConflictError`.

    The check before the insert gives the common case a clear message; the unique index
    settles a race between two requests with the same name.
    """
    try:
        with sessions.begin() as session:
            if repository.catalog_model_by_name(session, command.name) is not None:
                raise _duplicate(command.name)
            model = _new_model(
                command.name,
                source=command.source,
                status=READY,
                family=command.family,
                max_position_embeddings=command.max_position_embeddings,
            )
            model.hf_architecture = command.hf_architecture
            model.storage_uri = command.storage_uri
            session.add(model)
    except IntegrityError as exc:
        raise _duplicate(command.name) from exc
    return model


def import_model(
    sessions: SessionFactory, command: ImportModel, *, registry_enabled: bool
) -> CatalogModel:
    """Start an import (or, with the registry off, record the request's facts unverified).

    A name already in the catalog is a :class:`ConflictError`, except a Failed import of the
    same repo and revision: importing it again retries it in place (after fixing a token, or
    once the Hub is back), keeping its id.
    """
    if not registry_enabled:
        return _record_unverified(sessions, command)
    name = command.catalog_name
    try:
        with sessions.begin() as session:
            existing = repository.catalog_model_by_name(session, name)
            if existing is not None:
                model = _retry_failed_import(session, existing, command)
            elif (other := _link_of_source(session, command)) is not None:
                raise _imported_as(command, other)
            else:
                model = _new_model(name, source=command.registry_type, status=PENDING)
                session.add(model)
                session.add(_new_link(model, command, status=PENDING))
            session.flush()  # the unique indexes speak now, before the event is queued
            publish(
                session,
                ModelImportRequested(
                    model_id=model.id,
                    registry_type="huggingface",
                    registry_model_id=command.registry_model_id,
                    revision=command.revision,
                    download=command.download,
                ),
                command.correlation_id,
            )
    except IntegrityError as exc:
        raise _already_imported(sessions, command) from exc
    return model


def _retry_failed_import(
    session: Session, model: CatalogModel, command: ImportModel
) -> CatalogModel:
    link = repository.registry_link_of(session, model.id)
    same_source = (
        link is not None
        and link.registry_kind == command.registry_type
        and link.repo_id == command.registry_model_id
        and link.revision == command.revision
    )
    if model.status != FAILED or link is None or not same_source:
        raise _duplicate(model.name)
    model.status = link.status = PENDING
    model.reason = link.reason = None
    model.progress = None
    model.updated_at = utcnow()
    return model


def _link_of_source(session: Session, command: ImportModel) -> RegistryModel | None:
    """The link of an earlier import of the same repo and revision, if any."""
    revision = RegistryModel.revision
    query = select(RegistryModel).where(
        RegistryModel.registry_kind == command.registry_type,
        RegistryModel.repo_id == command.registry_model_id,
        revision.is_(None) if command.revision is None else revision == command.revision,
        RegistryModel.catalog_model_id.is_not(None),
    )
    return session.scalars(query.limit(1)).first()


def _imported_as(command: ImportModel, link: RegistryModel) -> ConflictError:
    at = f"@{command.revision}" if command.revision else ""
    return ConflictError(
        f"'{command.registry_model_id}{at}' is already imported as catalog model "
        f"{link.catalog_model_id}"
    )


def _already_imported(sessions: SessionFactory, command: ImportModel) -> ConflictError:
    """The 409 for a lost race: by name, or the same repo and revision under another name."""
    with sessions() as session:
        link = _link_of_source(session, command)
    return _duplicate(command.catalog_name) if link is None else _imported_as(command, link)


def _record_unverified(sessions: SessionFactory, command: ImportModel) -> CatalogModel:
    """The built-in fallback: the request's facts, as they are, marked unverified."""
    violations = [
        RuleViolation(
            (field,),
            f"{field} is required when the model registry integration is disabled "
            "(MODEL_REGISTRY_ENABLED=false): the gateway cannot read it from the registry",
            "registry_disabled_facts_required",
        )
        for field, value in (
            ("family", command.family),
            ("max_position_embeddings", command.max_position_embeddings),
        )
        if value is None
    ]
    if violations:
        raise CatalogRuleError(violations)
    name = command.catalog_name
    try:
        with sessions.begin() as session:
            if repository.catalog_model_by_name(session, name) is not None:
                raise _duplicate(name)
            if (other := _link_of_source(session, command)) is not None:
                raise _imported_as(command, other)
            model = _new_model(
                name,
                source=command.registry_type,
                status=READY,
                family=command.family,
                max_position_embeddings=command.max_position_embeddings,
            )
            model.reason = "recorded from the request: the model registry integration is off"
            session.add(model)
            session.add(_new_link(model, command, status=READY))
    except IntegrityError as exc:
        raise _already_imported(sessions, command) from exc
    return model


def _new_model(
    name: str,
    *,
    source: str,
    status: str,
    family: str | None = None,
    max_position_embeddings: int | None = None,
) -> CatalogModel:
    now = utcnow()
    return CatalogModel(
        id=str(uuid.uuid4()),
        name=name,
        family=family,
        max_position_embeddings=max_position_embeddings,
        source=source,
        status=status,
        verified=False,
        seq=0,
        created_at=now,
        updated_at=now,
    )


def _new_link(model: CatalogModel, command: ImportModel, *, status: str) -> RegistryModel:
    now = utcnow()
    return RegistryModel(
        id=str(uuid.uuid4()),
        catalog_model_id=model.id,
        registry_kind=command.registry_type,
        repo_id=command.registry_model_id,
        revision=command.revision,
        status=status,
        seq=0,
        created_at=now,
        updated_at=now,
    )


def request_update_check(
    sessions: SessionFactory, model_id: str, *, correlation_id: str, registry_enabled: bool
) -> RegistryModel:
    """Ask the registry worker whether upstream moved past the pinned commit.

    Only a Ready, imported model has a pinned commit to compare; anything else is a
    :class:`ConflictError`, as is a check with the registry integration off.
    """
    with sessions.begin() as session:
        model = _model(session, model_id)
        link = repository.registry_link_of(session, model_id)
        if link is None:
            raise ConflictError(f"catalog model {model_id} was not imported from a registry")
        if not registry_enabled:
            raise ConflictError(
                "the model registry integration is disabled (MODEL_REGISTRY_ENABLED=false)"
            )
        if model.status != READY or link.resolved_revision is None:
            raise ConflictError(
                f"catalog model {model_id} has no pinned revision yet (status {model.status})"
            )
        publish(
            session,
            ModelUpdateCheckRequested(
                model_id=model.id,
                registry_type="huggingface",
                registry_model_id=link.repo_id,
                revision=link.revision,
                pinned_revision=link.resolved_revision,
            ),
            correlation_id,
        )
    return link


def _model(session: Session, model_id: str) -> CatalogModel:
    return found(session.get(CatalogModel, model_id), f"catalog model {model_id}")


def get_model(sessions: SessionFactory, model_id: str) -> CatalogModel:
    """The catalog model, or ``NotFoundError``."""
    with sessions() as session:
        return _model(session, model_id)


def list_catalog_models(
    sessions: SessionFactory, *, limit: int, offset: int
) -> Sequence[CatalogModel]:
    """One page of the catalog, newest first."""
    with sessions() as session:
        return repository.list_catalog_models(session, limit=limit, offset=offset)


def registry_links(sessions: SessionFactory, model_id: str) -> list[RegistryModel]:
    """The model's registry links (empty for a manual entry); ``NotFoundError`` if the model
    does not exist."""
    with sessions() as session:
        _model(session, model_id)
        return list(repository.registry_links_of(session, model_id))


def usable_facts(
    model: CatalogModel, loc: tuple[str, ...], ref: str
) -> tuple[ModelFacts | None, list[RuleViolation]]:
    """The facts the training and serving rules check against, or why the model cannot be
    used yet: an import still running or failed has no trustworthy facts."""
    if model.status != READY:
        state = "failed" if model.status == FAILED else f"is {model.status}"
        return None, [
            RuleViolation(
                loc,
                f"Model '{ref}' is not ready to use: its import {state}"
                + (f" ({model.reason})" if model.reason and model.status == FAILED else ""),
                "catalog_model_ready",
                input=ref,
            )
        ]
    return ModelFacts(model.name, model.family, model.max_position_embeddings), []
