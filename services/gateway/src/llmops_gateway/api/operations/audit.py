"""``GET /audit``: who did what, where and when, and every refused attempt (admins of every
environment; the log spans them all). Newest first, filtered and paged."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import Query

from llmops_gateway.api.auth import guarded
from llmops_gateway.api.deps import Pagination, State
from llmops_gateway.api.routes import api_router
from llmops_gateway.api.schemas.audit import AuditPage, AuditRecordOut
from llmops_gateway.api.schemas.common import DateTimeText
from llmops_gateway.domain.audit import AuditFilter, list_audit
from llmops_gateway.security.access import Access, Scope
from llmops_gateway.security.roles import Role
from llmops_shared.config import Environment

router = api_router("/audit", tag="security")

Text = Annotated[str | None, Query(max_length=256)]


@router.get("", summary="The audit log, newest first", **guarded(Access(Role.ADMIN, Scope.ALL)))
def audit_log(
    state: State,
    page: Pagination,
    actor: Text = None,
    operation: Annotated[
        str | None, Query(max_length=128, description="e.g. 'POST /serving/endpoints'")
    ] = None,
    entity_kind: Annotated[str | None, Query(alias="entityKind", max_length=64)] = None,
    entity_id: Annotated[str | None, Query(alias="entityId", max_length=256)] = None,
    environment: Environment | None = None,
    outcome: Literal["succeeded", "failed", "refused"] | None = None,
    since: Annotated[DateTimeText | None, Query(description="From this time on")] = None,
    until: Annotated[DateTimeText | None, Query(description="Before this time")] = None,
) -> AuditPage:
    where = AuditFilter(
        actor=actor,
        operation=operation,
        entity_kind=entity_kind,
        entity_id=entity_id,
        environment=environment,
        outcome=outcome,
        since=since,
        until=until,
    )
    records = list_audit(state.sessions, where, limit=page.limit, offset=page.offset)
    return AuditPage.of([AuditRecordOut.from_row(r) for r in records], page)
