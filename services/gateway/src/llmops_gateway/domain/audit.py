"""The audit log: appending a record, and reading it back with filters.

Append-only by construction: this module is the only writer of ``audit_log`` and it only
inserts (a test checks that no code updates or deletes a record). Each record is its own
transaction, written after the operation's own transaction, before the answer leaves (an
unexpected error's 500 too): a crash of the process in between (the operation done, the answer
not sent) can lose that one record; when the database refuses it, the whole record goes to the
log (``audit_write_failed``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, select

from llmops_gateway.db.models import AuditRecord
from llmops_gateway.db.session import SessionFactory


@dataclass(frozen=True)
class AuditEntry:
    """What happened: who (``actor``, None when no credential was verified), what (operation,
    entity, environment), how it ended (outcome: succeeded, failed or refused, with the HTTP
    status), the correlation id and a note."""

    actor: str | None
    actor_kind: str
    operation: str
    method: str
    path: str
    entity_kind: str | None
    entity_id: str | None
    environment: str | None
    outcome: str
    status_code: int
    correlation_id: str | None
    note: str | None = None


@dataclass(frozen=True)
class AuditFilter:
    actor: str | None = None
    operation: str | None = None
    entity_kind: str | None = None
    entity_id: str | None = None
    environment: str | None = None
    outcome: str | None = None
    since: datetime | None = None
    until: datetime | None = None


def fitted(entry: AuditEntry) -> AuditEntry:
    """``entry`` with every text cut to its column's length: a long path parameter or
    correlation id must not make the record fail (and the caller's action go unlogged)."""
    columns = AuditRecord.__table__.columns
    cut: dict[str, Any] = {}
    for name, value in vars(entry).items():
        length = getattr(columns[name].type, "length", None)
        if isinstance(value, str) and length is not None and len(value) > length:
            cut[name] = value[: length - 1] + "…"
    return replace(entry, **cut) if cut else entry


def record_audit(sessions: SessionFactory, entry: AuditEntry) -> None:
    with sessions.begin() as session:
        session.add(AuditRecord(**vars(entry)))


def list_audit(
    sessions: SessionFactory, where: AuditFilter, *, limit: int, offset: int
) -> Sequence[AuditRecord]:
    """One page of records matching ``where``, newest first."""
    clauses: list[ColumnElement[bool]] = [
        column == value
        for column, value in (
            (AuditRecord.actor, where.actor),
            (AuditRecord.operation, where.operation),
            (AuditRecord.entity_kind, where.entity_kind),
            (AuditRecord.entity_id, where.entity_id),
            (AuditRecord.environment, where.environment),
            (AuditRecord.outcome, where.outcome),
        )
        if value is not None
    ]
    if where.since is not None:
        clauses.append(AuditRecord.at >= where.since)
    if where.until is not None:
        clauses.append(AuditRecord.at < where.until)
    query = select(AuditRecord).where(*clauses).order_by(AuditRecord.id.desc())
    with sessions() as session:
        return session.scalars(query.limit(limit).offset(offset)).all()
