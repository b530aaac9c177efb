"""``analyze`` over unit-level rows: the statistics per (metric, variant) against SciPy and
statsmodels, CUPED, ratio metrics, SRM, guardrails, the verdict, and bad inputs."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats
from statsmodels.stats.proportion import proportions_ztest

from loopml.abtest import Metric, analyze
from loopml.errors import InvalidInput


def _units(
    n: int = 30_000, seed: int = 0, *, lift_a: float = 0.0, lift_b: float = 0.0
) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    variant = rng.choice(["control", "a", "b"], n)
    shift = np.select([variant == "a", variant == "b"], [lift_a, lift_b], 0.0)
    pre = rng.gamma(2.0, 5.0, n)
    revenue = 0.8 * pre + rng.normal(2.0, 3.0, n) + shift * 10
    converted = (rng.random(n) < 0.10 + shift).astype(int)
    sessions = rng.integers(1, 6, n)
    clicks = rng.binomial(sessions, 0.3 + shift)
    latency = rng.normal(100, 10, n)
    return pd.DataFrame(
        {
            "unit": np.arange(n),
            "variant": variant,
            "converted": converted,
            "revenue": revenue,
            "revenue_pre": pre,
            "clicks": clicks,
            "sessions": sessions,
            "latency": latency,
        }
    )


def test_rows_match_scipy_and_statsmodels(tmp_path: Path) -> None:
    df = _units(lift_a=0.02)
    result = analyze(
        df,
        metrics=[
            "converted",
            "revenue",
            Metric("ctr", numerator="clicks", denominator="sessions"),
        ],
        correction="none",
    )
    rows = {(r["metric"], r["variant"]): r for r in result.rows}
    assert result.control == "control" and set(result.variants) == {"a", "b", "control"}
    a, c = df[df.variant == "a"], df[df.variant == "control"]
    conv = rows[("converted", "a")]
    z, p = proportions_ztest([a.converted.sum(), c.converted.sum()], [len(a), len(c)])
    assert conv["kind"] == "binomial" and conv["p_value"] == pytest.approx(p)
    assert conv["lift"] == pytest.approx(a.converted.mean() - c.converted.mean())
    rev = rows[("revenue", "a")]
    welch = stats.ttest_ind(a.revenue, c.revenue, equal_var=False)
    assert rev["kind"] == "continuous" and rev["p_value"] == pytest.approx(welch.pvalue)
    ci = welch.confidence_interval()
    assert (rev["lift_low"], rev["lift_high"]) == pytest.approx((ci.low, ci.high))
    ctr = rows[("ctr", "a")]
    assert ctr["mean"] == pytest.approx(a.clicks.sum() / a.sessions.sum())
    # delta method by hand
    r = a.clicks.sum() / a.sessions.sum()
    md = a.sessions.mean()
    var_r = (
        (a.clicks.var() - 2 * r * np.cov(a.clicks, a.sessions)[0, 1] + r**2 * a.sessions.var())
        / md**2
        / len(a)
    )
    rc = c.clicks.sum() / c.sessions.sum()
    var_c = (
        (c.clicks.var() - 2 * rc * np.cov(c.clicks, c.sessions)[0, 1] + rc**2 * c.sessions.var())
        / c.sessions.mean() ** 2
        / len(c)
    )
    zr = (r - rc) / np.sqrt(var_r + var_c)
    assert ctr["statistic"] == pytest.approx(zr, rel=1e-9)  # Welch's t on the delta method
    assert ctr["p_value"] == pytest.approx(2 * stats.norm.sf(abs(zr)), rel=0.05)
    assert result.verdict["decision"] == "ship" and result.verdict["variant"] == "a"
    # The same from a Parquet file.
    path = tmp_path / "units.parquet"
    df.to_parquet(path)
    again = analyze(path, metrics=["converted", "revenue"], correction="none")
    assert again.rows[0]["p_value"] == pytest.approx(result.rows[0]["p_value"])


def test_cuped_reduces_variance_and_keeps_the_estimate() -> None:
    df = _units(seed=1, lift_a=0.01)
    plain = analyze(df, metrics=["revenue"])
    cuped = analyze(df, metrics=["revenue"], covariates={"revenue": "revenue_pre"})
    p_row = next(r for r in plain.rows if r["variant"] == "a")
    c_row = next(r for r in cuped.rows if r["variant"] == "a")
    rho2 = np.corrcoef(df.revenue, df.revenue_pre)[0, 1] ** 2
    assert c_row["variance_reduction"] == pytest.approx(rho2, abs=0.02)
    width = c_row["lift_high"] - c_row["lift_low"]
    assert width < 0.7 * (p_row["lift_high"] - p_row["lift_low"])
    assert c_row["lift"] == pytest.approx(0.1, abs=3 * width / 4)  # the true lift is 0.01 * 10
    theta = np.cov(df.revenue, df.revenue_pre)[0, 1] / df.revenue_pre.var()
    a = df[df.variant == "a"]
    adjusted = a.revenue - theta * (a.revenue_pre - df.revenue_pre.mean())
    assert c_row["mean"] == pytest.approx(adjusted.mean())


def test_srm_guardrails_and_methods() -> None:
    df = _units(seed=2, lift_a=0.03)
    skewed = pd.concat([df, df[df.variant == "a"].head(600)])  # a logged 600 units twice
    stop = analyze(skewed, metrics=["converted"])
    assert stop.srm["flagged"] and stop.verdict["decision"] == "stop"
    assert "sample ratio mismatch" in stop.verdict["reason"]
    slow = df.assign(latency=df.latency + np.where(df.variant == "a", 5.0, 0.0))
    guarded = analyze(
        slow,
        metrics=["converted", Metric("latency", higher_is_better=False)],
        guardrails=["latency"],
    )
    assert guarded.verdict == {
        "decision": "stop",
        "variant": "a",
        "reason": "guardrail latency degraded in a",
    }
    bayes = analyze(df, metrics=["converted", "revenue"], method="bayesian")
    conv = next(r for r in bayes.rows if r["variant"] == "a" and r["metric"] == "converted")
    assert conv["prob_beat_control"] > 0.99 and conv["expected_loss"] < 1e-4
    assert bayes.verdict["decision"] == "ship"
    seq = analyze(df, metrics=["converted"], method="sequential")
    freq = analyze(df, metrics=["converted"], correction="none")
    for s_row, f_row in zip(seq.rows, freq.rows, strict=True):
        assert s_row["p_value"] >= f_row["p_value"]  # the price of peeking safely
        assert s_row["lift_high"] - s_row["lift_low"] > f_row["lift_high"] - f_row["lift_low"]
    aa = analyze(_units(seed=3), metrics=["converted", "revenue"])
    assert aa.verdict["decision"] == "keep running"


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"metrics": ["nope"]}, "'nope' is not in the data"),
        ({"metrics": ["converted"], "control": "zzz"}, "control 'zzz'"),
        ({"metrics": ["converted"], "method": "magic"}, "method"),
        ({"metrics": []}, "at least one metric"),
        ({"metrics": ["converted"], "guardrails": ["revenue"]}, "guardrail 'revenue'"),
        ({"metrics": ["converted"], "weights": {"zzz": 1}}, "has units but no weight"),
        ({"metrics": ["converted"], "alpha": 0.7}, "alpha"),
        ({"metrics": ["converted"], "covariates": {"revenue": "revenue_pre"}}, "not a metric"),
    ],
)
def test_bad_inputs(kwargs: dict, message: str) -> None:
    with pytest.raises(InvalidInput, match=message):
        analyze(_units(3000), **kwargs)


def test_degenerate_data() -> None:
    with pytest.raises(InvalidInput, match="numerator and denominator"):
        Metric("r", numerator="clicks")
    one = _units(3000).assign(variant="control")
    with pytest.raises(InvalidInput, match="at least 2 are needed"):
        analyze(one, metrics=["converted"])
    empty = _units(3000)
    empty.loc[empty.variant == "b", "revenue"] = np.nan
    with pytest.raises(InvalidInput, match="variant 'b' has fewer than 2 values"):
        analyze(empty, metrics=["revenue"])
    with pytest.raises(InvalidInput, match="no such file"):
        analyze("/nowhere/x.parquet", metrics=["converted"])


def test_review_cases() -> None:
    rng = np.random.default_rng(5)
    n = 20_000
    df = pd.DataFrame(
        {
            "variant": rng.choice(["control", "a"], n),
            "big": 1e8 + rng.normal(0, 1, n),  # sums of squares would lose all precision
            "num": rng.poisson(3, n).astype(float),
            "den": rng.integers(1, 10, n).astype(float),
            "latency": rng.normal(100, 10, n),
        }
    )
    big = analyze(df, metrics=["big"]).rows[0]
    assert big["lift_high"] - big["lift_low"] == pytest.approx(
        2 * 1.96 * np.sqrt(2 / 10_000), rel=0.1
    )
    df.loc[::3, "num"] = np.nan  # a missing numerator drops the whole row from the ratio
    ratio = analyze(df, metrics=[Metric("r", numerator="num", denominator="den")]).rows[0]
    a = df[(df.variant == "a") & df.num.notna()]
    assert ratio["mean"] == pytest.approx(a.num.sum() / a.den.sum())
    with pytest.raises(InvalidInput, match="ratio"):
        analyze(
            df,
            metrics=[Metric("r", numerator="num", denominator="den")],
            covariates={"r": "latency"},
        )
    slow = df.assign(latency=df.latency - np.where(df.variant == "a", 20.0, 0.0))
    row = analyze(
        slow, metrics=[Metric("latency", higher_is_better=False)], method="bayesian"
    ).rows[0]
    assert row["prob_better"] > 0.99 and row["expected_loss"] < 1e-6  # faster: nothing to lose
    missing = analyze(df, metrics=["latency"], weights={"control": 1, "a": 1, "b": 1})
    assert missing.srm["flagged"] and missing.srm["observed"]["b"] == 0
    lopsided = pd.concat([df, df[df.variant == "a"].head(2000)])
    calm = analyze(lopsided, metrics=["latency"], srm_decides=False)
    assert calm.srm["flagged"] and calm.verdict["decision"] == "keep running"
