"""The A/B analysis benchmark's competitor: the same analysis as an analyst would write it with
pandas, SciPy and statsmodels, one function per method, on a DataFrame read with
``pd.read_parquet``.

Per method and comparison (each treatment against control), for ``converted`` (0/1) and
``revenue``:

- frequentist: ``proportions_ztest`` (statsmodels) for the conversion rate, ``ttest_ind(...,
  equal_var=False)`` (SciPy, Welch) on the raw revenue arrays of the two variants;
- sequential: the mixture SPRT with a normal mixture, written with NumPy from the per-variant
  counts, means and variances: always-valid p = min(1, 1/Λ), Λ = sqrt(V/(V+τ²)) ·
  exp(Δ²τ²/(2V(V+τ²))), V the variance of the difference of the means (p(1-p)/n per arm for
  a rate, var/n for a mean), τ² = V·n_eff/(tuning/2)·(-2 ln α + ln(1 - 2 ln α)) with n_eff =
  n_t n_c/(n_t + n_c) and tuning = 10,000 (loopml's ``_mixture_tau2``);
- bayesian: Beta(1, 1)-Binomial posteriors by Monte Carlo (200,000 draws of each rate) for the
  rate, flat-prior normal posteriors of the means (P = Φ(Δ/√V)) for revenue;
- cuped: θ = cov(revenue, revenue_pre) / var(revenue_pre) over all units, the adjusted revenue
  ``revenue - θ(revenue_pre - mean)`` computed per unit in pandas, then Welch on it; the rate
  as in frequentist.

Every method also runs the sample-ratio check (``scipy.stats.chisquare`` of the units per
variant), Holm's correction over the four p-values (statsmodels ``multipletests``; none for
the Bayesian read-out) and the verdict rule loopml's ``analyze`` documents, so that both sides
do the same work.
"""

from __future__ import annotations

from typing import Any

import numpy as np

ALPHA = 0.05
TUNING = 10_000
DRAWS = 200_000
MC_SEED = 7  # not loopml's seed: the Monte Carlo figures are compared within a tolerance
SRM_ALPHA = 0.001
CONTROL = "control"
RATE, MEAN, COVARIATE = "converted", "revenue", "revenue_pre"
COLUMNS = ["variant", RATE, MEAN, COVARIATE]


def read(path: str) -> Any:
    """The columns the analysis uses (fewer columns than the file has: the faster read)."""
    import pandas as pd

    return pd.read_parquet(path, columns=COLUMNS)


def _srm(df: Any) -> tuple[dict[str, int], float]:
    from scipy import stats

    units = df.groupby("variant").size()
    return {str(k): int(v) for k, v in units.items()}, float(stats.chisquare(units).pvalue)


def _treatments(names: Any) -> list[str]:
    return [str(v) for v in names if v != CONTROL]


def _holm(rows: list[dict[str, Any]]) -> None:
    from statsmodels.stats.multitest import multipletests

    adjusted = multipletests([r["p_value"] for r in rows], alpha=ALPHA, method="holm")[1]
    for r, p in zip(rows, adjusted, strict=True):
        r["p_adjusted"] = float(p)
        r["significant"] = bool(p < ALPHA)


def _verdict(rows: list[dict[str, Any]], srm_p: float, bayesian: bool) -> dict[str, Any]:
    """Stop on a sample-ratio mismatch; ship the treatment that is significantly better on a
    metric and worse on none (the largest relative lift among them); stop if every treatment
    is worse on one; else keep running."""
    if srm_p < SRM_ALPHA:
        return {"decision": "stop", "variant": None}

    def direction(r: dict[str, Any]) -> int:
        if not r["significant"]:
            return 0
        up = r["prob_beat_control"] > 0.5 if bayesian else r["lift"] > 0
        return 1 if up else -1

    winners = {r["variant"] for r in rows if direction(r) > 0}
    losers = {r["variant"] for r in rows if direction(r) < 0}
    clean = sorted(winners - losers)
    if clean:
        best = max((r for r in rows if r["variant"] in clean), key=lambda r: r["relative"])
        return {"decision": "ship", "variant": best["variant"]}
    if losers and len(losers) == len({r["variant"] for r in rows}):
        return {"decision": "stop", "variant": None}
    return {"decision": "keep running", "variant": None}


def _row(metric: str, variant: str, t_mean: float, c_mean: float, **kw: Any) -> dict[str, Any]:
    lift = float(t_mean - c_mean)
    return {"metric": metric, "variant": variant, "lift": lift, "relative": lift / c_mean, **kw}


def _z_rows(df: Any) -> list[dict[str, Any]]:
    """Two-proportion z-tests of the conversion rate, each treatment against control."""
    from statsmodels.stats.proportion import proportions_ztest

    agg = df.groupby("variant")[RATE].agg(["sum", "count"])
    rows = []
    for v in _treatments(agg.index):
        s = [agg.loc[v, "sum"], agg.loc[CONTROL, "sum"]]
        n = [agg.loc[v, "count"], agg.loc[CONTROL, "count"]]
        z, p = proportions_ztest(s, n)
        rows.append(_row(RATE, v, s[0] / n[0], s[1] / n[1], p_value=float(p), statistic=z))
    return rows


def _welch_rows(values: Any, variant: Any, metric: str) -> list[dict[str, Any]]:
    """Welch's t-tests on the raw values of each variant, each treatment against control
    (the one column split by variant, not the whole frame: the cheaper split)."""
    from scipy import stats

    groups = {str(k): s for k, s in values.groupby(variant)}
    control = groups[CONTROL]
    rows = []
    for v in _treatments(groups):
        treated = groups[v]
        res = stats.ttest_ind(treated, control, equal_var=False)
        rows.append(
            _row(
                metric,
                v,
                treated.mean(),
                control.mean(),
                p_value=float(res.pvalue),
                statistic=float(res.statistic),
            )
        )
    return rows


def frequentist(df: Any) -> dict[str, Any]:
    """z-test for the rate, Welch for revenue, Holm, SRM, verdict."""
    units, srm_p = _srm(df)
    rows = _z_rows(df) + _welch_rows(df[MEAN], df["variant"], MEAN)
    _holm(rows)
    return {"rows": rows, "srm_p": srm_p, "units": units, "verdict": _verdict(rows, srm_p, False)}


def _msprt(vt: Any, vc: Any, nt: Any, nc: Any, diff: Any) -> tuple[float, float]:
    """(always-valid p-value, Λ) of the normal-mixture SPRT."""
    v = vt + vc
    n_eff = nt * nc / (nt + nc)
    log_term = -2 * np.log(ALPHA)
    tau2 = v * n_eff / (TUNING / 2) * (log_term + np.log(log_term + 1))
    # log Λ rather than Λ: Λ overflows a float once the difference is ~40 standard errors
    log_lr = 0.5 * np.log(v / (v + tau2)) + diff**2 * tau2 / (2 * v * (v + tau2))
    return float(min(1.0, np.exp(-log_lr))), float(np.exp(log_lr))


def sequential(df: Any) -> dict[str, Any]:
    """mSPRT always-valid p-values for the rate and revenue, Holm, SRM, verdict."""
    units, srm_p = _srm(df)
    agg = df.groupby("variant")[[RATE, MEAN]].agg(["count", "mean", "var"])
    rows = []
    for metric in (RATE, MEAN):
        a = agg[metric]
        n, mean = a["count"].astype(float), a["mean"]
        var = mean * (1 - mean) if metric == RATE else a["var"]  # per-unit variance
        for v in _treatments(agg.index):
            vt, vc = var[v] / n[v], var[CONTROL] / n[CONTROL]
            diff = mean[v] - mean[CONTROL]
            p, lr = _msprt(vt, vc, n[v], n[CONTROL], diff)
            rows.append(_row(metric, v, mean[v], mean[CONTROL], p_value=p, statistic=lr))
    _holm(rows)
    return {"rows": rows, "srm_p": srm_p, "units": units, "verdict": _verdict(rows, srm_p, False)}


def bayesian(df: Any) -> dict[str, Any]:
    """Beta-Binomial Monte Carlo for the rate, normal posteriors for revenue, SRM, verdict."""
    from scipy import stats

    units, srm_p = _srm(df)
    agg = df.groupby("variant")[[RATE, MEAN]].agg(["sum", "count", "mean", "var"])
    rng = np.random.default_rng(MC_SEED)
    rows = []
    r = agg[RATE]
    for v in _treatments(agg.index):
        pt = rng.beta(1 + r.loc[v, "sum"], 1 + r.loc[v, "count"] - r.loc[v, "sum"], DRAWS)
        pc = rng.beta(
            1 + r.loc[CONTROL, "sum"], 1 + r.loc[CONTROL, "count"] - r.loc[CONTROL, "sum"], DRAWS
        )
        d = pt - pc
        prob = float(np.mean(d > 0))
        lo, hi = np.quantile(d, [ALPHA / 2, 1 - ALPHA / 2])
        rows.append(
            _row(
                RATE,
                v,
                r.loc[v, "mean"],
                r.loc[CONTROL, "mean"],
                prob_beat_control=prob,
                expected_loss=float(np.mean(np.maximum(-d, 0))),
                lift_low=float(lo),
                lift_high=float(hi),
            )
        )
    m = agg[MEAN]
    for v in _treatments(agg.index):
        d = m.loc[v, "mean"] - m.loc[CONTROL, "mean"]
        s = np.sqrt(
            m.loc[v, "var"] / m.loc[v, "count"] + m.loc[CONTROL, "var"] / m.loc[CONTROL, "count"]
        )
        z = d / s
        rows.append(
            _row(
                MEAN,
                v,
                m.loc[v, "mean"],
                m.loc[CONTROL, "mean"],
                prob_beat_control=float(stats.norm.cdf(z)),
                expected_loss=float(s * stats.norm.pdf(z) - d * stats.norm.cdf(-z)),
            )
        )
    for row in rows:
        p = row["prob_beat_control"]
        row["significant"] = bool(p >= 1 - ALPHA or p <= ALPHA)
    return {"rows": rows, "srm_p": srm_p, "units": units, "verdict": _verdict(rows, srm_p, True)}


def cuped(df: Any) -> dict[str, Any]:
    """z-test for the rate; CUPED-adjusted revenue (pooled θ) by Welch; Holm, SRM, verdict."""
    import pandas as pd

    units, srm_p = _srm(df)
    y, x = df[MEAN], df[COVARIATE]
    theta = y.cov(x) / x.var()
    adjusted = (y - theta * (x - x.mean())).rename("adjusted")
    rows = _z_rows(df) + _welch_rows(adjusted, df["variant"], MEAN)
    # the share of the within-variant variance of revenue that the adjustment removed
    spread = pd.concat([y, adjusted], axis=1).groupby(df["variant"]).var()
    dof = df.groupby("variant").size() - 1
    reduction = 1 - (dof * spread["adjusted"]).sum() / (dof * spread[MEAN]).sum()
    for row in rows[2:]:
        row["theta"] = float(theta)
        row["variance_reduction"] = float(reduction)
    _holm(rows)
    return {"rows": rows, "srm_p": srm_p, "units": units, "verdict": _verdict(rows, srm_p, False)}


METHODS = {
    "frequentist": frequentist,
    "sequential": sequential,
    "bayesian": bayesian,
    "cuped": cuped,
}
