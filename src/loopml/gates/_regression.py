"""The regression gate: a candidate model against the current one (the baseline) on the same
holdout frame, with scikit-learn's metrics; a candidate worse by more than a tolerance fails.

Classifier metrics: accuracy, f1 (binary for 0/1 labels, else macro-averaged), roc_auc and
log_loss (both from ``predict_proba``). Regressor metrics: rmse, mae, r2. For log_loss, rmse and
mae lower is better, so "worse" means higher.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd

from loopml.errors import InvalidInput, InvalidState
from loopml.gates._data import as_frame
from loopml.gates._refs import find_baseline
from loopml.gates._report import GateResult, fmt

__all__ = ["LOWER_IS_BETTER", "METRICS", "check_regression", "score"]

METRICS = ("accuracy", "f1", "roc_auc", "log_loss", "rmse", "mae", "r2")
LOWER_IS_BETTER = frozenset({"log_loss", "rmse", "mae"})
_PROBA = frozenset({"roc_auc", "log_loss"})


def _classes(model: Any, proba: np.ndarray, y: pd.Series) -> np.ndarray:
    """The class of each probability column: the estimator's ``classes_``, else the sorted
    labels when their number matches."""
    classes = getattr(model.native, "classes_", None)
    if classes is not None and len(classes) == proba.shape[1]:
        return np.asarray(classes)
    labels = np.unique(y.to_numpy())
    if len(labels) == proba.shape[1]:
        return labels
    raise InvalidInput(
        f"cannot tell which class each of the model's {proba.shape[1]} probability columns is "
        f"(the holdout has {len(labels)} labels)"
    )


def score(model: Any, features: pd.DataFrame, y: pd.Series, metric: str) -> float:
    """``metric`` of a loaded model on a holdout (``features`` and true values ``y``).

    Raises:
        InvalidInput: an unknown metric, input the model refuses, or a holdout the metric
            cannot be computed on (one class only for roc_auc).
    """
    from sklearn import metrics as skm

    if metric not in METRICS:
        raise InvalidInput(f"unknown metric {metric!r}: use one of {', '.join(METRICS)}")
    try:
        if metric in _PROBA:
            try:
                proba = np.asarray(model.predict_proba(features), dtype=float)
            except InvalidState as exc:
                raise InvalidInput(f"{metric} needs class probabilities: {exc}") from exc
            sums = proba.sum(axis=1, keepdims=True)
            if np.allclose(sums, 1.0, atol=1e-4):  # ONNX Runtime's float32 rounding
                proba = proba / sums
            classes = _classes(model, proba, y)
            if metric == "log_loss":
                return float(skm.log_loss(y, proba, labels=classes))
            if proba.shape[1] == 2:
                return float(skm.roc_auc_score(y == classes[1], proba[:, 1]))
            return float(skm.roc_auc_score(y, proba, multi_class="ovr", labels=classes))
        predicted = np.asarray(model.predict(features))
        if predicted.ndim == 2 and predicted.shape[1] == 1:
            predicted = predicted[:, 0]
        if metric == "accuracy":
            return float(skm.accuracy_score(y, predicted))
        if metric == "f1":
            labels = set(pd.unique(y)) | set(pd.unique(predicted).tolist())
            binary = labels <= {0, 1}
            average = "binary" if binary else "macro"
            return float(skm.f1_score(y, predicted, average=average, zero_division=0))
        if metric == "rmse":
            return math.sqrt(float(skm.mean_squared_error(y, predicted)))
        if metric == "mae":
            return float(skm.mean_absolute_error(y, predicted))
        return float(skm.r2_score(y, predicted))
    except (ValueError, TypeError) as exc:
        raise InvalidInput(f"cannot compute {metric}: {exc}") from exc


def _holdout(data: Any, target: str) -> tuple[pd.DataFrame, pd.Series]:
    frame = as_frame(data, "the holdout")
    if not isinstance(target, str) or target not in frame.columns:
        raise InvalidInput(
            f"target column {target!r} is not in the holdout (columns: "
            f"{', '.join(map(str, frame.columns[:20]))})"
        )
    y = frame[target]
    missing = int(y.isna().sum())
    if missing:
        raise InvalidInput(f"target column {target!r} has {missing} missing value(s)")
    if frame.empty:
        raise InvalidInput("the holdout has no rows")
    return frame.drop(columns=[target]), y


def _scored(uri: str, role: str, features: pd.DataFrame, y: pd.Series, metric: str) -> float:
    from loopml.models import load_model

    model = load_model(uri, extra_columns="drop")
    try:
        return score(model, features, y, metric)
    except InvalidInput as exc:
        raise InvalidInput(f"{role} {uri}: {exc}") from exc


def check_regression(
    candidate: str,
    baseline: str,
    data: Any,
    target: str,
    *,
    metric: str = "accuracy",
    tolerance: float = 0.0,
) -> GateResult:
    """Score the candidate and the baseline on the same holdout; fail when the candidate is
    worse than the baseline by more than ``tolerance`` (in the metric's units).

    Args:
        candidate: the model to release, e.g. ``models:/churn/5`` or ``models:/churn@staging``.
        baseline: the model it replaces, e.g. ``models:/churn@production``. When that alias
            names no version yet (a first release) the gate passes with "no baseline".
        data: the holdout: a DataFrame, Arrow table, dataset reference or Parquet/CSV path.
        target: the column of true values (the other columns are the features; columns a
            model's signature does not name are left out).
        metric: accuracy, f1, roc_auc, log_loss (classifiers) or rmse, mae, r2 (regressors).
        tolerance: how much worse the candidate may be, >= 0.

    Returns:
        A ``GateResult`` named ``regression``: ``measured`` is the candidate's score,
        ``threshold`` the worst score that passes (the baseline's, less the tolerance).

    Raises:
        InvalidInput: bad arguments or a holdout a model cannot score. NotFound: an unknown
        model (or version).
    """
    if metric not in METRICS:
        raise InvalidInput(f"unknown metric {metric!r}: use one of {', '.join(METRICS)}")
    ok = isinstance(tolerance, int | float) and not isinstance(tolerance, bool)
    if not ok or not tolerance >= 0:
        raise InvalidInput(f"tolerance must be a number >= 0, got {tolerance!r}")
    features, y = _holdout(data, target)
    found = find_baseline(baseline)
    cand = _scored(candidate, "candidate", features, y, metric)
    evidence: dict[str, Any] = {
        "metric": metric,
        "candidate": candidate,
        "candidate_score": cand,
        "baseline": baseline,
        "rows": len(y),
        "tolerance": float(tolerance),
    }
    if found is None:
        detail = f"no baseline: {baseline} names no version yet; candidate {metric} {fmt(cand)}"
        return GateResult("regression", True, detail, cand, None, evidence)
    pinned = f"models:/{found.name}/{found.version}"
    base = _scored(pinned, "baseline", features, y, metric)
    lower = metric in LOWER_IS_BETTER
    worse_by = (cand - base) if lower else (base - cand)
    limit = base + tolerance if lower else base - tolerance
    passed = not math.isnan(cand) and worse_by <= tolerance + 1e-12
    evidence.update(baseline_version=found.version, baseline_score=base, worse_by=worse_by)
    versus = f"{metric} {fmt(cand)} vs baseline {fmt(base)} (version {found.version})"
    if passed:
        how = (
            f"better by {fmt(-worse_by)}"
            if worse_by < 0
            else f"worse by {fmt(worse_by)}"
            if worse_by > 0
            else "equal"
        )
        detail = f"{versus}: {how}, within tolerance {fmt(float(tolerance))}"
    else:
        note = f" (for {metric} higher is worse)" if lower else ""
        detail = (
            f"{versus}: worse by {fmt(worse_by)}{note}, over tolerance {fmt(float(tolerance))}"
        )
    return GateResult("regression", passed, detail, cand, limit, evidence)
