"""The data of ``features.py``: generating it, and checking every tool's results against it.

Runs in the interpreter of ``features.py`` (NumPy, pandas, pyarrow), as a worker process
(``_features_worker.py --tool data --mode generate|compare``), so that the driver stays small
and the peak memory of the processes it starts afterwards owes nothing to it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from _features_worker import FEATURES, KEY, TS, check_ids, utc

DAY = 86_400
ROW_GROUP = 100_000  # rows per Parquet row group of the feature file


def _write(path: Path, columns: dict[str, Any]) -> None:
    """Write NumPy columns (timestamps as int64 microseconds, UTC) to one Parquet file."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    arrays, names = [], []
    for name, values in columns.items():
        if name in (TS, "created"):
            arrays.append(pa.array(values, type=pa.int64()).cast(pa.timestamp("us", tz="UTC")))
        else:
            arrays.append(pa.array(values))
        names.append(name)
    pq.write_table(pa.Table.from_arrays(arrays, names=names), path, row_group_size=ROW_GROUP)


def generate(spec: dict[str, Any]) -> dict[str, Any]:
    """The feature file and the entity dataframes, from a fixed seed.

    Each entity has ``n_timestamps`` rows at random seconds of the ``span_seconds`` from ``t0``,
    its latest one in the last day (so that every entity's latest row is within the ttl when
    the online reads run, for a store that enforces the ttl on read). In pairs of consecutive
    rows (never overlapping), a fraction of the earlier rows is moved to the later row's event
    timestamp, with other values and a ``created`` 60 s apart: only ``created`` breaks that tie.
    The file is sorted by event timestamp, as an append-only log would be. Entity dataframes
    draw ids from 1% more ids than the data has (unknown entities) and timestamps from one day
    before the data to ``entity_df_after_seconds`` after it, with no repeated
    (entity_id, event_timestamp) pair."""
    import numpy as np

    rng = np.random.default_rng(spec["seed"])
    n, t, span = spec["n_entities"], spec["n_timestamps"], spec["span_seconds"]
    t0 = int(utc(spec["t0"]).timestamp())
    offsets = np.sort(rng.integers(0, span, size=(n, t)), axis=1)
    offsets[:, -1] = np.maximum(offsets[:, -1], rng.integers(span - DAY, span, size=n))
    created = offsets + rng.integers(120, 3600, size=(n, t))
    ties = np.zeros((n, t), dtype=bool)
    for j in range(1, t, 2):
        ties[:, j - 1] = rng.random(n) < spec["tie_fraction"]
        offsets[:, j - 1] = np.where(ties[:, j - 1], offsets[:, j], offsets[:, j - 1])
        shift = rng.choice(np.array([-60, 60]), size=n)
        created[:, j - 1] = np.where(ties[:, j - 1], created[:, j] + shift, created[:, j - 1])
    order = np.argsort(offsets.ravel(), kind="stable")
    ids = np.repeat(np.arange(n, dtype=np.int64), t)[order]
    columns: dict[str, Any] = {
        KEY: ids,
        TS: (t0 + offsets.ravel()[order]) * 1_000_000,
        "created": (t0 + created.ravel()[order]) * 1_000_000,
    }
    values = rng.standard_normal((n * t, len(FEATURES)))[order]
    for i, name in enumerate(FEATURES):
        columns[name] = np.ascontiguousarray(values[:, i])
    _write(Path(spec["data"]), columns)
    out: dict[str, Any] = {
        "rows": n * t,
        "tied_rows": int(ties.sum()),
        "data_bytes": Path(spec["data"]).stat().st_size,
        "entity_dfs": {},
    }
    for size, path in spec["entity_dfs"].items():
        m = int(size)
        cand = int(m * 1.05) + 100
        e_ids = rng.integers(0, n + max(1, n // 100), size=cand, dtype=np.int64)
        e_off = rng.integers(-DAY, span + spec["entity_df_after_seconds"], size=cand)
        _, first = np.unique(e_ids * (span + 3 * DAY) + (e_off + DAY), return_index=True)
        keep = np.sort(first)[:m]
        _write(Path(path), {KEY: e_ids[keep], TS: (t0 + e_off[keep]) * 1_000_000})
        out["entity_dfs"][size] = {"rows": len(keep), "unknown_ids": int((e_ids[keep] >= n).sum())}
    return out


def _normalized(path: Path) -> Any:
    """A result file with the event timestamp as int64 UTC microseconds, sorted by the key."""
    import pandas as pd

    df = pd.read_parquet(path)
    ts = pd.to_datetime(df[TS], utc=True).dt.as_unit("us").dt.tz_localize(None)
    df[TS] = ts.astype("int64")
    df[KEY] = df[KEY].astype("int64")
    return df.sort_values([KEY, TS], kind="stable").reset_index(drop=True)


def reference(spec: dict[str, Any], size: str) -> Any:
    """The expected point-in-time join, by pandas ``merge_asof`` (independent of the floor's
    DuckDB query), with a ``category`` per row: ok, ok_tie (the row used has the same event
    timestamp as another row of its entity: ``created`` decides), expired (the latest row is
    older than the ttl), none_before (no row at or before the timestamp) or unknown (an id not
    in the data)."""
    import numpy as np
    import pandas as pd

    data = pd.read_parquet(spec["data"])
    for col in (TS, "created"):
        data[col] = data[col].dt.as_unit("us").dt.tz_localize(None).astype("int64")
    # among rows with equal event timestamps merge_asof takes the last: the largest created
    data = data.sort_values([TS, "created"], kind="stable")
    data["feature_ts"] = data[TS]
    data["tie"] = data.duplicated([KEY, TS], keep=False)
    left = _normalized(Path(spec["entity_dfs"][size])).sort_values(TS, kind="stable")
    out = pd.merge_asof(left, data.drop(columns="created"), on=TS, by=KEY, direction="backward")
    expired = (out[TS] - out["feature_ts"]) > spec["ttl_seconds"] * 1_000_000
    out.loc[expired, FEATURES] = np.nan
    known = out[KEY] < spec["n_entities"]
    tie = out["tie"].fillna(False).astype(bool)
    out["category"] = np.select(
        [~known, out["feature_ts"].isna(), expired, tie],
        ["unknown", "none_before", "expired", "ok_tie"],
        "ok",
    )
    return out.sort_values([KEY, TS], kind="stable").reset_index(drop=True)


def compare(ref: Any, other: Any) -> dict[str, Any]:
    """How ``other`` differs from ``ref``: missing and extra rows (missing ones counted by the
    reference's category) and rows whose feature values differ (NaN equals NaN)."""
    import numpy as np

    merged = ref.merge(
        other[[KEY, TS, *FEATURES]], on=[KEY, TS], how="outer", suffixes=("", "_o"), indicator=True
    )
    both = merged[merged["_merge"] == "both"]
    a = both[FEATURES].to_numpy(dtype=np.float64)
    b = both[[f"{f}_o" for f in FEATURES]].to_numpy(dtype=np.float64)
    same = np.isclose(a, b, rtol=1e-6, atol=0.0, equal_nan=True)
    bad_rows = ~same.all(axis=1)
    missing = merged[merged["_merge"] == "left_only"]
    return {
        "rows": len(other),
        "duplicate_keys": int(other.duplicated([KEY, TS]).sum()),
        "missing_rows": len(missing),
        "missing_by_category": {
            str(k): int(v) for k, v in missing["category"].value_counts().items()
        },
        "extra_rows": int((merged["_merge"] == "right_only").sum()),
        "compared_rows": len(both),
        "value_mismatch_rows": int(bad_rows.sum()),
        "value_mismatch_by_category": {
            str(k): int(v) for k, v in both[bad_rows]["category"].value_counts().items()
        },
        "nan_vs_value": int((np.isnan(a) != np.isnan(b)).any(axis=1).sum()),
        "agrees": len(missing) == 0 and not bad_rows.any() and len(other) == len(ref),
    }


def online_expected(spec: dict[str, Any]) -> dict[str, list[float | None]]:
    """What an online read of ``check_ids`` must return after materializing [start, end]: the
    latest row per entity in that window (the larger ``created`` among equal timestamps)."""
    import pandas as pd

    ids = check_ids(spec)
    data = pd.read_parquet(spec["data"], filters=[(KEY, "in", ids)])
    window = data[TS].between(utc(spec["start"]), utc(spec["end"]))
    last = data[window].sort_values([TS, "created"]).groupby(KEY).tail(1).set_index(KEY)
    return {f: [float(last.at[i, f]) if i in last.index else None for i in ids] for f in FEATURES}


def check_results(spec: dict[str, Any]) -> dict[str, Any]:
    """Compare each tool's historical result with the reference join, per entity-df size, and
    give the expected online values."""
    out: dict[str, Any] = {"online_expected": online_expected(spec), "historical": {}}
    results = Path(spec["results_dir"])
    for size in spec["entity_dfs"]:
        ref = reference(spec, size)
        entry: dict[str, Any] = {
            "reference_rows": len(ref),
            "categories": {str(k): int(v) for k, v in ref["category"].value_counts().items()},
        }
        for tool in ("floor", "loopml", "feast"):
            path = results / f"{tool}-{size}.parquet"
            if path.exists():
                entry[tool] = compare(ref, _normalized(path))
        out["historical"][size] = entry
    return out


def run_data(mode: str, spec: dict[str, Any]) -> dict[str, Any]:
    """``generate`` the data or ``compare`` the historical results."""
    if mode == "generate":
        return generate(spec)
    if mode == "compare":
        return check_results(spec)
    raise SystemExit(f"unknown data mode {mode!r}")
