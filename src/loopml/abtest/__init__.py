"""A/B testing: deterministic assignment and the statistics to read experiments safely.

``bucket(salt, unit)`` is the one assignment function: the inference server's router and the SDK
both call it, so they agree on every unit. ``analyze`` reads unit-level rows (one DuckDB pass)
into per-variant sufficient statistics and reports every metric against control with the
frequentist, sequential or Bayesian method, the sample-ratio check and a verdict; the building
blocks are plain functions over ``Moments``, vectorised over NumPy arrays.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from loopml.abtest._assign import BUCKETS, bucket

if TYPE_CHECKING:
    from loopml.abtest._analyze import METHODS, Analysis, Metric, analyze
    from loopml.abtest._experiments import Experiment, SqlExperimentStore
    from loopml.abtest._fluent import (
        analyze_experiment,
        assign,
        create_experiment,
        deployment_predictions,
        get_experiment,
        get_experiment_store,
        list_experiments,
        log_event,
        log_events,
        log_exposure,
        log_exposures,
        stop_experiment,
    )
    from loopml.abtest._stats import (
        Moments,
        TestResult,
        bayes_binomial,
        bayes_normal,
        correct,
        cuped_theta,
        minimum_detectable_effect,
        proportions_test,
        sample_size,
        sequential_test,
        srm_test,
        welch_test,
    )

# The router needs only ``bucket``: the statistics (SciPy), the analysis (DuckDB) and the
# experiment store (SQLAlchemy) load on first use, not with every inference server.
_LAZY = {
    "Analysis": "_analyze",
    "Experiment": "_experiments",
    "METHODS": "_analyze",
    "Metric": "_analyze",
    "Moments": "_stats",
    "SqlExperimentStore": "_experiments",
    "TestResult": "_stats",
    "analyze": "_analyze",
    "analyze_experiment": "_fluent",
    "assign": "_fluent",
    "bayes_binomial": "_stats",
    "bayes_normal": "_stats",
    "correct": "_stats",
    "create_experiment": "_fluent",
    "cuped_theta": "_stats",
    "deployment_predictions": "_fluent",
    "get_experiment": "_fluent",
    "get_experiment_store": "_fluent",
    "list_experiments": "_fluent",
    "log_event": "_fluent",
    "log_events": "_fluent",
    "log_exposure": "_fluent",
    "log_exposures": "_fluent",
    "minimum_detectable_effect": "_stats",
    "proportions_test": "_stats",
    "sample_size": "_stats",
    "sequential_test": "_stats",
    "srm_test": "_stats",
    "stop_experiment": "_fluent",
    "welch_test": "_stats",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'loopml.abtest' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"loopml.abtest.{module}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)


__all__ = [
    "BUCKETS",
    "METHODS",
    "Analysis",
    "Experiment",
    "Metric",
    "Moments",
    "SqlExperimentStore",
    "TestResult",
    "analyze",
    "analyze_experiment",
    "assign",
    "bayes_binomial",
    "bayes_normal",
    "bucket",
    "correct",
    "create_experiment",
    "cuped_theta",
    "deployment_predictions",
    "get_experiment",
    "get_experiment_store",
    "list_experiments",
    "log_event",
    "log_events",
    "log_exposure",
    "log_exposures",
    "minimum_detectable_effect",
    "proportions_test",
    "sample_size",
    "sequential_test",
    "srm_test",
    "stop_experiment",
    "welch_test",
]
