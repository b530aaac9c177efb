"""Point-in-time correct training sets: one DuckDB ASOF join per feature view over its source.

For each entity row, a view contributes the latest source row of the same join keys whose
event timestamp is at or before the row's timestamp (ties broken by the larger created
timestamp), and only if it is at most ``ttl`` old; otherwise nulls. Every entity row is kept,
in the order given, with its other columns passed through. The join streams over the Parquet
or CSV files; no source is loaded into pandas.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from loopml.errors import InvalidInput
from loopml.features._definitions import FeatureView
from loopml.features._odfv import input_names, run_odfv
from loopml.features._refs import Resolved
from loopml.features._registry import Catalog
from loopml.features._sources import connect, quote, source_sql

__all__ = ["RetrievalJob", "TrainingSet", "entity_table", "unique_columns"]

ROW = "__loopml_row"
ETS = "__loopml_ets"


def unique_columns(names: Sequence[Any], what: str) -> None:
    """``InvalidInput`` if a column name appears twice (no join could tell them apart)."""
    twice = sorted(str(n) for n, k in Counter(names).items() if k > 1)
    if twice:
        raise InvalidInput(f"{what} has more than one column named {twice[0]!r}")


def entity_table(entity_df: Any, what: str = "entity_df") -> pa.Table:
    """Rows as an Arrow table (a DataFrame, an Arrow table or a Parquet path); errors name
    ``what``."""
    if isinstance(entity_df, pa.Table):
        unique_columns(entity_df.column_names, what)
        return entity_df
    if isinstance(entity_df, pd.DataFrame):
        unique_columns(list(entity_df.columns), what)
        try:
            return pa.Table.from_pandas(entity_df, preserve_index=False)
        except (pa.ArrowInvalid, pa.ArrowTypeError) as exc:
            raise InvalidInput(f"{what} cannot be read: {exc}") from exc
    if isinstance(entity_df, (str, Path)):
        import pyarrow.parquet as pq

        try:
            return pq.read_table(str(entity_df))
        except (OSError, pa.ArrowInvalid) as exc:
            raise InvalidInput(
                f"{what} {str(entity_df)!r} is not a readable Parquet file"
            ) from exc
    raise InvalidInput(f"{what} must be a pandas DataFrame, an Arrow table or a Parquet path")


def _timestamp_column(table: pa.Table) -> str:
    if "event_timestamp" in table.column_names:
        return "event_timestamp"
    stamps = [
        f.name for f in table.schema if pa.types.is_timestamp(f.type) or pa.types.is_date(f.type)
    ]
    if len(stamps) == 1:
        return stamps[0]
    raise InvalidInput(
        "entity_df needs an 'event_timestamp' column (or exactly one timestamp column)"
    )


class TrainingSet:
    """What every training set offers once its Arrow table is known: ``to_df()``,
    ``to_parquet(path)``, ``to_dataset(name)``; ``feature_views`` names the view versions it
    reads and ``feature_service`` the service it was asked for, if any."""

    feature_views: list[str]
    feature_service: str | None = None

    def to_arrow(self) -> pa.Table:
        """The training set as an Arrow table."""
        raise NotImplementedError

    def to_df(self) -> pd.DataFrame:
        """The training set as a pandas DataFrame (entity rows in the order given)."""
        return self.to_arrow().to_pandas()

    def to_parquet(self, path: str | Path) -> Path:
        """Write the training set to one Parquet file and return its path."""
        import pyarrow.parquet as pq

        out = Path(path)
        out.parent.mkdir(parents=True, exist_ok=True)
        pq.write_table(self.to_arrow(), str(out))
        return out

    def to_dataset(self, name: str, **kwargs: Any) -> Any:
        """Save the training set as a dataset version (``loopml.data.log_dataset``), tagged with
        the feature view versions it used (``loopml.feature_views``), linked to the active run."""
        import loopml.data as ld

        tags: dict[str, str] = dict(kwargs.pop("tags", None) or {})
        tags["loopml.feature_views"] = ",".join(self.feature_views)
        if self.feature_service:
            tags["loopml.feature_service"] = self.feature_service
        return ld.log_dataset(self.to_arrow(), name, tags=tags, **kwargs)


class RetrievalJob(TrainingSet):
    """A training set to be computed: ``to_df()``, ``to_arrow()``, ``to_parquet(path)``,
    ``to_dataset(name)``; ``feature_views`` names the view versions it reads."""

    def __init__(
        self,
        catalog: Catalog,
        resolved: Resolved,
        entity_df: Any,
        *,
        full_feature_names: bool,
        pushed: Callable[[str], list[str]],
    ) -> None:
        self._catalog = catalog
        self._resolved = resolved
        self._table = entity_table(entity_df)
        self._full = full_feature_names
        self._pushed = pushed
        self._names = resolved.names(full_feature_names)
        self.feature_views = catalog.version_refs(resolved.all_views)
        self.feature_service = resolved.service or None
        self._check_inputs()

    # -- building the query ---------------------------------------------------------------------
    def _check_inputs(self) -> None:
        table = self._table
        self._ts = _timestamp_column(table)
        ts_type = table.schema.field(self._ts).type
        if not (pa.types.is_timestamp(ts_type) or pa.types.is_date(ts_type)):
            raise InvalidInput(f"entity_df column {self._ts!r} must hold timestamps")
        cols = set(table.column_names)
        for view_name in self._resolved.views:
            view = self._catalog.view(view_name)
            missing = [k for k in view._join_keys if k not in cols]  # type: ignore[attr-defined]
            if missing:
                raise InvalidInput(
                    f"entity_df lacks join key {missing[0]!r} of feature view {view_name!r}"
                )
        missing = [r for r in self._resolved.request_fields if r not in cols]
        if missing:
            raise InvalidInput(
                f"entity_df lacks request field {missing[0]!r} of an on-demand feature view"
            )
        clash = [n for n in [*self._names, ROW, ETS] if n in cols]
        if clash:
            raise InvalidInput(f"entity_df already has a column named {clash[0]!r}")
        for view_name in self._resolved.views:
            view = self._catalog.view(view_name)
            for k, vt in view.join_key_types.items():  # type: ignore[attr-defined]
                column = table.column(k)
                if vt.name.startswith("Int") and pa.types.is_floating(column.type):
                    whole = pc.equal(column, pc.floor(column))
                    if pc.all(pc.fill_null(whole, True)).as_py() is False:
                        raise InvalidInput(
                            f"entity_df join key {k!r} has fractional values; "
                            f"feature view {view_name!r} keys are {vt.name}"
                        )

    def _view_select(self, con: Any, view: FeatureView, features: Sequence[str]) -> str:
        source = view.source
        assert source is not None
        keys: list[str] = view._join_keys  # type: ignore[attr-defined]
        types = {f.name: f.type for f in view.features}
        created = source.created_timestamp_column
        cols = [*keys, source.timestamp_field, *([created] if created else []), *features]
        rel = source_sql(
            con, source, columns=list(dict.fromkeys(cols)), pushed=self._pushed(view.name)
        )
        parts = [
            f"CAST({quote(k)} AS {view.join_key_types[k].duckdb}) AS {quote(k)}"  # type: ignore[attr-defined]
            for k in keys
        ]
        parts.append(f"CAST({quote(source.timestamp_field)} AS TIMESTAMPTZ) AS __ts")
        if created:
            ts_col = f"CAST({quote(source.timestamp_field)} AS TIMESTAMPTZ)"
            created_col = (
                f"coalesce(CAST({quote(created)} AS TIMESTAMPTZ), '-infinity'::TIMESTAMPTZ)"
            )
            parts.append(f"struct_pack(t := {ts_col}, c := {created_col}) AS __k")
        parts += [
            f"CAST({quote(f)} AS {types[f].duckdb}) AS {quote('__f_' + f)}" for f in features
        ]
        return f"SELECT {', '.join(parts)} FROM {rel}"

    def _sql(self, con: Any) -> tuple[str, list[str]]:
        """The whole query, and the internal feature columns it adds (per view, in order)."""
        ctes = [
            f"__e AS (SELECT *, CAST({quote(self._ts)} AS TIMESTAMPTZ) AS {ETS} FROM __entity_in)"
        ]
        prev = "__e"
        added: list[str] = []
        for i, (view_name, features) in enumerate(self._resolved.views.items()):
            view = self._catalog.view(view_name)
            keys: list[str] = view._join_keys  # type: ignore[attr-defined]
            key_types = view.join_key_types  # type: ignore[attr-defined]
            ctes.append(f"__f{i} AS ({self._view_select(con, view, features)})")
            on = [f"CAST(l.{quote(k)} AS {key_types[k].duckdb}) = r.{quote(k)}" for k in keys]
            if view.source and view.source.created_timestamp_column:
                on.append(f"struct_pack(t := l.{ETS}, c := 'infinity'::TIMESTAMPTZ) >= r.__k")
            else:
                on.append(f"l.{ETS} >= r.__ts")
            ttl = view.ttl_seconds
            cols = []
            for f in features:
                internal = f"__v{i}_{f}"
                added.append(internal)
                value = f"r.{quote('__f_' + f)}"
                if ttl is not None:
                    micros = int(round(ttl * 1_000_000))
                    value = (
                        f"CASE WHEN r.__ts >= l.{ETS} - to_microseconds({micros}) THEN {value} END"
                    )
                cols.append(f"{value} AS {quote(internal)}")
            ctes.append(
                f"__j{i} AS (SELECT l.*, {', '.join(cols)} FROM {prev} l "
                f"ASOF LEFT JOIN __f{i} r ON {' AND '.join(on)})"
            )
            prev = f"__j{i}"
        sql = f"WITH {', '.join(ctes)} SELECT * EXCLUDE ({ETS}) FROM {prev} ORDER BY {ROW}"
        return sql, added

    # -- running -----------------------------------------------------------------------------
    def _run(self) -> pa.Table:
        table = self._table.append_column(ROW, pa.array(np.arange(self._table.num_rows)))
        con = connect()
        try:
            con.execute("SET TimeZone = 'UTC'")
            con.register("__entity_in", table)
            sql, _ = self._sql(con)
            try:
                result = con.sql(sql).to_arrow_table()
            except duckdb.ConversionException as exc:
                raise InvalidInput(
                    f"entity_df join keys do not match the views' key types: {exc}"
                ) from exc
            except duckdb.Error as exc:
                first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
                raise InvalidInput(f"cannot read a feature source: {first}") from exc
        finally:
            con.close()
        return self._finish(result)

    def _finish(self, result: pa.Table) -> pa.Table:
        """Rename internal columns, run on-demand views, keep the requested features in order."""
        base = [c for c in self._table.column_names]
        internal: dict[tuple[str, str], str] = {}
        for i, (view_name, features) in enumerate(self._resolved.views.items()):
            for f in features:
                internal[(view_name, f)] = f"__v{i}_{f}"
        computed: dict[tuple[str, str], pa.Array | pa.ChunkedArray] = {}
        for odfv_name, outputs in self._resolved.odfvs.items():
            odfv = self._catalog.odfvs[odfv_name]
            feats, request = input_names(odfv)
            inputs = {}
            for view_name, f in feats:
                inputs[f] = result.column(internal[(view_name, f)]).to_pandas()
            for r in request:
                inputs[r] = result.column(r).to_pandas()
            frame = pd.DataFrame(inputs)
            out = run_odfv(odfv, frame)
            for name in outputs:
                computed[(odfv_name, name)] = pa.array(out[name])
        columns = [result.column(c) for c in base]
        names = list(base)
        for (view_name, f), out_name in zip(self._resolved.output, self._names, strict=True):
            if (view_name, f) in computed:
                columns.append(computed[(view_name, f)])
            else:
                columns.append(result.column(internal[(view_name, f)]))
            names.append(out_name)
        return pa.table(columns, names=names)

    def to_arrow(self) -> pa.Table:
        """The training set as an Arrow table."""
        return self._run()

    @property
    def metadata(self) -> Mapping[str, Any]:
        """What this job reads: feature names, view versions, the entity row count."""
        return {
            "features": [f"{v}:{f}" for v, f in self._resolved.output],
            "feature_views": list(self.feature_views),
            "entity_rows": self._table.num_rows,
            "timestamp_column": self._ts,
        }
