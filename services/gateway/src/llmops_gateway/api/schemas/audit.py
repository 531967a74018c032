"""Bodies of ``GET /audit``."""

from __future__ import annotations

from datetime import datetime

from llmops_gateway.api.schemas.common import CamelModel, Page


class AuditRecordOut(CamelModel):
    id: int
    at: datetime
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
    note: str | None


class AuditPage(Page[AuditRecordOut]):
    pass
