"""OpenLineage: the outbox of training jobs' run events (``openlineage_outbox``).

The status fold queues a job's START, COMPLETE, FAIL or ABORT here, in the transaction that
changed the job, when ``OPENLINEAGE_URL`` is set; the emitter sends them and marks them
(``emitted_at``), retrying failures with a backoff. One row per job and event type. The table
is new, so nothing is back-filled (jobs that ran before it emit nothing); the downgrade drops
it.

Revision ID: 0010
Revises: 0009
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "openlineage_outbox",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("job_id", sa.String(length=64), nullable=False),
        sa.Column("event_type", sa.String(length=16), nullable=False),
        sa.Column("event_time", _TS, nullable=False),
        sa.Column("created_at", _TS, nullable=False),
        sa.Column("emitted_at", _TS, nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", _TS, nullable=False),
        sa.Column("last_error", sa.String(length=1024), nullable=True),
        sa.Column("given_up_at", _TS, nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_openlineage_outbox")),
        sa.UniqueConstraint(
            "job_id", "event_type", name=op.f("uq_openlineage_outbox_job_id_event_type")
        ),
    )
    op.create_index(
        "ix_openlineage_outbox_due", "openlineage_outbox", ["emitted_at", "next_attempt_at"]
    )


def downgrade() -> None:
    op.drop_index("ix_openlineage_outbox_due", table_name="openlineage_outbox")
    op.drop_table("openlineage_outbox")
