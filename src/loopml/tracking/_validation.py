"""Checks on names and values shared by every tracking store and the logging fast path."""

from __future__ import annotations

import math
import numbers
import re
from typing import Any

from loopml.errors import InvalidInput
from loopml.tracking._entities import Metric, Param, RunBatch, RunTag

MAX_KEY_LENGTH = 250
MAX_PARAM_VALUE_LENGTH = 6000
MAX_TAG_VALUE_LENGTH = 8000
MAX_EXPERIMENT_NAME_LENGTH = 500
MAX_RUN_NAME_LENGTH = 250

# MLflow's rule: alphanumerics, underscores, dashes, periods, spaces, slashes.
_KEY = re.compile(r"[\w./ \-]+")
_valid_keys: set[str] = set()  # keys already checked; logging the same key again is free


def validate_key(key: Any, kind: str) -> str:
    """Return ``key`` if it is a legal metric, param or tag name, else raise ``InvalidInput``."""
    if type(key) is str and key in _valid_keys:
        return key
    if not isinstance(key, str):
        raise InvalidInput(f"{kind} key must be a string, got {type(key).__name__}: {key!r}")
    if not key or len(key) > MAX_KEY_LENGTH:
        raise InvalidInput(f"{kind} key {key!r} must have 1 to {MAX_KEY_LENGTH} characters")
    if not _KEY.fullmatch(key) or key.startswith("/") or ".." in key.split("/"):
        raise InvalidInput(
            f"{kind} key {key!r} may only hold letters, digits, '_', '-', '.', ' ' and '/'"
        )
    if len(_valid_keys) < 100_000:
        _valid_keys.add(key)
    return key


def metric_value(value: Any, key: str) -> float:
    """Coerce a metric value to float; anything but a real number is ``InvalidInput``."""
    t = type(value)
    if t is float:
        return value  # type: ignore[no-any-return]
    if t is int:
        return float(value)
    if isinstance(value, numbers.Real) or (
        hasattr(value, "dtype") and getattr(value, "ndim", 1) == 0
    ):
        try:
            return float(value)
        except (TypeError, ValueError) as exc:
            raise InvalidInput(f"metric {key!r}: value {value!r} is not a number") from exc
    raise InvalidInput(
        f"metric {key!r}: value must be a number, got {type(value).__name__}: {value!r:.80}"
    )


_INT64 = 2**63


def int_field(value: Any, name: str) -> int:
    """Coerce a step or timestamp to a 64-bit int, refusing fractions, bools and strings."""
    if type(value) is int and -_INT64 <= value < _INT64:
        return value  # type: ignore[no-any-return]
    if isinstance(value, bool):
        raise InvalidInput(f"{name} must be an integer, got a bool: {value!r}")
    if not isinstance(value, numbers.Integral | float):
        if hasattr(value, "dtype") and getattr(value, "ndim", 1) == 0:
            return int_field(value.item(), name)
        raise InvalidInput(f"{name} must be an integer, got {type(value).__name__}: {value!r}")
    if isinstance(value, float) and (not math.isfinite(value) or not value.is_integer()):
        raise InvalidInput(f"{name} must be an integer, got {value!r}")
    if not -_INT64 <= int(value) < _INT64:
        raise InvalidInput(f"{name} {value} is out of range (a 64-bit integer)")
    return int(value)


def string_value(value: Any) -> str:
    """Params and tags are stored as strings, as MLflow stores them."""
    return value if type(value) is str else str(value)


def validate_metric(metric: Metric) -> Metric:
    """Validate a whole ``Metric`` (keys, value type, integer step and timestamp)."""
    if not isinstance(metric, Metric):
        raise InvalidInput(f"expected a Metric, got {type(metric).__name__}: {metric!r:.80}")
    if (
        type(metric.value) is float
        and type(metric.timestamp) is int
        and type(metric.step) is int
        and -_INT64 <= metric.timestamp < _INT64
        and -_INT64 <= metric.step < _INT64
        and metric.key in _valid_keys
    ):
        return metric  # the common case: already checked on the logging path
    key = validate_key(metric.key, "metric")
    return Metric(
        key,
        metric_value(metric.value, key),
        int_field(metric.timestamp, "timestamp"),
        int_field(metric.step, "step"),
    )


def validate_param(param: Param) -> Param:
    """Validate a ``Param`` and turn its value into a string."""
    if not isinstance(param, Param):
        raise InvalidInput(f"expected a Param, got {type(param).__name__}: {param!r:.80}")
    key = validate_key(param.key, "param")
    value = string_value(param.value)
    if "\x00" in value:
        raise InvalidInput(f"param {key!r}: value contains a NUL character")
    if len(value) > MAX_PARAM_VALUE_LENGTH:
        raise InvalidInput(
            f"param {key!r}: value has {len(value)} characters, more than {MAX_PARAM_VALUE_LENGTH}"
        )
    return Param(key, value)


def validate_tag(tag: RunTag) -> RunTag:
    """Validate a ``RunTag`` and turn its value into a string."""
    if not isinstance(tag, RunTag):
        raise InvalidInput(f"expected a RunTag, got {type(tag).__name__}: {tag!r:.80}")
    key = validate_key(tag.key, "tag")
    value = string_value(tag.value)
    if "\x00" in value:
        raise InvalidInput(f"tag {key!r}: value contains a NUL character")
    if key == "mlflow.runName":
        validate_name(value, "run", MAX_RUN_NAME_LENGTH)
    if len(value) > MAX_TAG_VALUE_LENGTH:
        raise InvalidInput(
            f"tag {key!r}: value has {len(value)} characters, more than {MAX_TAG_VALUE_LENGTH}"
        )
    return RunTag(key, value)


def validate_name(name: Any, kind: str, max_length: int) -> str:
    """Validate an experiment or run name: a non-blank string of bounded length."""
    if not isinstance(name, str) or not name.strip():
        raise InvalidInput(f"{kind} name must be a non-empty string, got {name!r:.80}")
    if "\x00" in name:
        raise InvalidInput(f"{kind} name contains a NUL character")
    if len(name) > max_length:
        raise InvalidInput(f"{kind} name has {len(name)} characters, more than {max_length}")
    return name


def validate_run_id(run_id: Any) -> str:
    """Run ids are 32 lowercase hex characters (a UUID without dashes)."""
    if not isinstance(run_id, str) or not re.fullmatch(r"[0-9a-f]{32}", run_id):
        raise InvalidInput(f"run id {run_id!r} is not a 32-character hex id")
    return run_id


def validate_experiment_id(experiment_id: Any) -> int:
    """Experiment ids are non-negative integers, carried as strings."""
    try:
        value = int(str(experiment_id))
    except ValueError:
        raise InvalidInput(f"experiment id {experiment_id!r} is not an integer id") from None
    if value < 0 or value > 2**62:
        raise InvalidInput(f"experiment id {experiment_id!r} is out of range")
    return value


def validate_batch(batch: RunBatch) -> RunBatch:
    """Validate every record of a batch; values become their stored types."""
    return RunBatch(
        validate_run_id(batch.run_id),
        [validate_metric(m) for m in batch.metrics],
        [validate_param(p) for p in batch.params],
        [validate_tag(t) for t in batch.tags],
        batch.status,
        None if batch.end_time is None else int_field(batch.end_time, "end_time"),
    )
