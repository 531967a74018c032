"""The OpenLineage outbox: the run events of training jobs still to send, and those sent.

A row is written by the status fold in the transaction that changed the job (so an event is
queued if and only if the change it announces was committed) and sent afterwards by the
emitter (:mod:`llmops_gateway.openlineage.emitter`), which builds the event from the database
at send time. Rows are kept once sent (``emitted_at``): at most two per job.
"""

from __future__ import annotations

from datetime import datetime
from typing import Final

from sqlalchemy import Index, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from llmops_gateway.db.models.base import SERIAL_ID, Base, utcnow

LAST_ERROR_LENGTH: Final = 1024
"""How much of a failed send's error a row keeps."""


class OpenLineageOutbox(Base):
    """One OpenLineage run event of one training job: ``event_type`` is START, COMPLETE, FAIL
    or ABORT, each at most once per job (unique). ``event_time`` is when the job report that
    caused it was published. ``emitted_at`` stays null until the receiver accepted the event;
    a failed send counts ``attempts``, keeps ``last_error`` (cut to its length) and is tried
    again at ``next_attempt_at`` (also the lease of a row being sent). ``given_up_at`` marks a
    row the receiver refused for good (a 4xx other than 408/429) or whose job is gone: it is
    not tried again and no longer holds back the job's later rows."""

    __tablename__ = "openlineage_outbox"
    __table_args__ = (
        UniqueConstraint("job_id", "event_type"),
        # the emitter's question: unsent rows that are due
        Index("ix_openlineage_outbox_due", "emitted_at", "next_attempt_at"),
    )

    id: Mapped[int] = mapped_column(SERIAL_ID, primary_key=True, autoincrement=True)
    job_id: Mapped[str] = mapped_column(String(64))
    event_type: Mapped[str] = mapped_column(String(16))
    event_time: Mapped[datetime]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    emitted_at: Mapped[datetime | None]
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_error: Mapped[str | None] = mapped_column(String(LAST_ERROR_LENGTH))
    given_up_at: Mapped[datetime | None]
