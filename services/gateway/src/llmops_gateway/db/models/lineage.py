"""What the chain from data to a live endpoint needs beyond the entities themselves: the model
versions github-sync wrote to Git (folded from its ``model_version`` reports)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, Boolean, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from llmops_gateway.db.models.base import Base, utcnow


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
