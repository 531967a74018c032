"""Catalog imports (registry) and dataset versions (versioning).

* ``catalog_models``: an imported model is known before its facts are, so ``family`` and
  ``max_position_embeddings`` become nullable; the import's ``status`` / ``reason`` / ``seq``,
  ``verified``, the imported ``facts``, the ``progress`` and ``updated_at`` are added. Existing
  (manual) rows become ``Ready``, unverified.
* ``registry_models``: the pinned commit, URL, last sync and the last check-updates answer.
* ``catalog_datasets``: ``storage_uri`` and ``schema_ref``.
* ``dataset_versions``: the version facts and its manifest (``files``) for diffs; ``system``
  (the backend) becomes nullable, it is known once the worker reports.
* ``dataset_restores``: new.

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    with op.batch_alter_table("catalog_models", schema=None) as batch_op:
        batch_op.alter_column("family", existing_type=sa.String(length=64), nullable=True)
        batch_op.alter_column("max_position_embeddings", existing_type=sa.Integer(), nullable=True)
        batch_op.add_column(sa.Column("status", sa.String(length=32), nullable=True))
        batch_op.add_column(sa.Column("reason", sa.Text(), nullable=True))
        batch_op.add_column(sa.Column("verified", sa.Boolean(), nullable=True))
        batch_op.add_column(sa.Column("facts", sa.JSON(), nullable=True))
        batch_op.add_column(sa.Column("progress", sa.JSON(), nullable=True))
        batch_op.add_column(sa.Column("seq", sa.BigInteger(), nullable=True))
        batch_op.add_column(sa.Column("updated_at", _TS, nullable=True))
    op.execute(
        sa.text(
            "UPDATE catalog_models SET status = 'Ready', verified = :false, seq = 0, "
            "updated_at = created_at"
        ).bindparams(false=False)
    )
    with op.batch_alter_table("catalog_models", schema=None) as batch_op:
        batch_op.alter_column("status", existing_type=sa.String(length=32), nullable=False)
        batch_op.alter_column("verified", existing_type=sa.Boolean(), nullable=False)
        batch_op.alter_column("seq", existing_type=sa.BigInteger(), nullable=False)
        batch_op.alter_column("updated_at", existing_type=_TS, nullable=False)

    with op.batch_alter_table("registry_models", schema=None) as batch_op:
        batch_op.add_column(sa.Column("resolved_revision", sa.String(length=256), nullable=True))
        batch_op.add_column(sa.Column("url", sa.String(length=2048), nullable=True))
        batch_op.add_column(sa.Column("last_synced_at", _TS, nullable=True))
        batch_op.add_column(sa.Column("upstream_revision", sa.String(length=256), nullable=True))
        batch_op.add_column(sa.Column("upstream_checked_at", _TS, nullable=True))
        batch_op.add_column(sa.Column("update_available", sa.Boolean(), nullable=True))
        batch_op.add_column(sa.Column("check_error", sa.Text(), nullable=True))
        batch_op.add_column(sa.Column("check_seq", sa.BigInteger(), nullable=True))

    with op.batch_alter_table("catalog_datasets", schema=None) as batch_op:
        batch_op.add_column(sa.Column("storage_uri", sa.String(length=2048), nullable=True))
        batch_op.add_column(sa.Column("schema_ref", sa.String(length=512), nullable=True))

    with op.batch_alter_table("dataset_versions", schema=None) as batch_op:
        batch_op.alter_column("system", existing_type=sa.String(length=32), nullable=True)
        batch_op.add_column(sa.Column("parent_version_id", sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column("digest", sa.String(length=128), nullable=True))
        batch_op.add_column(sa.Column("tag", sa.String(length=256), nullable=True))
        batch_op.add_column(sa.Column("remote_uri", sa.String(length=2048), nullable=True))
        batch_op.add_column(sa.Column("file_count", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("total_bytes", sa.BigInteger(), nullable=True))
        batch_op.add_column(sa.Column("files", sa.JSON(), nullable=True))
        batch_op.add_column(sa.Column("progress", sa.JSON(), nullable=True))
        batch_op.add_column(sa.Column("correlation_id", sa.String(length=256), nullable=True))

    op.create_table(
        "dataset_restores",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("version_id", sa.String(length=64), nullable=False),
        sa.Column("target_uri", sa.String(length=2048), nullable=False),
        sa.Column("status", sa.String(length=32), nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("files_done", sa.Integer(), nullable=True),
        sa.Column("files_total", sa.Integer(), nullable=True),
        sa.Column("bytes_done", sa.BigInteger(), nullable=True),
        sa.Column("bytes_total", sa.BigInteger(), nullable=True),
        sa.Column("seq", sa.BigInteger(), nullable=False),
        sa.Column("created_at", _TS, nullable=False),
        sa.Column("updated_at", _TS, nullable=False),
        sa.ForeignKeyConstraint(
            ["version_id"],
            ["dataset_versions.id"],
            name=op.f("fk_dataset_restores_version_id_dataset_versions"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_dataset_restores")),
    )
    with op.batch_alter_table("dataset_restores", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_dataset_restores_version_id"), ["version_id"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("dataset_restores", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_dataset_restores_version_id"))
    op.drop_table("dataset_restores")
    with op.batch_alter_table("dataset_versions", schema=None) as batch_op:
        for column in (
            "parent_version_id", "digest", "tag", "remote_uri", "file_count", "total_bytes",
            "files", "progress", "correlation_id",
        ):  # fmt: skip
            batch_op.drop_column(column)
    op.execute(sa.text("UPDATE dataset_versions SET system = 'unknown' WHERE system IS NULL"))
    with op.batch_alter_table("dataset_versions", schema=None) as batch_op:
        batch_op.alter_column("system", existing_type=sa.String(length=32), nullable=False)
    with op.batch_alter_table("catalog_datasets", schema=None) as batch_op:
        batch_op.drop_column("schema_ref")
        batch_op.drop_column("storage_uri")
    with op.batch_alter_table("registry_models", schema=None) as batch_op:
        for column in (
            "resolved_revision", "url", "last_synced_at", "upstream_revision",
            "upstream_checked_at", "update_available", "check_error", "check_seq",
        ):  # fmt: skip
            batch_op.drop_column(column)
    # Imports that never learned their facts cannot exist in the old schema.
    op.execute(
        sa.text(
            "DELETE FROM catalog_models WHERE family IS NULL OR max_position_embeddings IS NULL"
        )
    )
    with op.batch_alter_table("catalog_models", schema=None) as batch_op:
        for column in ("status", "reason", "verified", "facts", "progress", "seq", "updated_at"):
            batch_op.drop_column(column)
        batch_op.alter_column("family", existing_type=sa.String(length=64), nullable=False)
        batch_op.alter_column("max_position_embeddings", existing_type=sa.Integer(), nullable=False)
