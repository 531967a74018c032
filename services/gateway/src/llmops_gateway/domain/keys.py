"""Stored API keys: create (the key is returned once), list, revoke, and the lookup a request's
authentication makes. See :mod:`llmops_gateway.security.api_keys` for what is stored."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from llmops_gateway.db.models import ApiKey, utcnow
from llmops_gateway.db.session import SessionFactory
from llmops_gateway.domain.errors import ConflictError, InvalidRequestError, NotFoundError
from llmops_gateway.security.api_keys import new_key
from llmops_gateway.security.roles import Grants, Role, format_grants


@dataclass(frozen=True)
class StoredKey:
    """What authentication needs of a stored key (read in a short transaction)."""

    key_id: str
    name: str
    digest: str
    grants: dict[str, Role]
    expires_at: datetime | None
    revoked_at: datetime | None


def create_key(
    sessions: SessionFactory,
    *,
    name: str,
    grants: Grants,
    expires_at: datetime | None,
    created_by: str,
) -> tuple[ApiKey, str]:
    """Store a new key named ``name``; the row and the key itself (never stored, never shown
    again). A name in use (even by a revoked key: the audit log names keys) is a conflict."""
    if not grants:
        raise InvalidRequestError("a key needs at least one role")
    if expires_at is not None and expires_at <= utcnow():
        raise InvalidRequestError("expiresAt is in the past")
    made = new_key()
    row = ApiKey(
        id=made.key_id,
        name=name,
        digest=made.digest,
        grants=format_grants(grants),
        created_by=created_by,
        expires_at=expires_at,
    )
    try:
        with sessions.begin() as session:
            if session.scalar(select(ApiKey.id).where(ApiKey.name == name)) is not None:
                raise ConflictError(f"an API key named {name!r} exists (names are never reused)")
            session.add(row)
    except IntegrityError as exc:  # a concurrent create of the same name
        raise ConflictError(f"an API key named {name!r} exists") from exc
    return row, made.key


def list_keys(sessions: SessionFactory) -> list[ApiKey]:
    """Every key, newest first (revoked ones too)."""
    with sessions() as session:
        return list(session.scalars(select(ApiKey).order_by(ApiKey.created_at.desc())))


def revoke_key(sessions: SessionFactory, key_id: str, *, revoked_by: str) -> ApiKey:
    """Revoke the key (at once: the next request with it is refused). Revoking a revoked key
    changes nothing."""
    with sessions.begin() as session:
        row = session.get(ApiKey, key_id)
        if row is None:
            raise NotFoundError(f"no API key {key_id!r}")
        if row.revoked_at is None:
            row.revoked_at = utcnow()
            row.revoked_by = revoked_by
        return row


def stored_key(sessions: SessionFactory, key_id: str) -> StoredKey | None:
    with sessions() as session:
        row = session.get(ApiKey, key_id)
        if row is None:
            return None
        return StoredKey(
            key_id=row.id,
            name=row.name,
            digest=row.digest,
            grants={scope: Role.named(role) for scope, role in row.grants.items()},
            expires_at=row.expires_at,
            revoked_at=row.revoked_at,
        )
