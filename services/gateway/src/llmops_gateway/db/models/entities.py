"""The gateway's own entities: training jobs, the model and dataset catalog, the event ledger.

Split out of :mod:`llmops_gateway.db.models` (now a package), apart from the tables of the
integrations (:mod:`llmops_gateway.db.models.integrations`).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, Boolean, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from llmops_gateway.db.models.base import Base, Timestamped, utcnow


class TrainingJob(Timestamped, Base):
    """A submitted training job and its latest known status."""

    __tablename__ = "training_jobs"
    __table_args__ = (
        # the lineage's joins: the job of a model version, the job of a served artifact
        Index(
            "ix_training_jobs_registered_model", "registered_model_name", "registered_model_version"
        ),
        # the lists, newest first (the API's and the console's), and by status (the console)
        Index("ix_training_jobs_created_at", "created_at", "id"),
        Index("ix_training_jobs_status_created_at", "status", "created_at", "id"),
    )

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    model_id: Mapped[str | None] = mapped_column(String(256))
    dataset_id: Mapped[str | None] = mapped_column(String(256))
    job_type: Mapped[str | None] = mapped_column(String(64))
    spec: Mapped[dict[str, Any]]
    status: Mapped[str] = mapped_column(String(32))
    reason: Mapped[str | None] = mapped_column(Text)
    status_seq: Mapped[int] = mapped_column(BigInteger, default=0)
    correlation_id: Mapped[str | None] = mapped_column(String(256))
    idempotency_key: Mapped[str | None] = mapped_column(String(256), unique=True)
    request_hash: Mapped[str | None] = mapped_column(String(64))
    violations: Mapped[list[Any] | None] = mapped_column(JSON)
    """Rules the stored spec breaks today (``validate training-jobs --mark``); null: unchecked."""
    validated_at: Mapped[datetime | None]
    # the MLflow model version the job's pipeline registered (``details.registered_model``)
    registered_model_name: Mapped[str | None] = mapped_column(String(256))
    registered_model_version: Mapped[str | None] = mapped_column(String(256))
    model_run_id: Mapped[str | None] = mapped_column(String(256))
    model_source: Mapped[str | None] = mapped_column(String(2048))
    model_storage_uri: Mapped[str | None] = mapped_column(String(2048), index=True)
    """Where the trained model's files are: what an endpoint serving the job's artifact loads."""
    registered_model_seq: Mapped[int | None] = mapped_column(BigInteger)
    """The ``seq`` of the report the registered model was taken from (null: none yet)."""
    dataset_version_id: Mapped[str | None] = mapped_column(String(64), index=True)
    """The catalog dataset version the job was pinned to at submission (null: none, e.g. an
    unknown dataset): the first link of the job's lineage."""


class CatalogEntry:
    """A catalog entry's id and its name, unique in its catalog (what specs refer to it by);
    first among the table's columns."""

    id: Mapped[str] = mapped_column(String(64), primary_key=True, sort_order=-1)
    name: Mapped[str] = mapped_column(String(256), unique=True, sort_order=-1)


class CatalogModel(CatalogEntry, Timestamped, Base):
    """A model the platform knows: a base model to fine-tune, or a trained one.

    A manual entry is ``Ready`` at once; an import from a registry starts ``Pending`` with
    ``family`` and ``max_position_embeddings`` unknown, and the registry worker's reports fill
    them in (``Ready``) or say why it failed (``Failed``). Only ``Ready`` models are used by the
    training and serving rules. ``verified`` is true when the facts were read from the registry
    (not typed in by a person, nor created with the registry integration off); ``facts`` holds
    the rest of what the import learned (license, gated, files and sizes, safetensors...).
    ``storage_uri`` is where the model's files are (typed in, or the import's downloaded
    snapshot); a training job on this base model is told to read them there.
    """

    __tablename__ = "catalog_models"

    family: Mapped[str | None] = mapped_column(String(64))
    max_position_embeddings: Mapped[int | None] = mapped_column(Integer)
    hf_architecture: Mapped[str | None] = mapped_column(String(256))
    source: Mapped[str] = mapped_column(String(32))
    status: Mapped[str] = mapped_column(String(32), default="Ready")
    reason: Mapped[str | None] = mapped_column(Text)
    verified: Mapped[bool] = mapped_column(Boolean, default=False)
    facts: Mapped[dict[str, Any] | None]
    progress: Mapped[dict[str, Any] | None]
    storage_uri: Mapped[str | None] = mapped_column(String(2048))
    seq: Mapped[int] = mapped_column(BigInteger, default=0)


class CatalogDataset(CatalogEntry, Base):
    """A dataset the platform knows (its versions are in ``dataset_versions``).

    ``storage_uri`` is where its current data lives: a new version snapshots what is there.
    """

    __tablename__ = "catalog_datasets"

    type: Mapped[str | None] = mapped_column(String(64))
    description: Mapped[str | None] = mapped_column(Text)
    storage_uri: Mapped[str | None] = mapped_column(String(2048))
    schema_ref: Mapped[str | None] = mapped_column(String(512))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class ProcessedEvent(Base):
    """Event ids the status consumer has applied: the SQL half of exactly-once effects.

    The streams runtime also remembers processed ids in Redis, but that mark is written after
    the SQL commit; this row is written *in* the commit, so a crash between the two cannot apply
    an event twice.
    """

    __tablename__ = "processed_events"

    event_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    consumer: Mapped[str] = mapped_column(String(128))
    event_type: Mapped[str] = mapped_column(String(256))
    processed_at: Mapped[datetime] = mapped_column(default=utcnow)
