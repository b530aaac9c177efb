"""Monitoring: stored reference profiles, outcomes (ground truth), alert rules and alert events.

Revision ID: 0007
Revises: 0006
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    big_pk = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
    op.create_table(
        "monitor_profiles",
        sa.Column("profile_id", big_pk, autoincrement=True, nullable=False),
        sa.Column("workspace", sa.String(length=63), nullable=False),
        sa.Column("subject", sa.String(length=512), nullable=False),
        sa.Column("source", sa.String(length=512), server_default="", nullable=False),
        sa.Column("n_rows", sa.BigInteger(), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(["workspace"], ["workspaces.name"]),
        sa.PrimaryKeyConstraint("profile_id"),
        sa.UniqueConstraint("workspace", "subject", name="uq_monitor_profiles"),
    )
    op.create_table(
        "outcomes",
        sa.Column("seq", big_pk, autoincrement=True, nullable=False),
        sa.Column("workspace", sa.String(length=63), nullable=False),
        sa.Column("prediction_id", sa.String(length=255), nullable=True),
        sa.Column("unit_id", sa.String(length=255), nullable=True),
        sa.Column("value", sa.Text(), nullable=False),
        sa.Column("time", sa.BigInteger(), nullable=False),
        sa.Column("received_at", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(["workspace"], ["workspaces.name"]),
        sa.PrimaryKeyConstraint("seq"),
    )
    op.create_index("ix_outcomes_prediction", "outcomes", ["workspace", "prediction_id"])
    op.create_index("ix_outcomes_unit", "outcomes", ["workspace", "unit_id"])
    op.create_index("ix_outcomes_time", "outcomes", ["workspace", "time"])
    op.create_table(
        "alert_rules",
        sa.Column("rule_id", big_pk, autoincrement=True, nullable=False),
        sa.Column("workspace", sa.String(length=63), nullable=False),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("deployment", sa.String(length=255), nullable=False),
        sa.Column("spec", sa.Text(), nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.Column("updated_at", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(["workspace"], ["workspaces.name"]),
        sa.PrimaryKeyConstraint("rule_id"),
        sa.UniqueConstraint("workspace", "name", name="uq_alert_rules_name"),
    )
    op.create_table(
        "alert_events",
        sa.Column("seq", big_pk, autoincrement=True, nullable=False),
        sa.Column("rule_id", sa.BigInteger(), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("time", sa.BigInteger(), nullable=False),
        sa.Column("value", sa.Float(precision=53), nullable=True),
        sa.Column("evidence", sa.Text(), server_default="{}", nullable=False),
        sa.Column("deliveries", sa.Text(), server_default="[]", nullable=False),
        sa.ForeignKeyConstraint(["rule_id"], ["alert_rules.rule_id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("seq"),
    )
    op.create_index("ix_alert_events_rule", "alert_events", ["rule_id", "seq"])


def downgrade() -> None:
    op.drop_table("alert_events")
    op.drop_table("alert_rules")
    op.drop_index("ix_outcomes_time", "outcomes")
    op.drop_index("ix_outcomes_unit", "outcomes")
    op.drop_index("ix_outcomes_prediction", "outcomes")
    op.drop_table("outcomes")
    op.drop_table("monitor_profiles")
