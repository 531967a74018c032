"""Workflow pipelines: the workflow worker's reports, folded into ``workflow_pipelines``.

0001 created the table from the seed with a free-form ``details`` blob. The pipelines API needs
its facts as columns:

* ``workflow_name`` (the status events' entity id, ``train-<job id>``) becomes unique: it is
  how a report finds its row;
* ``system`` is renamed ``backend`` (argo, job or manifests) and becomes nullable: the worker
  reports it, maybe not in its first report;
* the last report: ``namespace``, ``progress_done`` / ``progress_total``, ``nodes``,
  ``manifest``, ``started_at``, ``finished_at`` and ``observed_at``;
* ``details`` is dropped (nothing wrote it; the columns above replace it).

All new columns are nullable, so rows that might exist need no back-fill. SQLite needs
``batch_alter_table`` (a table copy) for the rename, nullability and constraint changes.

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_TABLE = "workflow_pipelines"
_ADDED = (
    "namespace", "progress_done", "progress_total", "nodes", "manifest", "started_at",
    "finished_at", "observed_at",
)  # fmt: skip


def upgrade() -> None:
    with op.batch_alter_table(_TABLE, schema=None) as batch_op:
        batch_op.alter_column(
            "system",
            new_column_name="backend",
            existing_type=sa.String(length=32),
            nullable=True,
        )
        batch_op.drop_column("details")
        batch_op.add_column(sa.Column("namespace", sa.String(length=63), nullable=True))
        batch_op.add_column(sa.Column("progress_done", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("progress_total", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("nodes", sa.JSON(), nullable=True))
        batch_op.add_column(sa.Column("manifest", sa.JSON(), nullable=True))
        batch_op.add_column(sa.Column("started_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("observed_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.create_unique_constraint(
            batch_op.f("uq_workflow_pipelines_workflow_name"), ["workflow_name"]
        )


def downgrade() -> None:
    with op.batch_alter_table(_TABLE, schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("uq_workflow_pipelines_workflow_name"), type_="unique")
        for column in _ADDED:
            batch_op.drop_column(column)
        batch_op.add_column(sa.Column("details", sa.JSON(), nullable=True))
    op.execute(sa.text(f"UPDATE {_TABLE} SET details = '{{}}' WHERE details IS NULL"))
    op.execute(sa.text(f"UPDATE {_TABLE} SET backend = 'unknown' WHERE backend IS NULL"))
    with op.batch_alter_table(_TABLE, schema=None) as batch_op:
        batch_op.alter_column("details", existing_type=sa.JSON(), nullable=False)
        batch_op.alter_column(
            "backend",
            new_column_name="system",
            existing_type=sa.String(length=32),
            nullable=False,
        )
