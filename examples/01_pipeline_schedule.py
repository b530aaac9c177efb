"""The seed's Airflow DAG (extract >> train >> evaluate >> deploy, @daily) as a loopml pipeline.

Each ``@step`` is a task; calling steps inside the ``@pipeline`` function wires the DAG the way
``t1 >> t2 >> t3 >> t4`` did. ``add_schedule`` gives it the DAG's ``schedule_interval`` and
``Scheduler`` is what ``loopml scheduler`` runs; here one tick is driven by hand at the time the
schedule falls due, so the example does not wait a day.
"""

from __future__ import annotations

from datetime import UTC, datetime

import pandas as pd
from _util import FEATURES, churn_frame, split
from sklearn.ensemble import RandomForestClassifier

import loopml
from loopml.pipelines import (
    Scheduler,
    add_schedule,
    get_pipeline_store,
    pipeline,
    register_pipeline,
    step,
)


@step(outputs=("train", "test"))
def extract(rows: int, seed: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Extract the day's data (synthetic here) and split it."""
    return split(churn_frame(rows, seed=seed))


@step(retries=1)
def train(frame: pd.DataFrame, n_estimators: int) -> str:
    """Fit a model in a tracked run; return its URI."""
    loopml.set_experiment("ml_pipeline")
    with loopml.start_run(run_name="train"):
        loopml.log_params({"n_estimators": n_estimators, "rows": len(frame)})
        model = RandomForestClassifier(n_estimators=n_estimators, max_depth=6, random_state=0)
        model.fit(frame[FEATURES], frame["churned"])
        info = loopml.log_model(model, "model", input_example=frame[FEATURES][:5])
    return info.model_uri


@step
def evaluate(model_uri: str, test: pd.DataFrame) -> dict:
    """Score the model on the held-out rows and add the metric to its run."""
    model = loopml.load_model(model_uri)
    accuracy = float((model.predict(test[FEATURES]) == test["churned"]).mean())
    # reopen the training run to add its test metric
    with loopml.start_run(run_id=model.metadata["run_id"]):
        loopml.log_metric("accuracy", accuracy)
    return {"accuracy": accuracy}


@step
def deploy(model_uri: str, metrics: dict, min_accuracy: float) -> str:
    """Register the model and point the ``production`` alias at it, if it is good enough."""
    if metrics["accuracy"] < min_accuracy:
        return "skipped"
    version = loopml.register_model(model_uri, "churn-daily")
    loopml.Client().set_registered_model_alias(
        "churn-daily", "production", version.version, reason=f"accuracy {metrics['accuracy']:.3f}"
    )
    return str(version.version)


@pipeline(name="ml_pipeline")
def ml_pipeline(
    rows: int = 2_000, seed: int = 0, n_estimators: int = 30, min_accuracy: float = 0.7
):
    """extract >> train >> evaluate >> deploy"""
    train_rows, test_rows = extract(rows, seed)
    model_uri = train(train_rows, n_estimators)
    return deploy(model_uri, evaluate(model_uri, test_rows), min_accuracy)


if __name__ == "__main__":
    # One run now, as `airflow dags trigger ml_pipeline` would.
    run = ml_pipeline.run()
    for name, step_run in run.steps.items():
        print(f"step {name:<9} {step_run.status:<10} {step_run.seconds:.2f} s")
    print(f"manual run {run.run_id}: {run.status}, deployed version {run.result}")

    # The DAG's schedule_interval='@daily': a cron schedule in the store.
    store = get_pipeline_store()
    register_pipeline(ml_pipeline)
    schedule = add_schedule(store, "ml_pipeline", "@daily", {"seed": 1})
    due = datetime.fromtimestamp(schedule.next_run_at / 1000, tz=UTC)
    print(
        f"schedule {schedule.schedule_id}: {schedule.cron}, next run at {due:%Y-%m-%d %H:%M} UTC"
    )

    # `loopml scheduler` ticks every few seconds; here one tick at the time the run falls due.
    (scheduled,) = Scheduler(store).tick(now_ms=schedule.next_run_at)
    print(f"scheduled run {scheduled.run_id} ({scheduled.trigger}): {scheduled.status}")
    production = loopml.Client().get_model_version_by_alias("churn-daily", "production")
    print(f"churn-daily@production is version {production.version}")
