"""The metadata tables, for the SQL stores of each capability to query with SQLAlchemy Core."""

from __future__ import annotations

from loopml.store._models import (
    Base,
    experiment_tags,
    experiments,
    latest_metrics,
    metrics,
    params,
    runs,
    tags,
    workspaces,
)

__all__ = [
    "Base",
    "experiment_tags",
    "experiments",
    "latest_metrics",
    "metrics",
    "params",
    "runs",
    "tags",
    "workspaces",
]
