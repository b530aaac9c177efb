"""Seed 001's ``HyperparameterOptimizer``: an Optuna study whose trials an ``MLflowCallback``
records, then the best parameters and ``optuna.importance.get_param_importances``.

``loopml.tune`` runs the Optuna study and records each trial as a child run of one parent run
(so no callback to add); the parent gets the best trial, the history and the importances.
"""

from __future__ import annotations

from _util import FEATURES, churn_frame, split
from sklearn.ensemble import GradientBoostingClassifier
from sklearn.metrics import roc_auc_score

import loopml

train, valid = split(churn_frame(1_200, seed=40))
X_train, y_train = train[FEATURES], train["churned"]
X_val, y_val = valid[FEATURES], valid["churned"]


def objective(trial) -> float:
    """The seed's objective: the trial suggests the parameters, the model is scored."""
    params = {
        "n_estimators": trial.suggest_int("n_estimators", 20, 80),
        "max_depth": trial.suggest_int("max_depth", 2, 5),
        "learning_rate": trial.suggest_float("learning_rate", 0.01, 0.3, log=True),
        "subsample": trial.suggest_float("subsample", 0.5, 1.0),
    }
    model = GradientBoostingClassifier(random_state=0, **params).fit(X_train, y_train)
    return roc_auc_score(y_val, model.predict_proba(X_val)[:, 1])


loopml.set_experiment("hyperparameter-optimization")
result = loopml.tune(
    objective,
    n_trials=12,
    direction="maximize",
    sampler="tpe",
    seed=0,
    run_name="hyperparameter-optimization",
    metric_name="validation_score",  # the MLflowCallback's metric_name
)
print(f"best trial {result.best_trial}: validation_score {result.best_value:.4f}")
print(f"best params: { {k: round(v, 4) for k, v in result.best_params.items()} }")
print(f"parent run {result.parent_run_id} with {len(result.trial_run_ids)} trial runs")

parent = loopml.get_run(result.parent_run_id)
importances = {
    key.removeprefix("importance."): round(value, 3)
    for key, value in parent.data.metrics.items()
    if key.startswith("importance.")
}
print(f"param importances: {importances}")

trials = loopml.search_runs(
    filter_string=f"tags.mlflow.parentRunId = '{result.parent_run_id}'",
    order_by=["metrics.validation_score DESC"],
    max_results=3,
)
print("top trials:")
print(
    trials[["tags.mlflow.runName", "params.max_depth", "metrics.validation_score"]].to_string(
        index=False
    )
)
