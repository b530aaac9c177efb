"""Logged models (MLflow 3's ``logged-models``): id, experiment, artifacts, status, tags.

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "logged_models",
        sa.Column("model_id", sa.String(length=40), nullable=False),
        sa.Column("workspace", sa.String(length=63), nullable=False),
        sa.Column("experiment_id", sa.BigInteger(), nullable=False),
        sa.Column("name", sa.String(length=500), nullable=False),
        sa.Column("artifact_uri", sa.Text(), nullable=False),
        sa.Column("status", sa.String(length=32), nullable=False),
        sa.Column("status_message", sa.Text(), nullable=True),
        sa.Column("creator_id", sa.String(length=256), server_default="", nullable=False),
        sa.Column("model_type", sa.String(length=500), nullable=True),
        sa.Column("source_run_id", sa.String(length=32), nullable=True),
        sa.Column("creation_time", sa.BigInteger(), nullable=False),
        sa.Column("last_updated_time", sa.BigInteger(), nullable=False),
        sa.Column("tags", sa.Text(), server_default="{}", nullable=False),
        sa.Column("params", sa.Text(), server_default="{}", nullable=False),
        sa.ForeignKeyConstraint(
            ["experiment_id"], ["experiments.experiment_id"], ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["workspace"],
            ["workspaces.name"],
        ),
        sa.PrimaryKeyConstraint("model_id"),
    )
    op.create_index(
        "ix_logged_models_experiment",
        "logged_models",
        ["experiment_id", "creation_time"],
        unique=False,
    )


def downgrade() -> None:
    op.drop_table("logged_models")
