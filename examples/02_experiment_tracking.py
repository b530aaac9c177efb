"""The seeds' MLflow experiment tracking, run by loopml: only the import changes.

A small grid search (seed 004's ``itertools.product``) where every run logs its params,
metrics, a feature-importance figure and the model; one run fails and is recorded as FAILED
(seed 001's ``ExperimentTracker.end_run(status="FAILED")``); then the runs are searched with
MLflow's filter grammar.
"""

from __future__ import annotations

from itertools import product

from _util import FEATURES, churn_frame, scores, split
from matplotlib.figure import Figure  # a figure without a display or pyplot state
from sklearn.ensemble import RandomForestClassifier

import loopml as mlflow  # the seed's `import mlflow`, unchanged below

train, test = split(churn_frame(1_500, seed=0))
X_train, y_train = train[FEATURES], train["churned"]
X_test, y_test = test[FEATURES], test["churned"]

# mlflow.set_tracking_uri("http://mlflow-server:5000") would point at a `loopml server`;
# unset, runs go to the embedded store under $LOOPML_HOME.
mlflow.set_experiment("classification_experiment")

for n_estimators, max_depth in product([20, 60], [4, 8]):
    with mlflow.start_run(run_name=f"rf_{n_estimators}_{max_depth}") as run:
        mlflow.log_params({"n_estimators": n_estimators, "max_depth": max_depth})
        mlflow.log_param("random_state", 42)
        model = RandomForestClassifier(
            n_estimators=n_estimators, max_depth=max_depth, random_state=42
        ).fit(X_train, y_train)
        y_pred = model.predict(X_test)
        mlflow.log_metrics(scores(y_test, y_pred))
        # a metric history: accuracy as trees are added, one point per step
        for step, tree_count in enumerate(range(5, n_estimators + 1, 5)):
            partial = RandomForestClassifier(
                n_estimators=tree_count, max_depth=max_depth, random_state=42
            ).fit(X_train, y_train)
            mlflow.log_metric("accuracy_by_trees", partial.score(X_test, y_test), step=step)

        fig = Figure(figsize=(5, 3))
        ax = fig.subplots()
        ax.barh(FEATURES, model.feature_importances_)
        ax.set_xlabel("Feature importance")
        mlflow.log_figure(fig, "feature_importance.png")

        mlflow.sklearn.log_model(model, "random_forest_model")
        print(f"run {run.info.run_id} rf_{n_estimators}_{max_depth}: logged")

# A run whose training raises is ended FAILED and the error goes on.
try:
    with mlflow.start_run(run_name="broken"):
        mlflow.log_params({"n_estimators": -1})
        RandomForestClassifier(n_estimators=-1).fit(X_train, y_train)
except ValueError as exc:
    print(f"the broken run failed as expected: {type(exc).__name__}")

runs = mlflow.search_runs(
    filter_string="metrics.accuracy > 0.6 and attributes.status = 'FINISHED'",
    order_by=["metrics.accuracy DESC"],
)
print(runs[["tags.mlflow.runName", "params.max_depth", "metrics.accuracy"]].to_string(index=False))
best = runs.iloc[0]
print(f"best run: {best['tags.mlflow.runName']} accuracy {best['metrics.accuracy']:.3f}")
failed = mlflow.search_runs(filter_string="attributes.status = 'FAILED'")
print(f"failed runs: {len(failed)}")
