"""Column drift: agreement with SciPy, the two-sample chi-square's false-positive rate, verdicts
by effect size on large samples, and the awkward cases (nulls, constants, unseen categories)."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from scipy import stats
from scipy.spatial.distance import jensenshannon

from loopml.errors import InvalidInput
from loopml.monitoring import ReferenceProfile, detect_drift, profile_reference


def _frames(n: int, seed: int = 0, *, shift: float = 0.0) -> tuple[pd.DataFrame, pd.DataFrame]:
    rng = np.random.default_rng(seed)
    cats = np.array(["a", "b", "c", "d"])
    ref = pd.DataFrame(
        {
            "x": rng.normal(0, 1, n),
            "y": rng.exponential(1, n),
            "city": rng.choice(cats, n, p=[0.4, 0.3, 0.2, 0.1]),
        }
    )
    cur = pd.DataFrame(
        {
            "x": rng.normal(shift, 1, n),
            "y": rng.exponential(1, n),
            "city": rng.choice(cats, n, p=[0.1, 0.2, 0.3, 0.4] if shift else [0.4, 0.3, 0.2, 0.1]),
        }
    )
    return ref, cur


def test_statistics_agree_with_scipy() -> None:
    ref, cur = _frames(800, shift=0.3)
    report = detect_drift(ref, cur)
    x = report.columns["x"]
    ks = stats.ks_2samp(ref["x"], cur["x"])
    assert x.test == "ks" and x.statistic == pytest.approx(ks.statistic)
    assert x.p_value == pytest.approx(ks.pvalue)
    want_w = stats.wasserstein_distance(ref["x"], cur["x"]) / np.std(ref["x"])
    assert x.effect_size == pytest.approx(want_w)
    city = report.columns["city"]
    table = pd.crosstab(
        np.r_[np.zeros(len(ref)), np.ones(len(cur))], np.r_[ref["city"], cur["city"]]
    ).to_numpy()
    chi = stats.chi2_contingency(table, correction=False)
    assert city.test == "chisquare" and city.statistic == pytest.approx(chi.statistic)
    assert city.p_value == pytest.approx(chi.pvalue)
    p = ref["city"].value_counts(normalize=True).sort_index()
    q = cur["city"].value_counts(normalize=True).sort_index()
    assert city.effect_size == pytest.approx(jensenshannon(p, q))
    assert report.drifted_columns == ["x", "city"]
    assert report.dataset_drift is True and report.share_drifted == pytest.approx(2 / 3)


def test_two_sample_chi_square_keeps_its_false_positive_rate() -> None:
    """On unchanged data at equal sizes, a 5% test flags about 5% of columns (Evidently's
    goodness-of-fit form flags about half)."""
    rng = np.random.default_rng(42)
    flagged = 0
    trials = 300
    for _ in range(trials):
        ref = pd.DataFrame({"c": rng.choice(list("abcde"), 500)})
        cur = pd.DataFrame({"c": rng.choice(list("abcde"), 500)})
        flagged += detect_drift(ref, cur).columns["c"].drifted
    assert flagged / trials < 0.09


def test_large_samples_are_judged_by_effect_size() -> None:
    rng = np.random.default_rng(1)
    n = 200_000
    ref = pd.DataFrame({"tiny": rng.normal(0, 1, n), "real": rng.normal(0, 1, n)})
    cur = pd.DataFrame({"tiny": rng.normal(0.02, 1, n), "real": rng.normal(0.5, 1, n)})
    report = detect_drift(ref, cur)
    tiny = report.columns["tiny"]
    assert tiny.test == "wasserstein" and tiny.p_value is not None and tiny.p_value < 0.05
    assert tiny.drifted is False  # significant, but too small to matter
    assert report.columns["real"].drifted is True
    psi = detect_drift(ref, cur, method="psi").columns
    assert psi["real"].drifted and not psi["tiny"].drifted


def test_awkward_columns() -> None:
    n = 500
    rng = np.random.default_rng(3)
    ref = pd.DataFrame(
        {
            "const": np.ones(n),
            "nully": np.where(rng.random(n) < 0.05, np.nan, rng.normal(size=n)),
            "cat": rng.choice(["a", "b"], n),
        }
    )
    cur = pd.DataFrame(
        {
            "const": np.ones(n),
            "nully": np.where(rng.random(n) < 0.4, np.nan, rng.normal(size=n)),
            "cat": rng.choice(["a", "b", "new"], n),
        }
    )
    report = detect_drift(ref, cur)
    assert report.columns["const"].drifted is False
    assert report.columns["nully"].null_drift is True and report.columns["nully"].drifted
    assert report.columns["cat"].drifted is True  # a category the reference never had
    moved = detect_drift(ref, cur.assign(const=2.0)).columns["const"]
    assert moved.drifted is True
    assert (
        detect_drift(ref, cur, thresholds={"nully": 0.0, "null_share": 0.5})
        .columns["nully"]
        .null_drift
        is False
    )


@pytest.mark.parametrize(
    ("kwargs", "current", "message"),
    [
        ({}, pd.DataFrame({"x": [1.0] * 5, "y": [1.0] * 5, "city": ["a"] * 5}), "at least 20"),
        ({"min_rows": 0}, None, "min_rows"),
        ({"thresholds": {"null_share": "big"}}, None, "null_share"),
        ({"columns": ["nope"]}, None, "'nope'"),
        ({"method": "chisquare"}, None, "does not apply to numeric column 'x'"),
        ({"thresholds": {"x": -1}}, None, "non-negative"),
        ({"drift_share": 0}, None, "drift_share"),
    ],
)
def test_bad_inputs(kwargs: dict, current: pd.DataFrame | None, message: str) -> None:
    ref, cur = _frames(100)
    with pytest.raises(InvalidInput, match=message):
        detect_drift(ref, cur if current is None else current, **kwargs)
    with pytest.raises(InvalidInput, match="DataFrame"):
        detect_drift([1, 2], cur)


def test_a_stored_profile_gives_the_same_report() -> None:
    ref, cur = _frames(3000, shift=0.2)
    profile = ReferenceProfile.from_dict(
        json.loads(json.dumps(profile_reference(ref, source="ds@1").to_dict()))
    )
    assert profile.source == "ds@1" and profile.n_rows == 3000
    direct, stored = detect_drift(ref, cur), detect_drift(profile, cur)
    assert direct.to_dict() == stored.to_dict()
    x = stored.columns["x"]
    assert x.statistic == pytest.approx(
        stats.wasserstein_distance(ref["x"], cur["x"]) / np.std(ref["x"])
    )
    dist = x.distribution
    assert len(dist["edges"]) == len(dist["reference"]) + 1 == 21
    assert sum(dist["current"]) == pytest.approx(1.0)
    assert stored.columns["city"].distribution["categories"][0] in {"a", "b", "c", "d"}


def test_a_quantile_profile_of_a_large_reference_stays_close_to_scipy() -> None:
    rng = np.random.default_rng(7)
    ref = pd.DataFrame({"x": rng.lognormal(0, 1, 300_000)})
    cur = pd.DataFrame({"x": rng.lognormal(0.05, 1, 50_000)})
    profile = profile_reference(ref)
    assert len(profile.columns["x"].points) == 10_000  # a grid, not the 300k values
    got = detect_drift(profile, cur, method="ks").columns["x"]
    ks = stats.ks_2samp(ref["x"], cur["x"])
    assert got.statistic == pytest.approx(ks.statistic, abs=2e-4)
    assert got.p_value == pytest.approx(ks.pvalue, rel=0.2, abs=1e-12)
    want_w = stats.wasserstein_distance(ref["x"], cur["x"]) / np.std(ref["x"])
    assert got.effect_size == pytest.approx(want_w, rel=0.02)


def test_integer_categories_match_json_floats() -> None:
    ref = pd.DataFrame({"k": np.tile([1, 2, 3], 100)})
    cur = pd.DataFrame({"k": np.tile([1.0, 2.0, 3.0], 100)})
    k = detect_drift(ref, cur).columns["k"]
    assert k.kind == "categorical" and k.statistic == pytest.approx(0.0) and not k.drifted
    with pytest.raises(InvalidInput, match="no column could be tested"):
        detect_drift(pd.DataFrame({"x": np.arange(50.0)}), pd.DataFrame({"x": ["a"] * 50}))


def test_a_column_without_enough_values_is_reported_not_fatal() -> None:
    """A feature that stops arriving (all null) or arrives as text is drift in its null share,
    and the other columns are still tested."""
    ref, _ = _frames(500)
    cur = _frames(500, seed=1)[1].assign(x=np.nan, y=["n/a"] * 490 + [1.0] * 10)
    report = detect_drift(ref, cur)
    x, y = report.columns["x"], report.columns["y"]
    assert x.drifted and x.null_drift and x.statistic is None and "0 usable current" in x.note
    assert y.null_share_current == pytest.approx(0.98) and y.drifted and y.note
    assert report.columns["city"].statistic is not None and not report.columns["city"].note
    assert json.dumps(report.to_dict(), allow_nan=False)  # HTTP-safe: no NaN anywhere
    inf = detect_drift(ref, cur.assign(x=np.where(np.arange(500) < 200, np.inf, 0.5)))
    assert inf.columns["x"].null_share_current == pytest.approx(0.4)  # infinities are missing


def test_mixed_integral_and_fractional_values_keep_their_categories() -> None:
    ref = pd.DataFrame({"k": np.tile([1, 2, 3], 40)})
    cur = pd.DataFrame({"k": np.r_[np.tile([1.0, 2.0, 3.0], 39), [2.5] * 3]})
    k = detect_drift(ref, cur).columns["k"]
    categories = set(k.distribution["categories"])
    assert {"1", "2", "3", "2.5"} == categories  # not "1.0", "2.0", "3.0"
    assert k.statistic < 10  # only the three 2.5s are new; 1/2/3 still match
