"""Monitoring: the prediction log the inference server appends to, and readers over it.

``PredictionLog`` writes one row per predicted instance to Parquet files partitioned by
deployment and date, from a background thread; ``read_predictions`` reads them back with
partition pruning, ``expand_inputs`` turns the logged inputs into columns for drift analysis,
and ``summarize`` gives per-variant error rates and latency percentiles for guardrails.
``detect_drift`` compares a current sample with a reference, column by column;
``profile_reference`` keeps what a comparison needs of a reference, to store and reuse.
"""

from __future__ import annotations

from loopml.monitoring._drift import ColumnDrift, DriftReport, detect_drift
from loopml.monitoring._predlog import PredictionLog, expand_inputs, read_predictions, summarize
from loopml.monitoring._profile import ReferenceProfile, profile_reference

__all__ = [
    "ColumnDrift",
    "DriftReport",
    "PredictionLog",
    "ReferenceProfile",
    "detect_drift",
    "expand_inputs",
    "profile_reference",
    "read_predictions",
    "summarize",
]
