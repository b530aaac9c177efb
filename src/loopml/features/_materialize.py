"""Moving the latest row per entity of a time window from a view's source to the online store.

DuckDB reduces the window to one row per entity (the largest (event, created) timestamps) and
streams the result, ordered by entity key, in batches; each batch is written (newer wins),
folded into the feature statistics, and checkpointed, so memory stays bounded by a batch plus
DuckDB's aggregation state, and an interrupted run resumes after the last written key.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson
import pyarrow as pa
import pyarrow.compute as pc

from loopml.features._definitions import FeatureView
from loopml.features._online import OnlineStore
from loopml.features._sources import connect, quote, source_sql, sql_literal

__all__ = ["FeatureStats", "MaterializeResult", "encode_keys", "materialize_view"]

BATCH_ROWS = 50_000
_TOP = 10


def encode_keys(columns: Sequence[list[Any]]) -> list[Any]:
    """Online keys: the value itself for one join key, a JSON list for several."""
    if len(columns) == 1:
        return columns[0]
    return [orjson.dumps(list(t)).decode() for t in zip(*columns, strict=True)]


@dataclass
class FeatureStats:
    """Running statistics of one feature's materialized values."""

    count: int = 0
    nulls: int = 0
    total: float = 0.0
    total_sq: float = 0.0
    min: Any = None
    max: Any = None
    top: Counter[Any] = field(default_factory=Counter)
    numeric: bool = True

    def add(self, column: pa.ChunkedArray | pa.Array) -> None:
        """Fold a batch's column in."""
        nulls = column.null_count
        self.nulls += nulls
        self.count += len(column) - nulls
        if len(column) == nulls:
            return
        kind = column.type
        if pa.types.is_floating(kind) or pa.types.is_integer(kind):
            as_float = pc.cast(column, pa.float64())
            self.total += pc.sum(as_float).as_py() or 0.0
            self.total_sq += pc.sum(pc.multiply(as_float, as_float)).as_py() or 0.0
            mm = pc.min_max(column)
            lo, hi = mm["min"].as_py(), mm["max"].as_py()
            self.min = lo if self.min is None else min(self.min, lo)
            self.max = hi if self.max is None else max(self.max, hi)
        else:
            self.numeric = False
            counts = pc.value_counts(pc.drop_null(column))
            for item in counts.to_pylist():
                value = item["values"]
                if isinstance(value, bytes):
                    value = value.hex()
                self.top[value] += item["counts"]

    def to_dict(self) -> dict[str, Any]:
        """The statistics as JSON-able data (mean and std for numbers, top values otherwise)."""
        out: dict[str, Any] = {"count": self.count, "nulls": self.nulls}
        if self.numeric:
            if self.count:
                mean = self.total / self.count
                var = max(self.total_sq / self.count - mean * mean, 0.0)
                out.update(mean=mean, std=var**0.5, min=self.min, max=self.max)
        else:
            out["top"] = [[k, v] for k, v in self.top.most_common(_TOP)]
        return out


@dataclass
class MaterializeResult:
    """What one view's materialization did."""

    view: str
    start_us: int
    end_us: int
    rows: int
    resumed_from: Any = None
    stats: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """This result as JSON-able data."""
        return {
            "view": self.view,
            "start_us": self.start_us,
            "end_us": self.end_us,
            "rows": self.rows,
            "resumed_from": self.resumed_from,
            "stats": self.stats,
        }


def _literal(value: Any) -> str:
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise TypeError(f"cannot resume after a key of type {type(value).__name__}")
    return sql_literal(value) if isinstance(value, str) else repr(value)


def materialize_view(
    view: FeatureView,
    online: OnlineStore,
    table: str,
    start_us: int,
    end_us: int,
    *,
    pushed: Sequence[str] = (),
    resume_after: list[Any] | None = None,
    on_batch: Callable[[int, list[Any]], None] | None = None,
    memory_limit: str = "1GB",
) -> tuple[int, dict[str, FeatureStats]]:
    """Write the window's latest rows of ``view`` online; returns rows written and statistics.

    ``on_batch(rows_so_far, last_key)`` runs after each batch is written (the checkpoint hook).
    """
    source = view.source
    assert source is not None
    keys: list[str] = view._join_keys  # type: ignore[attr-defined]
    key_types = view.join_key_types  # type: ignore[attr-defined]
    features = view.feature_names
    types = {f.name: f.type for f in view.features}
    created = source.created_timestamp_column
    ts = quote(source.timestamp_field)
    con = connect(memory_limit=memory_limit)
    stats = {f: FeatureStats() for f in features}
    written = 0
    try:
        con.execute("SET TimeZone = 'UTC'")
        cols = [*keys, source.timestamp_field, *([created] if created else []), *features]
        rel = source_sql(con, source, columns=list(dict.fromkeys(cols)), pushed=pushed)
        created_us = (
            f"coalesce(epoch_us(CAST({quote(created)} AS TIMESTAMPTZ)), 0)" if created else "0"
        )
        ts_us = f"epoch_us(CAST({ts} AS TIMESTAMPTZ))"
        packed = ", ".join(
            [f"__t := {ts_us}", f"__c := {created_us}"]
            + [f"{quote('v_' + f)} := CAST({quote(f)} AS {types[f].duckdb})" for f in features]
        )
        key_sel = ", ".join(
            f"CAST({quote(k)} AS {key_types[k].duckdb}) AS {quote(k)}" for k in keys
        )
        inner = (
            f"SELECT {key_sel}, arg_max(struct_pack({packed}), struct_pack(t := {ts_us}, "
            f"c := {created_us})) AS __v FROM {rel} "
            f"WHERE {ts_us} >= {int(start_us)} AND {ts_us} <= {int(end_us)} "
            f"GROUP BY ALL"
        )
        key_list = ", ".join(quote(k) for k in keys)
        where = ""
        if resume_after:
            lits = ", ".join(_literal(v) for v in resume_after)
            where = (
                f"WHERE ({key_list}) > ({lits})" if len(keys) > 1 else f"WHERE {key_list} > {lits}"
            )
        sql = f"SELECT {key_list}, unnest(__v) FROM ({inner}) {where} ORDER BY {key_list}"
        reader = con.sql(sql).to_arrow_reader(BATCH_ROWS)
        online.prepare(table, features)
        for batch in reader:
            if batch.num_rows == 0:
                continue
            key_cols = [batch.column(k).to_pylist() for k in keys]
            encoded = encode_keys(key_cols)
            columns = [
                encoded,
                batch.column("__t").to_pylist(),
                batch.column("__c").to_pylist(),
            ]
            for f in features:
                col = batch.column("v_" + f)
                stats[f].add(col)
                columns.append(col.to_pylist())
            online.write(table, features, list(zip(*columns, strict=True)))
            written += batch.num_rows
            if on_batch is not None:
                on_batch(written, [c[-1] for c in key_cols])
    finally:
        con.close()
    return written, stats
