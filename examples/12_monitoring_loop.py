"""The seeds' monitoring and retraining loop: log every prediction (seed 004's
``ModelMonitor.log_prediction``), attach the true labels when they arrive, compare live accuracy
with the model's offline baseline (seed 004's ``ModelPerformanceBaseline``, 5% tolerance), test
the traffic for drift against the training data, expose Prometheus gauges (seeds 001 and 002),
and let a drift alert start the retraining pipeline (seed 003's "model retraining" step).
"""

from __future__ import annotations

import httpx
import numpy as np
from _util import FEATURES, churn_frame, serve_in_background, split
from prometheus_client import generate_latest
from sklearn.linear_model import LogisticRegression

import loopml
import loopml.data
from loopml.monitoring import AlertEngine, AlertRule, check, get_monitor, quality
from loopml.pipelines import Scheduler, get_pipeline_store, pipeline, register_pipeline, step
from loopml.serving import ServeOptions, VariantSpec, build_app, get_deployment_store

NAME = "churn-live"


@step
def train_model(rows: int, shift: float, alias: str) -> str:
    """Train on fresh data, log the data (lineage) and the model, and point ``alias`` at it."""
    train, test = split(churn_frame(rows, seed=int(shift * 10) + 11, shift=shift))
    with loopml.start_run(run_name=f"train-{alias}"):
        loopml.data.log_dataset(train, "churn-train")  # the drift reference, found by lineage
        model = LogisticRegression(max_iter=500).fit(train[FEATURES], train["churned"])
        loopml.log_metric("accuracy", model.score(test[FEATURES], test["churned"]))  # baseline
        info = loopml.log_model(
            model, "model", registered_model_name=NAME, input_example=train[FEATURES][:5]
        )
    loopml.Client().set_registered_model_alias(NAME, alias, info.registered_model_version)
    return str(info.registered_model_version)


@pipeline(name="retrain-churn")
def retrain_churn(rows: int = 2_000, shift: float = 0.8):
    """Retrain on recent data; the new version becomes the challenger."""
    return train_model(rows, shift, "challenger")


# Version 1, trained on last year's customers, serves the "churn-live" deployment.
train_model(2_000, 0.0, "production")  # a step called outside a pipeline just runs
get_deployment_store().create_deployment(
    NAME, [VariantSpec("primary", f"models:/{NAME}@production")], unit_key="user_id"
)

# Production traffic has drifted (older customers, higher charges), and churn now also has
# causes the model never saw: a quarter of the true outcomes differ from the old pattern.
traffic = churn_frame(600, seed=30, shift=0.8)
rng = np.random.default_rng(30)
truth = np.where(rng.random(len(traffic)) < 0.25, 1 - traffic["churned"], traffic["churned"])
prediction_ids = []
with serve_in_background(build_app(ServeOptions(NAME))) as url, httpx.Client(base_url=url) as http:
    for i, row in enumerate(traffic[FEATURES].to_dict("records")):
        answer = http.post("/predict", json={"user_id": f"user-{i}", **row}).json()
        prediction_ids.append(answer["prediction_id"])
print(f"served {len(prediction_ids)} predictions; every one is in the prediction log")

# Days later the labels arrive; each is matched to its prediction by id.
outcomes = zip(prediction_ids, truth, strict=True)
loopml.log_outcomes([{"prediction_id": p, "value": int(y)} for p, y in outcomes])
live = quality(NAME, window="1h")
primary = live.variants["primary"]
print(
    f"live accuracy {primary['accuracy']:.3f} on {primary['n_labelled']} labels, "
    f"baseline {live.baselines['primary']['accuracy']:.3f}, degraded: {live.degraded['primary']}"
)

drift = check(NAME, window="1h")  # the reference is version 1's training dataset (lineage)
print(f"drift against {drift.subject['reference']}: {', '.join(drift.drifted_columns)}")
print(f"prediction drift: {drift.prediction.drifted}")

# An alert rule: drift in 30% of the columns fires, notifies, and queues the retraining run.
register_pipeline(retrain_churn)
get_monitor().store.put_rule(
    AlertRule(
        name="churn-drift",
        deployment=NAME,
        metric="drift_share",
        op=">=",
        threshold=0.3,
        window="1h",
        min_samples=100,
        notifiers=[{"type": "log"}, {"type": "pipeline", "pipeline": "retrain-churn"}],
    )
)
engine = AlertEngine()  # what `loopml monitor run --every 10m --metrics-port 9108` runs
(status,) = engine.run_once()
print(f"alert {status.rule}: {status.state} (drift share {status.value:.2f})")
gauges = generate_latest(engine.metrics_registry).decode()
print("prometheus:", *[g for g in gauges.splitlines() if g.startswith("loopml_alert_firing")])

# `loopml scheduler` starts queued runs; here it is asked once.
(retrain_run,) = Scheduler(get_pipeline_store()).start_queued()
print(
    f"retraining run ({retrain_run.trigger}): {retrain_run.status}, version {retrain_run.result}"
)
challenger = loopml.Client().get_model_version_by_alias(NAME, "challenger")
print(f"{NAME}@challenger is version {challenger.version}; next: the gates of example 13")
