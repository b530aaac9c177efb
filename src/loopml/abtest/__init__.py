"""A/B testing: deterministic assignment and the statistics to read experiments safely.

``bucket(salt, unit)`` is the one assignment function: the inference server's router and the SDK
both call it, so they agree on every unit. The statistics work on per-group sufficient
statistics (``Moments``), vectorised over NumPy arrays.
"""

from __future__ import annotations

from loopml.abtest._assign import BUCKETS, assign, bucket
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
    "Moments",
    "TestResult",
    "assign",
    "bayes_binomial",
    "bayes_normal",
    "bucket",
    "correct",
    "cuped_theta",
    "minimum_detectable_effect",
    "proportions_test",
    "sample_size",
    "sequential_test",
    "srm_test",
    "welch_test",
]
