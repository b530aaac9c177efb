"""Deployments and their history: variants, batching, rollout state, events.

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    big_pk = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
    op.create_table(
        "deployments",
        sa.Column("deployment_id", big_pk, autoincrement=True, nullable=False),
        sa.Column("workspace", sa.String(length=63), nullable=False),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("description", sa.Text(), server_default="", nullable=False),
        sa.Column("unit_key", sa.String(length=255), nullable=True),
        sa.Column("variants", sa.Text(), nullable=False),
        sa.Column("batching", sa.Text(), server_default="{}", nullable=False),
        sa.Column("rollout", sa.Text(), nullable=True),
        sa.Column("revision", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.Column("updated_at", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(["workspace"], ["workspaces.name"]),
        sa.PrimaryKeyConstraint("deployment_id"),
        sa.UniqueConstraint("workspace", "name", name="uq_deployments_name"),
    )
    op.create_table(
        "deployment_events",
        sa.Column("seq", big_pk, autoincrement=True, nullable=False),
        sa.Column("deployment_id", sa.BigInteger(), nullable=False),
        sa.Column("revision", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("time", sa.BigInteger(), nullable=False),
        sa.Column("user_id", sa.String(length=256), server_default="", nullable=False),
        sa.Column("detail", sa.Text(), server_default="{}", nullable=False),
        sa.ForeignKeyConstraint(
            ["deployment_id"], ["deployments.deployment_id"], ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("seq"),
    )
    op.create_index(
        "ix_deployment_events_seq", "deployment_events", ["deployment_id", "seq"], unique=False
    )


def downgrade() -> None:
    op.drop_table("deployment_events")
    op.drop_table("deployments")
