"""Experiments end to end in the SDK: define, assign, expose, log events, analyse; attached to a
deployment, its prediction log and outcomes feed the analysis."""

from __future__ import annotations

import time

import numpy as np
import pytest

import loopml.abtest as ab
from loopml.errors import AlreadyExists, InvalidInput, InvalidState, NotFound
from loopml.monitoring import PredictionLog, log_outcomes


def _experiment(**extra: object) -> ab.Experiment:
    spec = {
        "variants": {"control": 50, "treatment": 50},
        "metrics": [
            {"name": "converted", "kind": "binomial"},
            {"name": "revenue", "kind": "continuous"},
        ],
        **extra,
    }
    return ab.create_experiment("checkout", **spec)


def test_define_assign_expose_and_analyze() -> None:
    exp = _experiment()
    assert ab.get_experiment("checkout").variants == {"control": 50.0, "treatment": 50.0}
    units = [f"user-{i}" for i in range(6000)]
    variants = [ab.assign("checkout", u) for u in units]
    # the same function the inference server's router uses, salted with the experiment
    assert variants[:50] == [
        ab.assign("checkout", u, [("control", 50), ("treatment", 50)]) for u in units[:50]
    ]
    assert abs(variants.count("treatment") / len(units) - 0.5) < 0.03
    assert ab.log_exposures("checkout", [{"unit_id": u} for u in units]) == 6000
    assert ab.log_exposures("checkout", [{"unit_id": units[0], "variant": "treatment"}]) == 0
    rng = np.random.default_rng(0)
    events = []
    for u, v in zip(units, variants, strict=True):
        if rng.random() < (0.16 if v == "treatment" else 0.10):
            events.append({"unit_id": u, "metric": "converted"})
            events.append({"unit_id": u, "metric": "revenue", "value": float(rng.gamma(2, 20))})
    assert ab.log_events("checkout", events) == len(events)
    result = ab.analyze_experiment("checkout")
    conv = next(r for r in result.rows if r["metric"] == "converted")
    treated = [u for u, v in zip(units, variants, strict=True) if v == "treatment"]
    converted = {e["unit_id"] for e in events if e["metric"] == "converted"}
    assert conv["n"] == len(treated)
    assert conv["mean"] == pytest.approx(len(converted & set(treated)) / len(treated))
    assert result.srm["flagged"] is False
    assert result.verdict["decision"] == "ship" and result.verdict["variant"] == "treatment"
    bayes = ab.analyze_experiment("checkout", method="bayesian")
    assert bayes.rows[0]["prob_beat_control"] > 0.99
    assert ab.get_experiment_store().counts("checkout") == {
        "control": variants.count("control"),
        "treatment": variants.count("treatment"),
    }
    ab.stop_experiment("checkout", "shipped")
    with pytest.raises(InvalidState, match="stopped"):
        ab.log_event("checkout", units[0], "converted")
    assert ab.get_experiment("checkout").status == "stopped"
    assert exp.name == "checkout"


def test_allocation_excludes_units_without_moving_the_split() -> None:
    exp = ab.Experiment(
        "half", variants={"control": 1, "treatment": 1}, metrics=["x"], allocation=0.5
    )
    got = [exp.assign(f"u{i}") for i in range(4000)]
    inside = [g for g in got if g is not None]
    assert 0.45 < len(inside) / 4000 < 0.55
    full = ab.Experiment("half", variants={"control": 1, "treatment": 1}, metrics=["x"])
    assert all(full.assign(f"u{i}") == g for i, g in enumerate(got) if g is not None)


def _append(log: PredictionLog, unit: str, variant: str | None, output: int, at: float) -> str:
    """Log one prediction of deployment ``fraud`` for ``unit``; returns its prediction id."""
    return log.append(
        deployment="fraud",
        variant=variant,
        model_name="m",
        model_version="1",
        inputs={"unit": unit},
        outputs=[output],
        latency_ms=1.0,
        unit_id=unit,
        time=at,
    )


def test_an_experiment_on_a_deployment_reads_its_log_and_outcomes() -> None:
    ab.create_experiment(
        "model-ab",
        deployment="fraud",
        variants={"primary": 50, "challenger": 50},
        metrics=["accuracy"],
    )
    exp = ab.get_experiment("model-ab")
    assert exp.salt == "fraud" and exp.control == "primary"
    rng = np.random.default_rng(1)
    now = time.time()
    outcomes = []
    with PredictionLog() as log:
        for i in range(3000):
            unit = f"acct-{i}"
            variant = exp.assign(unit)  # what the router picks for this unit
            truth = int(rng.random() < 0.5)
            right = rng.random() < (0.9 if variant == "challenger" else 0.8)
            # after the experiment began
            pid = _append(log, unit, variant, truth if right else 1 - truth, now + i * 0.001)
            outcomes.append({"prediction_id": pid, "value": truth})
    log_outcomes(outcomes)
    result = ab.analyze_experiment("model-ab")
    (row,) = result.rows
    assert row["metric"] == "accuracy" and row["variant"] == "challenger"
    assert row["mean"] == pytest.approx(0.9, abs=0.03) and row["control_mean"] == pytest.approx(
        0.8, abs=0.03
    )
    assert result.verdict["decision"] == "ship" and result.verdict["variant"] == "challenger"


def test_a_stopped_experiment_ignores_traffic_after_its_stop() -> None:
    """Traffic a deployment serves after its experiment stopped is not the experiment's: the
    analysis reads the prediction log up to the stop (before, new units joined control)."""
    exp = ab.create_experiment(
        "model-ab",
        deployment="fraud",
        variants={"primary": 50, "challenger": 50},
        metrics=["accuracy"],
    )
    start = time.time()

    def serve(log: PredictionLog, units: range, at: float, everyone_primary: bool) -> None:
        outcomes = []
        for i in units:
            unit = f"acct-{i}"
            variant = "primary" if everyone_primary else exp.assign(unit)
            pid = _append(log, unit, variant, 1, at + i * 0.0001)
            outcomes.append({"prediction_id": pid, "value": i % 2})
        log.flush()
        log_outcomes(outcomes)

    with PredictionLog() as log:
        serve(log, range(400), start, everyone_primary=False)
    before = ab.analyze_experiment("model-ab").variants
    time.sleep(0.01)
    stopped = ab.stop_experiment("model-ab", "done")
    assert stopped.stopped_at is not None and stopped.stopped_at >= stopped.created_at
    assert ab.get_experiment("model-ab").stopped_at == stopped.stopped_at
    with PredictionLog() as log:  # the champion alone serves new units afterwards
        serve(log, range(400, 1200), stopped.stopped_at / 1000 + 1, everyone_primary=True)
    after = ab.analyze_experiment("model-ab")
    assert after.variants == before and sum(before.values()) == 400
    assert not after.srm.get("flagged")


def test_bad_inputs() -> None:
    _experiment()
    with pytest.raises(AlreadyExists):
        _experiment()
    with pytest.raises(NotFound):
        ab.get_experiment("nope")
    with pytest.raises(InvalidInput, match="no exposed units"):
        ab.analyze_experiment("checkout")
    for records, message in [
        ([{"unit_id": "u1", "variant": "purple"}], "not a variant"),
        ([{"unit_id": "has space"}], "unit_id"),
        ([{"unit_id": "u1", "when": 1}], "unknown field 'when'"),
        ([], "must not be empty"),
    ]:
        with pytest.raises(InvalidInput, match=message):
            ab.log_exposures("checkout", records)
    for records, message in [
        ([{"unit_id": "u1", "metric": "clicks"}], "'clicks' is not a metric"),
        ([{"unit_id": "u1", "metric": "revenue", "value": float("nan")}], "finite"),
        ([{"unit_id": "u1", "metric": "revenue", "value": "12"}], "finite"),
    ]:
        with pytest.raises(InvalidInput, match=message):
            ab.log_events("checkout", records)
    assert ab.get_experiment_store().counts("checkout") == {}  # nothing half-written
    for spec, message in [
        ({"variants": {"only": 1}, "metrics": ["x"]}, "at least 2"),
        ({"variants": {"a": 1, "b": -1}, "metrics": ["x"]}, "positive"),
        ({"variants": {"a": 1, "b": 1}, "metrics": []}, "at least one metric"),
        ({"variants": {"a": 1, "b": 1}, "metrics": ["x"], "control": "c"}, "control 'c'"),
        ({"variants": {"a": 1, "b": 1}, "metrics": ["x"], "allocation": 0}, "allocation"),
        ({"variants": {"a": 1, "b": 1}, "metrics": ["x"], "guardrails": ["y"]}, "guardrail"),
        ({"variants": {"a": 1, "b": 1}, "metrics": [{"name": "x", "kind": "odd"}]}, "kind"),
    ]:
        with pytest.raises(InvalidInput, match=message):
            ab.create_experiment("other", **spec)


def test_a_rollout_rolls_back_when_its_experiment_says_stop() -> None:
    from loopml.serving import Guardrails, VariantSpec, get_deployment_store, tick_rollout

    deployments = get_deployment_store()
    deployments.create_deployment("shop", [VariantSpec("primary", "models:/m/1")])
    rails = Guardrails(min_requests=5, experiment="shop-test")
    deployments.start_rollout(
        "shop", "models:/m/2", steps=(10, 50, 100), interval_seconds=0, guardrails=rails
    )
    assert deployments.get_deployment("shop").rollout.guardrails.experiment == "shop-test"
    ab.create_experiment(
        "shop-test",
        deployment="shop",
        variants={"primary": 90, "canary": 10},
        metrics=[
            "converted",
            {"name": "latency_ms", "kind": "continuous", "higher_is_better": False},
        ],
        guardrails=["latency_ms"],
    )
    canary = {"requests": 50, "errors": 0, "error_rate": 0.0, "p50_ms": 2.0, "p99_ms": 5.0}

    def stats(name: str, since: float) -> dict:
        return {"canary": canary}

    # No exposures yet: no verdict, the step advances on the service guardrails alone.
    assert tick_rollout(deployments, "shop", stats, now=time.time() + 1).rollout.step == 1
    rng = np.random.default_rng(2)
    units = [f"s{i}" for i in range(4000)]
    ab.log_exposures("shop-test", [{"unit_id": u} for u in units])
    exp = ab.get_experiment("shop-test")
    ab.log_events(
        "shop-test",
        [
            {
                "unit_id": u,
                "metric": "latency_ms",
                "value": float(rng.normal(120 if exp.assign(u) == "canary" else 100, 10)),
            }
            for u in units
        ],
    )
    dep = tick_rollout(deployments, "shop", stats, now=time.time() + 2)
    assert dep.rollout.status == "rolled_back"
    assert dep.rollout.reason == "experiment shop-test: guardrail latency_ms degraded in canary"


def test_more_bad_definitions_and_events() -> None:
    for spec, message in [
        ({"variants": {"a": float("inf"), "b": 1}, "metrics": ["x"]}, "finite"),
        ({"variants": {"a": 1, "b": 1}, "metrics": ["unit_id"]}, "reserved"),
        (
            {"variants": {"a": 1, "b": 1}, "metrics": [{"name": "x", "higher_is_better": "no"}]},
            "true or false",
        ),
        ({"variants": {"a": 1, "b": 1}, "metrics": ["x"], "guardrails": None}, "guardrails"),
        (
            {"variants": {"a": 1, "b": 1}, "metrics": ["x"], "deployment": "d", "allocation": 0.5},
            "allocation 1",
        ),
    ]:
        with pytest.raises(InvalidInput, match=message):
            ab.create_experiment("bad", **spec)
    _experiment()
    for records, message in [
        ([{"unit_id": "u1"}], "None is not a metric"),
        ([{"unit_id": "u1", "metric": ["converted"]}], "is not a metric"),
        ([{"unit_id": "u1", "metric": "converted", "value": 5}], "0 or 1"),
    ]:
        with pytest.raises(InvalidInput, match=message):
            ab.log_events("checkout", records)
    with pytest.raises(InvalidInput, match="variant"):
        ab.log_exposures("checkout", [{"unit_id": "u1", "variant": ["control"]}])


def test_a_holdout_is_kept_apart_and_read_like_a_variant() -> None:
    ab.create_experiment(
        "long-run",
        variants={"control": 1, "treatment": 1},
        metrics=[{"name": "converted", "kind": "binomial"}],
        holdout=0.1,
    )
    exp = ab.get_experiment("long-run")
    assert exp.split == pytest.approx({"control": 0.45, "treatment": 0.45, "holdout": 0.1})
    units = [f"h{i}" for i in range(6000)]
    groups = [exp.assign(u) for u in units]
    assert 0.08 < groups.count("holdout") / len(units) < 0.12
    ab.log_exposures("long-run", [{"unit_id": u} for u in units])
    ab.log_events("long-run", [{"unit_id": u, "metric": "converted"} for u in units[::9]])
    result = ab.analyze_experiment("long-run")
    assert {r["variant"] for r in result.rows} == {"treatment", "holdout"}
    assert result.srm["flagged"] is False and set(result.srm["expected"]) == set(exp.split)
    with pytest.raises(InvalidInput, match="holdout"):
        ab.create_experiment("x", variants={"a": 1, "b": 1}, metrics=["m"], holdout=0.7)
    with pytest.raises(InvalidInput, match="no holdout"):
        ab.create_experiment(
            "y", variants={"a": 1, "b": 1}, metrics=["m"], holdout=0.1, deployment="d"
        )
