"""The stages of ``loopml demo``: loopml's closed loop on a simulated churn problem, one function
per stage, run in order on one ``Demo`` (which names every object they create and keeps what
they found). Each stage returns its key figures and can be run and checked on its own.

1. ``prepare_data``        events → features (Feast-style views) → a point-in-time training set,
                           saved as a dataset version linked to the training run
2. ``tune_and_train``      a TPE study (every trial a child run), the best model logged and
                           registered with its input example
3. ``release_and_serve``   quality gates, alias ``production``, a deployment, its server
4. ``serve_and_experiment`` traffic, delayed outcomes, a challenger as canary, an A/B test
5. ``shift_and_retrain``   new data that has shifted, drift and a quality drop, alerts, the
                           retraining pipeline they queue, the new version in production
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

import loopml
from loopml.cli import _demo_data as data
from loopml.cli import _demo_train as train
from loopml.cli._demo_retrain import PIPELINE
from loopml.cli._demo_serving import DemoServer, send_requests

__all__ = [
    "Demo",
    "prepare_data",
    "release_and_serve",
    "serve_and_experiment",
    "shift_and_retrain",
    "tune_and_train",
]

Say = Callable[[str], None]
UNIT = "customer_id"
TRAIN_DAYS = list(range(35, 113, 7))  # label times of the first training set
HOLDOUT_DAY = 119  # the next week: an out-of-time holdout
LIVE_DAY, AB_DAY, SHIFTED_DAY = 126, 133, 196  # the days traffic is scored as of
RECENT_DAYS = list(range(data.SHIFT_DAY, data.DAYS - data.HORIZON_DAYS + 1, 7))


def _quiet(_: str) -> None:
    pass


@dataclass
class Demo:
    """One run of the demo: the names of what it creates and what its stages found."""

    prefix: str  # the model, deployment and feature names derive from it
    root: Path  # where the simulated data lands
    experiment: str = "loopml-demo"
    seed: int = 7
    customers: int = 2000
    trials: int = 12
    world: data.World | None = None
    store: Any = None  # the FeatureStore
    job: Any = None  # the RetrievalJob of the first training set
    server: DemoServer | None = None
    frames: dict[str, pd.DataFrame] = field(default_factory=dict)
    ids: dict[str, Any] = field(default_factory=dict)  # run ids, versions, ... by role
    model: str = field(init=False)
    deployment: str = field(init=False)
    dataset: str = field(init=False)
    service: str = field(init=False)
    abtest: str = field(init=False)
    drift_rule: str = field(init=False)
    quality_rule: str = field(init=False)

    def __post_init__(self) -> None:
        p = self.prefix
        self.model = self.deployment = p  # the registered model and its deployment
        self.dataset, self.service, self.abtest = f"{p}-training", f"{p}_model", f"{p}-challenger"
        self.drift_rule, self.quality_rule = f"{p}-drift", f"{p}-accuracy-drop"

    def close(self) -> None:
        """Stop the server and close the feature store (idempotent)."""
        if self.server is not None:
            self.server.stop()
            self.server = None
        if self.store is not None:
            self.store.close()
            self.store = None

    def scored_as_of(self, day: int) -> pd.DataFrame:
        """The customers active on ``day`` with their features as of then, and the truth the
        simulation knows (``churned``), which arrives later as outcomes."""
        assert self.world is not None and self.store is not None
        world = self.world
        job = data.training_frame(
            self.store, self.service, world.customers, world.cancellations, [world.at(day)]
        )
        return job.to_df()


# -- 1. data and features ---------------------------------------------------------------------
def prepare_data(demo: Demo, say: Say = _quiet) -> dict[str, Any]:
    """Simulate the customers, land the history, define and apply the features, build the
    point-in-time training set and save it as a dataset version linked to the training run."""
    from loopml.features import FeatureStore

    say("simulating customers and their daily activity")
    world = demo.world = data.simulate(n_customers=demo.customers, seed=demo.seed)
    landed = data.write_landing(world, demo.root, part=0, days=(0, data.CUTOFF_DAY))
    say("applying the feature definitions")
    defs = data.feature_definitions(demo.root, demo.prefix)
    demo.store = FeatureStore(database_uri=loopml.get_tracking_uri())
    demo.store.apply(list(defs.values()))
    say("building the point-in-time training set")
    customers, cancellations = data.read_landed(demo.root)
    job = data.training_frame(
        demo.store, demo.service, customers, cancellations, [world.at(d) for d in TRAIN_DAYS]
    )
    loopml.set_experiment(demo.experiment)
    with loopml.start_run(run_name=f"{demo.prefix}-boosted", tags={"loopml.demo": "train"}) as run:
        version = job.to_dataset(demo.dataset, description="weekly label times, 28-day churn")
    demo.job, demo.frames["train"] = job, job.to_df()
    demo.frames["holdout"] = data.training_frame(
        demo.store, demo.service, customers, cancellations, [world.at(HOLDOUT_DAY)]
    ).to_df()
    demo.ids["train_run"] = run.info.run_id
    demo.ids["dataset"] = f"{demo.dataset}@{version.version}"
    train_frame = demo.frames["train"]
    return {
        "customers": landed["customers"],
        "events": landed["events"],
        "feature_rows": landed["activity"],
        "views": list(job.feature_views),
        "train_rows": len(train_frame),
        "churn_rate": float(train_frame[train.TARGET].mean()),
        "holdout_rows": len(demo.frames["holdout"]),
        "dataset": demo.ids["dataset"],
        "run_id": run.info.run_id,
    }


# -- 2. tuning and training -------------------------------------------------------------------
def tune_and_train(demo: Demo, say: Say = _quiet) -> dict[str, Any]:
    """Tune the boosted trees (child runs of the training run), then fit the best parameters
    on the whole training set and log and register the model."""
    say(f"tuning: {demo.trials} trials, each a child run")
    with loopml.start_run(run_id=demo.ids["train_run"]):
        result = train.tune_boosted(demo.frames["train"], n_trials=demo.trials, seed=demo.seed)
        say("training the best parameters and registering the model")
        info, metrics = train.fit_and_log(
            train.boosted(result.best_params),
            demo.frames["train"],
            demo.frames["holdout"],
            registered_model_name=demo.model,
        )
    demo.ids["params"] = result.best_params
    demo.ids["champion"] = str(info.registered_model_version)
    return {
        "trials": len(result.trial_run_ids),
        "best_trial": result.best_trial,
        "best_val_roc_auc": float(result.best_value),
        "best_params": result.best_params,
        "trial_run_ids": sorted(result.trial_run_ids.values()),
        "holdout": metrics,
        "version": demo.ids["champion"],
        "onnx": bool(info.onnx_available),
    }


# -- 3. release -------------------------------------------------------------------------------
def release_and_serve(demo: Demo, say: Say = _quiet) -> dict[str, Any]:
    """Gate the first version (no production yet: no baseline), alias it ``production``,
    create the deployment and start its inference server."""
    from loopml.serving import VariantSpec, get_deployment_store

    version = demo.ids["champion"]
    say("running the quality gates")
    report = train.release_gates(
        f"models:/{demo.model}/{version}",
        demo.frames["train"],
        demo.frames["holdout"],
        model_name=demo.model,
    )
    report.raise_for_failure()
    loopml.Client().set_registered_model_alias(
        demo.model, "production", version, reason="first release: every gate passed"
    )
    say("creating the deployment and starting its server")
    store = get_deployment_store()
    try:
        store.create_deployment(
            demo.deployment,
            [VariantSpec("champion", f"models:/{demo.model}/{version}")],
            unit_key=UNIT,
            description=f"churn scores for the retention team ({demo.model}/{version})",
        )
    finally:
        store.close()
    demo.server = DemoServer(demo.deployment).start()
    return {
        "gates": [(r.gate, r.passed, r.detail) for r in report.results],
        "production": version,
        "url": demo.server.url,
    }


# -- 4. traffic, outcomes, a challenger and an A/B test ----------------------------------------
def _serve(demo: Demo, day: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Score every active customer as of ``day`` over HTTP, then log what really happened to
    them as outcomes (by unit id). Returns (the rows sent, the answers)."""
    from loopml.monitoring import log_outcomes

    assert demo.server is not None
    rows = demo.scored_as_of(day)
    answers = send_requests(demo.server.url, rows, list(data.FEATURES), unit_key=UNIT)
    demo.server.flush()
    outcomes = [
        {"unit_id": str(cid), "value": int(y)}
        for cid, y in zip(rows[UNIT], rows[train.TARGET], strict=True)
    ]
    log_outcomes(outcomes)
    return rows, answers


def _accuracy(rows: pd.DataFrame, answers: pd.DataFrame) -> float:
    truth = dict(zip(rows[UNIT], rows[train.TARGET], strict=True))
    return float((answers["prediction"] == answers[UNIT].map(truth)).mean())


def serve_and_experiment(demo: Demo, say: Say = _quiet) -> dict[str, Any]:
    """Send a week of traffic, log its outcomes; train a challenger, run it as a 50% canary
    with an A/B test on accuracy, and act on the verdict."""
    import loopml.abtest as ab
    from loopml.monitoring import read_predictions
    from loopml.serving import VariantSpec, get_deployment_store

    assert demo.server is not None
    say(f"sending day {LIVE_DAY}'s requests and logging their outcomes")
    rows, answers = _serve(demo, LIVE_DAY)
    logged = read_predictions(deployment=demo.deployment)
    say("training a challenger")
    with loopml.start_run(run_name=f"{demo.prefix}-forest", tags={"loopml.demo": "challenger"}):
        demo.job.to_dataset(demo.dataset)  # the same content: the same version, linked
        info, metrics = train.fit_and_log(
            train.challenger(),
            demo.frames["train"],
            demo.frames["holdout"],
            registered_model_name=demo.model,
        )
    challenger = demo.ids["challenger"] = str(info.registered_model_version)
    client = loopml.Client()
    client.set_registered_model_alias(demo.model, "challenger", challenger)
    say("routing half the customers to the challenger (canary)")
    champion = f"models:/{demo.model}/{demo.ids['champion']}"
    store = get_deployment_store()
    try:
        store.update_deployment(
            demo.deployment,
            variants=[
                VariantSpec("champion", champion, 50, "primary"),
                VariantSpec("challenger", f"models:/{demo.model}/{challenger}", 50, "canary"),
            ],
        )
        demo.server.wait_until(lambda info: len(info["variants"]) == 2)
        ab.create_experiment(
            demo.abtest,
            deployment=demo.deployment,
            variants={"champion": 50, "challenger": 50},
            control="champion",
            metrics=["accuracy"],
            description="random forest vs boosted trees, on next-month churn",
        )
        say(f"sending day {AB_DAY}'s requests and logging their outcomes")
        _, ab_answers = _serve(demo, AB_DAY)
        analysis = ab.analyze_experiment(demo.abtest)
        verdict = analysis.verdict
        if verdict.get("decision") == "ship" and verdict.get("variant") == "challenger":
            store.promote(demo.deployment, "challenger")
            client.set_registered_model_alias(
                demo.model, "production", challenger, reason=f"A/B: {verdict.get('reason')}"
            )
            demo.ids["champion"] = challenger
        else:  # the champion keeps all the traffic
            store.update_deployment(demo.deployment, variants=[VariantSpec("champion", champion)])
        ab.stop_experiment(demo.abtest, str(verdict.get("reason", ""))[:500])
    finally:
        store.close()
    by_variant = ab_answers.groupby("variant").size().to_dict()
    return {
        "requests": len(answers) + len(ab_answers),
        "ok": int((answers["status"] == 200).sum() + (ab_answers["status"] == 200).sum()),
        "logged_before_ab": len(logged),
        "live_accuracy": _accuracy(rows, answers),
        "challenger": challenger,
        "challenger_holdout": metrics,
        "ab_units": {str(k): int(v) for k, v in by_variant.items()},
        "ab_rows": analysis.rows,
        "verdict": verdict,
        "production": demo.ids["champion"],
    }


# -- 5. the world shifts: drift, a quality drop, alerts, retraining ----------------------------
def shift_and_retrain(demo: Demo, say: Say = _quiet) -> dict[str, Any]:
    """Land the newer data (behaviour has changed), serve it, detect drift and the accuracy
    drop, let the alert queue the retraining pipeline, run it, and check what now serves."""
    import loopml.monitoring as lm
    from loopml.cli._demo_retrain import retrain
    from loopml.pipelines import RunStatus, Scheduler, get_pipeline_store, register_pipeline

    assert demo.server is not None and demo.world is not None
    say("landing the newer data: the app was redesigned, a competitor cut prices")
    landed = data.write_landing(demo.world, demo.root, part=1, days=(data.CUTOFF_DAY, data.DAYS))
    started = time.time()
    say(f"sending day {SHIFTED_DAY}'s requests and logging their outcomes")
    rows, answers = _serve(demo, SHIFTED_DAY)
    now = time.time()
    window = now - started  # only the shifted traffic
    say("checking drift and live quality")
    drift = lm.check(demo.deployment, window=window, now=now)
    quality = lm.quality(demo.deployment, window=window, now=now)
    register_pipeline(retrain)
    params = {
        "data_dir": str(demo.root),
        "start": demo.world.start.isoformat(),
        "days": RECENT_DAYS,
        "params": demo.ids["params"],
        "model_name": demo.model,
        "deployment": demo.deployment,
        "dataset": demo.dataset,
        "feature_service": demo.service,
        "experiment": demo.experiment,
    }
    watch: dict[str, Any] = {"deployment": demo.deployment, "op": ">=", "window": window}
    watch["min_samples"] = 200
    rules = [
        lm.AlertRule(
            name=demo.drift_rule,
            metric="drift_share",
            threshold=0.3,
            description="a third of the inputs drifted from the training data",
            **watch,
        ),
        lm.AlertRule(
            name=demo.quality_rule,
            metric="quality_drop:accuracy",
            threshold=0.05,
            notifiers=[{"type": "pipeline", "pipeline": PIPELINE, "params": params}],
            description="live accuracy 5% below the offline baseline: retrain",
            **watch,
        ),
    ]
    monitor = lm.get_monitor()
    for rule in rules:
        monitor.store.put_rule(rule)
    say("evaluating the alert rules")
    statuses = [lm.AlertEngine(monitor).evaluate(rule, now) for rule in rules]
    queued = [
        d["run_id"]
        for s in statuses
        if s.event is not None
        for d in s.event.deliveries
        if d.get("type") == "pipeline" and d.get("ok")
    ]
    say("running the queued retraining pipeline")
    runs = Scheduler(get_pipeline_store()).start_queued()
    run = next((r for r in runs if r.run_id in queued), None)
    result = run.result if run is not None and run.status == RunStatus.SUCCEEDED else None
    served = None
    if result is not None:
        new = str(result["version"])
        demo.ids["champion"] = new
        say("waiting for the server to swap in the new version")
        demo.server.wait_until(lambda info: info.get("version") == new)
        served = send_requests(demo.server.url, rows.head(20), list(data.FEATURES), unit_key=UNIT)
    return {
        "landed_rows": landed["activity"],
        "requests": len(answers),
        "accuracy_after_shift": _accuracy(rows, answers),
        "drifted_columns": list(drift.drifted_columns),
        "share_drifted": float(drift.share_drifted),
        "quality": quality.variants,
        "baselines": quality.baselines,
        "degraded": quality.degraded,
        "alerts": [(s.rule, s.state, s.value) for s in statuses],
        "queued": queued,
        "pipeline_run": None if run is None else run.run_id,
        "pipeline_status": None if run is None else run.status,
        "pipeline_error": None if run is None else run.error,
        "new_version": None if result is None else str(result["version"]),
        "retrain_gates": [] if result is None else run.output("gate_model")["gates"],
        "served_versions": [] if served is None else sorted(set(served["model_version"])),
    }
