"""The demo's retraining pipeline, ``churn-retrain``: what a fired quality alert queues.

Its steps are module-level functions, so that the pipeline has an import target
(``loopml.cli._demo_retrain:retrain``) and ``loopml scheduler`` or ``loopml pipelines run``
can find it by name in another process:

1. ``training_set`` — rebuild the point-in-time training set from the landed files, with the
   label times of the recent weeks only (the customers' behaviour changed);
2. ``train_model`` — fit the champion's parameters on it in a tracked run that logs the
   dataset version (lineage) and registers the model;
3. ``gate_model`` — the same gates as the first release, against the model in production;
4. ``promote`` — alias the version ``production`` and point the deployment at it.

Each step has side effects (runs, versions, aliases), so none is cached.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd

import loopml
from loopml.pipelines import pipeline, step

__all__ = ["PIPELINE", "gate_model", "promote", "retrain", "train_model", "training_set"]

PIPELINE = "churn-retrain"


def _feature_store() -> Any:
    from loopml.features import FeatureStore

    return FeatureStore(database_uri=loopml.get_tracking_uri())


@step(outputs=("train", "holdout"), cache=False)
def training_set(
    data_dir: str, feature_service: str, start: str, days: list[int]
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Label rows at ``days`` (days after ``start``) joined point-in-time with the features;
    split into (train, holdout) by customer."""
    from loopml.cli._demo_data import read_landed, training_frame
    from loopml.cli._demo_train import split_by_customer

    origin = pd.Timestamp(start)
    customers, cancellations = read_landed(Path(data_dir))
    store = _feature_store()
    try:
        times = [origin + pd.Timedelta(days=d) for d in days]
        frame = training_frame(store, feature_service, customers, cancellations, times).to_df()
    finally:
        store.close()
    return split_by_customer(frame)


@step(cache=False)
def train_model(
    train: pd.DataFrame,
    holdout: pd.DataFrame,
    model_name: str,
    dataset: str,
    experiment: str,
    params: dict[str, Any],
) -> str:
    """Fit the boosted trees with ``params`` in a run that logs the training set as a version
    of ``dataset`` and registers the model; returns the new version."""
    import loopml.data as ld
    from loopml.cli._demo_train import boosted, fit_and_log

    loopml.set_experiment(experiment)
    with loopml.start_run(run_name=f"{model_name}-retrain", tags={"loopml.demo": "retrain"}):
        ld.log_dataset(train, dataset, description="recent weeks only, after the shift")
        loopml.log_params(params)
        info, _ = fit_and_log(boosted(params), train, holdout, registered_model_name=model_name)
    return str(info.registered_model_version)


@step(cache=False)
def gate_model(
    version: str, train: pd.DataFrame, holdout: pd.DataFrame, model_name: str
) -> dict[str, Any]:
    """The release gates on the new version; a failed gate fails the step (and the run)."""
    from loopml.cli._demo_train import release_gates

    uri = f"models:/{model_name}/{version}"
    report = release_gates(uri, train, holdout, model_name=model_name)
    print(report.summary())
    report.raise_for_failure()
    return {"passed": True, "gates": [r.detail for r in report.results]}


@step(cache=False)
def promote(
    version: str, gates: dict[str, Any], model_name: str, deployment: str
) -> dict[str, Any]:
    """Alias the gated version ``production`` and serve it as the deployment's primary."""
    from loopml.serving import VariantSpec, get_deployment_store

    loopml.Client().set_registered_model_alias(
        model_name, "production", version, reason="retrained after a quality alert; gates passed"
    )
    store = get_deployment_store()
    try:
        dep = store.update_deployment(
            deployment,
            variants=[VariantSpec("champion", f"models:/{model_name}/{version}")],
            description=f"champion {model_name}/{version}, retrained by {PIPELINE}",
        )
    finally:
        store.close()
    return {"version": version, "revision": dep.revision, "gates": len(gates["gates"])}


@pipeline(name=PIPELINE)
def retrain(
    data_dir: str,
    start: str,
    days: list[int],
    params: dict[str, Any],
    model_name: str = "churn",
    deployment: str = "churn",
    dataset: str = "churn-training",
    feature_service: str = "churn_model",
    experiment: str = "loopml-demo",
) -> Any:
    """Retrain the churn model on recent data, gate it, and put it in production."""
    train, holdout = training_set(data_dir, feature_service, start, days)
    version = train_model(train, holdout, model_name, dataset, experiment, params)
    gates = gate_model(version, train, holdout, model_name)
    return promote(version, gates, model_name, deployment)
