"""Feature registry: versioned objects (entities, views, services) and materialization state.

Revision ID: 0006
Revises: 0005
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    big_pk = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
    op.create_table(
        "feature_objects",
        sa.Column("object_id", big_pk, autoincrement=True, nullable=False),
        sa.Column("workspace", sa.String(length=63), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("name", sa.String(length=128), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("spec_hash", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.Column("updated_at", sa.BigInteger(), nullable=False),
        sa.Column("deleted_at", sa.BigInteger(), nullable=True),
        sa.ForeignKeyConstraint(["workspace"], ["workspaces.name"]),
        sa.PrimaryKeyConstraint("object_id"),
        sa.UniqueConstraint("workspace", "kind", "name", name="uq_feature_objects_name"),
    )
    op.create_table(
        "feature_object_versions",
        sa.Column("object_id", sa.BigInteger(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("spec", sa.Text(), nullable=False),
        sa.Column("spec_hash", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(["object_id"], ["feature_objects.object_id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("object_id", "version"),
    )
    op.create_table(
        "feature_view_state",
        sa.Column("object_id", sa.BigInteger(), nullable=False),
        sa.Column("watermark", sa.BigInteger(), nullable=True),
        sa.Column("stats", sa.Text(), server_default="{}", nullable=False),
        sa.Column("checkpoint", sa.Text(), nullable=True),
        sa.Column("materialized_at", sa.BigInteger(), nullable=True),
        sa.ForeignKeyConstraint(["object_id"], ["feature_objects.object_id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("object_id"),
    )


def downgrade() -> None:
    op.drop_table("feature_view_state")
    op.drop_table("feature_object_versions")
    op.drop_table("feature_objects")
