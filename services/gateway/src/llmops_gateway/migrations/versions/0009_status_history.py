"""Timelines: every status report the gateway folded (``status_history``), and the indexes
of the job lists.

The console shows an entity's timeline from it: each report with its phase and reason, in the
order folded, including the ones that changed nothing (``applied`` false). Kept like the audit
log: append-only, one row per report (its event id is unique).

The training jobs' lists (newest first, and by status in the console) read an index instead of
sorting the whole table: with 10,000 jobs the first page was a full scan and a sort.

Revision ID: 0009
Revises: 0008
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_TS = sa.DateTime(timezone=True)
_JOB_INDEXES = (
    ("ix_training_jobs_created_at", ["created_at", "id"]),
    ("ix_training_jobs_status_created_at", ["status", "created_at", "id"]),
)


def upgrade() -> None:
    op.create_table(
        "status_history",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("event_id", sa.String(length=64), nullable=False),
        sa.Column("event_type", sa.String(length=256), nullable=False),
        sa.Column("source", sa.String(length=256), nullable=False),
        sa.Column("entity", sa.String(length=32), nullable=False),
        sa.Column("entity_id", sa.String(length=320), nullable=False),
        sa.Column("phase", sa.String(length=32), nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("seq", sa.BigInteger(), nullable=False),
        sa.Column("applied", sa.Boolean(), nullable=False),
        sa.Column("occurred_at", _TS, nullable=False),
        sa.Column("recorded_at", _TS, nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_status_history")),
        sa.UniqueConstraint("event_id", name=op.f("uq_status_history_event_id")),
    )
    op.create_index("ix_status_history_entity", "status_history", ["entity", "entity_id", "id"])
    for name, columns in _JOB_INDEXES:
        op.create_index(name, "training_jobs", columns)


def downgrade() -> None:
    for name, _ in _JOB_INDEXES:
        op.drop_index(name, table_name="training_jobs")
    op.drop_index("ix_status_history_entity", table_name="status_history")
    op.drop_table("status_history")
