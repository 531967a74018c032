"""Where models are: the training loop's artifacts.

* ``catalog_models.storage_uri``: where a catalog model's files are (typed in with a manual
  entry, or the snapshot an import downloaded); training jobs are told to read them there.
* ``training_jobs``: the MLflow model version the job's pipeline registered
  (``registered_model_name``, ``registered_model_version``, ``model_run_id``,
  ``model_source``, ``model_storage_uri``) and the ``registered_model_seq`` of the report it
  came from.
* ``serving_deployments.storage_uri``: the artifact an endpoint was asked to serve.

All new columns are nullable (nothing is known of existing rows), so no back-fill is needed,
and the downgrade only drops them.

Revision ID: 0006
Revises: 0005
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_TRAINING_JOB_COLUMNS = (
    ("registered_model_name", sa.String(length=256)),
    ("registered_model_version", sa.String(length=256)),
    ("model_run_id", sa.String(length=256)),
    ("model_source", sa.String(length=2048)),
    ("model_storage_uri", sa.String(length=2048)),
    ("registered_model_seq", sa.BigInteger()),
)


def upgrade() -> None:
    with op.batch_alter_table("catalog_models", schema=None) as batch_op:
        batch_op.add_column(sa.Column("storage_uri", sa.String(length=2048), nullable=True))
    with op.batch_alter_table("training_jobs", schema=None) as batch_op:
        for name, type_ in _TRAINING_JOB_COLUMNS:
            batch_op.add_column(sa.Column(name, type_, nullable=True))
    with op.batch_alter_table("serving_deployments", schema=None) as batch_op:
        batch_op.add_column(sa.Column("storage_uri", sa.String(length=2048), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("serving_deployments", schema=None) as batch_op:
        batch_op.drop_column("storage_uri")
    with op.batch_alter_table("training_jobs", schema=None) as batch_op:
        for name, _ in reversed(_TRAINING_JOB_COLUMNS):
            batch_op.drop_column(name)
    with op.batch_alter_table("catalog_models", schema=None) as batch_op:
        batch_op.drop_column("storage_uri")
