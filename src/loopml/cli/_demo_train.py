"""The demo's models and release rules: gradient-boosted trees tuned with ``loopml.tune`` (every
trial a child run), a random-forest challenger — both convert to ONNX, so the server runs them on
ONNX Runtime — how a model is scored, logged and registered,
and the quality gates every version passes before it serves — the same for the first release
and for the retraining pipeline's."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pandas as pd

import loopml
from loopml.cli._demo_data import FEATURES

__all__ = [
    "CONDITIONS",
    "RULES",
    "SEARCH_SPACE",
    "TARGET",
    "boosted",
    "challenger",
    "evaluate",
    "fit_and_log",
    "release_gates",
    "split_by_customer",
    "tune_boosted",
]

TARGET = "churned"
SEARCH_SPACE: dict[str, Any] = {
    "learning_rate": ("float", 0.03, 0.3, {"log": True}),
    "n_estimators": ("int", 30, 120),
    "max_depth": ("int", 2, 4),
    "subsample": ("float", 0.6, 1.0),
    "min_samples_leaf": ("int", 5, 60),
}
# The metrics gate: what a version's run must have measured on its holdout.
CONDITIONS = ("accuracy >= 0.75", "roc_auc >= 0.75")
# The data gate: what a training set must look like (loopml.data validation rules).
RULES: dict[str, Any] = {
    "min_rows": 1000,
    "columns": {
        "customer_id": {"nullable": False},
        TARGET: {"allowed": [0, 1], "nullable": False},
        "plan_tier": {"allowed": [0, 1, 2], "nullable": False},
        "monthly_charge": {"min": 0, "max": 500, "nullable": False},
        "tenure_days": {"min": 0, "nullable": False},
        "sessions_7d": {"min": 0, "nullable": False},
        "sessions_28d": {"min": 0, "nullable": False},
        "minutes_7d": {"min": 0, "nullable": False},
        "tickets_28d": {"min": 0, "nullable": False},
        "days_since_last_session": {"min": 0, "max": 30, "nullable": False},
    },
}


def boosted(params: Mapping[str, Any]) -> Any:
    """The champion's kind of model: gradient-boosted trees."""
    from sklearn.ensemble import GradientBoostingClassifier

    return GradientBoostingClassifier(random_state=0, **params)


def challenger() -> Any:
    """The challenger: a random forest, other model family and parameters, same features."""
    from sklearn.ensemble import RandomForestClassifier

    return RandomForestClassifier(n_estimators=80, max_depth=8, min_samples_leaf=5, random_state=0)


def split_by_customer(frame: pd.DataFrame, share: int = 5) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(train, validation): every ``share``-th customer validates, so that no customer's rows
    are on both sides."""
    held = frame["customer_id"] % share == 0
    return frame[~held].reset_index(drop=True), frame[held].reset_index(drop=True)


def evaluate(model: Any, frame: pd.DataFrame) -> dict[str, float]:
    """Accuracy, F1 and ROC AUC of a fitted classifier on a labelled frame."""
    from sklearn.metrics import accuracy_score, f1_score, roc_auc_score

    x, y = frame[list(FEATURES)], frame[TARGET]
    predicted = model.predict(x)
    return {
        "accuracy": float(accuracy_score(y, predicted)),
        "f1": float(f1_score(y, predicted, zero_division=0)),
        "roc_auc": float(roc_auc_score(y, model.predict_proba(x)[:, 1])),
    }


def tune_boosted(train: pd.DataFrame, *, n_trials: int, seed: int) -> Any:
    """A TPE study over the boosted trees' parameters, maximising validation ROC AUC; every
    trial is a child run of the active run. Returns the ``TuneResult``."""
    from loopml.tuning import tune

    fit_part, valid = split_by_customer(train)
    x, y = fit_part[list(FEATURES)], fit_part[TARGET]

    def objective(params: dict[str, Any]) -> float:
        return evaluate(boosted(params).fit(x, y), valid)["roc_auc"]

    return tune(
        objective,
        search_space=SEARCH_SPACE,
        n_trials=n_trials,
        sampler="tpe",
        direction="maximize",
        seed=seed,
        metric_name="val_roc_auc",
        importances=False,
    )


def fit_and_log(
    model: Any, train: pd.DataFrame, holdout: pd.DataFrame, *, registered_model_name: str
) -> tuple[Any, dict[str, float]]:
    """Fit on ``train``, score on ``holdout``, log the metrics and the model (with its input
    example) to the active run and register it. Returns (``ModelInfo``, metrics)."""
    x = train[list(FEATURES)]
    model.fit(x, train[TARGET])
    metrics = evaluate(model, holdout)
    loopml.log_metrics(metrics)
    loopml.log_params({"features": ",".join(FEATURES), "train_rows": len(train)})
    info = loopml.log_model(
        model, "model", registered_model_name=registered_model_name, input_example=x.head(5)
    )
    return info, metrics


def release_gates(
    model_uri: str, train: pd.DataFrame, holdout: pd.DataFrame, *, model_name: str
) -> Any:
    """Run the gates on a candidate: its training data against the rules and its signature,
    its metrics, no regression against production on the holdout, a served smoke test.
    Returns the ``GateReport`` (the caller decides what a failure stops)."""
    from loopml.gates import Gates

    return (
        Gates(model_uri)
        .data(train, RULES, model_uri=model_uri)
        .metrics(*CONDITIONS)
        .regression(holdout, TARGET, baseline=f"models:/{model_name}@production")
        .smoke(holdout, rows=5)
        .run()
    )
