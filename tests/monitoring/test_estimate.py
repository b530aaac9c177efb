"""Quality before labels arrive: confidence-based estimates from calibrated scores track the
realised quality, on their own and over a deployment's window."""

from __future__ import annotations

import time

import numpy as np
import pytest
from sklearn.metrics import accuracy_score, f1_score, roc_auc_score

from loopml.errors import InvalidInput
from loopml.monitoring import PredictionLog, log_outcomes, quality
from loopml.monitoring._metrics import estimate_performance


def _scored(rng: np.random.Generator, n: int, a: float, b: float) -> tuple[np.ndarray, np.ndarray]:
    p = rng.beta(a, b, n)
    labels = (rng.random(n) < p).astype(int)
    return p**2, labels  # a monotone but miscalibrated score: calibration has work to do


@pytest.mark.parametrize(("a", "b"), [(2, 2), (1, 1), (5, 5), (0.5, 0.5)])
def test_estimates_track_realised_quality_under_shift(a: float, b: float) -> None:
    rng = np.random.default_rng(0)
    ref_scores, ref_labels = _scored(rng, 5000, 2, 2)
    scores, labels = _scored(rng, 20_000, a, b)
    got = estimate_performance(ref_scores, ref_labels, scores, threshold=0.25)
    predicted = (scores >= 0.25).astype(int)
    assert got["accuracy"] == pytest.approx(accuracy_score(labels, predicted), abs=0.02)
    assert got["f1"] == pytest.approx(f1_score(labels, predicted), abs=0.02)
    assert got["roc_auc"] == pytest.approx(roc_auc_score(labels, scores), abs=0.02)


def test_estimate_bad_inputs() -> None:
    with pytest.raises(InvalidInput, match="binary"):
        estimate_performance([0.1, 0.9], [0, 2], [0.5])
    with pytest.raises(InvalidInput, match="as many labels"):
        estimate_performance([0.1, 0.9], [0], [0.5])


def test_a_window_is_estimated_before_its_labels_come() -> None:
    rng = np.random.default_rng(1)
    now = time.time()
    cal_scores, cal_labels = _scored(rng, 2000, 2, 2)
    cur_scores, cur_labels = _scored(rng, 2000, 0.7, 0.7)  # the population moved
    ids: dict[str, list[str]] = {"cal": [], "cur": []}
    with PredictionLog() as log:
        for key, scores, start in (
            ("cal", cal_scores, now - 7200),
            ("cur", cur_scores, now - 1800),
        ):
            for i, s in enumerate(scores):
                ids[key].append(
                    log.append(
                        deployment="churn",
                        variant="main",
                        model_name="m",
                        model_version="1",
                        inputs={"x": float(s)},
                        outputs=[{"prediction": int(s >= 0.25), "probability": float(s)}],
                        latency_ms=1.0,
                        time=start + i * 0.5,
                    )
                )
    log_outcomes(
        [
            {"prediction_id": p, "value": int(y)}
            for p, y in zip(ids["cal"], cal_labels, strict=True)
        ]
    )
    q = quality("churn", "1h", now=now, calibration="2h", bucket="5m")
    est = q.estimated["main"]
    realised = accuracy_score(cur_labels, (cur_scores >= 0.25).astype(int))
    assert q.variants["main"]["n_labelled"] == 0 and est["n_calibration"] == 2000
    assert est["accuracy"] == pytest.approx(realised, abs=0.04)  # ~3 standard errors
    assert "estimate_error" not in est and len(q.estimated_buckets) >= 2
    # Half the labels arrive: the estimate's error on them is reported beside the realised value.
    half = list(zip(ids["cur"][:1000], cur_labels[:1000], strict=True))
    log_outcomes([{"prediction_id": p, "value": int(y)} for p, y in half])
    q = quality("churn", "1h", now=now, calibration="2h")
    err = q.estimated["main"]["estimate_error"]
    assert abs(err["accuracy"]) < 0.05 and q.variants["main"]["n_labelled"] == 1000
    assert q.variants["main"]["roc_auc"] is not None  # logged scores give AUC and log loss
    assert quality("churn", "1h", now=now, calibration=None).estimated == {}
