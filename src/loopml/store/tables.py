"""The metadata tables, for the SQL stores of each capability to query with SQLAlchemy Core."""

from __future__ import annotations

from loopml.store._models import (
    Base,
    deployment_events,
    deployments,
    experiment_tags,
    experiments,
    latest_metrics,
    logged_models,
    metrics,
    model_aliases,
    model_events,
    model_version_tags,
    model_versions,
    params,
    registered_model_tags,
    registered_models,
    runs,
    tags,
    webhook_deliveries,
    webhooks,
    workspaces,
)

__all__ = [
    "Base",
    "deployment_events",
    "deployments",
    "experiment_tags",
    "experiments",
    "latest_metrics",
    "logged_models",
    "metrics",
    "model_aliases",
    "model_events",
    "model_version_tags",
    "model_versions",
    "params",
    "registered_model_tags",
    "registered_models",
    "runs",
    "tags",
    "webhook_deliveries",
    "webhooks",
    "workspaces",
]
