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

import duckdb
import numpy as np
import orjson
import pyarrow as pa
import pyarrow.compute as pc

from loopml.errors import InvalidInput
from loopml.features._definitions import FeatureView
from loopml.features._online import OnlineStore
from loopml.features._sources import connect, quote, source_sql, sql_literal

__all__ = [
    "NULL_CREATED",
    "FeatureStats",
    "MaterializeResult",
    "encode_keys",
    "key_order",
    "materialize_view",
]

BATCH_ROWS = 50_000
_TOP = 10
_STATE_TOP = 1000  # distinct values a checkpoint keeps per feature
NULL_CREATED = -(2**62)  # a row without a created time loses every tie


def encode_keys(columns: Sequence[list[Any]]) -> list[Any]:
    """Online keys: the value itself for one join key, a JSON list for several."""
    if len(columns) == 1:
        return columns[0]
    return [orjson.dumps(list(t)).decode() for t in zip(*columns, strict=True)]


@dataclass
class FeatureStats:
    """Running statistics of one feature's materialized values (mean and variance merged per
    batch with Chan's formula, so they stay exact for large values)."""

    count: int = 0
    nulls: int = 0
    mean: float = 0.0
    m2: float = 0.0
    min: Any = None
    max: Any = None
    top: Counter[Any] = field(default_factory=Counter)
    numeric: bool = True

    def add(self, column: pa.ChunkedArray | pa.Array) -> None:
        """Fold a batch's column in."""
        nulls = column.null_count
        self.nulls += nulls
        n = len(column) - nulls
        if n == 0:
            return
        kind = column.type
        if pa.types.is_floating(kind) or pa.types.is_integer(kind) or pa.types.is_boolean(kind):
            values = np.asarray(pc.drop_null(column).to_numpy(zero_copy_only=False), dtype=float)
            finite = values[np.isfinite(values)]
            mean = float(finite.mean()) if len(finite) else 0.0
            m2 = float(((finite - mean) ** 2).sum()) if len(finite) else 0.0
            k = len(finite)
            total = self.count + k
            if total:
                delta = mean - self.mean
                self.m2 += m2 + delta * delta * self.count * k / total
                self.mean += delta * k / total
            self.count = total
            self.nulls += n - k  # NaN and infinities count as missing
            if k:
                lo, hi = finite.min().item(), finite.max().item()
                if pa.types.is_integer(kind):
                    lo, hi = int(lo), int(hi)
                self.min = lo if self.min is None else min(self.min, lo)
                self.max = hi if self.max is None else max(self.max, hi)
        else:
            self.numeric = False
            self.count += n
            counts = pc.value_counts(pc.drop_null(column))
            for item in counts.to_pylist():
                value = item["values"]
                if isinstance(value, bytes):
                    value = value.hex()
                elif not isinstance(value, (str, int, float, bool)):
                    value = str(value)
                self.top[value] += item["counts"]

    def to_dict(self) -> dict[str, Any]:
        """The statistics as JSON-able data (mean and std for numbers, top values otherwise)."""
        out: dict[str, Any] = {"count": self.count, "nulls": self.nulls}
        if self.numeric:
            if self.count:
                std = (self.m2 / self.count) ** 0.5
                out.update(mean=self.mean, std=std, min=self.min, max=self.max)
        else:
            out["top"] = [[k, v] for k, v in self.top.most_common(_TOP)]
        return out

    def to_state(self) -> dict[str, Any]:
        """Everything needed to continue these statistics (kept in a checkpoint)."""
        return {
            "count": self.count,
            "nulls": self.nulls,
            "mean": self.mean,
            "m2": self.m2,
            "min": self.min,
            "max": self.max,
            "top": [[k, v] for k, v in self.top.most_common(_STATE_TOP)],
            "numeric": self.numeric,
        }

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> FeatureStats:
        """Statistics continued from ``to_state``."""
        top: Counter[Any] = Counter({k: v for k, v in state.get("top", [])})
        return cls(
            state["count"],
            state["nulls"],
            state["mean"],
            state["m2"],
            state["min"],
            state["max"],
            top,
            state["numeric"],
        )


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
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        raise InvalidInput(f"cannot resume after a key of type {type(value).__name__}")
    return sql_literal(value) if isinstance(value, str) else str(int(value))


def materialize_view(
    view: FeatureView,
    online: OnlineStore,
    table: str,
    start_us: int,
    end_us: int,
    *,
    pushed: Sequence[str] = (),
    resume_after: list[Any] | None = None,
    stats: dict[str, FeatureStats] | None = None,
    on_batch: Callable[[int, list[Any], dict[str, FeatureStats]], None] | None = None,
    memory_limit: str = "1GB",
) -> tuple[int, dict[str, FeatureStats]]:
    """Write the window's latest rows of ``view`` online; returns rows written and statistics.

    Rows without a join key value are skipped. ``on_batch(rows_so_far, last_key, stats)`` runs
    after each batch is written (the checkpoint hook); ``resume_after`` and ``stats`` continue
    an interrupted run.
    """
    source = view.source
    assert source is not None
    keys = key_order(view)
    key_types = view.join_key_types  # type: ignore[attr-defined]
    features = view.feature_names
    types = {f.name: f.type for f in view.features}
    created = source.created_timestamp_column
    ts = quote(source.timestamp_field)
    con = connect(memory_limit=memory_limit)
    stats = stats if stats is not None else {f: FeatureStats() for f in features}
    for f in features:
        stats.setdefault(f, FeatureStats())
    written = 0
    try:
        con.execute("SET TimeZone = 'UTC'")
        cols = [*keys, source.timestamp_field, *([created] if created else []), *features]
        rel = source_sql(con, source, columns=list(dict.fromkeys(cols)), pushed=pushed)
        created_us = (
            f"coalesce(epoch_us(CAST({quote(created)} AS TIMESTAMPTZ)), {NULL_CREATED})"
            if created
            else str(NULL_CREATED)
        )
        ts_us = f"epoch_us(CAST({ts} AS TIMESTAMPTZ))"
        values = []
        for f in features:
            cast = f"CAST({quote(f)} AS {types[f].duckdb})"
            if types[f].name == "UnixTimestamp":  # online as µs since the epoch
                cast = f"epoch_us({cast})"
            values.append(f"{quote('v_' + f)} := {cast}")
        packed = ", ".join([f"__t := {ts_us}", f"__c := {created_us}", *values])
        key_sel = ", ".join(
            f"CAST({quote(k)} AS {key_types[k].duckdb}) AS {quote(k)}" for k in keys
        )
        not_null = " AND ".join(f"{quote(k)} IS NOT NULL" for k in keys)
        inner = (
            f"SELECT {key_sel}, arg_max(struct_pack({packed}), struct_pack(t := {ts_us}, "
            f"c := {created_us})) AS __v FROM {rel} "
            f"WHERE {ts_us} >= {int(start_us)} AND {ts_us} <= {int(end_us)} AND {not_null} "
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
        try:
            reader = con.sql(sql).to_arrow_reader(BATCH_ROWS)
        except duckdb.Error as exc:
            raise _source_error(view, exc) from exc
        online.prepare(table, features)
        while True:
            try:
                batch = reader.read_next_batch()
            except StopIteration:
                break
            except duckdb.Error as exc:
                raise _source_error(view, exc) from exc
            if batch.num_rows == 0:
                continue
            key_cols = [batch.column(k).to_pylist() for k in keys]
            columns = [
                encode_keys(key_cols),
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
                on_batch(written, [c[-1] for c in key_cols], stats)
    finally:
        con.close()
    return written, stats


def key_order(view: FeatureView) -> list[str]:
    """The join keys in the order online keys encode them (sorted by name, so reordering a
    view's entities does not change its stored keys)."""
    return sorted(view._join_keys)  # type: ignore[attr-defined]


def _source_error(view: FeatureView, exc: BaseException) -> InvalidInput:
    first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
    return InvalidInput(f"cannot read the source of feature view {view.name!r}: {first}")
