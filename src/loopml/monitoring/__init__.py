"""Monitoring: the prediction log the inference server appends to, and readers over it.

``PredictionLog`` writes one row per predicted instance to Parquet files partitioned by
deployment and date, from a background thread; ``read_predictions`` reads them back with
partition pruning, ``expand_inputs`` turns the logged inputs into columns for drift analysis,
and ``summarize`` gives per-variant error rates and latency percentiles for guardrails.
``detect_drift`` compares a current sample with a reference, column by column;
``profile_reference`` keeps what a comparison needs of a reference, to store and reuse.
``check`` and ``quality`` run over a deployment's logged window (drift against the serving
version's training data from lineage; live quality once ``log_outcome`` brings ground truth);
``AlertRule`` and ``AlertEngine`` turn them into stored, notified alerts.
"""

from __future__ import annotations

from loopml.monitoring._alerts import AlertEngine, RuleStatus, register_action, register_notifier
from loopml.monitoring._check import Monitor, QualityReport, report_data
from loopml.monitoring._drift import ColumnDrift, DriftReport, detect_drift
from loopml.monitoring._fluent import check, get_monitor, log_outcome, log_outcomes, quality
from loopml.monitoring._predlog import PredictionLog, expand_inputs, read_predictions, summarize
from loopml.monitoring._profile import ReferenceProfile, profile_reference
from loopml.monitoring._report import render_html as render_report
from loopml.monitoring._report import save_html as save_report
from loopml.monitoring._store import (
    MAX_OUTCOMES_PER_CALL,
    AlertEvent,
    AlertRule,
    SqlMonitorStore,
    parse_duration,
)

__all__ = [
    "MAX_OUTCOMES_PER_CALL",
    "AlertEngine",
    "AlertEvent",
    "AlertRule",
    "ColumnDrift",
    "DriftReport",
    "Monitor",
    "PredictionLog",
    "QualityReport",
    "ReferenceProfile",
    "RuleStatus",
    "SqlMonitorStore",
    "check",
    "detect_drift",
    "expand_inputs",
    "get_monitor",
    "log_outcome",
    "log_outcomes",
    "parse_duration",
    "profile_reference",
    "quality",
    "read_predictions",
    "register_action",
    "register_notifier",
    "render_report",
    "report_data",
    "save_report",
    "summarize",
]
