"""The floors of ``features.py``: what the same work costs written directly, with no framework.

* materialize: one DuckDB query for the latest row per entity in the window (ties broken by
  the larger ``created``), fetched and bulk-inserted (``executemany``) into a fresh SQLite table
  keyed by ``entity_id`` with one column per feature;
* online: a primary-key lookup in that table through a prepared statement (``sqlite3``'s
  statement cache), ``WHERE entity_id = ?`` for one entity and ``IN (?, ...)`` for 100;
* historical: a DuckDB ``ASOF LEFT JOIN`` of the entity dataframe with the Parquet file on the
  entity and (event_timestamp, created) as one struct, so that among rows with equal event
  timestamps the one created last wins, the ttl applied after the join (an expired match gives
  NULL features), fetched as pandas;
* HTTP: a bare Starlette route over that SQLite table, served by uvicorn.

Run through ``_features_worker.py --tool floor`` in the interpreter of ``features.py``.
"""

from __future__ import annotations

import platform
from pathlib import Path
from typing import Any

from _features_worker import (
    FEATURES,
    KEY,
    TS,
    check_ids,
    id_calls,
    latency,
    timed,
    utc,
)

COLUMNS = ", ".join(FEATURES)


def _versions() -> dict[str, Any]:
    """DuckDB, SQLite and Python versions of this process."""
    import sqlite3

    import duckdb

    return {
        "duckdb_version": duckdb.__version__,
        "sqlite_version": sqlite3.sqlite_version,
        "python": platform.python_version(),
    }


def materialize(spec: dict[str, Any]) -> dict[str, Any]:
    """Latest row per entity in [start, end] from the Parquet file into a fresh SQLite table."""
    import sqlite3

    import duckdb

    db = Path(spec["floor_db"])
    db.unlink(missing_ok=True)
    query = f"""
        SELECT {KEY}, epoch_us({TS}) AS ts, {COLUMNS}
        FROM read_parquet($path)
        WHERE {TS} BETWEEN $start AND $end
        QUALIFY row_number() OVER (PARTITION BY {KEY} ORDER BY {TS} DESC, created DESC) = 1
    """
    marks = ", ".join("?" * (len(FEATURES) + 2))
    params = {"path": spec["data"], "start": utc(spec["start"]), "end": utc(spec["end"])}

    def run() -> int:
        rows = duckdb.connect().execute(query, params).fetchall()
        lite = sqlite3.connect(db)
        cols = ", ".join(f"{f} REAL" for f in FEATURES)
        lite.execute(
            f"CREATE TABLE features ({KEY} INTEGER PRIMARY KEY, event_ts INTEGER, {cols})"
        )
        lite.executemany(f"INSERT INTO features VALUES ({marks})", rows)
        lite.commit()
        lite.close()
        return len(rows)

    written, out = timed(run)
    return {**_versions(), "materialize": out, "rows_written": written}


def _lookup(con: Any, ids: list[int]) -> list[tuple[Any, ...]]:
    """The feature rows of ``ids`` (any order; an unknown id has none)."""
    if len(ids) == 1:
        return con.execute(
            f"SELECT {KEY}, {COLUMNS} FROM features WHERE {KEY} = ?", ids
        ).fetchall()
    marks = ", ".join("?" * len(ids))
    sql = f"SELECT {KEY}, {COLUMNS} FROM features WHERE {KEY} IN ({marks})"
    return con.execute(sql, ids).fetchall()


def online(spec: dict[str, Any]) -> dict[str, Any]:
    """Primary-key lookups in the floor's SQLite table, 1 and 100 entities per call."""
    import sqlite3

    con = sqlite3.connect(spec["floor_db"])
    out: dict[str, Any] = _versions()
    for per_call in spec["online_sizes"]:
        calls = id_calls(spec, per_call)
        out[f"online_{per_call}"] = latency(lambda ids: _lookup(con, ids), calls, spec["warmup"])
    ids = check_ids(spec)
    found = {r[0]: r[1:] for r in _lookup(con, ids)}
    empty = (None,) * len(FEATURES)
    out["check"] = {
        "keys": [KEY, *FEATURES],
        "values": {f: [found.get(i, empty)[j] for i in ids] for j, f in enumerate(FEATURES)},
    }
    return out


def historical(spec: dict[str, Any], rows: int) -> dict[str, Any]:
    """The point-in-time join as one DuckDB ASOF query over the Parquet file."""
    import duckdb
    import pandas as pd

    entity_df = pd.read_parquet(spec["entity_dfs"][str(rows)])
    ttl = int(spec["ttl_seconds"])
    picks = ", ".join(
        f"CASE WHEN f.feature_ts >= e.{TS} - INTERVAL '{ttl} seconds' THEN f.{c} END AS {c}"
        for c in FEATURES
    )
    # ASOF on (event_timestamp, created): among rows with the entity's timestamp or earlier,
    # the latest one and, among equal timestamps, the one created last
    query = f"""
        WITH feats AS (
            SELECT {KEY}, {TS} AS feature_ts, struct_pack(t := {TS}, c := created) AS k,
                   {COLUMNS}
            FROM read_parquet($path)
        )
        SELECT e.*, {picks}
        FROM entity_df AS e ASOF LEFT JOIN feats AS f
          ON e.{KEY} = f.{KEY}
         AND struct_pack(t := e.{TS}, c := 'infinity'::TIMESTAMPTZ) >= f.k
    """

    def run() -> Any:
        con = duckdb.connect()
        con.register("entity_df", entity_df)
        return con.execute(query, {"path": spec["data"]}).df()

    df, out = timed(run)
    result = {
        **_versions(),
        "entity_df_rows": len(entity_df),
        "historical": out,
        "rows": len(df),
        "columns": [str(c) for c in df.columns],
        "dtypes": {str(c): str(t) for c, t in df.dtypes.items()},
    }
    df.to_parquet(Path(spec["results_dir"]) / f"floor-{rows}.parquet", index=False)
    return result


def serve(spec: dict[str, Any], port: int) -> None:
    """The HTTP floor: one Starlette route answering the Feast-shaped request body from the
    floor's SQLite table, under uvicorn as ``serving.py``'s floor runs (uvloop and httptools
    when installed)."""
    import sqlite3

    import uvicorn
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import Response
    from starlette.routing import Route

    try:
        import orjson

        loads, dumps = orjson.loads, orjson.dumps
    except ImportError:  # the standard library's, if orjson is not installed
        import json

        loads = json.loads

        def dumps(obj: Any) -> bytes:
            return json.dumps(obj).encode()

    con = sqlite3.connect(spec["floor_db"], check_same_thread=False)
    empty = (None,) * len(FEATURES)
    names = [KEY, *FEATURES]

    async def get_online(request: Request) -> Response:
        ids = loads(await request.body())["entities"][KEY]
        found = {r[0]: r[1:] for r in _lookup(con, ids)}
        rows = [found.get(i, empty) for i in ids]
        results = [{"values": ids}]
        results += [{"values": [r[j] for r in rows]} for j in range(len(FEATURES))]
        body = {"metadata": {"feature_names": names}, "results": results}
        return Response(dumps(body), media_type="application/json")

    async def health(request: Request) -> Response:
        return Response(b'{"status":"ok"}', media_type="application/json")

    routes = [Route("/features/online", get_online, methods=["POST"]), Route("/health", health)]
    uvicorn.run(Starlette(routes=routes), host="127.0.0.1", port=port, log_level="warning")


def run_floor(mode: str, spec: dict[str, Any], rows: int | None) -> dict[str, Any]:
    """One floor measurement: materialize, online or historical."""
    if mode == "materialize":
        return materialize(spec)
    if mode == "online":
        return online(spec)
    if mode == "historical" and rows:
        return historical(spec, rows)
    raise SystemExit(f"unknown floor mode {mode!r}")
