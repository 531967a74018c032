"""What the chain from data to a live endpoint needs beyond the entities themselves: the model
versions github-sync wrote to Git (folded from its ``model_version`` reports), and every report
folded (an entity's timeline)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, Boolean, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from llmops_gateway.db.models.base import SERIAL_ID, Base, utcnow


class ModelVersion(Base):
    """An MLflow model version as github-sync last reported it: the Helm values file it wrote
    (``path``), in which commit (``commit``, the ``pull_request`` when it opened one), through
    which backend, and whether the sync succeeded (``status``, ``reason``). ``seq`` orders the
    reports; the id is github-sync's entity id, ``<name>/<version>``."""

    __tablename__ = "model_versions"
    __table_args__ = (UniqueConstraint("name", "version"),)

    id: Mapped[str] = mapped_column(String(320), primary_key=True)
    name: Mapped[str] = mapped_column(String(256))
    version: Mapped[str] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(32))
    reason: Mapped[str | None] = mapped_column(Text)
    seq: Mapped[int] = mapped_column(BigInteger)
    backend: Mapped[str | None] = mapped_column(String(32))
    path: Mapped[str | None] = mapped_column(String(1024))
    action: Mapped[str | None] = mapped_column(String(32))
    commit: Mapped[str | None] = mapped_column(String(64), index=True)
    pull_request: Mapped[str | None] = mapped_column(String(2048))
    max_model_len: Mapped[int | None] = mapped_column(Integer)
    capped: Mapped[bool | None] = mapped_column(Boolean)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class StatusHistory(Base):
    """Every status report the gateway folded, in the order it folded them: an entity's
    timeline (the console shows it). ``applied`` is False for a report that changed nothing (an
    older observation than the one stored). A redelivered report is not recorded twice
    (``event_id`` is unique, and the fold skips processed events before it gets here)."""

    __tablename__ = "status_history"
    __table_args__ = (Index("ix_status_history_entity", "entity", "entity_id", "id"),)

    id: Mapped[int] = mapped_column(SERIAL_ID, primary_key=True, autoincrement=True)
    event_id: Mapped[str] = mapped_column(String(64), unique=True)
    event_type: Mapped[str] = mapped_column(String(256))
    source: Mapped[str] = mapped_column(String(256))
    entity: Mapped[str] = mapped_column(String(32))
    entity_id: Mapped[str] = mapped_column(String(320))
    phase: Mapped[str] = mapped_column(String(32))
    reason: Mapped[str | None] = mapped_column(Text)
    seq: Mapped[int] = mapped_column(BigInteger)
    applied: Mapped[bool] = mapped_column(Boolean)
    occurred_at: Mapped[datetime]
    recorded_at: Mapped[datetime] = mapped_column(default=utcnow)
