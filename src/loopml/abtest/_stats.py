"""Two-sample statistics from sufficient statistics, vectorised over NumPy arrays.

Every function takes per-group counts, means and variances (arrays broadcast, so 1,000
simulated experiments are one call) and returns arrays. ``Moments`` carries one group's
sufficient statistics; it is built from raw values or from aggregated sums (what DuckDB returns).

- ``proportions_test``: two-proportion z-test (pooled variance under H0, as statsmodels'
  ``proportions_ztest``; equals the 2x2 chi-square without correction); Wald intervals.
- ``welch_test``: Welch's t-test with the Welch–Satterthwaite degrees of freedom.
- relative lift intervals by the delta method on the ratio of means.
- ``sequential_test``: the mixture sequential probability ratio test (normal mixture, Johari et
  al. 2017; Howard et al. 2021): an always-valid p-value and a confidence sequence, valid at
  any number of looks.
- ``bayes_binomial`` / ``bayes_normal``: probability to beat control, expected loss and
  credible intervals.
- ``srm_test``: chi-square goodness of fit of observed counts against the configured split.
- ``cuped_theta``: the CUPED coefficient; ``adjust``: means and variances after adjustment.
- ``correct``: Holm or Benjamini–Hochberg adjusted p-values.
- ``sample_size`` / ``minimum_detectable_effect``: planning at a given power.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import stats

from loopml.errors import InvalidInput

__all__ = [
    "Moments",
    "TestResult",
    "bayes_binomial",
    "bayes_normal",
    "correct",
    "cuped_theta",
    "minimum_detectable_effect",
    "proportions_test",
    "sample_size",
    "sequential_test",
    "srm_test",
    "welch_test",
]

Array = Any  # float or np.ndarray


@dataclass
class Moments:
    """One group's count, mean and (sample, ddof=1) variance; arrays for many groups."""

    n: Array
    mean: Array
    var: Array

    @classmethod
    def of(cls, values: Any) -> Moments:
        """From raw values (NaN dropped)."""
        x = np.asarray(values, dtype=float)
        x = x[~np.isnan(x)]
        if len(x) == 0:
            raise InvalidInput("a group has no values")
        var = float(np.var(x, ddof=1)) if len(x) > 1 else 0.0
        return cls(len(x), float(np.mean(x)), var)

    @classmethod
    def from_sums(cls, n: Array, total: Array, total_sq: Array) -> Moments:
        """From the count, the sum and the sum of squares."""
        n = np.asarray(n, dtype=float)
        mean = np.asarray(total, dtype=float) / n
        ss = np.asarray(total_sq, dtype=float) - n * mean**2
        var = np.where(n > 1, np.maximum(ss, 0.0) / np.maximum(n - 1, 1), 0.0)
        return cls(n, mean, var)

    @property
    def se2(self) -> Array:
        """The squared standard error of the mean."""
        return self.var / self.n


@dataclass
class TestResult:
    """Difference (treatment − control), relative lift, intervals and a p-value."""

    estimate: Array  # treatment mean
    control: Array  # control mean
    lift: Array  # absolute difference
    lift_low: Array
    lift_high: Array
    relative: Array  # difference / control mean
    relative_low: Array
    relative_high: Array
    p_value: Array
    statistic: Array


def _relative(t: Moments, c: Moments, var_t: Array, var_c: Array, z: Array) -> tuple:
    """Relative lift t/c − 1 and its delta-method interval."""
    with np.errstate(divide="ignore", invalid="ignore"):
        rel = t.mean / c.mean - 1
        se = np.sqrt(var_t / c.mean**2 + t.mean**2 * var_c / c.mean**4)
    return rel, rel - z * se, rel + z * se


def proportions_test(t: Moments, c: Moments, *, alpha: float = 0.05) -> TestResult:
    """Two-proportion z-test (pooled under H0) with Wald intervals for the lift."""
    pooled = (t.mean * t.n + c.mean * c.n) / (t.n + c.n)
    diff = t.mean - c.mean
    var_t, var_c = t.mean * (1 - t.mean) / t.n, c.mean * (1 - c.mean) / c.n
    se0 = np.sqrt(pooled * (1 - pooled) * (1 / t.n + 1 / c.n))
    with np.errstate(divide="ignore", invalid="ignore"):
        zstat = np.where(se0 > 0, diff / se0, 0.0)
    p = 2 * stats.norm.sf(np.abs(zstat))
    z = stats.norm.ppf(1 - alpha / 2)
    se = np.sqrt(var_t + var_c)
    rel, rlo, rhi = _relative(t, c, var_t, var_c, z)
    return TestResult(t.mean, c.mean, diff, diff - z * se, diff + z * se, rel, rlo, rhi, p, zstat)


def welch_test(t: Moments, c: Moments, *, alpha: float = 0.05) -> TestResult:
    """Welch's unequal-variance t-test with t-distribution intervals for the lift."""
    vt, vc = t.se2, c.se2
    se = np.sqrt(vt + vc)
    diff = t.mean - c.mean
    with np.errstate(divide="ignore", invalid="ignore"):
        df = (vt + vc) ** 2 / (vt**2 / np.maximum(t.n - 1, 1) + vc**2 / np.maximum(c.n - 1, 1))
        tstat = np.where(se > 0, diff / se, 0.0)
    df = np.where(np.isfinite(df), df, 1.0)
    p = 2 * stats.t.sf(np.abs(tstat), df)
    q = stats.t.ppf(1 - alpha / 2, df)
    rel, rlo, rhi = _relative(t, c, vt, vc, q)
    return TestResult(t.mean, c.mean, diff, diff - q * se, diff + q * se, rel, rlo, rhi, p, tstat)


def _mixture_tau2(v: Array, n_eff: Array, tuning: float, alpha: float) -> Array:
    """The normal mixture's variance, tightest where each arm holds ``tuning`` units."""
    per_unit = v * n_eff  # the variance of the difference for one effective unit
    log_term = -2 * np.log(alpha)
    return per_unit / (tuning / 2) * (log_term + np.log(log_term + 1))


def sequential_test(
    t: Moments,
    c: Moments,
    *,
    alpha: float = 0.05,
    tuning: float = 10_000,
    binomial: bool = False,
) -> TestResult:
    """mSPRT with a normal mixture over the difference in means: an always-valid p-value
    (``min(1, 1/Λ)``; P(it ever falls below α under H0) ≤ α, by Ville's inequality) and the
    matching confidence sequence. ``tuning``: units per arm where the sequence is tightest.
    The result's ``statistic`` is log Λ. The relative interval divides the difference's
    sequence by the control mean (it does not carry the control mean's own uncertainty)."""
    if binomial:
        vt, vc = t.mean * (1 - t.mean) / t.n, c.mean * (1 - c.mean) / c.n
    else:
        vt, vc = t.se2, c.se2
    v = vt + vc
    diff = t.mean - c.mean
    n_eff = t.n * c.n / (t.n + c.n)
    tau2 = _mixture_tau2(v, n_eff, tuning, alpha)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        log_lr = 0.5 * np.log(v / (v + tau2)) + diff**2 * tau2 / (2 * v * (v + tau2))
        p = np.where(v > 0, np.minimum(1.0, np.exp(-log_lr)), 1.0)
        half = np.sqrt(v * (v + tau2) / tau2 * (2 * np.log(1 / alpha) + np.log((v + tau2) / v)))
    half = np.where(v > 0, half, 0.0)
    rel, _, _ = _relative(t, c, vt, vc, 0.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        ends = ((diff - half) / c.mean, (diff + half) / c.mean)
    rlo, rhi = np.minimum(*ends), np.maximum(*ends)
    log_lr = np.where(v > 0, log_lr, 0.0)
    return TestResult(t.mean, c.mean, diff, diff - half, diff + half, rel, rlo, rhi, p, log_lr)


def bayes_normal(t: Moments, c: Moments, *, alpha: float = 0.05) -> dict[str, Array]:
    """Flat-prior normal posteriors of the two means: P(treatment > control), the expected loss
    of shipping treatment (E[max(control − treatment, 0)]) and a credible interval."""
    v = t.se2 + c.se2
    d = t.mean - c.mean
    s = np.sqrt(v)
    with np.errstate(divide="ignore", invalid="ignore"):
        zscore = np.where(s > 0, d / s, np.sign(d) * np.inf)
    prob = np.where((s > 0) | (d != 0), stats.norm.cdf(np.nan_to_num(zscore)), 0.5)
    prob = np.where(np.isinf(zscore), (zscore > 0).astype(float), prob)
    loss = np.where(
        s > 0, s * stats.norm.pdf(zscore) - d * stats.norm.cdf(-zscore), np.maximum(-d, 0)
    )
    z = stats.norm.ppf(1 - alpha / 2)
    return {"prob_beat": prob, "expected_loss": loss, "low": d - z * s, "high": d + z * s}


def bayes_binomial(
    t_success: float,
    t_n: float,
    c_success: float,
    c_n: float,
    *,
    alpha: float = 0.05,
    prior: tuple[float, float] = (1.0, 1.0),
    draws: int = 200_000,
    seed: int = 0,
) -> dict[str, float]:
    """Beta-Binomial posteriors (Beta(1, 1) prior): P(treatment > control), expected loss and
    credible intervals of the absolute and relative lift, by seeded Monte Carlo."""
    rng = np.random.default_rng(seed)
    a, b = prior
    pt = rng.beta(a + t_success, b + t_n - t_success, draws)
    pc = rng.beta(a + c_success, b + c_n - c_success, draws)
    d = pt - pc
    rel = pt / pc - 1
    lo, hi = alpha / 2, 1 - alpha / 2
    return {
        "prob_beat": float(np.mean(d > 0)),
        "expected_loss": float(np.mean(np.maximum(-d, 0))),
        "low": float(np.quantile(d, lo)),
        "high": float(np.quantile(d, hi)),
        "relative_low": float(np.quantile(rel, lo)),
        "relative_high": float(np.quantile(rel, hi)),
    }


def srm_test(observed: Sequence[float], weights: Sequence[float]) -> tuple[float, float]:
    """(chi-square, p-value) of observed counts against the configured split."""
    obs = np.asarray(observed, dtype=float)
    w = np.asarray(weights, dtype=float)
    if obs.shape != w.shape or len(obs) < 2:
        raise InvalidInput("srm_test needs a count and a weight for each of at least 2 variants")
    if (obs < 0).any() or (w <= 0).any():
        raise InvalidInput("counts must be non-negative and weights positive")
    if obs.sum() == 0:
        return 0.0, 1.0
    expected = w / w.sum() * obs.sum()
    result = stats.chisquare(obs, expected)
    return float(result.statistic), float(result.pvalue)


def cuped_theta(cov_xy: Array, var_x: Array) -> Array:
    """θ = cov(y, x) / var(x) (0 when x does not vary)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(var_x > 0, cov_xy / var_x, 0.0)


def correct(p_values: Sequence[float], method: str = "holm") -> np.ndarray:
    """Adjusted p-values: ``holm`` (family-wise error) or ``bh`` (false discovery rate); a NaN
    stays NaN and does not count."""
    p = np.asarray(p_values, dtype=float)
    out = np.full(len(p), np.nan)
    known = ~np.isnan(p)
    ranked_in = p[known]
    m = len(ranked_in)
    if m == 0:
        if method not in ("holm", "bh", "fdr_bh", "none"):
            raise InvalidInput("correction must be 'holm', 'bh' or 'none'")
        return out
    order = np.argsort(ranked_in)
    ranked = ranked_in[order]
    if method == "holm":
        adj = np.maximum.accumulate((m - np.arange(m)) * ranked)
    elif method in ("bh", "fdr_bh"):
        adj = np.minimum.accumulate(m / np.arange(m, 0, -1) * ranked[::-1])[::-1]
    elif method == "none":
        adj = ranked
    else:
        raise InvalidInput("correction must be 'holm', 'bh' or 'none'")
    inner = np.empty(m)
    inner[order] = np.minimum(adj, 1.0)
    out[known] = inner
    return out


def sample_size(
    baseline: float,
    mde: float,
    *,
    alpha: float = 0.05,
    power: float = 0.8,
    std: float | None = None,
    relative: bool = True,
    ratio: float = 1.0,
) -> int:
    """Units in the control group (treatment: ``ratio`` times as many) to detect ``mde`` with a
    two-sided test: binomial when ``std`` is None (``baseline`` is a rate), else a mean."""
    _check_plan(alpha, power, ratio)
    delta = baseline * mde if relative else mde
    if delta == 0:
        raise InvalidInput("mde must not be 0")
    z = stats.norm.ppf(1 - alpha / 2) + stats.norm.ppf(power)
    if std is None:
        p1, p2 = baseline, baseline + delta
        if not (0 < p1 < 1 and 0 < p2 < 1):
            raise InvalidInput("a binomial baseline and baseline + mde must lie in (0, 1)")
        var = p1 * (1 - p1) + p2 * (1 - p2) / ratio
    else:
        if std <= 0:
            raise InvalidInput("std must be positive")
        var = std**2 * (1 + 1 / ratio)
    return int(np.ceil(z**2 * var / delta**2))


def minimum_detectable_effect(
    baseline: float,
    n: float,
    *,
    alpha: float = 0.05,
    power: float = 0.8,
    std: float | None = None,
    relative: bool = True,
    ratio: float = 1.0,
) -> float:
    """The smallest effect ``n`` control units (and ``ratio·n`` treatment) detect."""
    _check_plan(alpha, power, ratio)
    if n <= 1:
        raise InvalidInput("n must be above 1")
    z = stats.norm.ppf(1 - alpha / 2) + stats.norm.ppf(power)
    if std is None:
        if not 0 < baseline < 1:
            raise InvalidInput("a binomial baseline must lie in (0, 1)")
        delta = z * np.sqrt(baseline * (1 - baseline) * (1 + 1 / ratio) / n)
    else:
        delta = z * std * np.sqrt((1 + 1 / ratio) / n)
    return float(delta / baseline if relative else delta)


def _check_plan(alpha: float, power: float, ratio: float) -> None:
    if not 0 < alpha < 1 or not 0 < power < 1:
        raise InvalidInput("alpha and power must lie in (0, 1)")
    if ratio <= 0:
        raise InvalidInput("ratio must be positive")
