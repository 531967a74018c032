"""Serving endpoints: environment and route, per-environment names, the deployment report.

``serving_deployments`` becomes the serving API's endpoint table:

* ``environment``, ``route``, ``model_id`` (the catalog model), ``correlation_id``;
* ``endpoint_name`` is unique per environment instead of globally (each environment deploys
  into its own namespace), and so is ``route``;
* ``framework`` is renamed ``backend`` and becomes nullable: the serving worker picks the
  backend (kserve, deployment, manifests) and reports it, the gateway does not know it up front;
* the last deployment report (``reported_phase``, ``reported_reason``, ``namespace``,
  ``deployment_mode``, ``manifest``, ``conditions``, ``traffic``, ``rollout``, ``observed_at``);
* ``rollout_action`` (promoted / rolled_back) and ``delete_requested_at``.

0001 may have been applied with rows in the table (nothing wrote it before, but be safe):
the new required columns are added nullable, back-filled, then made NOT NULL. SQLite needs
``batch_alter_table`` (a table copy) for the constraint and nullability changes.

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_TABLE = "serving_deployments"


def upgrade() -> None:
    with op.batch_alter_table(_TABLE, schema=None) as batch_op:
        batch_op.drop_constraint("uq_serving_deployments_endpoint_name", type_="unique")
        batch_op.alter_column(
            "framework",
            new_column_name="backend",
            existing_type=sa.String(length=32),
            nullable=True,
        )
        batch_op.add_column(sa.Column("environment", sa.String(length=16), nullable=True))
        batch_op.add_column(sa.Column("route", sa.String(length=255), nullable=True))
        batch_op.add_column(sa.Column("model_id", sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column("correlation_id", sa.String(length=256), nullable=True))
        batch_op.add_column(sa.Column("rollout_action", sa.String(length=32), nullable=True))
        batch_op.add_column(
            sa.Column("delete_requested_at", sa.DateTime(timezone=True), nullable=True)
        )
        batch_op.add_column(sa.Column("reported_phase", sa.String(length=32), nullable=True))
        batch_op.add_column(sa.Column("reported_reason", sa.Text(), nullable=True))
        batch_op.add_column(sa.Column("namespace", sa.String(length=63), nullable=True))
        batch_op.add_column(sa.Column("deployment_mode", sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column("manifest", sa.JSON(), nullable=True))
        batch_op.add_column(sa.Column("conditions", sa.JSON(), nullable=True))
        batch_op.add_column(sa.Column("traffic", sa.JSON(), nullable=True))
        batch_op.add_column(sa.Column("rollout", sa.JSON(), nullable=True))
        batch_op.add_column(sa.Column("observed_at", sa.DateTime(timezone=True), nullable=True))

    # Rows written before this revision (if any) were global names: keep them reachable in dev.
    op.execute(
        sa.text(
            f"UPDATE {_TABLE} SET environment = 'dev', route = '/' || endpoint_name, "
            "model_id = substr(model_ref, 1, 64) WHERE environment IS NULL"
        )
    )

    with op.batch_alter_table(_TABLE, schema=None) as batch_op:
        for column, length in (("environment", 16), ("route", 255), ("model_id", 64)):
            batch_op.alter_column(column, existing_type=sa.String(length=length), nullable=False)
        batch_op.create_unique_constraint(
            batch_op.f("uq_serving_deployments_environment_endpoint_name"),
            ["environment", "endpoint_name"],
        )
        batch_op.create_unique_constraint(
            batch_op.f("uq_serving_deployments_environment_route"), ["environment", "route"]
        )


def downgrade() -> None:
    # Names were unique per environment; the global constraint of 0001 needs them unique
    # overall, which holds only if no name is used in two environments.
    with op.batch_alter_table(_TABLE, schema=None) as batch_op:
        batch_op.drop_constraint(
            batch_op.f("uq_serving_deployments_environment_route"), type_="unique"
        )
        batch_op.drop_constraint(
            batch_op.f("uq_serving_deployments_environment_endpoint_name"), type_="unique"
        )
        for column in (
            "observed_at", "rollout", "traffic", "conditions", "manifest", "deployment_mode",
            "namespace", "reported_reason", "reported_phase", "delete_requested_at",
            "rollout_action", "correlation_id", "model_id", "route", "environment",
        ):  # fmt: skip
            batch_op.drop_column(column)
    op.execute(sa.text(f"UPDATE {_TABLE} SET backend = 'unknown' WHERE backend IS NULL"))
    with op.batch_alter_table(_TABLE, schema=None) as batch_op:
        batch_op.alter_column(
            "backend",
            new_column_name="framework",
            existing_type=sa.String(length=32),
            nullable=False,
        )
        batch_op.create_unique_constraint(
            batch_op.f("uq_serving_deployments_endpoint_name"), ["endpoint_name"]
        )
