"""The drift benchmark's data: 20 numeric and 5 categorical columns, 7 of them shifted.

Reference and current samples are drawn from a fixed seed per size. An unshifted column is drawn
from the same distribution in both; a shifted one is drawn from a distribution whose effect size
is clearly above the 0.1 that Evidently and loopml use on large samples (Wasserstein distance /
reference std, Jensen-Shannon distance of the category shares):

- numeric: a mean shift of 0.3 std (Wasserstein / std = 0.30), or a change of scale by 1.5x or
  0.6x (0.40 for a normal, 0.40 for an exponential);
- categorical: 10 points of share moved between categories (Jensen-Shannon distance 0.126 and
  0.144).

Imported by ``drift.py`` (the column lists), and by ``_drift_worker.py`` in every tool's
interpreter (NumPy and pyarrow only, no pandas).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

SEED = 20261208
NULL_SHARE = 0.01  # of the rows of the columns in WITH_NULLS, NaN in reference and current

Draw = Callable[[np.random.Generator, int], np.ndarray]


def _normal(mean: float, std: float) -> Draw:
    return lambda rng, n: rng.normal(mean, std, n)


def _lognormal(mu: float, sigma: float, shift: float = 0.0) -> Draw:
    return lambda rng, n: rng.lognormal(mu, sigma, n) + shift


def _poisson(lam: float) -> Draw:
    return lambda rng, n: rng.poisson(lam, n).astype(np.int64)


def _lognormal_std(mu: float, sigma: float) -> float:
    return float(np.sqrt((np.exp(sigma**2) - 1) * np.exp(2 * mu + sigma**2)))


# name -> (reference distribution, current distribution, what changed or None)
NUMERIC: dict[str, tuple[Draw, Draw, str | None]] = {
    "num_00": (_normal(0, 1), _normal(0.3, 1), "mean +0.3 std"),
    "num_01": (_normal(10, 3), _normal(10, 3), None),
    "num_02": (_normal(-5, 0.5), _normal(-5, 0.5), None),
    "num_03": (_lognormal(0, 0.5), _lognormal(0, 0.5), None),
    "num_04": (
        _lognormal(1, 0.3),
        _lognormal(1, 0.3, shift=0.3 * _lognormal_std(1, 0.3)),
        "mean +0.3 std",
    ),
    "num_05": (lambda r, n: r.uniform(0, 1, n), lambda r, n: r.uniform(0, 1, n), None),
    "num_06": (lambda r, n: r.uniform(-100, 100, n), lambda r, n: r.uniform(-100, 100, n), None),
    "num_07": (lambda r, n: r.exponential(2, n), lambda r, n: r.exponential(2, n), None),
    "num_08": (_normal(5, 2), _normal(5, 3), "std x1.5"),
    "num_09": (lambda r, n: r.gamma(2, 3, n), lambda r, n: r.gamma(2, 3, n), None),
    "num_10": (_poisson(50), _poisson(50), None),
    "num_11": (_poisson(200), _poisson(200), None),
    "num_12": (_poisson(50), _poisson(50 + 0.3 * np.sqrt(50)), "mean +0.3 std"),
    "num_13": (_normal(1000, 100), _normal(1000, 100), None),
    "num_14": (lambda r, n: r.beta(2, 5, n), lambda r, n: r.beta(2, 5, n), None),
    "num_15": (lambda r, n: r.standard_t(10, n), lambda r, n: r.standard_t(10, n), None),
    "num_16": (lambda r, n: r.exponential(2, n), lambda r, n: r.exponential(1.2, n), "scale x0.6"),
    "num_17": (
        lambda r, n: np.where(r.random(n) < 0.3, r.normal(-2, 0.5, n), r.normal(2, 1, n)),
        lambda r, n: np.where(r.random(n) < 0.3, r.normal(-2, 0.5, n), r.normal(2, 1, n)),
        None,
    ),
    "num_18": (
        lambda r, n: np.round(r.normal(0, 1, n), 2),
        lambda r, n: np.round(r.normal(0, 1, n), 2),
        None,
    ),
    "num_19": (_lognormal(3, 0.8), _lognormal(3, 0.8), None),
}
WITH_NULLS = ("num_13", "num_19")


def _zipf(k: int) -> list[float]:
    w = 1 / np.arange(1, k + 1)
    return (w / w.sum()).tolist()


def _moved(shares: list[float], moves: dict[int, float]) -> list[float]:
    out = list(shares)
    for i, d in moves.items():
        out[i] += d
    return out


_UNIFORM12 = [1 / 12] * 12
# name -> (category shares in reference, in current, what changed or None)
CATEGORICAL: dict[str, tuple[list[float], list[float], str | None]] = {
    "cat_0": ([0.5, 0.3, 0.2], [0.5, 0.3, 0.2], None),
    "cat_1": ([0.5, 0.3, 0.15, 0.05], [0.4, 0.3, 0.15, 0.15], "10 points from 'v00' to 'v03'"),
    "cat_2": (_zipf(8), _zipf(8), None),
    "cat_3": (
        _UNIFORM12,
        _moved(_UNIFORM12, {0: -0.05, 1: -0.05, 11: 0.1}),
        "5 points from each of 'v00', 'v01' to 'v11'",
    ),
    "cat_4": (_zipf(40), _zipf(40), None),
}

NUMERIC_COLUMNS = list(NUMERIC)
CATEGORICAL_COLUMNS = list(CATEGORICAL)
COLUMNS = NUMERIC_COLUMNS + CATEGORICAL_COLUMNS
SHIFTED = sorted(
    [c for c, (_, _, what) in NUMERIC.items() if what]
    + [c for c, (_, _, what) in CATEGORICAL.items() if what]
)


def describe() -> dict[str, Any]:
    """What the data is, for the ``--json`` output and for ``--reuse`` to compare."""
    return {
        "seed": SEED,
        "numeric": NUMERIC_COLUMNS,
        "categorical": CATEGORICAL_COLUMNS,
        "shifted": {c: NUMERIC.get(c, CATEGORICAL.get(c))[2] for c in SHIFTED},  # type: ignore[index]
        "with_nulls": list(WITH_NULLS),
        "null_share": NULL_SHARE,
        "category_shares": {
            c: {"reference": r, "current": s} for c, (r, s, _) in CATEGORICAL.items()
        },
    }


def _table(rows: int, which: int) -> Any:
    """One sample (``which`` 0: reference, 1: current) of ``rows`` rows as an Arrow table."""
    import pyarrow as pa

    arrays: dict[str, Any] = {}
    for i, (name, dists) in enumerate(NUMERIC.items()):
        # one stream per (size, sample, column): a column's data does not depend on the others
        rng = np.random.default_rng([SEED, rows, which, i])
        values = dists[which](rng, rows)
        mask = None
        if name in WITH_NULLS:
            mask = rng.random(rows) < NULL_SHARE
        arrays[name] = pa.array(values, mask=mask)
    for i, (name, dists) in enumerate(CATEGORICAL.items()):
        rng = np.random.default_rng([SEED, rows, which, 100 + i])
        shares = np.asarray(dists[which])
        codes = rng.choice(len(shares), size=rows, p=shares / shares.sum())
        labels = pa.array([f"v{j:02d}" for j in range(len(shares))])
        arrays[name] = pa.DictionaryArray.from_arrays(pa.array(codes, pa.int32()), labels).cast(
            pa.string()
        )
    return pa.table(arrays)


def generate(directory: Path, rows: int) -> dict[str, str]:
    """Write ``reference_<rows>.parquet`` and ``current_<rows>.parquet``; return their paths."""
    import pyarrow.parquet as pq

    out = {}
    for which, label in enumerate(("reference", "current")):
        path = directory / f"{label}_{rows}.parquet"
        pq.write_table(_table(rows, which), path, row_group_size=1_000_000)
        out[label] = str(path)
    return out
