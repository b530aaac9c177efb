"""Models for the gate tests, registered in the test's own embedded store."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd
import pytest
from sklearn.dummy import DummyClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import accuracy_score, f1_score

import loopml
import loopml.data as ld

FEATURES = ["x1", "x2"]


def _data(n: int, seed: int, shift: float = 0.0) -> pd.DataFrame:
    """Two normal features (``x1`` moved by ``shift``) and a binary label ``y`` that follows
    their sum."""
    rng = np.random.default_rng(seed)
    x1 = rng.normal(shift, 1, n)
    x2 = rng.normal(0, 1, n)
    noise = rng.normal(0, 0.5, n)
    return pd.DataFrame({"x1": x1, "x2": x2, "y": (x1 + x2 + noise > 0).astype(int)})


def _log(
    model: Any,
    name: str,
    train: pd.DataFrame,
    *,
    metrics: dict[str, float] | None = None,
    dataset: str | None = None,
    onnx: Any = False,
) -> str:
    """Log and register ``model`` on ``x1, x2`` in a run of its own; returns its version."""
    with loopml.start_run():
        if dataset is not None:
            ld.log_dataset(train, dataset)
        if metrics:
            loopml.log_metrics(metrics)
        info = loopml.log_model(
            model,
            "model",
            registered_model_name=name,
            input_example=train[FEATURES].head(3),
            onnx=onnx,
        )
    return str(info.registered_model_version)


@pytest.fixture
def make_data() -> Callable[..., pd.DataFrame]:
    """``make_data(n, seed, shift=0.0)``: a deterministic frame of x1, x2 and y."""
    return _data


@pytest.fixture
def log_model() -> Callable[..., str]:
    """``log_model(model, name, train, metrics=, dataset=, onnx=)`` → the new version."""
    return _log


@pytest.fixture
def churn() -> dict[str, Any]:
    """churn/1 (alias production): a logistic regression trained on dataset train@1 (lineage),
    its ONNX copy kept, with its holdout accuracy and f1 logged. churn/2 (alias challenger): a
    constant classifier (always 0), its holdout accuracy logged honestly, no dataset."""
    train, holdout = _data(600, 0), _data(400, 1)
    good = LogisticRegression().fit(train[FEATURES], train["y"])
    good_pred = good.predict(holdout[FEATURES])
    v1 = _log(
        good,
        "churn",
        train,
        metrics={
            "accuracy": accuracy_score(holdout["y"], good_pred),
            "f1": f1_score(holdout["y"], good_pred),
        },
        dataset="train",
        onnx="auto",
    )
    bad = DummyClassifier(strategy="constant", constant=0).fit(train[FEATURES], train["y"])
    bad_pred = bad.predict(holdout[FEATURES])
    v2 = _log(bad, "churn", train, metrics={"accuracy": accuracy_score(holdout["y"], bad_pred)})
    client = loopml.Client()
    client.set_registered_model_alias("churn", "production", v1)
    client.set_registered_model_alias("churn", "challenger", v2)
    return {"train": train, "holdout": holdout, "good": good, "bad": bad, "features": FEATURES}
