"""Response bodies of ``/events/dlq``: dead letters and their replay."""

from __future__ import annotations

from datetime import datetime

from pydantic import Field

from llmops_gateway.api.schemas.common import CamelModel, Items
from llmops_shared.streams.dead_letters import Replayed, StoredDeadLetter


class DeadLetterOut(CamelModel):
    id: str
    stream: str
    entry_id: str
    group: str | None
    consumer: str | None
    message_id: str | None
    reason: str | None
    error_type: str | None
    cause: str | None
    deliveries: int | None
    failed_at: datetime | None
    event_id: str | None
    event_type: str | None
    subject: str | None
    correlation_id: str | None
    event: str | None = Field(
        description="The event as it was on the stream; only operators of every environment "
        "see it (payloads carry specs and model locations)."
    )

    @classmethod
    def of(cls, stored: StoredDeadLetter, *, with_event: bool) -> DeadLetterOut:
        letter, fields = stored.letter, stored.fields
        event = stored.event or {}

        def text(key: str) -> str | None:
            value = event.get(key)
            return value if isinstance(value, str) else None

        deliveries = fields.get("deliveries", "")
        return cls(
            id=stored.id,
            stream=stored.stream.value,
            entry_id=stored.entry_id,
            group=letter.group if letter else fields.get("group"),
            consumer=letter.consumer if letter else fields.get("consumer"),
            message_id=letter.message_id if letter else fields.get("message_id"),
            reason=letter.reason if letter else fields.get("reason"),
            error_type=letter.error_type if letter else fields.get("error_type"),
            cause=(letter.cause if letter else fields.get("cause")) or None,
            deliveries=letter.deliveries if letter else
                int(deliveries) if deliveries.isdigit() else None,
            failed_at=letter.failed_at if letter else None,
            event_id=text("id"),
            event_type=text("type"),
            subject=text("subject"),
            correlation_id=text("correlationid"),
            event=fields.get("event", "") if with_event else None,
        )  # fmt: skip


class DeadLetterList(Items[DeadLetterOut]):
    limit: int


class ReplayOut(CamelModel):
    id: str
    stream: str
    entry_id: str
    replayed_entry_id: str

    @classmethod
    def of(cls, done: Replayed) -> ReplayOut:
        return cls.from_row(done, stream=done.stream.value)
