"""Data and fills for ``ui.py``: the same runs into loopml's and into MLflow's SQLite store.

Usage (``ui.py`` runs it; stdlib only at import, so both interpreters can import it)::

    python _ui_worker.py fill-loopml --runs N --seed S --home DIR --out stats.json
    .venv-mlflow/bin/python _ui_worker.py fill-mlflow --runs N --seed S --dir DIR --out stats.json

Every run ``i`` (0-based) is named ``run-{i:06d}``, user ``bench``, started at ``BASE_MS + i s``,
``FINISHED`` a minute later, with 10 string params ``p0``..``p9`` (``p_j`` in ``v0``..``v{k_j-1}``,
``k = CARDINALITY``) and 20 float metrics ``m0``..``m19`` (one point each, step 0, timestamp =
start), drawn from one seeded ``random.Random`` in run order, so both stores hold identical values.

loopml is filled through its public store: ``SqlTrackingStore.create_run`` then
``write_batches`` of ``RunBatch`` (params, metrics, status and end time) in chunks.

MLflow is filled through ``SqlAlchemyStore``: the experiment and the first ``API_RUNS`` runs with
``create_run`` + ``log_batch`` + ``update_run_info`` (46 runs/s here: 100,000 runs would take
36 min), then, with ``--method template`` (the default), the other runs are inserted with
``executemany`` as copies of the rows the store wrote for its first run, every column taken
from that row except the run's own values (id, name, times, artifact URI, param and metric
values). The worker fails if the store wrote rows in a table it does not copy, or rows of another
shape. Afterwards it checks with ``get_run`` that an inserted run reads back like a run written by
the store, and the run count. ``--method api`` writes every run through the store.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

BASE_MS = 1_735_689_600_000  # 2025-01-01 00:00 UTC
CARDINALITY = (10, 4, 3, 20, 5, 8, 2, 6, 12, 50)  # values of p0..p9
N_PARAMS = len(CARDINALITY)
N_METRICS = 20
EXPERIMENT = "ui-bench"
USER = "bench"
API_RUNS = 100  # MLflow: runs written through the store before the template copies


@dataclass(frozen=True)
class BenchRun:
    """One generated run."""

    index: int
    name: str
    start_ms: int
    end_ms: int
    params: dict[str, str]
    metrics: dict[str, float]


def make_runs(n: int, seed: int) -> Iterator[BenchRun]:
    """The ``n`` runs, in order (a generator: 100,000 runs are ~150 MB as objects)."""
    rng = random.Random(seed)
    for i in range(n):
        params = {f"p{j}": f"v{rng.randrange(k)}" for j, k in enumerate(CARDINALITY)}
        metrics = {f"m{j}": rng.random() for j in range(N_METRICS)}
        start = BASE_MS + i * 1000
        yield BenchRun(i, f"run-{i:06d}", start, start + 60_000, params, metrics)


def expected_page(
    n: int, seed: int, param: str, value: str, metric: str, limit: int
) -> dict[str, Any]:
    """Which runs ``params.<param> = '<value>'`` ordered by ``metrics.<metric> DESC`` returns:
    the matching count and the names of the first ``limit`` runs (ties broken by name)."""
    hits = [(-r.metrics[metric], r.name) for r in make_runs(n, seed) if r.params[param] == value]
    hits.sort()
    return {
        "matching": len(hits),
        "top_names": [name for _, name in hits[:limit]],
        "top_values": [-v for v, _ in hits[:limit]],
    }


def log(msg: str) -> None:
    """Print a progress line to stderr."""
    print(f"  [{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


# -- loopml ------------------------------------------------------------------------------------
def fill_loopml(n: int, seed: int, home: Path, chunk: int = 1000) -> dict[str, Any]:
    """Fill ``home``'s default database (``sqlite:///<home>/loopml.db``) through the store."""
    import loopml
    from loopml.config import get_settings
    from loopml.tracking import Metric, Param, RunBatch, SqlTrackingStore

    settings = get_settings()
    if Path(settings.home).resolve() != home.resolve():
        raise SystemExit(f"LOOPML_HOME is {settings.home}, expected {home}")
    store = SqlTrackingStore(settings.resolved_database_uri, settings.resolved_artifact_uri)
    exp_id = store.create_experiment(EXPERIMENT)
    t0 = time.perf_counter()
    batches: list[Any] = []
    step = max(1, n // 10)
    for r in make_runs(n, seed):
        run = store.create_run(exp_id, start_time=r.start_ms, run_name=r.name, user_id=USER)
        batches.append(
            RunBatch(
                run.info.run_id,
                metrics=[Metric(k, v, r.start_ms, 0) for k, v in r.metrics.items()],
                params=[Param(k, v) for k, v in r.params.items()],
                status="FINISHED",
                end_time=r.end_ms,
            )
        )
        if len(batches) >= chunk:
            store.write_batches(batches)
            batches = []
        if (r.index + 1) % step == 0:
            el = time.perf_counter() - t0
            log(f"loopml: {r.index + 1:,}/{n:,} runs ({el:.0f} s)")
    store.write_batches(batches)
    seconds = time.perf_counter() - t0
    page = store.search_runs([exp_id], max_results=1)
    return {
        "tool": "loopml",
        "version": loopml.__version__,
        "experiment_id": str(exp_id),
        "database_uri": settings.resolved_database_uri,
        "method": "SqlTrackingStore.create_run + write_batches(RunBatch) per 1,000 runs",
        "runs": n,
        "fill_seconds": seconds,
        "check_first_run": page[0].to_dict() if page else None,
    }


# -- MLflow ------------------------------------------------------------------------------------
RUN_TABLES = ("runs", "tags", "params", "metrics", "latest_metrics")
EXPECTED_COLUMNS = {
    "runs": {
        "run_uuid",
        "name",
        "source_type",
        "source_name",
        "entry_point_name",
        "user_id",
        "status",
        "start_time",
        "end_time",
        "source_version",
        "lifecycle_stage",
        "artifact_uri",
        "experiment_id",
        "deleted_time",
    },
    "tags": {"key", "value", "run_uuid"},
    "params": {"key", "value", "run_uuid"},
    "metrics": {"key", "value", "timestamp", "run_uuid", "step", "is_nan"},
    "latest_metrics": {"key", "value", "timestamp", "step", "is_nan", "run_uuid"},
}


def _mlflow_api_run(store: Any, exp_id: str, r: BenchRun) -> str:
    from mlflow.entities import Metric, Param, RunStatus

    run = store.create_run(exp_id, USER, r.start_ms, [], r.name)
    rid = str(run.info.run_id)
    store.log_batch(
        rid,
        metrics=[Metric(k, v, r.start_ms, 0) for k, v in r.metrics.items()],
        params=[Param(k, v) for k, v in r.params.items()],
        tags=[],
    )
    store.update_run_info(rid, RunStatus.FINISHED, r.end_ms, None)
    return rid


def _template(db: Path, run_id: str) -> dict[str, tuple[list[str], list[tuple[Any, ...]]]]:
    """Every row the store wrote for ``run_id``, per table, strictly checked."""
    import sqlite3

    con = sqlite3.connect(db)
    try:
        out: dict[str, tuple[list[str], list[tuple[Any, ...]]]] = {}
        tables = [t for (t,) in con.execute("SELECT name FROM sqlite_master WHERE type='table'")]
        for table in tables:
            cols = [c[1] for c in con.execute(f'PRAGMA table_info("{table}")')]
            link = next((c for c in ("run_uuid", "run_id") if c in cols), None)
            if link is None:
                continue
            rows = con.execute(f'SELECT * FROM "{table}" WHERE {link} = ?', (run_id,)).fetchall()
            if not rows:
                continue
            if table not in RUN_TABLES:
                raise SystemExit(f"mlflow wrote {len(rows)} rows in {table}: not copied, stop")
            if set(cols) != EXPECTED_COLUMNS[table]:
                raise SystemExit(f"mlflow's {table} has columns {cols}: not the expected shape")
            out[table] = (cols, rows)
    finally:
        con.close()
    tags = {row[out["tags"][0].index("key")] for row in out["tags"][1]}
    if tags != {"mlflow.runName"}:
        raise SystemExit(f"mlflow's run has tags {sorted(tags)}, expected mlflow.runName only")
    if len(out["params"][1]) != N_PARAMS or len(out["metrics"][1]) != N_METRICS:
        raise SystemExit("mlflow's template run has the wrong number of params or metrics")
    return out


def _copy_rows(
    tpl: dict[str, tuple[list[str], list[tuple[Any, ...]]]], tid: str, rid: str, r: BenchRun
) -> dict[str, list[tuple[Any, ...]]]:
    """The rows of run ``r`` (id ``rid``) shaped exactly as the template run ``tid``'s."""
    out: dict[str, list[tuple[Any, ...]]] = {}
    for table, (cols, rows) in tpl.items():
        new = []
        for row in rows:
            d = dict(zip(cols, row, strict=True))
            d["run_uuid"] = rid
            if table == "runs":
                d["name"] = r.name
                d["start_time"] = r.start_ms
                d["end_time"] = r.end_ms
                d["artifact_uri"] = d["artifact_uri"].replace(tid, rid)
            elif table == "tags":
                d["value"] = r.name
            elif table == "params":
                d["value"] = r.params[d["key"]]
            else:  # metrics, latest_metrics: one point, step 0, at the start time
                d["value"] = r.metrics[d["key"]]
                d["timestamp"] = r.start_ms
            new.append(tuple(d[c] for c in cols))
        out[table] = new
    return out


def fill_mlflow(n: int, seed: int, folder: Path, method: str) -> dict[str, Any]:
    """Fill ``<folder>/mlflow.db`` (artifacts under ``<folder>/art``) with MLflow's store."""
    import sqlite3

    import mlflow
    from mlflow.store.tracking.sqlalchemy_store import SqlAlchemyStore

    db = folder / "mlflow.db"
    store = SqlAlchemyStore(f"sqlite:///{db}", str(folder / "art"))
    exp_id = str(store.create_experiment(EXPERIMENT))
    t0 = time.perf_counter()
    runs = make_runs(n, seed)
    api_n = n if method == "api" else min(n, API_RUNS)
    api_ids = []
    step = max(1, n // 10)
    for r in runs:
        api_ids.append(_mlflow_api_run(store, exp_id, r))
        if (r.index + 1) % step == 0:
            log(f"mlflow (api): {r.index + 1:,}/{n:,} runs ({time.perf_counter() - t0:.0f} s)")
        if r.index + 1 >= api_n:
            break
    api_seconds = time.perf_counter() - t0
    copied = 0
    if api_n < n:
        tid = api_ids[0]
        tpl = _template(db, tid)
        con = sqlite3.connect(db)
        try:
            pending: dict[str, list[tuple[Any, ...]]] = {t: [] for t in tpl}

            def flush() -> None:
                with con:  # one transaction per chunk; runs first (foreign keys)
                    for table in RUN_TABLES:
                        if pending.get(table):
                            cols = tpl[table][0]
                            sql = 'INSERT INTO "{}" ({}) VALUES ({})'.format(
                                table,
                                ", ".join(f'"{c}"' for c in cols),
                                ", ".join("?" * len(cols)),
                            )
                            con.executemany(sql, pending[table])
                            pending[table] = []

            for r in runs:  # the generator goes on after the API runs
                for table, rows in _copy_rows(tpl, tid, uuid.uuid4().hex, r).items():
                    pending[table].extend(rows)
                copied += 1
                if copied % 5000 == 0:
                    flush()
                if (r.index + 1) % step == 0:
                    el = time.perf_counter() - t0
                    log(f"mlflow (template): {r.index + 1:,}/{n:,} runs ({el:.0f} s)")
            flush()
        finally:
            con.close()
    seconds = time.perf_counter() - t0
    # Checks: an inserted run reads back like one the store wrote, and every run is there.
    con = sqlite3.connect(db)
    try:
        count = con.execute(
            "SELECT COUNT(*) FROM runs WHERE experiment_id = ?", (int(exp_id),)
        ).fetchone()[0]
        last_id = con.execute(
            "SELECT run_uuid FROM runs WHERE name = ?", (f"run-{n - 1:06d}",)
        ).fetchone()[0]
    finally:
        con.close()
    if count != n:
        raise SystemExit(f"mlflow store holds {count} runs, expected {n}")

    def shape(run_id: str) -> dict[str, Any]:
        d = store.get_run(run_id).to_dictionary()
        info, data = d["info"], d["data"]
        return {
            "info_keys": sorted(k for k, v in info.items() if v is not None),
            "status": info["status"],
            "lifecycle_stage": info["lifecycle_stage"],
            "params": sorted(data.get("params", {})),
            "metrics": sorted(data.get("metrics", {})),
            "tags": sorted(data.get("tags", {})),
        }

    first, last = shape(api_ids[0]), shape(last_id)
    if first != last:
        raise SystemExit(f"an inserted run reads back differently:\n{first}\n{last}")
    check = {"api_run": first, "last_run_equal": True, "count": count}
    return {
        "tool": "mlflow",
        "version": mlflow.__version__,
        "experiment_id": exp_id,
        "database_uri": f"sqlite:///{db}",
        "method": (
            "SqlAlchemyStore create_run + log_batch + update_run_info for every run"
            if method == "api"
            else f"SqlAlchemyStore for the first {api_n} runs, the rest inserted as copies of "
            "the rows it wrote for its first run"
        ),
        "runs": n,
        "api_runs": api_n,
        "api_seconds": api_seconds,
        "api_runs_per_s": api_n / api_seconds if api_seconds else None,
        "fill_seconds": seconds,
        "check": check,
    }


def main(argv: list[str] | None = None) -> int:
    """Run one fill and write its stats as JSON."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("what", choices=["fill-loopml", "fill-mlflow"])
    ap.add_argument("--runs", type=int, required=True)
    ap.add_argument("--seed", type=int, required=True)
    ap.add_argument("--home", type=Path, help="fill-loopml: LOOPML_HOME")
    ap.add_argument("--dir", type=Path, help="fill-mlflow: folder of mlflow.db and art/")
    ap.add_argument("--method", choices=["template", "api"], default="template")
    ap.add_argument("--out", type=Path, required=True)
    args = ap.parse_args(argv)
    if args.what == "fill-loopml":
        stats = fill_loopml(args.runs, args.seed, args.home)
    else:
        stats = fill_mlflow(args.runs, args.seed, args.dir, args.method)
    stats["python"] = sys.version.split()[0]
    args.out.write_text(json.dumps(stats, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
