"""SQLAlchemy 2 table definitions of the metadata database.

Queries use SQLAlchemy Core on these tables (``Model.__table__``) for speed; the declarative
classes exist so Alembic can compare them with the migrations. Millisecond timestamps keep
MLflow's names (``start_time``, ``timestamp``) since they cross the MLflow-compatible API as is.
"""

from __future__ import annotations

from typing import cast

from sqlalchemy import (
    BigInteger,
    Boolean,
    Float,
    ForeignKey,
    ForeignKeyConstraint,
    Index,
    Integer,
    String,
    Table,
    Text,
    UniqueConstraint,
    false,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

# BigInteger autoincrement is only honoured by SQLite for INTEGER PRIMARY KEY.
_BigIntPk = BigInteger().with_variant(Integer(), "sqlite")


class Base(DeclarativeBase):
    """Declarative base of every loopml table."""


class Workspace(Base):
    """A partition of user-facing objects; ``default`` exists from the first migration."""

    __tablename__ = "workspaces"
    name: Mapped[str] = mapped_column(String(63), primary_key=True)
    description: Mapped[str | None] = mapped_column(Text)
    created_at_ms: Mapped[int] = mapped_column(BigInteger)


class Experiment(Base):
    """A named group of runs within a workspace."""

    __tablename__ = "experiments"
    experiment_id: Mapped[int] = mapped_column(_BigIntPk, primary_key=True, autoincrement=True)
    workspace: Mapped[str] = mapped_column(
        String(63), ForeignKey("workspaces.name"), nullable=False
    )
    name: Mapped[str] = mapped_column(String(500), nullable=False)
    artifact_location: Mapped[str] = mapped_column(Text, nullable=False)
    lifecycle_stage: Mapped[str] = mapped_column(String(20), nullable=False)
    creation_time: Mapped[int] = mapped_column(BigInteger, nullable=False)
    last_update_time: Mapped[int] = mapped_column(BigInteger, nullable=False)
    __table_args__ = (
        UniqueConstraint("workspace", "name", name="uq_experiments_workspace_name"),
        # Never hand a purged experiment's id (and so its artifact folder) to a new one.
        {"sqlite_autoincrement": True},
    )


class ExperimentTag(Base):
    """A key/value tag on an experiment."""

    __tablename__ = "experiment_tags"
    experiment_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("experiments.experiment_id", ondelete="CASCADE"), primary_key=True
    )
    key: Mapped[str] = mapped_column(String(250), primary_key=True)
    value: Mapped[str] = mapped_column(Text, nullable=False)


class Run(Base):
    """One execution of code whose params, metrics, tags and artifacts are recorded."""

    __tablename__ = "runs"
    run_uuid: Mapped[str] = mapped_column(String(32), primary_key=True)
    experiment_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("experiments.experiment_id", ondelete="CASCADE"), nullable=False
    )
    workspace: Mapped[str] = mapped_column(String(63), nullable=False)
    name: Mapped[str] = mapped_column(String(250), nullable=False)
    user_id: Mapped[str] = mapped_column(String(256), nullable=False)
    status: Mapped[str] = mapped_column(String(20), nullable=False)
    start_time: Mapped[int] = mapped_column(BigInteger, nullable=False)
    end_time: Mapped[int | None] = mapped_column(BigInteger)
    lifecycle_stage: Mapped[str] = mapped_column(String(20), nullable=False)
    deleted_time: Mapped[int | None] = mapped_column(BigInteger)
    # Set when the run went to the trash with its experiment, so a restore brings back only those.
    deleted_with_experiment: Mapped[bool] = mapped_column(
        Boolean, nullable=False, server_default=false()
    )
    artifact_uri: Mapped[str] = mapped_column(Text, nullable=False)
    parent_run_id: Mapped[str | None] = mapped_column(String(32))
    __table_args__ = (
        Index("ix_runs_experiment_start", "experiment_id", "start_time"),
        Index("ix_runs_parent", "parent_run_id"),
    )


class Param(Base):
    """A run's parameter; immutable once logged."""

    __tablename__ = "params"
    run_uuid: Mapped[str] = mapped_column(
        String(32), ForeignKey("runs.run_uuid", ondelete="CASCADE"), primary_key=True
    )
    key: Mapped[str] = mapped_column(String(250), primary_key=True)
    value: Mapped[str] = mapped_column(Text, nullable=False)
    __table_args__ = (Index("ix_params_key_value", "key", "value"),)


class Tag(Base):
    """A run's tag; overwritable."""

    __tablename__ = "tags"
    run_uuid: Mapped[str] = mapped_column(
        String(32), ForeignKey("runs.run_uuid", ondelete="CASCADE"), primary_key=True
    )
    key: Mapped[str] = mapped_column(String(250), primary_key=True)
    value: Mapped[str] = mapped_column(Text, nullable=False)
    __table_args__ = (Index("ix_tags_key_value", "key", "value"),)


class Metric(Base):
    """Every point ever logged for a run's metric, in logging order (``seq``)."""

    __tablename__ = "metrics"
    seq: Mapped[int] = mapped_column(_BigIntPk, primary_key=True, autoincrement=True)
    run_uuid: Mapped[str] = mapped_column(String(32), nullable=False)
    key: Mapped[str] = mapped_column(String(250), nullable=False)
    value: Mapped[float] = mapped_column(Float(precision=53), nullable=False)
    is_nan: Mapped[bool] = mapped_column(Boolean, nullable=False)
    timestamp: Mapped[int] = mapped_column(BigInteger, nullable=False)
    step: Mapped[int] = mapped_column(BigInteger, nullable=False)
    __table_args__ = (
        ForeignKeyConstraint(["run_uuid"], ["runs.run_uuid"], ondelete="CASCADE"),
        Index("ix_metrics_run_key_step", "run_uuid", "key", "step", "timestamp"),
    )


class LatestMetric(Base):
    """The latest point of each (run, metric): highest step, then timestamp, then last logged."""

    __tablename__ = "latest_metrics"
    run_uuid: Mapped[str] = mapped_column(
        String(32), ForeignKey("runs.run_uuid", ondelete="CASCADE"), primary_key=True
    )
    key: Mapped[str] = mapped_column(String(250), primary_key=True)
    value: Mapped[float] = mapped_column(Float(precision=53), nullable=False)
    is_nan: Mapped[bool] = mapped_column(Boolean, nullable=False)
    timestamp: Mapped[int] = mapped_column(BigInteger, nullable=False)
    step: Mapped[int] = mapped_column(BigInteger, nullable=False)
    __table_args__ = (Index("ix_latest_metrics_key_value", "key", "value"),)


workspaces: Table = cast(Table, Workspace.__table__)
experiments: Table = cast(Table, Experiment.__table__)
experiment_tags: Table = cast(Table, ExperimentTag.__table__)
runs: Table = cast(Table, Run.__table__)
params: Table = cast(Table, Param.__table__)
tags: Table = cast(Table, Tag.__table__)
metrics: Table = cast(Table, Metric.__table__)
latest_metrics: Table = cast(Table, LatestMetric.__table__)
