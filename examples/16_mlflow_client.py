"""The seeds' MLflow code, unmodified, against ``loopml server``: the official ``mlflow`` client
(seed 004's ``train_and_log_model``, ``search_model_versions`` and
``transition_model_version_stage``, and its ``models:/customer-churn-rf/Production`` loader)
talks to loopml's MLflow-compatible REST API, and loopml's own SDK sees what it wrote.

``mlflow-skinny`` comes with loopml's ``[dev]`` extra.
"""

from __future__ import annotations

import mlflow
import mlflow.pyfunc
import mlflow.sklearn
from _util import FEATURES, churn_frame, loopml_process
from sklearn.ensemble import RandomForestClassifier
from sklearn.metrics import accuracy_score, f1_score
from sklearn.model_selection import train_test_split

import loopml


def train_and_log_model(X, y, params):
    """Seed 004's function, as written for MLflow."""
    X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.2, random_state=42)
    with mlflow.start_run(run_name=f"rf_{params['n_estimators']}"):
        mlflow.log_params(params)
        model = RandomForestClassifier(
            n_estimators=params["n_estimators"], max_depth=params["max_depth"], random_state=42
        )
        model.fit(X_train, y_train)
        y_pred = model.predict(X_test)
        accuracy = accuracy_score(y_test, y_pred)
        f1 = f1_score(y_test, y_pred, average="weighted")
        mlflow.log_metrics({"accuracy": accuracy, "f1_score": f1})
        mlflow.sklearn.log_model(
            model,
            name="model",
            registered_model_name="customer-churn-rf",
            skops_trusted_types=["sklearn.tree._tree.Tree"],  # MLflow 3.17+ asks for it
        )
        print(f"Accuracy: {accuracy:.4f}, F1: {f1:.4f}")
        print(f"Run ID: {mlflow.active_run().info.run_id}")
        return model, accuracy


data = churn_frame(1_000, seed=50)
X, y = data[FEATURES], data["churned"]

# `loopml server` on this machine's $LOOPML_HOME, in place of `mlflow server`.
with loopml_process("server") as url:
    # --- the seed's code, with only the tracking URI changed ----------------------------------
    mlflow.set_tracking_uri(url)
    mlflow.set_experiment("customer-churn-prediction")
    train_and_log_model(X, y, {"n_estimators": 30, "max_depth": 5})
    client = mlflow.tracking.MlflowClient()
    for version in client.search_model_versions("name='customer-churn-rf'"):
        print(f"mlflow client: Version: {version.version}, Status: {version.status}")
    client.transition_model_version_stage(name="customer-churn-rf", version=1, stage="Production")
    served = mlflow.pyfunc.load_model("models:/customer-churn-rf/Production")
    print(f"mlflow client loaded Production: predicts {served.predict(X[:5]).tolist()}")
    # -------------------------------------------------------------------------------------------

    # loopml's SDK against the same server sees the same run and model version.
    loopml.set_tracking_uri(url)
    seen = loopml.get_run(mlflow.last_active_run().info.run_id)
    print(f"loopml sees run {seen.info.run_id}: accuracy {seen.data.metrics['accuracy']:.3f}")
    version = loopml.Client().get_model_version("customer-churn-rf", "1")
    print(f"loopml sees customer-churn-rf version 1 in stage {version.current_stage}")
    history = loopml.Client().get_model_history("customer-churn-rf", kinds=["stage"])
    print(f"stage history: {[(e.from_stage, e.to_stage) for e in history]}")
