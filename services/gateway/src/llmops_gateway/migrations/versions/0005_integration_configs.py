"""Operations: run-time integration flags and re-validation marks.

* ``integration_configs`` (created empty by 0001, written from now on): ``revision``,
  ``changed_by`` and ``reason``, so each change is numbered (the workers keep the highest) and
  audited. Rows made by hand become revision 1.
* ``training_jobs`` / ``serving_deployments``: ``violations`` (the rules a stored spec breaks
  under today's rules, written by ``validate ... --mark``) and ``validated_at``.

Revision ID: 0005
Revises: 0004
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    with op.batch_alter_table("integration_configs", schema=None) as batch_op:
        batch_op.add_column(sa.Column("revision", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("changed_by", sa.String(length=256), nullable=True))
        batch_op.add_column(sa.Column("reason", sa.Text(), nullable=True))
    op.execute(sa.text("UPDATE integration_configs SET revision = 1"))  # rows made by hand
    with op.batch_alter_table("integration_configs", schema=None) as batch_op:
        batch_op.alter_column("revision", existing_type=sa.Integer(), nullable=False)
    for table in ("training_jobs", "serving_deployments"):
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.add_column(sa.Column("violations", sa.JSON(), nullable=True))
            batch_op.add_column(sa.Column("validated_at", _TS, nullable=True))


def downgrade() -> None:
    for table in ("serving_deployments", "training_jobs"):
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.drop_column("validated_at")
            batch_op.drop_column("violations")
    with op.batch_alter_table("integration_configs", schema=None) as batch_op:
        batch_op.drop_column("reason")
        batch_op.drop_column("changed_by")
        batch_op.drop_column("revision")
