"""Lineage: the model versions github-sync reported, and the dataset version a job trained on.

* ``model_versions``: one row per MLflow model version (``<name>/<version>``), folded from
  github-sync's ``model_version`` reports: the values file, its commit or pull request, the
  sync's status.
* ``training_jobs.dataset_version_id``: the catalog version the job was pinned to at submission
  (nullable: older jobs were not recorded, and a job may train on an unknown dataset);
* indexes for the lineage's joins (a job by its dataset version, registered model or stored
  artifact; an endpoint by its artifact; a model version by its commit).

Revision ID: 0008
Revises: 0007
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_TS = sa.DateTime(timezone=True)
_INDEXES = (  # the lineage's joins
    ("training_jobs", "ix_training_jobs_dataset_version_id", ["dataset_version_id"]),
    ("training_jobs", "ix_training_jobs_model_storage_uri", ["model_storage_uri"]),
    (
        "training_jobs",
        "ix_training_jobs_registered_model",
        ["registered_model_name", "registered_model_version"],
    ),
    ("serving_deployments", "ix_serving_deployments_storage_uri", ["storage_uri"]),
)


def upgrade() -> None:
    op.create_table(
        "model_versions",
        sa.Column("id", sa.String(length=320), nullable=False),
        sa.Column("name", sa.String(length=256), nullable=False),
        sa.Column("version", sa.String(length=64), nullable=False),
        sa.Column("status", sa.String(length=32), nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("seq", sa.BigInteger(), nullable=False),
        sa.Column("backend", sa.String(length=32), nullable=True),
        sa.Column("path", sa.String(length=1024), nullable=True),
        sa.Column("action", sa.String(length=32), nullable=True),
        sa.Column("commit", sa.String(length=64), nullable=True),
        sa.Column("pull_request", sa.String(length=2048), nullable=True),
        sa.Column("max_model_len", sa.Integer(), nullable=True),
        sa.Column("capped", sa.Boolean(), nullable=True),
        sa.Column("created_at", _TS, nullable=False),
        sa.Column("updated_at", _TS, nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_model_versions")),
        sa.UniqueConstraint("name", "version", name=op.f("uq_model_versions_name_version")),
    )
    op.create_index("ix_model_versions_commit", "model_versions", ["commit"])
    with op.batch_alter_table("training_jobs", schema=None) as batch_op:
        batch_op.add_column(sa.Column("dataset_version_id", sa.String(length=64), nullable=True))
    for table, name, columns in _INDEXES:
        op.create_index(name, table, columns)


def downgrade() -> None:
    for table, name, _ in reversed(_INDEXES):
        op.drop_index(name, table_name=table)
    with op.batch_alter_table("training_jobs", schema=None) as batch_op:
        batch_op.drop_column("dataset_version_id")
    op.drop_index("ix_model_versions_commit", table_name="model_versions")
    op.drop_table("model_versions")
