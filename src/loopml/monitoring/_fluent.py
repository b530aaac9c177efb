"""Module-level monitoring functions over the configured database and prediction log."""

from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from loopml.errors import InvalidInput
from loopml.monitoring._check import Monitor, QualityReport
from loopml.monitoring._drift import DriftReport
from loopml.monitoring._store import MAX_OUTCOMES_PER_CALL, SqlMonitorStore, validate_outcome

__all__ = ["check", "get_monitor", "log_outcome", "log_outcomes", "quality"]

_lock = threading.Lock()
_monitors: dict[tuple[str, str], Monitor] = {}


def _target() -> tuple[str, str]:
    import sys

    from loopml.config import get_settings

    settings = get_settings()
    tracking = sys.modules.get("loopml.tracking")
    uri = (
        tracking.resolve_tracking_uri(None)
        if tracking is not None
        else (settings.tracking_uri or settings.resolved_database_uri)
    )
    return uri, settings.workspace


def get_monitor() -> Monitor:
    """The (cached) monitor of the configured database, workspace and prediction log."""
    uri, workspace = _target()
    if uri.startswith(("http://", "https://")):
        raise InvalidInput(
            "drift and quality checks read the prediction log and the database directly; "
            "run them where those are reachable (or use the server's /api/v1/monitoring routes)"
        )
    with _lock:
        monitor = _monitors.get((uri, workspace))
        if monitor is None:
            monitor = Monitor(SqlMonitorStore(uri, workspace=workspace))
            _monitors[(uri, workspace)] = monitor
        return monitor


def check(deployment: str, window: str | float = "24h", **kwargs: Any) -> DriftReport:
    """Drift of a deployment's logged window against its model version's training data."""
    return get_monitor().check(deployment, window, **kwargs)


def quality(deployment: str, window: str | float = "24h", **kwargs: Any) -> QualityReport:
    """Live quality of a deployment's logged window, by variant, against baselines."""
    return get_monitor().quality(deployment, window, **kwargs)


def log_outcomes(records: Sequence[Mapping[str, Any]]) -> int:
    """Store ground truth for logged predictions (``prediction_id``) or units (``unit_id``):
    each record has one of them, a ``value`` and an optional ``timestamp``."""
    uri, workspace = _target()
    if uri.startswith(("http://", "https://")):
        from loopml.tracking import get_store

        if isinstance(records, (str, bytes, Mapping)) or not isinstance(records, Sequence):
            raise InvalidInput("outcomes must be a list of objects")
        for i, record in enumerate(records):  # every record checked before any is sent
            validate_outcome(record, i if len(records) > 1 else None)
        http = get_store(uri, workspace=workspace)
        plain = [_plain(r) for r in records]
        stored = 0
        for start in range(0, len(plain), MAX_OUTCOMES_PER_CALL):  # each request is atomic
            chunk = plain[start : start + MAX_OUTCOMES_PER_CALL]
            stored += int(http.request("POST", "/outcomes", body={"outcomes": chunk})["stored"])
        return stored
    return get_monitor().store.log_outcomes(records)


def _plain(record: Mapping[str, Any]) -> dict[str, Any]:
    """A record as JSON can carry it: NumPy scalars as Python ones, datetimes as ISO text in
    UTC (naive means UTC)."""
    out = dict(record)
    value = out.get("value")
    if hasattr(value, "item") and not isinstance(value, (str, bytes)):
        out["value"] = value.item()
    stamp = out.get("timestamp")
    if isinstance(stamp, datetime):
        stamp = stamp if stamp.tzinfo else stamp.replace(tzinfo=UTC)
        out["timestamp"] = stamp.isoformat()
    elif hasattr(stamp, "item"):
        out["timestamp"] = stamp.item()
    return out


def log_outcome(
    prediction_id: str | None = None,
    value: Any = None,
    *,
    unit_id: str | None = None,
    timestamp: Any = None,
) -> None:
    """Store the ground truth of one prediction (or of a unit's predictions)."""
    record: dict[str, Any] = {"value": value}
    if prediction_id is not None:
        record["prediction_id"] = prediction_id
    if unit_id is not None:
        record["unit_id"] = unit_id
    if timestamp is not None:
        record["timestamp"] = timestamp
    log_outcomes([record])
