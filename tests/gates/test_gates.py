"""Quality gates on a real embedded store: data validation, drift against the training data
from lineage, metric conditions, regression against the production model, a served smoke test,
and the report that gathers them. Every gate is shown passing and stopping a bad model, with
the truth each verdict rests on computed here with scikit-learn and SciPy."""

from __future__ import annotations

import json
import math
import socket
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from scipy import stats
from sklearn.dummy import DummyRegressor
from sklearn.linear_model import LinearRegression, LogisticRegression
from sklearn.metrics import accuracy_score, f1_score, log_loss, mean_squared_error, roc_auc_score

import loopml
import loopml.data as ld
import loopml.gates as lg
from loopml.errors import GateFailed, InvalidInput, NotFound

FEATURES = ["x1", "x2"]


# -- the report ---------------------------------------------------------------------------------
def test_report_gathers_results_and_raises_naming_the_failures() -> None:
    ok = lg.GateResult("data", True, "12 rules passed on 10 rows", 0, 0)
    miss = lg.GateResult(
        "metrics",
        False,
        "accuracy 0.812 < 0.85 (short by 0.038)",
        0.812,
        0.85,
        {"odd": float("nan"), "values": np.array([1.5])[0]},
    )
    report = lg.GateReport([ok, miss])
    assert not report.passed
    assert report.failed == [miss]
    assert report.summary().splitlines() == [
        "PASS data: 12 rules passed on 10 rows",
        "FAIL metrics: accuracy 0.812 < 0.85 (short by 0.038)",
    ]
    as_dict = json.loads(json.dumps(report.to_dict(), allow_nan=False))
    assert as_dict["passed"] is False and as_dict["failed"] == ["metrics"]
    assert as_dict["results"][1]["evidence"] == {"odd": None, "values": 1.5}
    with pytest.raises(
        GateFailed,
        match=r"1 of 2 gates failed: metrics: accuracy 0.812 < 0.85 "
        r"\(short by 0.038\)",
    ) as caught:
        report.raise_for_failure()
    assert caught.value.report is report
    lg.GateReport([ok]).raise_for_failure()  # every gate passed: nothing raised
    assert lg.GateReport([ok]).passed


# -- data ---------------------------------------------------------------------------------------
def test_data_passes_against_the_model_signature(churn: dict[str, Any]) -> None:
    result = lg.validate_data(churn["train"], model_uri="models:/churn@production")
    assert result.gate == "data" and result.passed, result.detail
    assert result.measured == 0
    assert "rules passed on 600 rows" in result.detail


def test_data_fails_on_missing_column_wrong_type_and_empty_column(churn: dict[str, Any]) -> None:
    broken = churn["train"].drop(columns=["x2"]).assign(x1="high", notes=None)
    result = lg.validate_data(broken, model_uri="models:/churn@production")
    assert not result.passed
    assert result.measured == 3  # x2 missing, x1 text for a double input, notes all null
    assert "'x2' missing" in result.detail
    assert "'x1' holds values the model's double input does not accept" in result.detail
    assert "'notes' entirely null" in result.detail
    assert result.detail.startswith("3 of ")


def test_data_types_follow_what_the_model_accepts() -> None:
    """A long input takes whole numbers (even stored as floats), but not fractions or gaps."""
    train = pd.DataFrame({"age": np.arange(20, 60), "y": np.arange(40) % 2})
    with loopml.start_run():
        loopml.log_model(
            LogisticRegression().fit(train[["age"]], train["y"]),
            "model",
            registered_model_name="ages",
            input_example=train[["age"]].head(2),
            onnx=False,
        )
    uri = "models:/ages/1"
    assert lg.validate_data(pd.DataFrame({"age": [30.0, 41.0]}), model_uri=uri).passed
    fraction = lg.validate_data(pd.DataFrame({"age": [30.5, 41.0]}), model_uri=uri)
    assert not fraction.passed and "'age' holds values" in fraction.detail
    gap = lg.validate_data(pd.DataFrame({"age": [30.0, None]}), model_uri=uri)
    assert not gap.passed and "'age' has 1 missing value(s)" in gap.detail


def test_data_with_rules_from_yaml_and_json(tmp_path: Path) -> None:
    frame = pd.DataFrame({"age": [20, 35, 50], "plan": ["a", "b", "a"]})
    yaml_rules = tmp_path / "rules.yaml"
    yaml_rules.write_text("columns:\n  age: {min: 18, max: 40}\n  plan: {allowed: [a, b]}\n")
    result = lg.validate_data(frame, yaml_rules)
    assert not result.passed and result.measured == 1
    assert "age" in result.detail and "1 row" in result.detail
    json_rules = tmp_path / "rules.json"
    json_rules.write_text(json.dumps({"columns": {"age": {"max": 60}, "plan": {}}}))
    assert lg.validate_data(frame, str(json_rules)).passed
    with pytest.raises(InvalidInput, match="does not exist"):
        lg.validate_data(frame, tmp_path / "missing.json")
    with pytest.raises(InvalidInput, match="unknown key"):
        lg.validate_data(frame, {"columns": {"age": {"maximum": 3}}})


def test_data_from_a_dataset_version_and_basic_checks(
    make_data: Callable[..., pd.DataFrame],
) -> None:
    ld.log_dataset(make_data(50, 3), "fresh")
    assert lg.validate_data("fresh@1").passed
    empty = lg.validate_data(pd.DataFrame({"x1": pd.Series([], dtype=float)}))
    assert not empty.passed and "0 rows; min_rows is 1" in empty.detail
    with pytest.raises(NotFound):
        lg.validate_data(make_data(5, 0), model_uri="models:/nope@production")
    with pytest.raises(InvalidInput, match="must be a DataFrame"):
        lg.validate_data(42)


def test_read_frame(tmp_path: Path, make_data: Callable[..., pd.DataFrame]) -> None:
    frame = make_data(10, 0)
    frame.to_parquet(tmp_path / "a.parquet")
    frame.to_csv(tmp_path / "a.csv", index=False)
    pd.testing.assert_frame_equal(lg.read_frame(tmp_path / "a.parquet"), frame)
    pd.testing.assert_frame_equal(lg.read_frame(tmp_path / "a.csv"), frame)
    (tmp_path / "bad.parquet").write_text("not parquet")
    with pytest.raises(InvalidInput, match="cannot read"):
        lg.read_frame(tmp_path / "bad.parquet")
    with pytest.raises(InvalidInput, match="not a .parquet or .csv"):
        lg.read_frame(tmp_path / "a.txt")
    with pytest.raises(InvalidInput, match="does not exist"):
        lg.read_frame(tmp_path / "gone.csv")


# -- drift --------------------------------------------------------------------------------------
def _truly_drifted(reference: pd.DataFrame, current: pd.DataFrame) -> list[str]:
    """The columns SciPy finds different at the 5% level: KS for the two numeric columns, the
    chi-square test of the 2 x k table for the binary label (references under 1000 rows)."""
    out = [c for c in FEATURES if stats.ks_2samp(reference[c], current[c]).pvalue < 0.05]
    table = pd.crosstab(
        np.r_[np.zeros(len(reference)), np.ones(len(current))],
        np.r_[reference["y"], current["y"]],
    )
    if stats.chi2_contingency(table.to_numpy(), correction=False).pvalue < 0.05:
        out.append("y")
    return out


def test_drift_passes_on_data_like_the_training_data(
    churn: dict[str, Any], make_data: Callable[..., pd.DataFrame]
) -> None:
    fresh = make_data(500, 7)
    result = lg.check_drift(fresh, "models:/churn@production")
    assert result.passed, result.detail
    assert result.evidence["reference"] == "train@1"  # found through the version's lineage
    truth = _truly_drifted(churn["train"], fresh)
    assert result.evidence["drifted_columns"] == truth
    assert result.measured == pytest.approx(len(truth) / 3)


def test_drift_stops_shifted_data_naming_the_columns(
    churn: dict[str, Any], make_data: Callable[..., pd.DataFrame]
) -> None:
    shifted = make_data(500, 8, shift=2.0)
    truth = _truly_drifted(churn["train"], shifted)
    assert len(truth) >= 2  # x1 moved, and the label with it
    result = lg.check_drift(shifted, "models:/churn@production", max_share=0.5)
    assert not result.passed
    assert result.measured == pytest.approx(len(truth) / 3) and result.threshold == 0.5
    share = format(len(truth) / 3, ".4g")
    assert result.detail == (
        f"{len(truth)} of 3 columns drifted (share {share} > 0.5): {', '.join(truth)}"
    )
    only_x2 = lg.check_drift(shifted, "models:/churn@production", columns=["x2"])
    assert only_x2.passed == ("x2" not in truth)
    loose = lg.check_drift(shifted, "models:/churn@production", max_share=1.0)
    assert loose.passed


def test_drift_reference_edges(
    churn: dict[str, Any], make_data: Callable[..., pd.DataFrame]
) -> None:
    fresh = make_data(300, 9, shift=2.0)
    given = lg.check_drift(fresh, reference=churn["train"])
    assert not given.passed and "x1" in given.evidence["drifted_columns"]
    first = lg.check_drift(fresh, "models:/churn@never-set")
    assert (
        first.passed
        and first.detail == "no reference: models:/churn@never-set names no version yet"
    )
    with pytest.raises(InvalidInput, match="no training dataset in its lineage"):
        lg.check_drift(fresh, "models:/churn/2")  # logged without a dataset
    with pytest.raises(NotFound):
        lg.check_drift(fresh, "models:/nope@production")
    with pytest.raises(NotFound):
        lg.check_drift(fresh, "models:/churn/9")
    with pytest.raises(InvalidInput, match="max_share"):
        lg.check_drift(fresh, "models:/churn@production", max_share=1.5)
    with pytest.raises(InvalidInput, match="not in both"):
        lg.check_drift(fresh, "models:/churn@production", columns=["tenure"])
    with pytest.raises(InvalidInput, match="shares no column"):
        lg.check_drift(pd.DataFrame({"other": [1.0]}), "models:/churn@production")


# -- metrics ------------------------------------------------------------------------------------
@pytest.fixture
def scored(make_data: Callable[..., pd.DataFrame]) -> str:
    """A run with accuracy logged twice (0.7, then 0.812), f1 0.9 and rmse 2.5; its model is
    scored/1."""
    train = make_data(50, 0)
    with loopml.start_run() as run:
        loopml.log_metric("accuracy", 0.7, step=0)
        loopml.log_metric("accuracy", 0.812, step=1)
        loopml.log_metrics({"f1": 0.9, "rmse": 2.5})
        loopml.log_model(
            LogisticRegression().fit(train[FEATURES], train["y"]),
            "model",
            registered_model_name="scored",
            onnx=False,
        )
    return run.info.run_id


def test_metrics_fail_saying_by_how_much(scored: str) -> None:
    results = lg.check_metrics("models:/scored/1", ["accuracy >= 0.85", "f1 > 0.8", "rmse <= 3"])
    assert [r.passed for r in results] == [False, True, True]
    miss = results[0]
    assert miss.gate == "metrics"
    assert miss.detail == "accuracy 0.812 < 0.85 (short by 0.038)"  # the latest value, 0.812
    assert (miss.measured, miss.threshold) == (0.812, 0.85)
    assert miss.evidence["run_id"] == scored
    assert results[1].detail == "f1 0.9 > 0.8 (margin 0.1)"
    over = lg.check_metrics(scored, "rmse < 2")[0]
    assert not over.passed and over.detail == "rmse 2.5 >= 2 (over by 0.5)"


@pytest.mark.parametrize(
    ("condition", "passes"),
    [
        ("accuracy >= 0.812", True),
        ("accuracy > 0.812", False),
        ("accuracy <= 0.812", True),
        ("accuracy < 0.812", False),
        ("accuracy == 0.812", True),
        ("accuracy == 0.81", False),
        ("accuracy>=8e-1", True),
        ("  accuracy   <   1  ", True),
    ],
)
def test_metric_operators(scored: str, condition: str, passes: bool) -> None:
    assert lg.check_metrics(f"runs:/{scored}/model", [condition])[0].passed is passes


def test_metrics_missing_metric_fails_clearly(scored: str) -> None:
    result = lg.check_metrics(scored, ["roc_auc >= 0.7"])[0]
    assert not result.passed and result.measured is None
    assert result.detail == f"roc_auc was not logged by run {scored} (logged: accuracy, f1, rmse)"


@pytest.mark.parametrize(
    "condition",
    [
        "accuracy => 0.8",
        "accuracy >= high",
        "accuracy",
        ">= 0.8",
        "accuracy ≥ 0.8",
        "a >= >= 1",
        "accuracy >= nan",
        "",
    ],
)
def test_malformed_conditions_are_refused_naming_them(scored: str, condition: str) -> None:
    with pytest.raises(InvalidInput, match="malformed") as caught:
        lg.check_metrics("models:/nope@production", ["f1 > 0.5", condition])  # before any lookup
    assert repr(condition) in str(caught.value)


def test_metrics_unknown_model_or_run(scored: str) -> None:
    with pytest.raises(NotFound, match="nope"):
        lg.check_metrics("models:/nope@production", ["f1 > 0.5"])
    with pytest.raises(NotFound):
        lg.check_metrics("models:/scored@production", ["f1 > 0.5"])
    with pytest.raises(NotFound):
        lg.check_metrics("0123456789abcdef0123456789abcdef", ["f1 > 0.5"])
    with pytest.raises(InvalidInput, match="at least one condition"):
        lg.check_metrics(scored, [])


# -- regression ---------------------------------------------------------------------------------
def test_regression_stops_a_worse_candidate(churn: dict[str, Any]) -> None:
    holdout = churn["holdout"]
    y, x = holdout["y"], holdout[FEATURES]
    good, bad = (
        accuracy_score(y, churn["good"].predict(x)),
        accuracy_score(y, churn["bad"].predict(x)),
    )
    result = lg.check_regression("models:/churn/2", "models:/churn@production", holdout, "y")
    assert not result.passed
    assert result.measured == pytest.approx(bad)
    assert result.evidence["baseline_score"] == pytest.approx(good)
    assert result.evidence["worse_by"] == pytest.approx(good - bad)
    assert f"worse by {good - bad:.4g}" in result.detail
    assert result.detail.startswith(f"accuracy {bad:.4g} vs baseline {good:.4g} (version 1)")
    same = lg.check_regression("models:/churn/1", "models:/churn@production", holdout, "y")
    assert same.passed and "equal" in same.detail
    lenient = lg.check_regression(
        "models:/churn@challenger",
        "models:/churn@production",
        holdout,
        "y",
        tolerance=good - bad + 0.01,
    )
    assert lenient.passed and "within tolerance" in lenient.detail


@pytest.mark.parametrize("metric", ["f1", "roc_auc", "log_loss"])
def test_regression_metrics_match_scikit_learn(churn: dict[str, Any], metric: str) -> None:
    holdout = churn["holdout"]
    y, x = holdout["y"], holdout[FEATURES]
    truth = {
        "f1": lambda m: f1_score(y, m.predict(x)),
        "roc_auc": lambda m: roc_auc_score(y, m.predict_proba(x)[:, 1]),
        "log_loss": lambda m: log_loss(y, m.predict_proba(x)),
    }[metric]
    result = lg.check_regression(
        "models:/churn/2", "models:/churn@production", holdout, "y", metric=metric
    )
    assert not result.passed
    assert result.measured == pytest.approx(truth(churn["bad"]), rel=1e-5)
    # the baseline runs on ONNX Runtime (float32), the truth on scikit-learn
    assert result.evidence["baseline_score"] == pytest.approx(truth(churn["good"]), rel=1e-4)


def test_regression_lower_is_better_for_errors(log_model: Callable[..., str]) -> None:
    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"x1": rng.normal(0, 1, 300), "x2": rng.normal(0, 1, 300)})
    frame["y"] = 3 * frame["x1"] - frame["x2"] + rng.normal(0, 0.1, 300)
    train, holdout = frame.iloc[:200], frame.iloc[200:]
    linear = LinearRegression().fit(train[FEATURES], train["y"])
    mean = DummyRegressor().fit(train[FEATURES], train["y"])
    log_model(mean, "price", train)
    log_model(linear, "price", train)
    loopml.Client().set_registered_model_alias("price", "production", "1")  # the weak one
    rmse = {
        name: math.sqrt(mean_squared_error(holdout["y"], m.predict(holdout[FEATURES])))
        for name, m in (("mean", mean), ("linear", linear))
    }
    better = lg.check_regression(
        "models:/price/2", "models:/price@production", holdout, "y", metric="rmse"
    )
    assert better.passed and better.measured == pytest.approx(rmse["linear"])
    assert f"better by {rmse['mean'] - rmse['linear']:.4g}" in better.detail
    loopml.Client().set_registered_model_alias("price", "production", "2")
    worse = lg.check_regression(
        "models:/price/1", "models:/price@production", holdout, "y", metric="rmse"
    )
    assert not worse.passed and worse.threshold == pytest.approx(rmse["linear"])
    assert "higher is worse" in worse.detail
    r2 = lg.check_regression("models:/price/1", "models:/price/2", holdout, "y", metric="r2")
    assert not r2.passed and "higher is worse" not in r2.detail


def test_regression_first_release_and_bad_input(churn: dict[str, Any]) -> None:
    holdout = churn["holdout"]
    first = lg.check_regression("models:/churn/2", "models:/churn@champion", holdout, "y")
    assert first.passed and first.detail.startswith("no baseline")
    assert first.threshold is None
    with pytest.raises(NotFound):
        lg.check_regression("models:/churn/2", "models:/nope@production", holdout, "y")
    with pytest.raises(NotFound):
        lg.check_regression("models:/churn/7", "models:/churn@production", holdout, "y")
    with pytest.raises(InvalidInput, match="target column 'label' is not in the holdout"):
        lg.check_regression("models:/churn/2", "models:/churn@production", holdout, "label")
    with pytest.raises(InvalidInput, match="unknown metric 'auc'"):
        lg.check_regression("models:/churn/2", "models:/churn/1", holdout, "y", metric="auc")
    with pytest.raises(InvalidInput, match="tolerance"):
        lg.check_regression("models:/churn/2", "models:/churn/1", holdout, "y", tolerance=-1)
    with pytest.raises(InvalidInput, match="candidate models:/churn/2: .*'x2'"):
        lg.check_regression("models:/churn/2", "models:/churn/1", holdout.drop(columns="x2"), "y")


# -- smoke --------------------------------------------------------------------------------------
def _smoke_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "loopml-gate-smoke"]


def _port_is_free(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def test_smoke_serves_over_http_and_stops(churn: dict[str, Any]) -> None:
    result = lg.smoke_test("models:/churn@production", churn["holdout"], rows=4)
    assert result.passed, result.detail
    assert (result.measured, result.threshold) == (4, 4)
    evidence = result.evidence
    assert evidence["url"].startswith("http://127.0.0.1:")
    assert evidence["model_version"] == "1"  # as the server's answer named it
    assert set(evidence["latency_ms"]) == {"p50", "max"}
    assert "4 rows predicted over HTTP" in result.detail
    assert _smoke_threads() == []
    assert _port_is_free(int(evidence["url"].rsplit(":", 1)[1]))


def test_smoke_fails_when_the_server_refuses_the_rows(churn: dict[str, Any]) -> None:
    result = lg.smoke_test("models:/churn/1", churn["holdout"].drop(columns="x2"))
    assert not result.passed and result.measured == 0
    assert result.detail.startswith("POST /predict of 5 rows answered 400")
    assert "'x2'" in result.detail
    assert _smoke_threads() == []
    assert _port_is_free(int(result.evidence["url"].rsplit(":", 1)[1]))


class _Nothing(loopml.PythonModel):
    """Answers null for every row."""

    def predict(self, context: Any, model_input: pd.DataFrame) -> list[Any]:
        return [None] * len(model_input)


class _Broken(loopml.PythonModel):
    """Raises on every prediction."""

    def predict(self, context: Any, model_input: pd.DataFrame) -> Any:
        raise RuntimeError("weights are missing")


def test_smoke_fails_on_null_predictions_and_model_errors(
    make_data: Callable[..., pd.DataFrame],
) -> None:
    rows = make_data(10, 0)[FEATURES]
    with loopml.start_run():
        loopml.log_model(_Nothing(), "model", registered_model_name="nothing")
        loopml.log_model(_Broken(), "model2", registered_model_name="broken")
    nulls = lg.smoke_test("models:/nothing/1", rows)
    assert not nulls.passed and nulls.detail == "5 of 5 predictions are null"
    broken = lg.smoke_test("models:/broken/1", rows)
    assert not broken.passed
    assert broken.detail.startswith("POST /predict of 5 rows answered 500")
    assert "weights are missing" in broken.detail
    assert _smoke_threads() == []


def test_smoke_latency_budget_and_bad_input(churn: dict[str, Any]) -> None:
    holdout = churn["holdout"]
    slow = lg.smoke_test("models:/churn/1", holdout, rows=2, max_latency_ms=1e-6)
    assert not slow.passed and "over by" in slow.detail  # no request answers in a nanosecond
    with pytest.raises(NotFound):
        lg.smoke_test("models:/nope@production", holdout)
    with pytest.raises(InvalidInput, match="rows"):
        lg.smoke_test("models:/churn/1", holdout, rows=0)
    with pytest.raises(InvalidInput, match="at least one row"):
        lg.smoke_test("models:/churn/1", holdout.iloc[:0])
    assert _smoke_threads() == []


# -- Gates --------------------------------------------------------------------------------------
def test_gates_run_in_order_and_fail_fast(
    churn: dict[str, Any], make_data: Callable[..., pd.DataFrame]
) -> None:
    train, holdout = churn["train"], churn["holdout"]
    good = (
        lg.Gates("models:/churn/1")
        .data(train, model_uri="models:/churn@production")
        .drift(make_data(500, 7), "models:/churn@production")
        .metrics("accuracy >= 0.7")
        .regression(holdout, "y", baseline="models:/churn@production")
        .smoke(holdout, rows=2)
        .run()
    )
    assert [r.gate for r in good.results] == ["data", "drift", "metrics", "regression", "smoke"]
    assert good.passed, good.summary()
    bad = (
        lg.Gates("models:/churn@challenger")
        .metrics("accuracy >= 0.7")
        .regression(holdout, "y", baseline="models:/churn@production")
        .smoke(holdout)
        .run(fail_fast=True)
    )
    assert not bad.passed
    assert [r.gate for r in bad.results] == ["metrics"]
    assert bad.skipped == ["regression", "smoke"]
    assert bad.summary().splitlines()[-1] == "SKIP smoke: not run after an earlier gate failed"
    with pytest.raises(GateFailed, match="metrics: accuracy"):
        bad.raise_for_failure()


def test_gates_refuse_what_cannot_run(make_data: Callable[..., pd.DataFrame]) -> None:
    with pytest.raises(InvalidInput, match="needs a model"):
        lg.Gates().metrics("accuracy >= 0.8")
    with pytest.raises(InvalidInput, match="malformed"):
        lg.Gates("models:/x/1").metrics("accuracy >> 0.8")
    with pytest.raises(InvalidInput, match="no gate to run"):
        lg.Gates("models:/x/1").run()
    with pytest.raises(InvalidInput, match="reference"):
        lg.Gates().drift(make_data(5, 0))


def test_public_surface_is_pinned() -> None:
    """Adding or removing a public name is a decision: update this list with it."""
    assert lg.__all__ == [
        "Condition",
        "GateReport",
        "GateResult",
        "Gates",
        "METRICS",
        "check_drift",
        "check_metrics",
        "check_regression",
        "parse_condition",
        "read_frame",
        "smoke_test",
        "validate_data",
    ]


def test_gates_against_a_loopml_server(
    server_factory: Callable[..., Any],
    monkeypatch: pytest.MonkeyPatch,
    request: pytest.FixtureRequest,
    make_data: Callable[..., pd.DataFrame],
) -> None:
    """As CI runs them: lineage, datasets, metrics and models all come over HTTP."""
    import loopml.tracking._fluent as fluent
    from loopml.config import reset_settings

    monkeypatch.setenv("LOOPML_TRACKING_URI", server_factory().url)
    reset_settings()
    fluent.reset()
    churn = request.getfixturevalue("churn")  # registered on the server
    holdout = churn["holdout"]
    report = (
        lg.Gates("models:/churn@challenger")
        .data(churn["train"], model_uri="models:/churn@production")
        .drift(make_data(500, 8, shift=2.0), "models:/churn@production")
        .metrics("accuracy >= 0.7")
        .regression(holdout, "y", baseline="models:/churn@production")
        .smoke(holdout, rows=2)
        .run()
    )
    assert [r.passed for r in report.results] == [True, False, False, False, True]
    assert report.results[1].evidence["reference"] == "train@1"
