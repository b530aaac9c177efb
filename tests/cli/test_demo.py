"""``loopml demo``: every stage of the closed loop run in order in one LOOPML_HOME, each checked
on what it left in the stores (not only on what it reports), then the real command run as a
process in the same home — a second run, which must start fresh under names of its own."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pandas as pd
import pytest
from click.testing import CliRunner

import loopml
import loopml.abtest as ab
import loopml.data as ld
import loopml.tracking._fluent as fluent
from loopml.cli import _demo_data as demo_data
from loopml.cli import _demo_loop as loop
from loopml.cli import cli
from loopml.config import reset_settings
from loopml.monitoring import get_monitor, read_predictions
from loopml.pipelines import get_pipeline_store
from loopml.registry._resolve import clear_cache as clear_registry_cache
from loopml.serving import get_deployment_store

STAGES = (
    loop.prepare_data,
    loop.tune_and_train,
    loop.release_and_serve,
    loop.serve_and_experiment,
    loop.shift_and_retrain,
)


def _reset() -> None:
    reset_settings()
    fluent.reset()
    clear_registry_cache()


@pytest.fixture(scope="module")
def demo_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("demo") / "home"


@pytest.fixture(scope="module")
def ran(demo_home: Path) -> Iterator[tuple[loop.Demo, dict[str, dict[str, Any]]]]:
    """The five stages, in order, in ``demo_home`` (the server stays up until the module ends).

    Module-scoped fixtures are set up before the per-test ``clean_environ``, so this one
    clears the LOOPML_* variables and points LOOPML_HOME at its home itself.
    """
    with pytest.MonkeyPatch.context() as mp:
        for name in list(os.environ):
            if name.startswith(("LOOPML_", "MLFLOW_")):
                mp.delenv(name)
        mp.setenv("LOOPML_HOME", str(demo_home))
        mp.chdir(demo_home.parent)
        _reset()
        demo = loop.Demo(prefix="churn", root=demo_home / "demo" / "churn", trials=8)
        results: dict[str, dict[str, Any]] = {}
        try:
            for stage in STAGES:
                results[stage.__name__] = stage(demo, lambda _: None)
            yield demo, results
        finally:
            demo.close()
            _reset()


@pytest.fixture(autouse=True)
def in_demo_home(
    clean_environ: None, demo_home: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[None]:
    """Each test reads the stores of the demo's home (after the autouse clean environment)."""
    monkeypatch.setenv("LOOPML_HOME", str(demo_home))
    _reset()
    yield
    _reset()


def _run(ran: Any) -> tuple[loop.Demo, dict[str, Any]]:
    return ran[0], ran[1]


# -- 1. data and features ---------------------------------------------------------------------
def test_training_set_is_point_in_time_and_saved_as_a_linked_dataset_version(ran: Any) -> None:
    demo, results = _run(ran)
    r = results["prepare_data"]
    train = demo.frames["train"]
    assert r["train_rows"] == len(train) > 5000 and 0.05 < r["churn_rate"] < 0.3
    assert r["views"] == ["churn_profile@1", "churn_activity@1"]
    assert train[list(demo_data.FEATURES)].notna().all().all()

    # every label is known by the first landing: no row looks past the data that had arrived
    horizon = pd.Timedelta(days=demo_data.HORIZON_DAYS)
    assert (train["event_timestamp"] + horizon <= demo.world.at(demo_data.CUTOFF_DAY)).all()

    # the features of a row are the customer's latest activity row at or before the label time
    activity = pd.read_parquet(demo.root / "activity")
    sample = train.sample(200, random_state=0)
    for row in sample.itertuples():
        mine = activity[
            (activity["customer_id"] == row.customer_id)
            & (activity["event_timestamp"] <= row.event_timestamp)
        ]
        latest = mine.loc[mine["event_timestamp"].idxmax()]
        assert row.event_timestamp - latest["event_timestamp"] <= pd.Timedelta(days=2)
        for name in ("sessions_7d", "sessions_28d", "tickets_28d", "tenure_days"):
            assert getattr(row, name) == latest[name], (row.customer_id, name)

    # churned = a cancellation within 28 days after the label time
    gone = demo.world.cancellations.set_index("customer_id")["churned_at"]
    for row in sample.itertuples():
        when = gone.get(row.customer_id)
        expected = when is not None and row.event_timestamp < when <= row.event_timestamp + horizon
        assert row.churned == int(expected)

    version = ld.get_version(r["dataset"])
    assert version.run_id == r["run_id"] and version.num_rows == len(train)
    assert version.tags["loopml.feature_views"] == "churn_profile@1,churn_activity@1"
    assert r["dataset"] in {f"{v.name}@{v.version}" for v in ld.run_datasets(r["run_id"])}


# -- 2. tuning and training -------------------------------------------------------------------
def test_every_trial_is_a_child_run_and_the_best_model_is_registered(ran: Any) -> None:
    demo, results = _run(ran)
    r = results["tune_and_train"]
    parent = results["prepare_data"]["run_id"]
    assert r["trials"] == len(r["trial_run_ids"]) == demo.trials
    for run_id in r["trial_run_ids"]:
        child = loopml.get_run(run_id)
        assert child.data.tags["mlflow.parentRunId"] == parent
        assert child.info.status == "FINISHED" and "val_roc_auc" in child.data.metrics
    best = loopml.get_run(parent)
    assert best.data.tags["loopml.best_trial"] == str(r["best_trial"])
    assert best.data.metrics["accuracy"] == pytest.approx(r["holdout"]["accuracy"])
    mv = loopml.Client().get_model_version("churn", r["version"])
    assert mv.run_id == parent and mv.status == "READY"
    assert results["prepare_data"]["dataset"] in mv.dataset_versions
    assert set(mv.feature_views) == {"churn_profile@1", "churn_activity@1"}
    model = loopml.load_model(f"models:/churn/{r['version']}")
    assert model.signature.input_names == list(demo_data.FEATURES)


# -- 3. gates, release, serving ---------------------------------------------------------------
def test_the_first_release_passes_its_gates_and_is_served(ran: Any) -> None:
    demo, results = _run(ran)
    r = results["release_and_serve"]
    gates = {gate for gate, ok, _ in r["gates"] if ok}
    assert gates == {"data", "metrics", "regression", "smoke"}
    assert all(ok for _, ok, _ in r["gates"])
    regression = next(detail for gate, _, detail in r["gates"] if gate == "regression")
    assert regression.startswith("no baseline")
    moves = list(loopml.Client().get_model_history("churn", alias="production"))
    first = moves[-1]  # newest first: the retraining moved it later
    assert (first.from_version, first.to_version) == (None, r["production"])
    assert first.reason == "first release: every gate passed"
    dep = get_deployment_store().get_deployment("churn")
    assert dep.unit_key == "customer_id" and dep.revision > 1
    assert httpx.get(f"{demo.server.url}/health", timeout=10).status_code == 200


# -- 4. traffic, outcomes, challenger, A/B ----------------------------------------------------
def test_traffic_is_logged_and_the_ab_test_reads_a_verdict(ran: Any) -> None:
    demo, results = _run(ran)
    r = results["serve_and_experiment"]
    assert r["ok"] == r["requests"] > 1000
    assert r["logged_before_ab"] == r["requests"] - sum(r["ab_units"].values())
    logged = read_predictions(deployment="churn")
    assert len(logged) >= r["requests"] and set(logged["status"]) == {"ok"}
    assert logged["unit_id"].astype(int).isin(demo.world.customers["customer_id"]).all()

    # each unit went where the sticky hash sends it
    ab_part = logged[logged["variant"] == "challenger"]
    weights = [("champion", 50.0), ("challenger", 50.0)]
    assert all(ab.assign("churn", unit, weights) == "challenger" for unit in ab_part["unit_id"])
    assert set(r["ab_units"]) == {"champion", "challenger"} and min(r["ab_units"].values()) > 300

    challenger = loopml.Client().get_model_version("churn", r["challenger"])
    assert challenger.dataset_versions == [results["prepare_data"]["dataset"]]  # deduplicated

    (row,) = r["ab_rows"]
    assert row["metric"] == "accuracy" and row["variant"] == "challenger"
    assert 0.5 < row["mean"] <= 1 and 0.5 < row["control_mean"] <= 1
    assert r["verdict"]["decision"] in ("ship", "keep running", "stop")
    experiment = ab.get_experiment("churn-challenger")
    assert experiment.status == "stopped" and experiment.deployment == "churn"
    again = ab.analyze_experiment("churn-challenger")  # later traffic is not the experiment's
    assert again.variants == {k: r["ab_units"][k] for k in again.variants}
    assert again.verdict == r["verdict"]
    assert 0.8 < r["live_accuracy"] <= 1


# -- 5. shift, drift, alert, retraining -------------------------------------------------------
def test_the_shift_is_caught_and_the_alert_retrains_into_production(ran: Any) -> None:
    demo, results = _run(ran)
    r = results["shift_and_retrain"]
    live = results["serve_and_experiment"]["live_accuracy"]
    assert r["accuracy_after_shift"] < live - 0.05
    # the redesign halved the sessions; the competitor took customers on dear plans
    assert {"sessions_7d", "sessions_28d", "monthly_charge"} <= set(r["drifted_columns"])
    assert "accuracy" in r["degraded"]["champion"]

    rules = {rule: state for rule, state, _ in r["alerts"]}
    assert rules == {"churn-drift": "firing", "churn-accuracy-drop": "firing"}
    events = get_monitor().store.events(rule="churn-accuracy-drop", limit=5)
    assert events[0].state == "fired"
    (delivery,) = events[0].deliveries
    assert delivery["type"] == "pipeline" and delivery["run_id"] == r["pipeline_run"]

    run = get_pipeline_store().get_run(r["pipeline_run"])
    assert run.status == "SUCCEEDED" and run.trigger.startswith("alert:churn-accuracy-drop:")
    assert run.pipeline == "churn-retrain"
    assert {s.step: s.status for s in run.steps.values()} == {
        "training_set": "SUCCEEDED",
        "train_model": "SUCCEEDED",
        "gate_model": "SUCCEEDED",
        "promote": "SUCCEEDED",
    }
    new = r["new_version"]
    assert new not in (None, results["tune_and_train"]["version"])
    gates = run.output("gate_model")["gates"]
    assert any(detail.startswith("accuracy") and "baseline" in detail for detail in gates)

    client = loopml.Client()
    assert client.get_registered_model("churn").aliases["production"] == new
    mv = client.get_model_version("churn", new)
    retrain_run = loopml.get_run(mv.run_id)
    assert retrain_run.data.tags["loopml.pipeline.run_id"] == run.run_id
    (trained_on,) = mv.dataset_versions
    assert trained_on != results["prepare_data"]["dataset"]
    assert ld.get_version(trained_on).num_rows < results["prepare_data"]["train_rows"]

    dep = get_deployment_store().get_deployment("churn")
    assert [v.model_uri for v in dep.variants] == [f"models:/churn/{new}"]
    assert r["served_versions"] == [new]
    one = demo.frames["holdout"].iloc[0]
    body = {"customer_id": int(one["customer_id"])} | {
        f: one[f].item() for f in demo_data.FEATURES
    }
    answer = httpx.post(f"{demo.server.url}/predict", json=body, timeout=10)
    assert answer.status_code == 200 and answer.headers["x-loopml-model-version"] == new


# -- the command, a second time in the same home ----------------------------------------------
def test_loopml_demo_runs_again_in_the_same_home(
    ran: Any, demo_home: Path, loopml_cmd: list[str]
) -> None:
    """The README's first command as a newcomer runs it, here a second time in one home: it
    starts fresh under new names (churn2) and leaves the first run's objects as they were."""
    _, results = _run(ran)
    env = {k: v for k, v in os.environ.items() if not k.startswith("LOOPML_")}
    env |= {"LOOPML_HOME": str(demo_home), "COLUMNS": "200"}
    proc = subprocess.run(
        [*loopml_cmd, "demo"], env=env, capture_output=True, text=True, timeout=280
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    out = proc.stdout
    assert "objects named churn2" in out
    for i in range(1, 6):
        assert f"[{i}/5]" in out
    assert (
        "✓ [5/5]" in out
        and "5/5 gates passed" in out
        and "A/B verdict:" in out
        and "SUCCEEDED" in out
    )
    assert "loopml pipelines show" in out and "loopml deploy status churn2" in out
    client = loopml.Client()
    second = client.get_registered_model("churn2")
    assert second.aliases["production"] == "3" and "version 3 in production" in out
    first = client.get_registered_model("churn")
    assert first.aliases["production"] == results["shift_and_retrain"]["new_version"]
    assert get_deployment_store().get_deployment("churn2").variants[0].model_uri == (
        "models:/churn2/3"
    )


def test_a_server_tracking_uri_is_refused_before_anything_runs(demo_home: Path) -> None:
    """The demo needs the database itself (pipelines, monitoring, A/B read it directly)."""
    result = CliRunner().invoke(cli, ["demo", "--tracking-uri", "http://127.0.0.1:9"])
    assert result.exit_code == 1 and "runs embedded" in result.output
    assert not (demo_home / "demo" / "churn3").exists()
