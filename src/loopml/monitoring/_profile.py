"""Reference profiles: what a drift check needs of the reference, computed once and stored.

A numeric column keeps its sorted values when it has at most ``EXACT`` of them, else ``GRID``
evenly spaced quantiles (the statistics computed against a grid differ from the exact ones by at
most 1/``GRID`` in KS distance), plus its standard deviation, range and counts in ``BINS``
reference-range bins. A categorical column keeps its category counts. Nulls are counted.
"""

from __future__ import annotations

import base64
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from loopml.errors import InvalidInput

__all__ = ["BINS", "EXACT", "GRID", "ColumnProfile", "ReferenceProfile", "profile_reference"]

EXACT = 10_000  # numeric columns with at most this many values are kept whole
GRID = 10_000  # larger ones are kept as this many quantiles
BINS = 20  # reference-range bins for PSI, Jensen–Shannon and the report's plots
MAX_CATEGORIES = 10_000
_FORMAT = 1


@dataclass
class ColumnProfile:
    """One reference column: kind, counts and either sorted values/quantiles or categories."""

    name: str
    kind: str  # "numeric" or "categorical"
    n: int  # usable values (finite numbers, non-null categories)
    n_rows: int
    n_null: int
    points: np.ndarray | None = None  # sorted values (n <= EXACT) or GRID quantiles
    std: float = 0.0
    lo: float = 0.0
    hi: float = 0.0
    bin_counts: np.ndarray | None = None
    categories: list[str] | None = None
    counts: np.ndarray | None = None

    @property
    def null_share(self) -> float:
        """The share of rows that are null."""
        return self.n_null / self.n_rows if self.n_rows else 0.0

    @property
    def inner_edges(self) -> np.ndarray:
        """The BINS - 1 inner edges of the reference-range bins (outer bins are open)."""
        lo, hi = (self.lo - 0.5, self.hi + 0.5) if self.lo == self.hi else (self.lo, self.hi)
        return np.linspace(lo, hi, BINS + 1)[1:-1]

    def to_dict(self) -> dict[str, Any]:
        """JSON-able form (arrays as base64 little-endian bytes)."""
        out: dict[str, Any] = {
            "name": self.name,
            "kind": self.kind,
            "n": self.n,
            "n_rows": self.n_rows,
            "n_null": self.n_null,
        }
        if self.kind == "numeric":
            assert self.points is not None and self.bin_counts is not None
            out.update(
                points=_pack(self.points.astype("<f8")),
                std=self.std,
                lo=self.lo,
                hi=self.hi,
                bin_counts=self.bin_counts.tolist(),
            )
        else:
            assert self.categories is not None and self.counts is not None
            out.update(categories=self.categories, counts=self.counts.tolist())
        return out

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ColumnProfile:
        """The inverse of ``to_dict``."""
        try:
            base = cls(d["name"], d["kind"], int(d["n"]), int(d["n_rows"]), int(d["n_null"]))
            if base.kind == "numeric":
                base.points = np.frombuffer(base64.b64decode(d["points"]), "<f8").astype(float)
                base.std, base.lo, base.hi = float(d["std"]), float(d["lo"]), float(d["hi"])
                base.bin_counts = np.asarray(d["bin_counts"], dtype=np.int64)
            elif base.kind == "categorical":
                base.categories = [str(c) for c in d["categories"]]
                base.counts = np.asarray(d["counts"], dtype=np.int64)
            else:
                raise ValueError(f"unknown kind {base.kind!r}")
        except (KeyError, TypeError, ValueError) as exc:
            raise InvalidInput(f"not a reference profile column: {exc}") from exc
        return base


@dataclass
class ReferenceProfile:
    """Per-column profiles of a reference sample, and where the sample came from."""

    columns: dict[str, ColumnProfile]
    n_rows: int
    source: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON-able form."""
        return {
            "format": _FORMAT,
            "n_rows": self.n_rows,
            "source": self.source,
            "columns": [c.to_dict() for c in self.columns.values()],
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ReferenceProfile:
        """The inverse of ``to_dict``."""
        if not isinstance(d, dict) or d.get("format") != _FORMAT:
            raise InvalidInput("not a loopml reference profile (unknown format)")
        columns = [ColumnProfile.from_dict(c) for c in d.get("columns", [])]
        return cls({c.name: c for c in columns}, int(d.get("n_rows", 0)), d.get("source"))


def _pack(values: np.ndarray) -> str:
    return base64.b64encode(values.tobytes()).decode("ascii")


def kind_of(series: pd.Series) -> str:
    """ "numeric" for floats and for integers with more than 10 distinct values, else
    "categorical" (strings, booleans, few-valued integers)."""
    if pd.api.types.is_bool_dtype(series) or not pd.api.types.is_numeric_dtype(series):
        return "categorical"
    if pd.api.types.is_integer_dtype(series) and series.nunique() <= 10:
        return "categorical"
    return "numeric"


def category_strings(series: pd.Series) -> pd.Series:
    """Non-null values as category labels; integral numbers print without a fraction, so that
    a 1 in the reference and a 1.0 decoded from JSON are the same category."""
    values = series.dropna()
    if pd.api.types.is_bool_dtype(values):
        return values.astype(str)
    if pd.api.types.is_numeric_dtype(values):
        as_float = values.astype(float)
        integral = (np.isfinite(as_float) & (as_float == np.round(as_float))).to_numpy()
        labels = values.astype(str).to_numpy(dtype=object)
        labels[integral] = as_float[integral].astype(np.int64).astype(str).to_numpy()
        return pd.Series(labels, index=values.index, dtype=object)
    if values.dtype == object:
        return values.map(_label)
    return values.astype(str)


def _label(value: Any) -> str:
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def numeric_values(series: pd.Series) -> np.ndarray:
    """The finite numbers of a column, sorted; nulls, infinities and values that are not
    numbers (text in a numeric column, as JSON may bring) are left out and count as missing."""
    values = pd.to_numeric(series, errors="coerce")
    array = np.asarray(values, dtype=float)
    array = array[np.isfinite(array)]
    array.sort()
    return array


def bin_counts(sorted_values: np.ndarray, inner: np.ndarray) -> np.ndarray:
    """Counts of sorted values in the bins (-inf, e1), [e1, e2), ..., [e_last, inf)."""
    below = np.searchsorted(sorted_values, inner, side="left")
    return np.diff(np.concatenate(([0], below, [len(sorted_values)]))).astype(np.int64)


def profile_column(series: pd.Series, name: str, kind: str | None = None) -> ColumnProfile:
    """Profile one reference column."""
    kind = kind or kind_of(series)
    n_rows = len(series)
    if kind == "numeric":
        values = numeric_values(series)
        n = len(values)
        prof = ColumnProfile(name, kind, n, n_rows, n_rows - n)
        if n == 0:
            prof.points, prof.bin_counts = values, np.zeros(BINS, dtype=np.int64)
            return prof
        prof.points = values if n <= EXACT else np.quantile(values, (np.arange(GRID) + 0.5) / GRID)
        prof.std = float(np.std(values))
        prof.lo, prof.hi = float(values[0]), float(values[-1])
        prof.bin_counts = bin_counts(values, prof.inner_edges)
        return prof
    labels = category_strings(series)
    counts = labels.value_counts(sort=False)
    if len(counts) > MAX_CATEGORIES:
        raise InvalidInput(
            f"column {name!r} has {len(counts)} categories, more than {MAX_CATEGORIES}; leave "
            "identifier-like columns out with columns="
        )
    counts = counts.sort_index()
    return ColumnProfile(
        name,
        "categorical",
        int(counts.sum()),
        n_rows,
        n_rows - len(labels),
        categories=[str(c) for c in counts.index],
        counts=counts.to_numpy(dtype=np.int64),
    )


def as_frame(data: Any, what: str) -> pd.DataFrame:
    """A DataFrame from a DataFrame or an Arrow table."""
    if isinstance(data, pd.DataFrame):
        return data
    if hasattr(data, "to_pandas"):
        return data.to_pandas()
    raise InvalidInput(f"{what} must be a pandas DataFrame or an Arrow table")


def profile_reference(
    data: Any, *, columns: Sequence[str] | None = None, source: str | None = None
) -> ReferenceProfile:
    """Profile every column (or ``columns``) of a reference DataFrame or Arrow table."""
    from concurrent.futures import ThreadPoolExecutor

    frame = as_frame(data, "reference")
    names = list(columns) if columns is not None else [str(c) for c in frame.columns]
    missing = [c for c in names if c not in frame.columns]
    if missing:
        raise InvalidInput(f"column {missing[0]!r} is not in the reference")
    with ThreadPoolExecutor(max_workers=2) as pool:  # NumPy's sorts release the GIL
        profiles = list(pool.map(lambda c: profile_column(frame[c], c), names))
    return ReferenceProfile({p.name: p for p in profiles}, len(frame), source)
