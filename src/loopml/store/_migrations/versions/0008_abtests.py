"""A/B experiments: definitions, first exposures of units, metric events.

Revision ID: 0008
Revises: 0007
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    big_pk = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
    op.create_table(
        "abtests",
        sa.Column("experiment_id", big_pk, autoincrement=True, nullable=False),
        sa.Column("workspace", sa.String(length=63), nullable=False),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("spec", sa.Text(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.Column("updated_at", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(["workspace"], ["workspaces.name"]),
        sa.PrimaryKeyConstraint("experiment_id"),
        sa.UniqueConstraint("workspace", "name", name="uq_abtests_name"),
    )
    op.create_table(
        "abtest_exposures",
        sa.Column("experiment_id", sa.BigInteger(), nullable=False),
        sa.Column("unit_id", sa.String(length=255), nullable=False),
        sa.Column("variant", sa.String(length=255), nullable=False),
        sa.Column("time", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(["experiment_id"], ["abtests.experiment_id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("experiment_id", "unit_id"),
    )
    op.create_table(
        "abtest_events",
        sa.Column("seq", big_pk, autoincrement=True, nullable=False),
        sa.Column("experiment_id", sa.BigInteger(), nullable=False),
        sa.Column("unit_id", sa.String(length=255), nullable=False),
        sa.Column("metric", sa.String(length=255), nullable=False),
        sa.Column("value", sa.Float(precision=53), nullable=False),
        sa.Column("time", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(["experiment_id"], ["abtests.experiment_id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("seq"),
    )
    op.create_index("ix_abtest_events_metric", "abtest_events", ["experiment_id", "metric"])


def downgrade() -> None:
    op.drop_index("ix_abtest_events_metric", "abtest_events")
    op.drop_table("abtest_events")
    op.drop_table("abtest_exposures")
    op.drop_table("abtests")
