"""The seeds' model registry: register versions, move them through stages (Staging ->
Production, MLflow's ``transition_model_version_stage``), load ``models:/name/Production``, and
seed 001's ``ModelRegistry`` (current version, compare, rollback) with loopml's aliases.
"""

from __future__ import annotations

from _util import FEATURES, churn_frame, scores, split
from sklearn.ensemble import RandomForestClassifier

import loopml as mlflow

NAME = "customer-churn-rf"
train, test = split(churn_frame(1_500, seed=1))

mlflow.set_experiment("customer-churn-prediction")
for params in ({"n_estimators": 20, "max_depth": 3}, {"n_estimators": 60, "max_depth": 8}):
    with mlflow.start_run(run_name=f"rf_{params['n_estimators']}"):
        mlflow.log_params(params)
        model = RandomForestClassifier(random_state=42, **params)
        model.fit(train[FEATURES], train["churned"])
        y_pred = model.predict(test[FEATURES])
        mlflow.log_metrics(scores(test["churned"], y_pred))
        # registered_model_name creates the model on first use and adds the next version
        mlflow.sklearn.log_model(
            model, "model", registered_model_name=NAME, input_example=train[FEATURES][:5]
        )

client = mlflow.MlflowClient()
for version in client.search_model_versions(f"name='{NAME}'"):
    print(f"Version: {version.version}, Status: {version.status}")

# MLflow's stages, for code written against them.
client.transition_model_version_stage(name=NAME, version=1, stage="Production")
client.transition_model_version_stage(name=NAME, version=2, stage="Staging")
client.transition_model_version_stage(
    name=NAME, version=2, stage="Production", archive_existing_versions=True
)
stages = {v.version: v.current_stage for v in client.search_model_versions(f"name='{NAME}'")}
print(f"stages: {stages}")

production = mlflow.load_model(f"models:/{NAME}/Production")
print(
    f"models:/{NAME}/Production is version {production.metadata['version']}, "
    f"predicts {production.predict(test[FEATURES][:3]).tolist()}"
)

# Aliases: any number of named roles, with a history and one-step rollback.
client.set_registered_model_alias(NAME, "production", "1", reason="first release")
client.set_registered_model_alias(NAME, "production", "2", reason="deeper forest")
comparison = client.compare_versions(NAME, 1, 2)
accuracy_1, accuracy_2 = comparison.metrics["accuracy"]
print(f"compare 1 vs 2: accuracy {accuracy_1:.3f} -> {accuracy_2:.3f}")
print(f"differences: {', '.join(comparison.differences)}")

client.rollback(NAME, "production", reason="latency regression in version 2")
current = client.get_model_version_by_alias(NAME, "production")
print(f"after rollback {NAME}@production is version {current.version}")
for event in client.get_model_history(NAME, alias="production"):
    print(f"  {event.kind:<8} {event.from_version} -> {event.to_version}: {event.reason}")
