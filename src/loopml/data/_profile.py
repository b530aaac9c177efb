"""Profiles: JSON statistics of a dataset version's table, and an approximate diff of two profiles.

A profile is computed once, when a version is logged, by a few DuckDB statements over all columns
at once (batched for wide tables); ``compare_profiles`` then diffs two versions from their stored
profiles without reading the data again. See ``docs/data-profiles.md`` for the shape and the
approximations.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import duckdb
import numpy as np
import pandas as pd
import pyarrow as pa

from loopml.data._source import tabular_format
from loopml.errors import InvalidInput

__all__ = [
    "NULL_SHARE_THRESHOLD",
    "PROFILE_FORMAT",
    "PSI_EPSILON",
    "QUANTILE_LEVELS",
    "TOP_VALUES",
    "compare_profiles",
    "profile_files",
    "profile_table",
    "tabular_format",
]

PROFILE_FORMAT = 1
QUANTILE_LEVELS: tuple[float, ...] = tuple(i / 20 for i in range(21))
TOP_VALUES = 50
PSI_EPSILON = 1e-4  # share given to an empty bin so that ln(pb / pa) stays finite
NULL_SHARE_THRESHOLD = 0.1

# Columns per statement: one SELECT with ~10 aggregates for each of 500 columns binds slowly, so
# wide tables take one scan per batch instead.
_BATCH_COLUMNS = 100
_FORMATS = ("parquet", "csv")
_MAGIC = {b"\x1f\x8b": "gzip", b"\x28\xb5\x2f\xfd": "zstd"}
_QUANTILES_SQL = "[" + ", ".join(repr(q) for q in QUANTILE_LEVELS) + "]"


@dataclass(frozen=True)
class _Column:
    """One column: its profile name and type, and ``sql``, the positional name DuckDB sees."""

    name: str
    type: str
    nullable: bool
    kind: str  # numeric | categorical | temporal | other
    sub: str  # int | float | decimal | bool | text | "" (how the SQL treats it)
    sql: str


def profile_table(data: pa.Table | pd.DataFrame) -> dict[str, Any]:
    """Profile in-memory data (an Arrow table, or a DataFrame without its index).

    Raises:
        InvalidInput: ``data`` is not a table, has duplicate column names, or has a column type
            DuckDB cannot read.
    """
    table = _as_table(data)
    names = table.column_names
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise InvalidInput(
            f"cannot profile a table with duplicate column names {dupes}; rename them"
        )
    columns = [_column(i, f) for i, f in enumerate(table.schema)]
    # DuckDB cannot scan half floats; their float32 cast keeps every value.
    scanned = table.rename_columns([c.sql for c in columns])
    for i, field in enumerate(table.schema):
        if pa.types.is_float16(field.type):
            scanned = scanned.set_column(i, columns[i].sql, scanned.column(i).cast(pa.float32()))
    if not columns:  # DuckDB cannot scan a table without columns
        return _profile(None, [], num_rows=table.num_rows)
    conn = _connect()
    try:
        try:
            conn.register("src", scanned)
        except duckdb.Error as exc:
            raise InvalidInput(_unreadable(table, exc)) from exc
        return _profile(conn, columns)
    finally:
        conn.close()


def profile_files(paths: Sequence[str], fmt: str) -> dict[str, Any]:
    """Profile local Parquet or CSV files read together by DuckDB as one table (by column name).

    Args:
        paths: local file paths (a single path is also accepted); names need no suffix. CSV
            files may be gzip- or zstd-compressed (detected from their first bytes).
        fmt: "parquet" or "csv" (see ``tabular_format``).

    Raises:
        InvalidInput: unknown ``fmt``, no paths, a path that is not a file, or files DuckDB cannot
            read as ``fmt``.
    """
    if fmt not in _FORMATS:
        raise InvalidInput(f"unknown profile format {fmt!r}; use one of {list(_FORMATS)}")
    if isinstance(paths, str | os.PathLike):
        paths = [paths]
    try:
        files = [os.path.abspath(os.fspath(p)) for p in paths]
    except TypeError as exc:
        raise InvalidInput(f"paths must be a list of file paths: {exc}") from exc
    if not files:
        raise InvalidInput("no files to profile; pass at least one path")
    for path in files:
        if not os.path.isfile(path):
            raise InvalidInput(f"cannot profile {path}: no such file")
    source = _source_sql(files, fmt)
    conn = _connect()
    try:
        try:
            if source is None:  # only zero-byte CSV files: no header, no rows
                return _profile(None, [], num_rows=0)
            schema = conn.sql(f"SELECT * FROM {source} LIMIT 0").to_arrow_table().schema
            columns = [_column(i, f) for i, f in enumerate(schema)]
            if not columns:
                num_rows = conn.execute(f"SELECT count(*) FROM {source}").fetchall()[0][0]
                return _profile(None, [], num_rows=int(num_rows))
            aliases = ", ".join(c.sql for c in columns)
            conn.execute(f"CREATE TEMP VIEW src AS SELECT * FROM {source} AS s({aliases})")
            return _profile(conn, columns)
        except duckdb.Error as exc:
            where = files[0] if len(files) == 1 else f"{len(files)} files from {files[0]}"
            raise InvalidInput(f"cannot read {where} as {fmt}: {exc}".strip()) from exc
    finally:
        conn.close()


def compare_profiles(
    a: dict[str, Any],
    b: dict[str, Any],
    *,
    psi_threshold: float = 0.2,
    null_share_threshold: float = NULL_SHARE_THRESHOLD,
) -> dict[str, Any]:
    """Diff two profiles, ``a`` the reference (older) version: rows, schema, approximate drift.

    A column shared with the same kind drifts when its PSI exceeds ``psi_threshold`` or its null
    share moves by more than ``null_share_threshold``. PSI comes from the stored sketches only
    (quantiles, top values), so it is an approximation; see ``docs/data-profiles.md``.

    Raises:
        InvalidInput: a profile is malformed or of another format, or a threshold is not positive.
    """
    thresholds = (("psi_threshold", psi_threshold), ("null_share_threshold", null_share_threshold))
    for label, value in thresholds:
        if not (isinstance(value, int | float) and math.isfinite(value) and value > 0):
            raise InvalidInput(f"{label} must be a positive number, got {value!r}")
    _check_profile(a, "a")
    _check_profile(b, "b")
    types_a = {f["name"]: f["type"] for f in a["schema"]}
    types_b = {f["name"]: f["type"] for f in b["schema"]}
    columns: dict[str, dict[str, Any]] = {}
    for name in types_a:
        if name not in types_b:
            continue
        sa, sb = a["columns"][name], b["columns"][name]
        if sa["kind"] != sb["kind"]:
            continue
        columns[name] = _compare_column(sa, sb, psi_threshold, null_share_threshold)
    drifted = [name for name, c in columns.items() if c["drifted"]]
    return {
        "rows": {"a": a["num_rows"], "b": b["num_rows"], "delta": b["num_rows"] - a["num_rows"]},
        "schema": {
            "added": [n for n in types_b if n not in types_a],
            "removed": [n for n in types_a if n not in types_b],
            "type_changed": [
                {"name": n, "a": t, "b": types_b[n]}
                for n, t in types_a.items()
                if n in types_b and types_b[n] != t
            ],
        },
        "columns": columns,
        "drifted_columns": drifted,
        "drift_share": len(drifted) / len(columns) if columns else 0.0,
        "psi_threshold": float(psi_threshold),
        "null_share_threshold": float(null_share_threshold),
        "approximate": True,
    }


# -- profiling --------------------------------------------------------------------------------
def _connect() -> duckdb.DuckDBPyConnection:
    """A private in-memory DuckDB per call, so concurrent calls share nothing."""
    conn = duckdb.connect()
    conn.execute("SET TimeZone = 'UTC'")  # TIMESTAMPTZ min/max come back in UTC
    return conn


def _as_table(data: object) -> pa.Table:
    if isinstance(data, pa.Table):
        return data
    if isinstance(data, pd.DataFrame):
        try:
            return pa.Table.from_pandas(data, preserve_index=False)
        except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError) as exc:
            raise InvalidInput(
                f"cannot convert the DataFrame to Arrow for profiling: {exc}; "
                "give each object column a single type"
            ) from exc
    raise InvalidInput(
        f"cannot profile a {type(data).__name__}; pass a pyarrow.Table or a pandas.DataFrame"
    )


def _unreadable(table: pa.Table, exc: Exception) -> str:
    """Name the first column DuckDB cannot scan, to say what to cast."""
    for field in table.schema:
        probe = duckdb.connect()
        try:
            probe.register("probe", pa.table({"c": pa.array([], field.type)}))
        except duckdb.Error:
            return (
                f"cannot profile column {field.name!r} of type {field.type}: DuckDB cannot read "
                "it; cast it to a supported type first"
            )
        finally:
            probe.close()
    return f"cannot profile the table: {exc}"


def _type_name(t: pa.DataType) -> str:
    """Arrow type string of the logical type: encodings (large, view) are not types."""
    if pa.types.is_large_string(t) or pa.types.is_string_view(t):
        return "string"
    if pa.types.is_large_binary(t) or pa.types.is_binary_view(t):
        return "binary"
    return str(t)


def _column(index: int, field: pa.Field) -> _Column:
    # Dictionary and run-end encodings are not types: DuckDB decodes them, so does the profile.
    t = field.type
    if pa.types.is_dictionary(t) or pa.types.is_run_end_encoded(t):
        t = t.value_type
    kind, sub = "other", ""
    if pa.types.is_integer(t):
        kind, sub = "numeric", "int"
    elif pa.types.is_floating(t):
        kind, sub = "numeric", "float"
    elif pa.types.is_decimal(t):
        kind, sub = "numeric", "decimal"
    elif pa.types.is_boolean(t):
        kind, sub = "categorical", "bool"
    elif pa.types.is_string(t) or pa.types.is_large_string(t) or pa.types.is_string_view(t):
        kind, sub = "categorical", "text"
    elif pa.types.is_date(t) or pa.types.is_timestamp(t) or pa.types.is_time(t):
        kind = "temporal"
    return _Column(field.name, _type_name(t), field.nullable, kind, sub, f"c{index}")


def _source_sql(files: list[str], fmt: str) -> str | None:
    """The FROM clause reading ``files``: globbing off, one read per CSV compression."""
    if fmt == "parquet":
        return f"read_parquet({_paths_sql(files)}, union_by_name=true, hive_partitioning=false)"
    groups: dict[str, list[str]] = {}
    for path in files:
        with open(path, "rb") as fh:
            head = fh.read(4)
        if head:  # a zero-byte CSV has neither header nor rows
            groups.setdefault(_MAGIC.get(head[:2]) or _MAGIC.get(head, "none"), []).append(path)
    if not groups:
        return None
    reads = [
        f"SELECT * FROM read_csv({_paths_sql(group)}, union_by_name=true, "
        f"hive_partitioning=false, compression='{compression}')"
        for compression, group in groups.items()
    ]
    return "(" + " UNION ALL BY NAME ".join(reads) + ")"


def _paths_sql(files: list[str]) -> str:
    # DuckDB globs every path; a one-character class makes *, ? and [ match only themselves.
    def literal(path: str) -> str:
        escaped = "".join(f"[{ch}]" if ch in "*?[" else ch for ch in path)
        return "'" + escaped.replace("'", "''") + "'"

    return "[" + ", ".join(literal(p) for p in files) + "]"


def _stat_exprs(c: _Column) -> list[str]:
    """The aggregates for one column, in the order ``_column_stats`` reads them."""
    q = c.sql
    if c.kind == "numeric":
        if c.sub == "float":
            x = f"(CASE WHEN isfinite({q}) THEN {q}::DOUBLE END)"
            return [
                f"count({q}) - coalesce(count_if(isnan({q})), 0)",
                f"coalesce(count_if(isnan({q})), 0)",
                f"coalesce(count_if(isinf({q})), 0)",
                f"min({x})",
                f"max({x})",
                f"avg({x})",
                f"stddev_samp({x})",
                f"approx_quantile({x}, {_QUANTILES_SQL})",
                f"approx_count_distinct(CASE WHEN NOT isnan({q}) THEN {q} END)",
            ]
        x = f"{q}::DOUBLE"
        bound = q if c.sub == "int" else x  # integers keep exact min/max
        return [
            f"count({q})",
            "0",
            "0",
            f"min({bound})",
            f"max({bound})",
            f"avg({x})",
            f"stddev_samp({x})",
            f"approx_quantile({x}, {_QUANTILES_SQL})",
            f"approx_count_distinct({q})",
        ]
    if c.kind == "temporal":
        return [f"count({q})", f"min({q})", f"max({q})"]
    return [f"count({q})"]


def _profile(
    conn: duckdb.DuckDBPyConnection | None, columns: list[_Column], num_rows: int = 0
) -> dict[str, Any]:
    """Profile the view ``src`` on ``conn``; without columns there is nothing to scan."""
    stats: dict[str, dict[str, Any]] = {}
    batches = [columns[i : i + _BATCH_COLUMNS] for i in range(0, len(columns), _BATCH_COLUMNS)]
    raw: dict[str, list[Any]] = {}
    for batch in batches:
        assert conn is not None
        per_column = [_stat_exprs(c) for c in batch]
        exprs = ", ".join(["count(*)"] + [e for column in per_column for e in column])
        row = list(conn.execute(f"SELECT {exprs} FROM src").fetchall()[0])
        num_rows = int(row[0])
        pos = 1
        for c, column in zip(batch, per_column, strict=True):
            raw[c.name] = row[pos : pos + len(column)]
            pos += len(column)
    categorical = [c for c in columns if c.kind == "categorical"]
    tops = _top_values(conn, categorical) if conn is not None else {}
    for c in columns:
        stats[c.name] = _column_stats(c, raw[c.name], num_rows, tops.get(c.sql))
    return {
        "format": PROFILE_FORMAT,
        "num_rows": num_rows,
        "schema": [{"name": c.name, "type": c.type, "nullable": c.nullable} for c in columns],
        "columns": stats,
    }


def _top_values(
    conn: duckdb.DuckDBPyConnection, columns: list[_Column]
) -> dict[str, tuple[list[list[Any]], int]]:
    """Exact top values and distinct counts of every categorical column, one scan per batch."""
    out: dict[str, tuple[list[list[Any]], int]] = {}
    for start in range(0, len(columns), _BATCH_COLUMNS):
        batch = columns[start : start + _BATCH_COLUMNS]
        keys = ", ".join(str(i) for i in range(len(batch)))
        values = ", ".join(f"{c.sql}::VARCHAR" for c in batch)
        sql = f"""
            SELECT k, v, n, d FROM (
                SELECT k, v, n, count(*) OVER (PARTITION BY k) AS d,
                       row_number() OVER (PARTITION BY k ORDER BY n DESC, v) AS r
                FROM (
                    SELECT k, v, count(*) AS n
                    FROM (SELECT unnest([{keys}]) AS k, unnest([{values}]) AS v FROM src)
                    WHERE v IS NOT NULL
                    GROUP BY k, v
                )
            )
            WHERE r <= {TOP_VALUES}
            ORDER BY k, r
        """
        found: dict[int, list[list[Any]]] = {k: [] for k in range(len(batch))}
        distinct = dict.fromkeys(range(len(batch)), 0)
        for k, v, n, d in conn.execute(sql).fetchall():
            value: Any = v == "true" if batch[k].sub == "bool" else v
            found[k].append([value, int(n)])
            distinct[k] = int(d)
        for k, c in enumerate(batch):
            out[c.sql] = (found[k], distinct[k])
    return out


def _finite(x: Any) -> float | None:
    if x is None:
        return None
    x = float(x)
    return x if math.isfinite(x) else None


def _iso(x: Any) -> str | None:
    # DuckDB hands out-of-range dates (year 10000, BC) back as strings already.
    return None if x is None else x if isinstance(x, str) else x.isoformat()


def _column_stats(
    c: _Column, raw: list[Any], num_rows: int, top: tuple[list[list[Any]], int] | None
) -> dict[str, Any]:
    count = int(raw[0])
    nulls = num_rows - count
    head = {
        "kind": c.kind,
        "count": count,
        "nulls": nulls,
        "null_share": nulls / num_rows if num_rows else 0.0,
    }
    if c.kind == "numeric":
        _, nan, inf, lo, hi, mean, std, quantiles, distinct = raw
        if c.sub == "int" and lo is not None:
            lo, hi = int(lo), int(hi)
        else:
            lo, hi = _finite(lo), _finite(hi)
        qs = None
        if quantiles is not None and lo is not None:
            # t-digest's ends are estimates; the exact min and max are known.
            arr = np.asarray([float(q) for q in quantiles], dtype=float)
            arr[0], arr[-1] = float(lo), float(hi)
            arr = np.clip(np.maximum.accumulate(arr), float(lo), float(hi))
            qs = [float(q) for q in arr]
        return {
            **head,
            "nan": int(nan),
            "infinite": int(inf),
            "min": lo,
            "max": hi,
            "mean": _finite(mean),
            "std": _finite(std),
            "quantiles": qs,
            "distinct": int(distinct or 0),
        }
    if c.kind == "categorical":
        values, distinct = top or ([], 0)
        return {
            **head,
            "distinct": distinct,
            "top": values,
            "other": count - sum(n for _, n in values),
        }
    if c.kind == "temporal":
        return {**head, "min": _iso(raw[1]), "max": _iso(raw[2])}
    return head


# -- comparing --------------------------------------------------------------------------------
def _check_profile(p: object, label: str) -> None:
    if not isinstance(p, dict):
        raise InvalidInput(f"profile {label} is a {type(p).__name__}, not a profile dict")
    if p.get("format") != PROFILE_FORMAT:
        raise InvalidInput(
            f"profile {label} has format {p.get('format')!r}; this loopml reads format "
            f"{PROFILE_FORMAT}, so profile that version again"
        )
    if not {"num_rows", "schema", "columns"} <= p.keys():
        raise InvalidInput(f"profile {label} lacks num_rows, schema or columns")


def _compare_column(
    sa: dict[str, Any], sb: dict[str, Any], psi_threshold: float, null_threshold: float
) -> dict[str, Any]:
    kind = sa["kind"]
    psi: float | None = None
    mean_shift: float | None = None
    method = "null_share"
    if kind == "numeric":
        method = "psi_quantile_sketch"
        if sa.get("quantiles") and sb.get("quantiles"):
            psi = _numeric_psi(sa["quantiles"], sb["quantiles"])
        std_a = sa.get("std")
        if sa.get("mean") is not None and sb.get("mean") is not None and std_a:
            mean_shift = (sb["mean"] - sa["mean"]) / std_a
    elif kind == "categorical":
        method = "psi_top_values"
        psi = _categorical_psi(sa, sb)
    null_delta = sb["null_share"] - sa["null_share"]
    drifted = (psi is not None and psi > psi_threshold) or abs(null_delta) > null_threshold
    return {
        "kind": kind,
        "null_share_a": sa["null_share"],
        "null_share_b": sb["null_share"],
        "psi": psi,
        "mean_shift": mean_shift,
        "drifted": bool(drifted),
        "method": method,
    }


def _psi(pa_: np.ndarray, pb: np.ndarray) -> float:
    pa_ = np.maximum(pa_, PSI_EPSILON)
    pb = np.maximum(pb, PSI_EPSILON)
    return float(np.sum((pb - pa_) * np.log(pb / pa_)))


def _cdf(q: np.ndarray, x: np.ndarray, *, side: str) -> np.ndarray:
    """P(X <= x) (side="right") or P(X < x) (side="left"), linear between the sketch's points."""
    p = np.asarray(QUANTILE_LEVELS)
    j = np.searchsorted(q, x, side=side)  # type: ignore[call-overload]
    out = np.where(j == 0, 0.0, 1.0)
    mid = (j > 0) & (j < len(q))
    i = j[mid] - 1
    k = j[mid]
    # Between two distinct sketch points; a run of equal points is a point mass (a CDF jump).
    width = q[k] - q[i]
    out[mid] = p[i] + (p[k] - p[i]) * (x[mid] - q[i]) / width
    return out


def _numeric_psi(qa: list[float], qb: list[float]) -> float:
    """PSI over a's decile bins, b's bin shares read off b's piecewise-linear quantile CDF."""
    a = np.maximum.accumulate(np.asarray(qa, dtype=float))
    b = np.maximum.accumulate(np.asarray(qb, dtype=float))
    edges = np.unique(a[::2])  # a's deciles; equal deciles merge into one edge

    # Fine bins: below the first edge, then for each edge the point itself and the open
    # interval up to the next edge, then above the last edge.
    def fine(q: np.ndarray) -> np.ndarray:
        cuts = np.column_stack([_cdf(q, edges, side="left"), _cdf(q, edges, side="right")])
        return np.clip(np.diff(np.concatenate([[0.0], cuts.ravel(), [1.0]])), 0.0, 1.0)

    fine_a, fine_b = fine(a), fine(b)
    if len(edges) > 1:
        # A bin a leaves empty joins its neighbour: outside a's range, b's interpolated tails
        # would put false mass there. A constant a keeps "below", "at" and "above" apart.
        group = np.maximum(np.cumsum(fine_a > 0) - 1, 0)
        fine_a, fine_b = np.bincount(group, fine_a), np.bincount(group, fine_b)
    return _psi(fine_a, fine_b)


def _categorical_psi(sa: dict[str, Any], sb: dict[str, Any]) -> float | None:
    """PSI over values whose count is known on both sides, plus one bucket for all the rest."""
    if not sa["count"] or not sb["count"]:
        return None
    top_a = {_key(v): n for v, n in sa.get("top") or []}
    top_b = {_key(v): n for v, n in sb.get("top") or []}
    full_a, full_b = not sa.get("other"), not sb.get("other")  # the top list holds every value
    known = [v for v in {**top_a, **top_b} if (v in top_a or full_a) and (v in top_b or full_b)]
    ca = np.asarray([top_a.get(v, 0) for v in known] + [0], dtype=float)
    cb = np.asarray([top_b.get(v, 0) for v in known] + [0], dtype=float)
    ca[-1] = sa["count"] - ca[:-1].sum()
    cb[-1] = sb["count"] - cb[:-1].sum()
    return _psi(ca / sa["count"], cb / sb["count"])


def _key(value: Any) -> tuple[str, Any]:
    # True == 1 in a dict; the type keeps a bool column apart from one that became text.
    return (type(value).__name__, value)
