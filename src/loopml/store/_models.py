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


class RegisteredModel(Base):
    """A named model of a workspace; ``next_version`` never reuses a deleted version's number."""

    __tablename__ = "registered_models"
    model_id: Mapped[int] = mapped_column(_BigIntPk, primary_key=True, autoincrement=True)
    workspace: Mapped[str] = mapped_column(
        String(63), ForeignKey("workspaces.name"), nullable=False
    )
    name: Mapped[str] = mapped_column(String(256), nullable=False)
    description: Mapped[str] = mapped_column(Text, nullable=False, server_default="")
    creation_time: Mapped[int] = mapped_column(BigInteger, nullable=False)
    last_updated_time: Mapped[int] = mapped_column(BigInteger, nullable=False)
    next_version: Mapped[int] = mapped_column(Integer, nullable=False, server_default="1")
    __table_args__ = (
        UniqueConstraint("workspace", "name", name="uq_registered_models_workspace_name"),
        {"sqlite_autoincrement": True},
    )


class RegisteredModelTag(Base):
    """A key/value tag on a registered model."""

    __tablename__ = "registered_model_tags"
    model_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("registered_models.model_id", ondelete="CASCADE"), primary_key=True
    )
    key: Mapped[str] = mapped_column(String(250), primary_key=True)
    value: Mapped[str] = mapped_column(Text, nullable=False)


class ModelVersion(Base):
    """One version of a registered model: its files (``source``), run, stage and lineage.

    ``dataset_versions`` and ``feature_views`` hold JSON lists of lineage references.
    """

    __tablename__ = "model_versions"
    model_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("registered_models.model_id", ondelete="CASCADE"), primary_key=True
    )
    version: Mapped[int] = mapped_column(Integer, primary_key=True)
    creation_time: Mapped[int] = mapped_column(BigInteger, nullable=False)
    last_updated_time: Mapped[int] = mapped_column(BigInteger, nullable=False)
    description: Mapped[str] = mapped_column(Text, nullable=False, server_default="")
    user_id: Mapped[str] = mapped_column(String(256), nullable=False, server_default="")
    current_stage: Mapped[str] = mapped_column(String(20), nullable=False)
    source: Mapped[str] = mapped_column(Text, nullable=False)
    run_id: Mapped[str | None] = mapped_column(String(32))
    run_link: Mapped[str | None] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(32), nullable=False)
    status_message: Mapped[str | None] = mapped_column(Text)
    manifest_digest: Mapped[str | None] = mapped_column(String(64))
    dataset_versions: Mapped[str] = mapped_column(Text, nullable=False, server_default="[]")
    feature_views: Mapped[str] = mapped_column(Text, nullable=False, server_default="[]")
    __table_args__ = (Index("ix_model_versions_run", "run_id"),)


class ModelVersionTag(Base):
    """A key/value tag on a model version."""

    __tablename__ = "model_version_tags"
    model_id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    version: Mapped[int] = mapped_column(Integer, primary_key=True)
    key: Mapped[str] = mapped_column(String(250), primary_key=True)
    value: Mapped[str] = mapped_column(Text, nullable=False)
    __table_args__ = (
        ForeignKeyConstraint(
            ["model_id", "version"],
            ["model_versions.model_id", "model_versions.version"],
            ondelete="CASCADE",
        ),
    )


class ModelAlias(Base):
    """Which version an alias (``production``, ``challenger`` ...) points at now."""

    __tablename__ = "model_aliases"
    model_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("registered_models.model_id", ondelete="CASCADE"), primary_key=True
    )
    alias: Mapped[str] = mapped_column(String(255), primary_key=True)
    version: Mapped[int] = mapped_column(Integer, nullable=False)


class ModelEvent(Base):
    """The history of a model: alias moves, stage changes, versions created and deleted."""

    __tablename__ = "model_events"
    seq: Mapped[int] = mapped_column(_BigIntPk, primary_key=True, autoincrement=True)
    model_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("registered_models.model_id", ondelete="CASCADE"), nullable=False
    )
    kind: Mapped[str] = mapped_column(String(32), nullable=False)
    alias: Mapped[str | None] = mapped_column(String(255))
    version: Mapped[int | None] = mapped_column(Integer)
    from_version: Mapped[int | None] = mapped_column(Integer)
    to_version: Mapped[int | None] = mapped_column(Integer)
    from_stage: Mapped[str | None] = mapped_column(String(20))
    to_stage: Mapped[str | None] = mapped_column(String(20))
    time: Mapped[int] = mapped_column(BigInteger, nullable=False)
    user_id: Mapped[str] = mapped_column(String(256), nullable=False, server_default="")
    reason: Mapped[str] = mapped_column(Text, nullable=False, server_default="")
    __table_args__ = (
        Index("ix_model_events_model_seq", "model_id", "seq"),
        Index("ix_model_events_alias", "model_id", "alias", "seq"),
    )


class Webhook(Base):
    """An HTTP receiver of registry events, signed with ``secret``."""

    __tablename__ = "webhooks"
    webhook_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    workspace: Mapped[str] = mapped_column(
        String(63), ForeignKey("workspaces.name"), nullable=False
    )
    url: Mapped[str] = mapped_column(Text, nullable=False)
    secret: Mapped[str] = mapped_column(Text, nullable=False)
    events: Mapped[str] = mapped_column(Text, nullable=False)  # JSON list
    model_name: Mapped[str | None] = mapped_column(String(256))
    active: Mapped[bool] = mapped_column(Boolean, nullable=False)
    description: Mapped[str] = mapped_column(Text, nullable=False, server_default="")
    creation_time: Mapped[int] = mapped_column(BigInteger, nullable=False)


class WebhookDelivery(Base):
    """One event to deliver to one webhook (the outbox), written with the change it reports."""

    __tablename__ = "webhook_deliveries"
    delivery_id: Mapped[int] = mapped_column(_BigIntPk, primary_key=True, autoincrement=True)
    webhook_id: Mapped[str] = mapped_column(
        String(32), ForeignKey("webhooks.webhook_id", ondelete="CASCADE"), nullable=False
    )
    event: Mapped[str] = mapped_column(String(64), nullable=False)
    payload: Mapped[str] = mapped_column(Text, nullable=False)
    status: Mapped[str] = mapped_column(String(16), nullable=False)
    attempts: Mapped[int] = mapped_column(Integer, nullable=False)
    next_attempt_time: Mapped[int] = mapped_column(BigInteger, nullable=False)
    created_time: Mapped[int] = mapped_column(BigInteger, nullable=False)
    last_attempt_time: Mapped[int | None] = mapped_column(BigInteger)
    response_status: Mapped[int | None] = mapped_column(Integer)
    error: Mapped[str | None] = mapped_column(Text)
    __table_args__ = (
        Index("ix_webhook_deliveries_due", "status", "next_attempt_time"),
        Index("ix_webhook_deliveries_webhook", "webhook_id", "delivery_id"),
    )


class LoggedModel(Base):
    """A model logged in an experiment by MLflow 3 clients (``logged-models`` routes), with its
    artifact location, status, tags and params (JSON objects)."""

    __tablename__ = "logged_models"
    model_id: Mapped[str] = mapped_column(String(40), primary_key=True)
    workspace: Mapped[str] = mapped_column(
        String(63), ForeignKey("workspaces.name"), nullable=False
    )
    experiment_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("experiments.experiment_id", ondelete="CASCADE"), nullable=False
    )
    name: Mapped[str] = mapped_column(String(500), nullable=False)
    artifact_uri: Mapped[str] = mapped_column(Text, nullable=False)
    status: Mapped[str] = mapped_column(String(32), nullable=False)
    status_message: Mapped[str | None] = mapped_column(Text)
    creator_id: Mapped[str] = mapped_column(String(256), nullable=False, server_default="")
    model_type: Mapped[str | None] = mapped_column(String(500))
    source_run_id: Mapped[str | None] = mapped_column(String(32))
    creation_time: Mapped[int] = mapped_column(BigInteger, nullable=False)
    last_updated_time: Mapped[int] = mapped_column(BigInteger, nullable=False)
    tags: Mapped[str] = mapped_column(Text, nullable=False, server_default="{}")
    params: Mapped[str] = mapped_column(Text, nullable=False, server_default="{}")
    __table_args__ = (Index("ix_logged_models_experiment", "experiment_id", "creation_time"),)


class Deployment(Base):
    """A deployment: variants (model URI, weight, role) served under one name, the request field
    that assigns units, batching settings, and the state of a gradual rollout (JSON columns)."""

    __tablename__ = "deployments"
    deployment_id: Mapped[int] = mapped_column(_BigIntPk, primary_key=True, autoincrement=True)
    workspace: Mapped[str] = mapped_column(
        String(63), ForeignKey("workspaces.name"), nullable=False
    )
    name: Mapped[str] = mapped_column(String(255), nullable=False)
    description: Mapped[str] = mapped_column(Text, nullable=False, server_default="")
    unit_key: Mapped[str | None] = mapped_column(String(255))
    variants: Mapped[str] = mapped_column(Text, nullable=False)
    batching: Mapped[str] = mapped_column(Text, nullable=False, server_default="{}")
    rollout: Mapped[str | None] = mapped_column(Text)
    revision: Mapped[int] = mapped_column(Integer, nullable=False)
    created_at: Mapped[int] = mapped_column(BigInteger, nullable=False)
    updated_at: Mapped[int] = mapped_column(BigInteger, nullable=False)
    __table_args__ = (UniqueConstraint("workspace", "name", name="uq_deployments_name"),)


class DeploymentEvent(Base):
    """The history of a deployment: every revision's variants, rollout steps and decisions."""

    __tablename__ = "deployment_events"
    seq: Mapped[int] = mapped_column(_BigIntPk, primary_key=True, autoincrement=True)
    deployment_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("deployments.deployment_id", ondelete="CASCADE"), nullable=False
    )
    revision: Mapped[int] = mapped_column(Integer, nullable=False)
    kind: Mapped[str] = mapped_column(String(32), nullable=False)
    time: Mapped[int] = mapped_column(BigInteger, nullable=False)
    user_id: Mapped[str] = mapped_column(String(256), nullable=False, server_default="")
    detail: Mapped[str] = mapped_column(Text, nullable=False, server_default="{}")
    __table_args__ = (Index("ix_deployment_events_seq", "deployment_id", "seq"),)


class Dataset(Base):
    """A named dataset in a workspace; ``last_version`` only grows, so numbers are never reused."""

    __tablename__ = "datasets"
    dataset_id: Mapped[int] = mapped_column(_BigIntPk, primary_key=True, autoincrement=True)
    workspace: Mapped[str] = mapped_column(
        String(63), ForeignKey("workspaces.name"), nullable=False
    )
    name: Mapped[str] = mapped_column(String(255), nullable=False)
    description: Mapped[str] = mapped_column(Text, nullable=False, server_default="")
    tags: Mapped[str] = mapped_column(Text, nullable=False, server_default="{}")
    last_version: Mapped[int] = mapped_column(Integer, nullable=False, server_default="0")
    created_at: Mapped[int] = mapped_column(BigInteger, nullable=False)
    updated_at: Mapped[int] = mapped_column(BigInteger, nullable=False)
    __table_args__ = (UniqueConstraint("workspace", "name", name="uq_datasets_name"),)


class DatasetVersion(Base):
    """One version of a dataset: its content hash, where its bytes live (``copy``: blobs in the
    artifact store; ``reference``: left at ``source_uri``), sizes, and a JSON profile."""

    __tablename__ = "dataset_versions"
    version_id: Mapped[int] = mapped_column(_BigIntPk, primary_key=True, autoincrement=True)
    dataset_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("datasets.dataset_id", ondelete="CASCADE"), nullable=False
    )
    version: Mapped[int] = mapped_column(Integer, nullable=False)
    content_hash: Mapped[str] = mapped_column(String(64), nullable=False)
    mode: Mapped[str] = mapped_column(String(16), nullable=False)
    source_uri: Mapped[str | None] = mapped_column(Text)
    chunk_size: Mapped[int] = mapped_column(BigInteger, nullable=False)
    num_files: Mapped[int] = mapped_column(BigInteger, nullable=False)
    size_bytes: Mapped[int] = mapped_column(BigInteger, nullable=False)
    num_rows: Mapped[int | None] = mapped_column(BigInteger)
    profile: Mapped[str | None] = mapped_column(Text)
    description: Mapped[str] = mapped_column(Text, nullable=False, server_default="")
    tags: Mapped[str] = mapped_column(Text, nullable=False, server_default="{}")
    run_id: Mapped[str | None] = mapped_column(String(32))
    created_by: Mapped[str] = mapped_column(String(256), nullable=False, server_default="")
    created_at: Mapped[int] = mapped_column(BigInteger, nullable=False)
    __table_args__ = (
        UniqueConstraint("dataset_id", "version", name="uq_dataset_versions_version"),
        Index("ix_dataset_versions_hash", "dataset_id", "content_hash"),
        Index("ix_dataset_versions_run", "run_id"),
    )


class DatasetFile(Base):
    """A file of a dataset version; ``chunks`` > 1 means its bytes are in ``dataset_chunks``,
    else the blob named ``digest`` holds the whole file."""

    __tablename__ = "dataset_files"
    version_id: Mapped[int] = mapped_column(
        BigInteger,
        ForeignKey("dataset_versions.version_id", ondelete="CASCADE"),
        primary_key=True,
    )
    path: Mapped[str] = mapped_column(String(1024), primary_key=True)
    size: Mapped[int] = mapped_column(BigInteger, nullable=False)
    digest: Mapped[str] = mapped_column(String(64), nullable=False)
    chunks: Mapped[int] = mapped_column(Integer, nullable=False)
    __table_args__ = (Index("ix_dataset_files_digest", "digest"),)


class DatasetChunk(Base):
    """The blobs of a file stored in fixed-size chunks, in order."""

    __tablename__ = "dataset_chunks"
    version_id: Mapped[int] = mapped_column(
        BigInteger,
        ForeignKey("dataset_versions.version_id", ondelete="CASCADE"),
        primary_key=True,
    )
    path: Mapped[str] = mapped_column(String(1024), primary_key=True)
    idx: Mapped[int] = mapped_column(Integer, primary_key=True)
    digest: Mapped[str] = mapped_column(String(64), nullable=False)
    __table_args__ = (Index("ix_dataset_chunks_digest", "digest"),)


class DatasetAlias(Base):
    """A name (``train-latest``) for one version of a dataset."""

    __tablename__ = "dataset_aliases"
    dataset_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("datasets.dataset_id", ondelete="CASCADE"), primary_key=True
    )
    alias: Mapped[str] = mapped_column(String(255), primary_key=True)
    version: Mapped[int] = mapped_column(Integer, nullable=False)


class DatasetInput(Base):
    """Lineage: a run that used (or produced) a dataset version."""

    __tablename__ = "dataset_inputs"
    version_id: Mapped[int] = mapped_column(
        BigInteger,
        ForeignKey("dataset_versions.version_id", ondelete="CASCADE"),
        primary_key=True,
    )
    run_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    context: Mapped[str] = mapped_column(String(64), nullable=False, server_default="")
    created_at: Mapped[int] = mapped_column(BigInteger, nullable=False)
    __table_args__ = (Index("ix_dataset_inputs_run", "run_id"),)


class DatasetBlob(Base):
    """A content-addressed blob known to be in the artifact store (shared by every workspace);
    ``touched_at`` is the last time an upload found or wrote it, so garbage collection can
    spare blobs an upload in flight is about to reference; ``deleting`` marks a blob garbage
    collection is removing (uploads treat it as absent and wait for the row to go). Small blobs
    live at ``offset`` inside a ``pack`` file written by one upload batch; ``pack`` is null for
    a blob stored as its own file."""

    __tablename__ = "dataset_blobs"
    digest: Mapped[str] = mapped_column(String(64), primary_key=True)
    size: Mapped[int] = mapped_column(BigInteger, nullable=False)
    created_at: Mapped[int] = mapped_column(BigInteger, nullable=False)
    touched_at: Mapped[int] = mapped_column(BigInteger, nullable=False)
    deleting: Mapped[bool] = mapped_column(Boolean, nullable=False, server_default=false())
    pack: Mapped[str | None] = mapped_column(String(64))
    offset: Mapped[int | None] = mapped_column(BigInteger)
    __table_args__ = (Index("ix_dataset_blobs_pack", "pack"),)


class FeatureObject(Base):
    """A feature-registry object (entity, feature view, on-demand view, service) of a workspace;
    ``version`` is its current version, ``deleted_at`` set once it was removed (its versions
    stay readable)."""

    __tablename__ = "feature_objects"
    object_id: Mapped[int] = mapped_column(_BigIntPk, primary_key=True, autoincrement=True)
    workspace: Mapped[str] = mapped_column(
        String(63), ForeignKey("workspaces.name"), nullable=False
    )
    kind: Mapped[str] = mapped_column(String(32), nullable=False)
    name: Mapped[str] = mapped_column(String(128), nullable=False)
    version: Mapped[int] = mapped_column(Integer, nullable=False)
    spec_hash: Mapped[str] = mapped_column(String(64), nullable=False)
    created_at: Mapped[int] = mapped_column(BigInteger, nullable=False)
    updated_at: Mapped[int] = mapped_column(BigInteger, nullable=False)
    deleted_at: Mapped[int | None] = mapped_column(BigInteger)
    __table_args__ = (
        UniqueConstraint("workspace", "kind", "name", name="uq_feature_objects_name"),
    )


class FeatureObjectVersion(Base):
    """One version of a feature-registry object: its JSON spec and the spec's hash."""

    __tablename__ = "feature_object_versions"
    object_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("feature_objects.object_id", ondelete="CASCADE"), primary_key=True
    )
    version: Mapped[int] = mapped_column(Integer, primary_key=True)
    spec: Mapped[str] = mapped_column(Text, nullable=False)
    spec_hash: Mapped[str] = mapped_column(String(64), nullable=False)
    created_at: Mapped[int] = mapped_column(BigInteger, nullable=False)


class FeatureViewState(Base):
    """Materialization state of a feature view: the watermark (µs since the epoch) up to which
    rows are online, the statistics of the last run, and an unfinished run's checkpoint."""

    __tablename__ = "feature_view_state"
    object_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("feature_objects.object_id", ondelete="CASCADE"), primary_key=True
    )
    watermark: Mapped[int | None] = mapped_column(BigInteger)
    stats: Mapped[str] = mapped_column(Text, nullable=False, server_default="{}")
    checkpoint: Mapped[str | None] = mapped_column(Text)
    materialized_at: Mapped[int | None] = mapped_column(BigInteger)


class MonitorProfile(Base):
    """A stored reference profile (JSON) for a subject such as ``models:/name/3``."""

    __tablename__ = "monitor_profiles"
    profile_id: Mapped[int] = mapped_column(_BigIntPk, primary_key=True, autoincrement=True)
    workspace: Mapped[str] = mapped_column(
        String(63), ForeignKey("workspaces.name"), nullable=False
    )
    subject: Mapped[str] = mapped_column(String(512), nullable=False)
    source: Mapped[str] = mapped_column(String(512), nullable=False, server_default="")
    n_rows: Mapped[int] = mapped_column(BigInteger, nullable=False)
    body: Mapped[str] = mapped_column(Text, nullable=False)
    created_at: Mapped[int] = mapped_column(BigInteger, nullable=False)
    __table_args__ = (UniqueConstraint("workspace", "subject", name="uq_monitor_profiles"),)


class Outcome(Base):
    """Ground truth for a logged prediction (by prediction id) or for a unit (by unit id)."""

    __tablename__ = "outcomes"
    seq: Mapped[int] = mapped_column(_BigIntPk, primary_key=True, autoincrement=True)
    workspace: Mapped[str] = mapped_column(
        String(63), ForeignKey("workspaces.name"), nullable=False
    )
    prediction_id: Mapped[str | None] = mapped_column(String(255))
    unit_id: Mapped[str | None] = mapped_column(String(255))
    value: Mapped[str] = mapped_column(Text, nullable=False)
    time: Mapped[int] = mapped_column(BigInteger, nullable=False)
    received_at: Mapped[int] = mapped_column(BigInteger, nullable=False)
    __table_args__ = (
        Index("ix_outcomes_prediction", "workspace", "prediction_id"),
        Index("ix_outcomes_unit", "workspace", "unit_id"),
        Index("ix_outcomes_time", "workspace", "time"),
    )


class AlertRule(Base):
    """An alert rule: what to watch on which deployment, and who to tell (a JSON spec)."""

    __tablename__ = "alert_rules"
    rule_id: Mapped[int] = mapped_column(_BigIntPk, primary_key=True, autoincrement=True)
    workspace: Mapped[str] = mapped_column(
        String(63), ForeignKey("workspaces.name"), nullable=False
    )
    name: Mapped[str] = mapped_column(String(255), nullable=False)
    deployment: Mapped[str] = mapped_column(String(255), nullable=False)
    spec: Mapped[str] = mapped_column(Text, nullable=False)
    created_at: Mapped[int] = mapped_column(BigInteger, nullable=False)
    updated_at: Mapped[int] = mapped_column(BigInteger, nullable=False)
    __table_args__ = (UniqueConstraint("workspace", "name", name="uq_alert_rules_name"),)


class AlertEvent(Base):
    """A rule's alert fired or resolved, with the measured value, evidence and deliveries."""

    __tablename__ = "alert_events"
    seq: Mapped[int] = mapped_column(_BigIntPk, primary_key=True, autoincrement=True)
    rule_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("alert_rules.rule_id", ondelete="CASCADE"), nullable=False
    )
    state: Mapped[str] = mapped_column(String(16), nullable=False)
    time: Mapped[int] = mapped_column(BigInteger, nullable=False)
    value: Mapped[float | None] = mapped_column(Float(precision=53))
    evidence: Mapped[str] = mapped_column(Text, nullable=False, server_default="{}")
    deliveries: Mapped[str] = mapped_column(Text, nullable=False, server_default="[]")
    __table_args__ = (Index("ix_alert_events_rule", "rule_id", "seq"),)


class AbTest(Base):
    """An A/B experiment: variants and weights (or a deployment), metrics, status (JSON spec)."""

    __tablename__ = "abtests"
    experiment_id: Mapped[int] = mapped_column(_BigIntPk, primary_key=True, autoincrement=True)
    workspace: Mapped[str] = mapped_column(
        String(63), ForeignKey("workspaces.name"), nullable=False
    )
    name: Mapped[str] = mapped_column(String(255), nullable=False)
    spec: Mapped[str] = mapped_column(Text, nullable=False)
    status: Mapped[str] = mapped_column(String(16), nullable=False)
    created_at: Mapped[int] = mapped_column(BigInteger, nullable=False)
    updated_at: Mapped[int] = mapped_column(BigInteger, nullable=False)
    __table_args__ = (UniqueConstraint("workspace", "name", name="uq_abtests_name"),)


class AbTestExposure(Base):
    """A unit's first exposure to an experiment: its variant and when."""

    __tablename__ = "abtest_exposures"
    experiment_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("abtests.experiment_id", ondelete="CASCADE"), primary_key=True
    )
    unit_id: Mapped[str] = mapped_column(String(255), primary_key=True)
    variant: Mapped[str] = mapped_column(String(255), nullable=False)
    time: Mapped[int] = mapped_column(BigInteger, nullable=False)


class AbTestEvent(Base):
    """A metric event of a unit in an experiment (a conversion, an amount)."""

    __tablename__ = "abtest_events"
    seq: Mapped[int] = mapped_column(_BigIntPk, primary_key=True, autoincrement=True)
    experiment_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("abtests.experiment_id", ondelete="CASCADE"), nullable=False
    )
    unit_id: Mapped[str] = mapped_column(String(255), nullable=False)
    metric: Mapped[str] = mapped_column(String(255), nullable=False)
    value: Mapped[float] = mapped_column(Float(precision=53), nullable=False)
    time: Mapped[int] = mapped_column(BigInteger, nullable=False)
    __table_args__ = (Index("ix_abtest_events_metric", "experiment_id", "metric"),)


class Pipeline(Base):
    """A pipeline known to the store: its name, import target and last DAG (JSON)."""

    __tablename__ = "pipelines"
    pipeline_id: Mapped[int] = mapped_column(_BigIntPk, primary_key=True, autoincrement=True)
    workspace: Mapped[str] = mapped_column(
        String(63), ForeignKey("workspaces.name"), nullable=False
    )
    name: Mapped[str] = mapped_column(String(255), nullable=False)
    target: Mapped[str | None] = mapped_column(String(1000))
    description: Mapped[str] = mapped_column(Text, nullable=False)
    dag: Mapped[str] = mapped_column(Text, nullable=False)
    created_at: Mapped[int] = mapped_column(BigInteger, nullable=False)
    updated_at: Mapped[int] = mapped_column(BigInteger, nullable=False)
    __table_args__ = (UniqueConstraint("workspace", "name", name="uq_pipelines_name"),)


class PipelineRun(Base):
    """One run of a pipeline: status, parameters, the DAG it ran, how it was started."""

    __tablename__ = "pipeline_runs"
    run_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    pipeline_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("pipelines.pipeline_id", ondelete="CASCADE"), nullable=False
    )
    status: Mapped[str] = mapped_column(String(16), nullable=False)
    params: Mapped[str] = mapped_column(Text, nullable=False)
    dag: Mapped[str] = mapped_column(Text, nullable=False)
    trigger: Mapped[str] = mapped_column(String(255), nullable=False)
    executor: Mapped[str] = mapped_column(String(64), nullable=False)
    resumed_from: Mapped[str | None] = mapped_column(String(32))
    error: Mapped[str | None] = mapped_column(Text)
    worker: Mapped[str | None] = mapped_column(String(255))
    created_at: Mapped[int] = mapped_column(BigInteger, nullable=False)
    started_at: Mapped[int | None] = mapped_column(BigInteger)
    ended_at: Mapped[int | None] = mapped_column(BigInteger)
    heartbeat_at: Mapped[int | None] = mapped_column(BigInteger)
    __table_args__ = (
        Index("ix_pipeline_runs_pipeline", "pipeline_id", "created_at"),
        Index("ix_pipeline_runs_status", "status"),
    )


class PipelineStepRun(Base):
    """One step of a pipeline run: status, attempts, cache key, inputs, outputs, logs."""

    __tablename__ = "pipeline_step_runs"
    run_id: Mapped[str] = mapped_column(
        String(32), ForeignKey("pipeline_runs.run_id", ondelete="CASCADE"), primary_key=True
    )
    step: Mapped[str] = mapped_column(String(255), primary_key=True)
    status: Mapped[str] = mapped_column(String(16), nullable=False)
    attempts: Mapped[int] = mapped_column(Integer, nullable=False)
    cache_key: Mapped[str | None] = mapped_column(String(64))
    cached_from: Mapped[str | None] = mapped_column(String(32))
    inputs: Mapped[str] = mapped_column(Text, nullable=False)
    outputs: Mapped[str] = mapped_column(Text, nullable=False)
    logs: Mapped[str] = mapped_column(Text, nullable=False)
    error: Mapped[str | None] = mapped_column(Text)
    tracking_runs: Mapped[str] = mapped_column(Text, nullable=False)
    started_at: Mapped[int | None] = mapped_column(BigInteger)
    ended_at: Mapped[int | None] = mapped_column(BigInteger)
    __table_args__ = (Index("ix_pipeline_step_runs_cache", "cache_key"),)


class PipelineSchedule(Base):
    """A cron schedule of a pipeline with its parameters and next due time."""

    __tablename__ = "pipeline_schedules"
    schedule_id: Mapped[int] = mapped_column(_BigIntPk, primary_key=True, autoincrement=True)
    pipeline_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("pipelines.pipeline_id", ondelete="CASCADE"), nullable=False
    )
    cron: Mapped[str] = mapped_column(String(255), nullable=False)
    params: Mapped[str] = mapped_column(Text, nullable=False)
    enabled: Mapped[bool] = mapped_column(Boolean, nullable=False)
    next_run_at: Mapped[int] = mapped_column(BigInteger, nullable=False)
    last_run_at: Mapped[int | None] = mapped_column(BigInteger)
    last_run_id: Mapped[str | None] = mapped_column(String(32))
    created_at: Mapped[int] = mapped_column(BigInteger, nullable=False)
    __table_args__ = (Index("ix_pipeline_schedules_due", "next_run_at"),)


class User(Base):
    """A person or service account that can sign in or hold API tokens."""

    __tablename__ = "users"
    user_id: Mapped[int] = mapped_column(_BigIntPk, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(255), nullable=False)
    kind: Mapped[str] = mapped_column(String(16), nullable=False)
    password_hash: Mapped[str | None] = mapped_column(Text)
    is_admin: Mapped[bool] = mapped_column(Boolean, nullable=False)
    disabled: Mapped[bool] = mapped_column(Boolean, nullable=False)
    failed_logins: Mapped[int] = mapped_column(Integer, nullable=False)
    locked_until: Mapped[int | None] = mapped_column(BigInteger)
    created_at: Mapped[int] = mapped_column(BigInteger, nullable=False)
    __table_args__ = (UniqueConstraint("name", name="uq_users_name"),)


class ApiToken(Base):
    """An API token (or a web session, kind "session"): its public id, the SHA-256 of its
    secret, expiry, revocation, last use."""

    __tablename__ = "api_tokens"
    token_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    user_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("users.user_id", ondelete="CASCADE"), nullable=False
    )
    name: Mapped[str] = mapped_column(String(255), nullable=False)
    secret_hash: Mapped[str] = mapped_column(String(64), nullable=False)
    created_at: Mapped[int] = mapped_column(BigInteger, nullable=False)
    expires_at: Mapped[int | None] = mapped_column(BigInteger)
    revoked_at: Mapped[int | None] = mapped_column(BigInteger)
    last_used_at: Mapped[int | None] = mapped_column(BigInteger)
    kind: Mapped[str] = mapped_column(String(16), nullable=False, server_default="api")
    __table_args__ = (Index("ix_api_tokens_user", "user_id"),)


class Grant(Base):
    """A role of a user in a workspace, or on one object of it (object_type "" = the workspace)."""

    __tablename__ = "grants"
    grant_id: Mapped[int] = mapped_column(_BigIntPk, primary_key=True, autoincrement=True)
    user_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("users.user_id", ondelete="CASCADE"), nullable=False
    )
    workspace: Mapped[str] = mapped_column(
        String(63), ForeignKey("workspaces.name", ondelete="CASCADE"), nullable=False
    )
    role: Mapped[str] = mapped_column(String(16), nullable=False)
    object_type: Mapped[str] = mapped_column(String(32), nullable=False)
    object_name: Mapped[str] = mapped_column(String(255), nullable=False)
    created_at: Mapped[int] = mapped_column(BigInteger, nullable=False)
    __table_args__ = (
        UniqueConstraint(
            "user_id", "workspace", "object_type", "object_name", name="uq_grants_scope"
        ),
    )


class AuditEvent(Base):
    """One mutation: who, what, when, from where, its outcome and details (append-only)."""

    __tablename__ = "audit_events"
    seq: Mapped[int] = mapped_column(_BigIntPk, primary_key=True, autoincrement=True)
    time: Mapped[int] = mapped_column(BigInteger, nullable=False)
    actor: Mapped[str] = mapped_column(String(255), nullable=False)
    workspace: Mapped[str] = mapped_column(String(63), nullable=False)
    action: Mapped[str] = mapped_column(String(255), nullable=False)
    object_type: Mapped[str] = mapped_column(String(32), nullable=False)
    object_name: Mapped[str] = mapped_column(String(1000), nullable=False)
    status: Mapped[int] = mapped_column(Integer, nullable=False)
    remote: Mapped[str] = mapped_column(String(255), nullable=False)
    detail: Mapped[str] = mapped_column(Text, nullable=False)
    __table_args__ = (
        Index("ix_audit_events_object", "object_type", "object_name"),
        Index("ix_audit_events_actor", "actor", "time"),
    )


workspaces: Table = cast(Table, Workspace.__table__)
experiments: Table = cast(Table, Experiment.__table__)
experiment_tags: Table = cast(Table, ExperimentTag.__table__)
runs: Table = cast(Table, Run.__table__)
params: Table = cast(Table, Param.__table__)
tags: Table = cast(Table, Tag.__table__)
metrics: Table = cast(Table, Metric.__table__)
latest_metrics: Table = cast(Table, LatestMetric.__table__)
registered_models: Table = cast(Table, RegisteredModel.__table__)
registered_model_tags: Table = cast(Table, RegisteredModelTag.__table__)
model_versions: Table = cast(Table, ModelVersion.__table__)
model_version_tags: Table = cast(Table, ModelVersionTag.__table__)
model_aliases: Table = cast(Table, ModelAlias.__table__)
model_events: Table = cast(Table, ModelEvent.__table__)
webhooks: Table = cast(Table, Webhook.__table__)
webhook_deliveries: Table = cast(Table, WebhookDelivery.__table__)
logged_models: Table = cast(Table, LoggedModel.__table__)
deployments: Table = cast(Table, Deployment.__table__)
deployment_events: Table = cast(Table, DeploymentEvent.__table__)
datasets: Table = cast(Table, Dataset.__table__)
dataset_versions: Table = cast(Table, DatasetVersion.__table__)
dataset_files: Table = cast(Table, DatasetFile.__table__)
dataset_chunks: Table = cast(Table, DatasetChunk.__table__)
dataset_aliases: Table = cast(Table, DatasetAlias.__table__)
dataset_inputs: Table = cast(Table, DatasetInput.__table__)
dataset_blobs: Table = cast(Table, DatasetBlob.__table__)
feature_objects: Table = cast(Table, FeatureObject.__table__)
feature_object_versions: Table = cast(Table, FeatureObjectVersion.__table__)
feature_view_state: Table = cast(Table, FeatureViewState.__table__)
monitor_profiles: Table = cast(Table, MonitorProfile.__table__)
outcomes: Table = cast(Table, Outcome.__table__)
alert_rules: Table = cast(Table, AlertRule.__table__)
alert_events: Table = cast(Table, AlertEvent.__table__)
abtests: Table = cast(Table, AbTest.__table__)
abtest_exposures: Table = cast(Table, AbTestExposure.__table__)
abtest_events: Table = cast(Table, AbTestEvent.__table__)
pipelines: Table = cast(Table, Pipeline.__table__)
pipeline_runs: Table = cast(Table, PipelineRun.__table__)
pipeline_step_runs: Table = cast(Table, PipelineStepRun.__table__)
pipeline_schedules: Table = cast(Table, PipelineSchedule.__table__)
users: Table = cast(Table, User.__table__)
api_tokens: Table = cast(Table, ApiToken.__table__)
grants: Table = cast(Table, Grant.__table__)
audit_events: Table = cast(Table, AuditEvent.__table__)
