"""Column drift between a reference and a current sample: two-sample tests with effect sizes.

Every column gets a test statistic, a p-value where the test has one, and an effect size; the
verdict rests on the p-value for small references (at most ``SMALL`` rows, where a p-value is
informative) and on the effect size for large ones (where any p-value test flags everything).
Categorical columns use the chi-square test of the 2 x k contingency table (both samples are
samples), never a goodness-of-fit test against reference counts taken as exact. The null share
of each column is compared too.

The reference side is a ``ReferenceProfile`` (built from a DataFrame on the fly, or stored and
reused), so a check sorts and counts only the current sample. Numeric statistics come from one
merged walk over the two empirical CDFs (KS distance and Wasserstein distance together); columns
are compared on two threads, since NumPy's sorts release the GIL.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from loopml.errors import InvalidInput
from loopml.monitoring._profile import (
    EXACT,
    ColumnProfile,
    ReferenceProfile,
    as_frame,
    bin_counts,
    category_strings,
    numeric_values,
    profile_column,
    profile_reference,
)

__all__ = [
    "METHODS",
    "ColumnDrift",
    "DriftReport",
    "ReferenceProfile",
    "compare_column",
    "detect_drift",
    "profile_reference",
]

SMALL = 1000  # references up to this many rows are judged by p-values
MIN_ROWS = 20  # fewer non-null current rows than this: no verdict, an error
METHODS = {
    "numeric": ("ks", "wasserstein", "psi", "jensenshannon"),
    "categorical": ("chisquare", "jensenshannon", "psi"),
}
_DEFAULT_THRESHOLDS = {
    "ks": 0.05,
    "chisquare": 0.05,
    "wasserstein": 0.1,
    "psi": 0.1,
    "jensenshannon": 0.1,
}
_P_VALUE_TESTS = ("ks", "chisquare")
_NULL_SHARE_THRESHOLD = 0.1  # absolute change in the share of nulls that counts as drift
_PLOT_CATEGORIES = 20


@dataclass
class ColumnDrift:
    """One column's test, statistic, p-value, effect size, threshold and verdict."""

    column: str
    kind: str
    test: str
    statistic: float | None  # None (with a note) when too few values allowed no test
    p_value: float | None
    effect_size: float | None
    effect_metric: str
    threshold: float
    drifted: bool
    n_reference: int
    n_current: int
    null_share_reference: float
    null_share_current: float
    null_drift: bool
    distribution: dict[str, list[Any]] = field(default_factory=dict, repr=False)
    note: str = ""  # why a column got no test (too few values), if it did not

    def to_dict(self) -> dict[str, Any]:
        """This result as JSON-able data."""
        return asdict(self)


@dataclass
class DriftReport:
    """Per-column results and the dataset-level verdict (share of drifted columns)."""

    columns: dict[str, ColumnDrift]
    drift_share: float
    prediction: ColumnDrift | None = None
    subject: dict[str, Any] = field(default_factory=dict)
    share_drifted: float = field(init=False)
    dataset_drift: bool = field(init=False)

    def __post_init__(self) -> None:
        n = len(self.columns)
        self.share_drifted = (len(self.drifted_columns) / n) if n else 0.0
        self.dataset_drift = n > 0 and self.share_drifted >= self.drift_share

    @property
    def drifted_columns(self) -> list[str]:
        """The names of the columns that drifted, in column order."""
        return [name for name, c in self.columns.items() if c.drifted]

    def to_dict(self) -> dict[str, Any]:
        """The report as JSON-able data."""
        return {
            "dataset_drift": self.dataset_drift,
            "drift_share": self.drift_share,
            "share_drifted": self.share_drifted,
            "drifted_columns": self.drifted_columns,
            "columns": {name: c.to_dict() for name, c in self.columns.items()},
            "prediction_drift": self.prediction.to_dict() if self.prediction else None,
            "subject": self.subject,
        }

    def save_html(self, path: str | os.PathLike[str], *, title: str = "Drift report") -> Path:
        """Write this report as a self-contained HTML file (no network needed to view it)."""
        from datetime import UTC, datetime

        from loopml.monitoring._report import save_html

        data = {
            "title": title,
            "generated_at": datetime.now(UTC).isoformat(timespec="seconds"),
            "drift": self.to_dict(),
            "prediction_drift": self.prediction.to_dict() if self.prediction else None,
            "subject": self.subject,
        }
        return save_html(data, path)


def _psi(p: np.ndarray, q: np.ndarray) -> float:
    eps = 1e-4
    p = np.where(p == 0, eps, p)
    q = np.where(q == 0, eps, q)
    return float(np.sum((q - p) * np.log(q / p)))


def _js(p: np.ndarray, q: np.ndarray) -> float:
    from scipy.spatial.distance import jensenshannon

    value = float(jensenshannon(p, q))
    return 0.0 if np.isnan(value) else value


def _ecdf_distances(ref: np.ndarray, cur: np.ndarray) -> tuple[float, float]:
    """(KS distance, Wasserstein-1 distance) of two sorted samples, from one merged walk.

    The (small) reference is inserted into the current sample by binary search, so no index
    array of the merged length is built; |n·F_cur − m·F_ref| is accumulated in one float array
    and scaled once.
    """
    n, m = len(ref), len(cur)
    at = np.searchsorted(cur, ref, side="left")  # reference values go before equal ones
    xs = np.insert(cur, at, ref)
    is_ref = np.zeros(len(xs), dtype=bool)
    is_ref[at + np.arange(n)] = True
    below_ref = np.cumsum(is_ref, dtype=np.int64 if n >= 2**31 else np.int32)
    del is_ref
    # (k·n − (n + m)·r) / (n + m) for k values so far, r of them from the reference; the
    # casts happen in the ufunc's buffers, so no temporary of the merged length is made
    diff = np.arange(1, len(xs) + 1, dtype=np.float64)
    diff *= n / (n + m)
    np.subtract(diff, below_ref, out=diff)
    del below_ref
    np.abs(diff, out=diff)
    gap = np.diff(xs)
    del xs
    diff = diff[:-1]
    step = gap > 0  # evaluate after the last of tied values
    scale = (n + m) / (n * m)
    ks = float(np.max(diff, where=step, initial=0.0)) * scale
    return ks, float(np.dot(diff, gap)) * scale


def _ks_p_value(d: float, n: int, m: int) -> float:
    en = n * m / (n + m)
    return float(np.clip(stats.kstwo.sf(d, round(en)), 0.0, 1.0))


def _numeric(
    prof: ColumnProfile, cur: np.ndarray, test: str
) -> tuple[float, float | None, float, str, dict[str, list[Any]]]:
    """(statistic, p-value, effect size, effect metric, plot data) of a numeric column."""
    assert prof.points is not None and prof.bin_counts is not None
    ref = prof.points
    if prof.n <= EXACT and len(cur) <= EXACT:
        ks = stats.ks_2samp(ref, cur)  # SciPy's exact p-value for small samples
        d, p_value = float(ks.statistic), float(ks.pvalue)
        _, w = _ecdf_distances(ref, cur)
    else:
        d, w = _ecdf_distances(ref, cur)
        p_value = _ks_p_value(d, prof.n, len(cur))
    wasserstein = w / max(prof.std, 1e-3)
    inner = prof.inner_edges
    rc = prof.bin_counts.astype(float)
    cc = bin_counts(cur, inner).astype(float)
    p, q = rc / max(rc.sum(), 1.0), cc / max(cc.sum(), 1.0)
    lo, hi = min(prof.lo, float(cur[0])), max(prof.hi, float(cur[-1]))
    plot = {
        "edges": [lo, *inner.tolist(), max(hi, float(inner[-1]))],
        "reference": p.tolist(),
        "current": q.tolist(),
    }
    if test == "ks":
        return d, p_value, wasserstein, "wasserstein", plot
    if test == "wasserstein":
        return wasserstein, p_value, wasserstein, "wasserstein", plot
    value = _psi(p, q) if test == "psi" else _js(p, q)
    return value, p_value, value, test, plot


def _categorical(
    prof: ColumnProfile, cur: pd.Series, test: str
) -> tuple[float, float | None, float, str, dict[str, list[Any]]]:
    """(statistic, p-value, effect size, effect metric, plot data) of a categorical column."""
    assert prof.categories is not None and prof.counts is not None
    r = pd.Series(prof.counts, index=prof.categories, dtype=float)
    c = category_strings(cur).value_counts(sort=False)
    cats = r.index.union(c.index)
    rc = r.reindex(cats, fill_value=0).to_numpy(float)
    cc = c.reindex(cats, fill_value=0).to_numpy(float)
    p, q = rc / rc.sum(), cc / cc.sum()
    js = _js(p, q)
    if len(cats) < 2:
        chi2, pvalue = 0.0, 1.0
    else:
        result = stats.chi2_contingency(np.vstack([rc, cc]), correction=False)
        chi2, pvalue = float(result.statistic), float(result.pvalue)
    top = np.argsort(-np.maximum(p, q), kind="stable")[:_PLOT_CATEGORIES]
    labels, ps, qs = [str(cats[i]) for i in top], p[top].tolist(), q[top].tolist()
    if len(cats) > _PLOT_CATEGORIES:
        labels.append("(other)")
        ps.append(float(1 - sum(ps)))
        qs.append(float(1 - sum(qs)))
    plot = {"categories": labels, "reference": ps, "current": qs}
    if test == "chisquare":
        return chi2, pvalue, js, "jensenshannon", plot
    value = js if test == "jensenshannon" else _psi(p, q)
    return value, pvalue, value, test, plot


def _threshold(thresholds: Mapping[str, Any], column: str, test: str) -> float:
    given = thresholds.get(column, thresholds.get(test))
    value = _DEFAULT_THRESHOLDS[test] if given is None else given
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value >= 0:
        raise InvalidInput(f"threshold for {column!r} must be a non-negative number")
    return float(value)


def _choose(prof: ColumnProfile, method: str | Mapping[str, str]) -> str:
    chosen = method.get(prof.name, "auto") if isinstance(method, Mapping) else method
    if chosen == "auto":
        small = prof.n <= SMALL
        if prof.kind == "numeric":
            return "ks" if small else "wasserstein"
        return "chisquare" if small else "jensenshannon"
    if chosen not in METHODS[prof.kind]:
        raise InvalidInput(
            f"method {chosen!r} does not apply to {prof.kind} column {prof.name!r}: "
            f"use one of {', '.join(METHODS[prof.kind])}"
        )
    return chosen


def compare_column(
    prof: ColumnProfile,
    current: pd.Series,
    *,
    method: str | Mapping[str, str] = "auto",
    thresholds: Mapping[str, Any] | None = None,
    min_rows: int = MIN_ROWS,
) -> ColumnDrift:
    """Compare one current column with its reference profile."""
    thresholds = thresholds or {}
    name = prof.name
    chosen = _choose(prof, method)
    threshold = _threshold(thresholds, name, chosen)
    null_limit = thresholds.get("null_share", _NULL_SHARE_THRESHOLD)
    if isinstance(null_limit, bool) or not isinstance(null_limit, (int, float)):
        raise InvalidInput("the null_share threshold must be a number")
    if prof.kind == "numeric":
        values = numeric_values(current)
        usable = len(values)
    else:
        usable = int(current.notna().sum())
    null_ref = prof.null_share
    null_cur = 1.0 - usable / len(current) if len(current) else 0.0
    null_drift = abs(null_cur - null_ref) >= null_limit
    result = ColumnDrift(
        column=name,
        kind=prof.kind,
        test=chosen,
        statistic=None,
        p_value=None,
        effect_size=None,
        effect_metric="",
        threshold=threshold,
        drifted=bool(null_drift),
        n_reference=int(prof.n),
        n_current=int(usable),
        null_share_reference=null_ref,
        null_share_current=null_cur,
        null_drift=bool(null_drift),
    )
    if prof.n < min_rows or usable < min_rows:
        side, count = ("reference", prof.n) if prof.n < min_rows else ("current", usable)
        result.note = (
            f"{count} usable {side} values; at least {min_rows} are needed for a test "
            "(only the null share was compared)"
        )
        return result
    if prof.kind == "numeric":
        statistic, p_value, effect, metric, plot = _numeric(prof, values, chosen)
    else:
        statistic, p_value, effect, metric, plot = _categorical(prof, current, chosen)
    if chosen in _P_VALUE_TESTS:
        assert p_value is not None
        drifted = p_value < threshold
    else:
        drifted = statistic >= threshold
    result.statistic, result.p_value = float(statistic), p_value
    result.effect_size, result.effect_metric = float(effect), metric
    result.drifted = bool(drifted or null_drift)
    result.distribution = plot
    return result


def detect_drift(
    reference: Any,
    current: Any,
    *,
    columns: Sequence[str] | None = None,
    method: str | Mapping[str, str] = "auto",
    thresholds: Mapping[str, float] | None = None,
    drift_share: float = 0.5,
    min_rows: int = MIN_ROWS,
) -> DriftReport:
    """Compare each column of ``current`` with ``reference``; see the module docstring.

    ``reference`` is a DataFrame, an Arrow table or a stored ``ReferenceProfile``.
    ``method`` is "auto" or a test name for every column, or a mapping column → test.
    ``thresholds`` maps a column or a test name to its threshold (p-value tests: drift when
    p < threshold; distances: drift when the distance ≥ threshold).
    """
    cur_df = as_frame(current, "current")
    if not isinstance(reference, ReferenceProfile):
        ref_df = as_frame(reference, "reference")
        names = list(columns) if columns is not None else [str(c) for c in ref_df.columns]
        missing = [c for c in names if c not in ref_df.columns or c not in cur_df.columns]
    else:
        names = list(columns) if columns is not None else list(reference.columns)
        missing = [c for c in names if c not in reference.columns or c not in cur_df.columns]
    if missing:
        raise InvalidInput(
            f"column {missing[0]!r} is not in both the reference and the current data"
        )
    if not names:
        raise InvalidInput("no columns to compare")
    if not 0 < drift_share <= 1:
        raise InvalidInput("drift_share must be in (0, 1]")
    if isinstance(min_rows, bool) or not isinstance(min_rows, int) or min_rows < 2:
        raise InvalidInput("min_rows must be an integer of at least 2")
    thresholds = dict(thresholds or {})

    def one(name: str) -> ColumnDrift:
        if isinstance(reference, ReferenceProfile):
            prof = reference.columns[name]
        else:
            prof = profile_column(ref_df[name], name)
        return compare_column(
            prof, cur_df[name], method=method, thresholds=thresholds, min_rows=min_rows
        )

    with ThreadPoolExecutor(max_workers=2) as pool:
        results = list(pool.map(one, names))
    if all(r.note for r in results):
        first = results[0]
        raise InvalidInput(f"no column could be tested: column {first.column!r} has {first.note}")
    return DriftReport({r.column: r for r in results}, float(drift_share))
