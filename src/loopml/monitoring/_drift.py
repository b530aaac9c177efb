"""Column drift between a reference and a current sample: two-sample tests with effect sizes.

Every column gets a test statistic, a p-value where the test has one, and an effect size; the
verdict rests on the p-value for small references (at most ``SMALL`` rows, where a p-value is
informative) and on the effect size for large ones (where any p-value test flags everything).
Categorical columns use the chi-square test of the 2 x k contingency table (both samples are
samples), never a goodness-of-fit test against reference counts taken as exact. The null share
of each column is compared too.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from loopml.errors import InvalidInput

__all__ = ["ColumnDrift", "DriftReport", "METHODS", "detect_drift"]

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
_BINS = 20


@dataclass
class ColumnDrift:
    """One column's test, statistic, p-value, effect size, threshold and verdict."""

    column: str
    kind: str
    test: str
    statistic: float
    p_value: float | None
    effect_size: float
    effect_metric: str
    threshold: float
    drifted: bool
    n_reference: int
    n_current: int
    null_share_reference: float
    null_share_current: float
    null_drift: bool

    def to_dict(self) -> dict[str, Any]:
        """This result as JSON-able data."""
        return asdict(self)


@dataclass
class DriftReport:
    """Per-column results and the dataset-level verdict (share of drifted columns)."""

    columns: dict[str, ColumnDrift]
    drift_share: float
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
        }


def _kind(ref: pd.Series, cur: pd.Series) -> str:
    if pd.api.types.is_bool_dtype(ref) or not pd.api.types.is_numeric_dtype(ref):
        return "categorical"
    if pd.api.types.is_integer_dtype(ref) and pd.concat([ref, cur]).nunique() <= 10:
        return "categorical"
    return "numeric"


def _shares(ref: np.ndarray, cur: np.ndarray, edges: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    r = np.histogram(ref, edges)[0].astype(float)
    c = np.histogram(cur, edges)[0].astype(float)
    return r / max(r.sum(), 1.0), c / max(c.sum(), 1.0)


def _psi(p: np.ndarray, q: np.ndarray) -> float:
    eps = 1e-4
    p = np.where(p == 0, eps, p)
    q = np.where(q == 0, eps, q)
    return float(np.sum((q - p) * np.log(q / p)))


def _js(p: np.ndarray, q: np.ndarray) -> float:
    from scipy.spatial.distance import jensenshannon

    value = float(jensenshannon(p, q))
    return 0.0 if np.isnan(value) else value


def _numeric(
    ref: np.ndarray, cur: np.ndarray, test: str
) -> tuple[float, float | None, float, str]:
    """(statistic, p-value, effect size, effect metric) of a numeric column."""
    ks = stats.ks_2samp(ref, cur)
    scale = max(float(np.std(ref)), 1e-3)
    wasserstein = float(stats.wasserstein_distance(ref, cur)) / scale
    if test == "ks":
        return float(ks.statistic), float(ks.pvalue), wasserstein, "wasserstein"
    if test == "wasserstein":
        return wasserstein, float(ks.pvalue), wasserstein, "wasserstein"
    lo, hi = float(np.min(ref)), float(np.max(ref))
    if lo == hi:
        lo, hi = lo - 0.5, hi + 0.5
    inner = np.linspace(lo, hi, _BINS + 1)[1:-1]  # reference-range bins, open at both ends
    edges = np.concatenate(([-np.inf], inner, [np.inf]))
    p, q = _shares(ref, cur, edges)
    value = _psi(p, q) if test == "psi" else _js(p, q)
    return value, float(ks.pvalue), value, test


def _categorical(
    ref: pd.Series, cur: pd.Series, test: str
) -> tuple[float, float | None, float, str]:
    """(statistic, p-value, effect size, effect metric) of a categorical column."""
    r = ref.astype(str).value_counts()
    c = cur.astype(str).value_counts()
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
    if test == "chisquare":
        return chi2, pvalue, js, "jensenshannon"
    value = js if test == "jensenshannon" else _psi(p, q)
    return value, pvalue, value, test


def _threshold(thresholds: Mapping[str, Any], column: str, test: str) -> float:
    given = thresholds.get(column, thresholds.get(test))
    value = _DEFAULT_THRESHOLDS[test] if given is None else given
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value >= 0:
        raise InvalidInput(f"threshold for {column!r} must be a non-negative number")
    return float(value)


def _frame(data: Any, what: str) -> pd.DataFrame:
    if isinstance(data, pd.DataFrame):
        return data
    if hasattr(data, "to_pandas"):
        return data.to_pandas()
    raise InvalidInput(f"{what} must be a pandas DataFrame or an Arrow table")


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

    ``method`` is "auto" or a test name for every column, or a mapping column → test.
    ``thresholds`` maps a column or a test name to its threshold (p-value tests: drift when
    p < threshold; distances: drift when the distance ≥ threshold).
    """
    ref_df, cur_df = _frame(reference, "reference"), _frame(current, "current")
    names = list(columns) if columns is not None else [c for c in ref_df.columns]
    missing = [c for c in names if c not in ref_df.columns or c not in cur_df.columns]
    if missing:
        raise InvalidInput(
            f"column {missing[0]!r} is not in both the reference and the current data"
        )
    if not names:
        raise InvalidInput("no columns to compare")
    if not 0 < drift_share <= 1:
        raise InvalidInput("drift_share must be in (0, 1]")
    thresholds = dict(thresholds or {})
    results: dict[str, ColumnDrift] = {}
    for name in names:
        ref_all, cur_all = ref_df[name], cur_df[name]
        ref, cur = ref_all.dropna(), cur_all.dropna()
        if len(cur) < min_rows:
            raise InvalidInput(
                f"column {name!r} has {len(cur)} non-null current values; at least {min_rows} "
                "are needed for a verdict"
            )
        if len(ref) < min_rows:
            raise InvalidInput(f"column {name!r} has {len(ref)} non-null reference values")
        kind = _kind(ref, cur)
        chosen = method.get(name, "auto") if isinstance(method, Mapping) else method
        if chosen == "auto":
            small = len(ref) <= SMALL
            chosen = (
                ("ks" if small else "wasserstein")
                if kind == "numeric"
                else ("chisquare" if small else "jensenshannon")
            )
        if chosen not in METHODS[kind]:
            raise InvalidInput(
                f"method {chosen!r} does not apply to {kind} column {name!r}: "
                f"use one of {', '.join(METHODS[kind])}"
            )
        if kind == "numeric":
            ref_values = ref.to_numpy(float)
            cur_values = cur.to_numpy(float)
            finite_r, finite_c = np.isfinite(ref_values), np.isfinite(cur_values)
            statistic, p_value, effect, metric = _numeric(
                ref_values[finite_r], cur_values[finite_c], chosen
            )
        else:
            statistic, p_value, effect, metric = _categorical(ref, cur, chosen)
        threshold = _threshold(thresholds, name, chosen)
        if chosen in _P_VALUE_TESTS:
            assert p_value is not None
            drifted = p_value < threshold
        else:
            drifted = statistic >= threshold
        null_ref = float(ref_all.isna().mean()) if len(ref_all) else 0.0
        null_cur = float(cur_all.isna().mean()) if len(cur_all) else 0.0
        null_drift = abs(null_cur - null_ref) >= thresholds.get(
            "null_share", _NULL_SHARE_THRESHOLD
        )
        results[name] = ColumnDrift(
            column=name,
            kind=kind,
            test=chosen,
            statistic=float(statistic),
            p_value=p_value,
            effect_size=float(effect),
            effect_metric=metric,
            threshold=threshold,
            drifted=bool(drifted or null_drift),
            n_reference=int(len(ref)),
            n_current=int(len(cur)),
            null_share_reference=null_ref,
            null_share_current=null_cur,
            null_drift=bool(null_drift),
        )
    return DriftReport(results, float(drift_share))
