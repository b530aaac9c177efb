"""Live model quality: predictions joined to outcomes, metrics by window and variant, baselines.

A prediction's output is read as its predicted value and, where the model gave one, a score:
a scalar is the prediction; ``{"prediction"|"label": v, "probability"|"score": p}`` gives both;
``[p0, p1]`` (two class probabilities) gives the score ``p1`` and the prediction ``p1 >= 0.5``.
Classifiers get accuracy, precision, recall, F1 (binary for 0/1 or boolean labels, else
macro-averaged), ROC AUC and log loss (these two only with scores); regressors MAE, RMSE, MAPE
and R². A metric that cannot be computed on the window (one class only, no scores) is None.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from loopml.errors import InvalidInput

__all__ = [
    "CLASSIFIER_METRICS",
    "LOWER_IS_BETTER",
    "REGRESSOR_METRICS",
    "baseline_from_metrics",
    "degradation",
    "estimate_performance",
    "quality_metrics",
    "scores_as_predictions",
    "split_outputs",
    "validate_metric",
]

CLASSIFIER_METRICS = ("accuracy", "precision", "recall", "f1", "roc_auc", "log_loss")
REGRESSOR_METRICS = ("mae", "rmse", "mape", "r2")
LOWER_IS_BETTER = frozenset({"log_loss", "mae", "rmse", "mape"})
SERVICE_METRICS = ("error_rate", "latency_p50_ms", "latency_p99_ms", "requests")
_BASELINE_PREFIXES = ("", "test_", "eval_", "val_", "validation_", "test.", "eval.", "val.")


def validate_metric(metric: Any) -> str:
    """An alert metric name, else ``InvalidInput``."""
    if not isinstance(metric, str):
        raise InvalidInput("metric must be a string")
    kind, _, arg = metric.partition(":")
    quality = (*CLASSIFIER_METRICS, *REGRESSOR_METRICS)
    if metric in ("drift_share", "prediction_drift", *SERVICE_METRICS):
        return metric
    if kind == "drift" and arg:
        return metric
    if kind in ("quality", "quality_drop") and arg in quality:
        return metric
    raise InvalidInput(
        f"unknown metric {metric!r}: use drift_share, drift:<column>, prediction_drift, "
        f"quality:<m> or quality_drop:<m> (m one of {', '.join(quality)}), "
        f"or {', '.join(SERVICE_METRICS)}"
    )


def _split_one(value: Any) -> tuple[Any, float | None]:
    if isinstance(value, Mapping):
        pred = next((value[k] for k in ("prediction", "label", "predictions") if k in value), None)
        score = next((value[k] for k in ("probability", "score") if k in value), None)
        if isinstance(score, list) and len(score) == 2:
            score = score[1]
        score = float(score) if isinstance(score, (int, float)) else None
        if pred is None and score is not None:
            pred = int(score >= 0.5)
        return pred, score
    if isinstance(value, list):
        if len(value) == 1:
            return _split_one(value[0])
        if len(value) == 2 and all(isinstance(v, (int, float)) for v in value):
            return int(value[1] >= 0.5), float(value[1])
        return None, None
    return value, None


def split_outputs(outputs: pd.Series) -> tuple[pd.Series, pd.Series]:
    """(predicted value, score or NaN) of each decoded output."""
    pairs = [_split_one(v) for v in outputs]
    preds = pd.Series([p for p, _ in pairs], index=outputs.index, dtype=object)
    scores = pd.Series([np.nan if s is None else s for _, s in pairs], index=outputs.index)
    return preds, scores


def scores_as_predictions(
    predicted: pd.Series, scores: pd.Series, truth: pd.Series
) -> tuple[pd.Series, pd.Series]:
    """A binary classifier that logs only a probability (a scalar in [0, 1], not all 0/1,
    against 0/1 outcomes): the scalar is the score and ``score >= 0.5`` the predicted class."""
    values = pd.to_numeric(predicted, errors="coerce")
    known = truth.dropna().map(_label)
    if values.isna().any() or len(values) == 0 or not set(known) <= {0, 1}:
        return predicted, scores
    fractional = (values != np.round(values)).any()
    if not fractional or values.min() < 0 or values.max() > 1 or scores.notna().any():
        return predicted, scores
    return (values >= 0.5).astype(int).astype(object), values.astype(float)


def infer_task(truth: pd.Series) -> str:
    """ "classification" for strings, booleans and few-valued integers, else "regression"."""
    values = truth.dropna()
    if values.empty:
        return "classification"
    if any(isinstance(v, (str, bool)) for v in values):
        return "classification"
    numbers = pd.to_numeric(values, errors="coerce")
    integral = bool((numbers == np.round(numbers)).all())
    return "classification" if integral and numbers.nunique() <= 20 else "regression"


def _label(value: Any) -> Any:
    if isinstance(value, (bool, np.bool_)):
        return int(value)
    if isinstance(value, (float, np.floating)) and float(value).is_integer():
        return int(value)
    if isinstance(value, np.integer):
        return int(value)
    return value


def quality_metrics(
    truth: pd.Series, predicted: pd.Series, scores: pd.Series | None = None, *, task: str
) -> dict[str, float | None]:
    """The task's metrics over aligned labels and predictions (rows with either missing are
    dropped)."""
    from sklearn import metrics as m

    keep = truth.notna() & predicted.notna()
    y, p = truth[keep], predicted[keep]
    s = scores[keep] if scores is not None else None
    out: dict[str, float | None] = {}
    if task == "regression":
        yt = pd.to_numeric(y, errors="coerce").to_numpy(float)
        yp = pd.to_numeric(p, errors="coerce").to_numpy(float)
        ok = np.isfinite(yt) & np.isfinite(yp)
        yt, yp = yt[ok], yp[ok]
        if len(yt) == 0:
            return dict.fromkeys(REGRESSOR_METRICS)
        nonzero = yt != 0
        out["mae"] = float(np.mean(np.abs(yt - yp)))
        out["rmse"] = float(math.sqrt(np.mean((yt - yp) ** 2)))
        out["mape"] = (
            float(np.mean(np.abs((yt[nonzero] - yp[nonzero]) / yt[nonzero])))
            if nonzero.any()
            else None
        )
        out["r2"] = float(m.r2_score(yt, yp)) if len(yt) > 1 and np.var(yt) > 0 else None
        return out
    if task != "classification":
        raise InvalidInput("task must be 'classification' or 'regression'")
    if len(y) == 0:
        return dict.fromkeys(CLASSIFIER_METRICS)
    yl = [_label(v) for v in y]  # booleans are 0/1, integral floats integers
    pl = [_label(v) for v in p]
    if {type(v) for v in yl} != {type(v) for v in pl}:  # "1" vs 1: compare as text
        yl, pl = [str(v) for v in yl], [str(v) for v in pl]
    labels = set(yl) | set(pl)
    binary = labels <= {0, 1}
    average = "binary" if binary else "macro"
    out["accuracy"] = float(m.accuracy_score(yl, pl))
    kw: dict[str, Any] = {"average": average, "zero_division": 0}
    if binary:
        kw["pos_label"] = 1
    out["precision"] = float(m.precision_score(yl, pl, **kw))
    out["recall"] = float(m.recall_score(yl, pl, **kw))
    out["f1"] = float(m.f1_score(yl, pl, **kw))
    out["roc_auc"] = out["log_loss"] = None
    if binary and s is not None and s.notna().all() and len(set(yl)) == 2:
        yb = np.asarray([int(v) for v in yl])
        sv = s.to_numpy(float)
        out["roc_auc"] = float(m.roc_auc_score(yb, sv))
        out["log_loss"] = float(m.log_loss(yb, np.clip(sv, 1e-15, 1 - 1e-15), labels=[0, 1]))
    return out


def baseline_from_metrics(run_metrics: Mapping[str, float]) -> dict[str, float]:
    """A version's offline evaluation metrics under their live names (``accuracy`` from
    ``accuracy``, ``test_accuracy``, ``val_accuracy``, ...; the first found wins)."""
    aliases = {"auc": "roc_auc", "logloss": "log_loss", "f1_score": "f1"}
    found: dict[str, float] = {}
    for metric in (*CLASSIFIER_METRICS, *REGRESSOR_METRICS):
        names = [metric, *[a for a, t in aliases.items() if t == metric]]
        for prefix in _BASELINE_PREFIXES:
            hit = next((f"{prefix}{n}" for n in names if f"{prefix}{n}" in run_metrics), None)
            if hit is not None:
                value = float(run_metrics[hit])
                if math.isfinite(value):
                    found[metric] = value
                break
    return found


def degradation(metric: str, live: float | None, baseline: float | None) -> float | None:
    """The relative change of ``live`` from ``baseline`` in the bad direction (0.05 = 5% worse;
    negative when better); None when either is missing or the baseline is 0."""
    if live is None or baseline is None or baseline == 0:
        return None
    if metric in LOWER_IS_BETTER:
        return (live - baseline) / abs(baseline)
    return (baseline - live) / abs(baseline)


def estimate_performance(
    reference_scores: Any,
    reference_labels: Any,
    scores: Any,
    predicted: Any = None,
    *,
    threshold: float = 0.5,
) -> dict[str, float | None]:
    """Confidence-based performance estimation (as NannyML's CBPE) of a binary classifier.

    The scores are calibrated on a labelled reference with isotonic regression; each current
    prediction then counts as a fractional true/false positive/negative by its calibrated
    probability, which gives expected accuracy, precision, recall, F1 and ROC AUC without labels.
    ``predicted`` are the predicted classes (default: score >= threshold).
    """
    from sklearn.isotonic import IsotonicRegression
    from sklearn.metrics import roc_auc_score

    ref_s = np.asarray(reference_scores, dtype=float)
    ref_y = np.asarray([int(_label(v)) for v in reference_labels], dtype=float)
    cur_s = np.asarray(scores, dtype=float)
    if len(ref_s) != len(ref_y) or len(ref_s) == 0:
        raise InvalidInput("the reference needs as many labels as scores, and at least one")
    if not set(np.unique(ref_y)) <= {0.0, 1.0}:
        raise InvalidInput("performance estimation needs binary 0/1 reference labels")
    if len(cur_s) == 0:
        return {m: None for m in ("accuracy", "precision", "recall", "f1", "roc_auc")}
    iso = IsotonicRegression(y_min=0.0, y_max=1.0, out_of_bounds="clip").fit(ref_s, ref_y)
    c = iso.predict(cur_s)
    yhat = (
        cur_s >= threshold
        if predicted is None
        else np.asarray([bool(int(_label(v))) for v in predicted])
    )
    tp, fp = float(c[yhat].sum()), float((1 - c[yhat]).sum())
    fn, tn = float(c[~yhat].sum()), float((1 - c[~yhat]).sum())
    n = len(c)
    out: dict[str, float | None] = {
        "accuracy": (tp + tn) / n,
        "precision": tp / (tp + fp) if tp + fp > 0 else None,
        "recall": tp / (tp + fn) if tp + fn > 0 else None,
        "f1": 2 * tp / (2 * tp + fp + fn) if tp + fp + fn > 0 else None,
        "roc_auc": None,
    }
    if 0 < c.sum() < n:  # both classes expected: the AUC of soft labels
        y2 = np.r_[np.ones(n), np.zeros(n)]
        out["roc_auc"] = float(
            roc_auc_score(y2, np.r_[cur_s, cur_s], sample_weight=np.r_[c, 1 - c])
        )
    return out
