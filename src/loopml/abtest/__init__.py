"""A/B testing: deterministic assignment and the statistics to read experiments safely.

``bucket(salt, unit)`` is the one assignment function: the inference server's router and the SDK
both call it, so they agree on every unit. ``analyze`` reads unit-level rows (one DuckDB pass)
into per-variant sufficient statistics and reports every metric against control with the
frequentist, sequential or Bayesian method, the sample-ratio check and a verdict; the building
blocks are plain functions over ``Moments``, vectorised over NumPy arrays.
"""

from __future__ import annotations

from loopml.abtest._analyze import METHODS, Analysis, Metric, analyze
from loopml.abtest._assign import BUCKETS, bucket
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
