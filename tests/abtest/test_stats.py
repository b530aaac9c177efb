"""The A/B statistics against SciPy and statsmodels on the same data, and the sequential test's
guarantee by simulation."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import integrate, stats
from statsmodels.stats.multitest import multipletests
from statsmodels.stats.power import NormalIndPower
from statsmodels.stats.proportion import proportions_ztest

from loopml.abtest import (
    Moments,
    bayes_binomial,
    bayes_normal,
    correct,
    minimum_detectable_effect,
    proportions_test,
    sample_size,
    sequential_test,
    srm_test,
    welch_test,
)
from loopml.errors import InvalidInput


def test_proportions_test_matches_statsmodels_and_chi_square() -> None:
    t, c = Moments(5000, 0.112, 0.0), Moments(5200, 0.1, 0.0)
    got = proportions_test(t, c)
    z, p = proportions_ztest([560, 520], [5000, 5200])
    assert got.statistic == pytest.approx(z) and got.p_value == pytest.approx(p)
    table = np.array([[560, 5000 - 560], [520, 5200 - 520]])
    assert got.p_value == pytest.approx(stats.chi2_contingency(table, correction=False).pvalue)
    se = np.sqrt(0.112 * 0.888 / 5000 + 0.1 * 0.9 / 5200)
    assert got.lift_low == pytest.approx(0.012 - 1.959964 * se, rel=1e-5)
    assert got.relative == pytest.approx(0.12)


def test_welch_test_matches_scipy() -> None:
    rng = np.random.default_rng(0)
    a, b = rng.normal(10.3, 3, 800), rng.normal(10, 2, 1200)
    got = welch_test(Moments.of(a), Moments.of(b))
    want = stats.ttest_ind(a, b, equal_var=False)
    ci = want.confidence_interval(0.95)
    assert got.statistic == pytest.approx(want.statistic)
    assert got.p_value == pytest.approx(want.pvalue)
    assert (got.lift_low, got.lift_high) == pytest.approx((ci.low, ci.high))
    sums = Moments.from_sums(len(a), a.sum(), (a**2).sum())
    assert (sums.mean, sums.var) == pytest.approx((a.mean(), a.var(ddof=1)))


def test_srm_and_corrections_and_planning() -> None:
    chi, p = srm_test([505_000, 495_000], [50, 50])  # 50.5 / 49.5 of a million
    assert p < 1e-20 and chi == pytest.approx(stats.chisquare([505_000, 495_000]).statistic)
    assert srm_test([5050, 4950], [1, 1])[1] > 0.3  # the same split at 10k units is noise
    pvals = [0.01, 0.04, 0.03, 0.2, 0.002]
    assert correct(pvals, "holm") == pytest.approx(multipletests(pvals, method="holm")[1])
    assert correct(pvals, "bh") == pytest.approx(multipletests(pvals, method="fdr_bh")[1])
    n = sample_size(10.0, 0.05, std=4.0)  # detect +5% of a mean of 10, std 4
    want = NormalIndPower().solve_power(effect_size=0.5 / 4.0, alpha=0.05, power=0.8)
    assert n == int(np.ceil(want))
    assert minimum_detectable_effect(10.0, want, std=4.0) == pytest.approx(0.05, rel=1e-5)
    nb = sample_size(0.1, 0.1)  # 10% -> 11%
    d = 0.01 / np.sqrt((0.1 * 0.9 + 0.11 * 0.89) / 2)
    assert nb == int(np.ceil(NormalIndPower().solve_power(effect_size=d, alpha=0.05, power=0.8)))
    for call in (
        lambda: sample_size(0.95, 0.1),
        lambda: sample_size(0.1, 0.0),
        lambda: srm_test([10, -1], [1, 1]),
        lambda: correct([0.1], "bonferroni-ish"),
    ):
        with pytest.raises(InvalidInput):
            call()


def test_bayesian_read_outs_match_numerical_integration() -> None:
    got = bayes_binomial(130, 1000, 110, 1000)
    ft, fc = stats.beta(131, 871), stats.beta(111, 891)
    prob = integrate.quad(lambda x: fc.pdf(x) * ft.sf(x), 0, 1)[0]
    assert got["prob_beat"] == pytest.approx(prob, abs=0.005)
    t, c = Moments(400, 5.3, 4.0), Moments(400, 5.0, 4.0)
    b = bayes_normal(t, c)
    d = stats.norm(0.3, np.sqrt(4 / 400 + 4 / 400))
    assert b["prob_beat"] == pytest.approx(d.sf(0))
    loss = integrate.quad(lambda x: max(-x, 0) * d.pdf(x), -5, 5, points=[0])[0]
    assert b["expected_loss"] == pytest.approx(loss, rel=1e-6)


def _looks(rng: np.random.Generator, sims: int, looks: int, per_look: int, mu: float) -> Moments:
    """Cumulative moments of one arm at each look, drawn exactly: a look's sum is normal and its
    sum of squared deviations chi-square with per_look - 1 degrees of freedom."""
    sums = rng.normal(per_look * mu, np.sqrt(per_look), (sims, looks))
    ssd = rng.chisquare(per_look - 1, (sims, looks))
    sumsq = ssd + sums**2 / per_look
    n = per_look * np.arange(1, looks + 1)
    return Moments.from_sums(n, np.cumsum(sums, axis=1), np.cumsum(sumsq, axis=1))


def test_sequential_test_keeps_alpha_at_every_look_while_peeking_does_not() -> None:
    rng = np.random.default_rng(7)
    sims, looks, per_look = 1000, 20, 500
    a = _looks(rng, sims, looks, per_look, 0.0)
    b = _looks(rng, sims, looks, per_look, 0.0)
    seq = sequential_test(a, b, tuning=per_look * looks)
    naive = welch_test(a, b)
    seq_fpr = np.mean((seq.p_value < 0.05).any(axis=1))
    naive_fpr = np.mean((naive.p_value < 0.05).any(axis=1))
    assert seq_fpr <= 0.05 + 3 * np.sqrt(0.05 * 0.95 / sims)  # allow sampling error
    assert naive_fpr > 0.12  # peeking 20 times at a fixed-horizon test
    covered = (seq.lift_low <= 0) & (seq.lift_high >= 0)
    assert np.mean(covered.all(axis=1)) >= 0.95 - 3 * np.sqrt(0.05 * 0.95 / sims)
    # Under a true effect: the price of peeking safely is power. At the effect a fixed-horizon
    # test finds 90% of the time at the last look, the mixture SPRT finds it about 2/3 of the
    # time; at 1.5 times that effect almost always, most often in the first half.
    base = (1.96 + 1.2816) / np.sqrt(per_look * looks / 2)
    for factor, least, early in ((1.0, 0.55, 0.15), (1.5, 0.93, 0.5)):
        t = _looks(rng, sims, looks, per_look, factor * base)
        found = sequential_test(t, b, tuning=per_look * looks).p_value < 0.05
        assert np.mean(found.any(axis=1)) > least
        assert np.mean(found[:, : looks // 2].any(axis=1)) > early


def test_degenerate_statistics() -> None:
    same = bayes_normal(Moments(10, 1.0, 0.0), Moments(10, 1.0, 0.0))
    assert same["prob_beat"] == 0.5 and same["expected_loss"] == 0.0
    adjusted = correct([0.01, np.nan, 0.02], "bh")
    assert np.isnan(adjusted[1]) and adjusted[0] == pytest.approx(0.02)
    seq = sequential_test(Moments(10**6, 0.12, 0.1056), Moments(10**6, 0.1, 0.09))
    assert np.isfinite(seq.statistic) and seq.p_value < 1e-10  # log Λ, not Λ
    neg = sequential_test(Moments(500, -1.2, 1.0), Moments(500, -1.0, 1.0))
    assert neg.relative_low <= neg.relative_high
