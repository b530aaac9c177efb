"""The tracking workload, run in a fresh process against ``loopml`` or ``mlflow``.

Usage: ``python _workload.py {loopml|mlflow} --out result.json [--tracking-uri URI]
[--quick] [--steps 1,2,3,4,5]``. Both tools are driven through the same MLflow-style fluent
API (``mod = importlib.import_module(name)``), with identical, seeded data. Progress goes to
stderr; the results are written as JSON to ``--out``. Only the standard library is used here,
so the module runs in either interpreter (the system one for loopml, the MLflow venv's).
"""

from __future__ import annotations

import argparse
import importlib
import json
import platform
import random
import statistics
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from types import ModuleType
from typing import Any

FILTER = "metrics.acc > 0.5 and params.p0 = 'rf'"
ORDER_BY = ["metrics.acc DESC"]
CHUNK = 1_000
# How step 5 creates its runs: client create_run + log_batch (queued with synchronous=False
# and flushed at the end, the fastest; or synchronous), or the fluent start_run API.
BIG_METHODS = ["client-async", "client", "fluent"]


@dataclass(frozen=True)
class Sizes:
    """How big each workload is."""

    log_metric_calls: int = 2_000
    log_metrics_calls: int = 10
    log_metrics_keys: int = 1_000
    runs: int = 1_000
    search_repeats: int = 20
    history_steps: int = 10_000
    history_repeats: int = 5
    big_runs: int = 100_000
    big_repeats: int = 10

    @classmethod
    def quick(cls) -> Sizes:
        """One tenth of everything, fewer repeats (smoke test)."""
        return cls(200, 10, 100, 100, 5, 1_000, 3, 10_000, 3)


@dataclass(frozen=True)
class RunData:
    """Params, metrics and tags of one synthetic run."""

    params: dict[str, str]
    metrics: dict[str, float]
    tags: dict[str, str]


def log(msg: str) -> None:
    """Print a progress line to stderr."""
    print(f"  [{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def make_runs(n: int, seed: int = 42) -> list[RunData]:
    """Generate ``n`` runs of seeded synthetic data (identical for both tools)."""
    rng = random.Random(seed)
    out: list[RunData] = []
    for i in range(n):
        acc = rng.random()
        params = {
            "p0": rng.choice(("rf", "gb", "lr")),
            "p1": str(rng.randint(2, 32)),
            "p2": rng.choice(("0.001", "0.01", "0.1")),
            "p3": rng.choice(("adam", "sgd", "lbfgs")),
            "p4": str(i % 7),
        }
        metrics = {
            "acc": acc,
            "loss": 1.0 - acc + rng.random() * 0.1,
            "f1": acc * rng.uniform(0.8, 1.0),
            "precision": rng.random(),
            "recall": rng.random(),
        }
        tags = {"team": rng.choice(("vision", "nlp", "tabular")), "stage": "bench"}
        out.append(RunData(params, metrics, tags))
    return out


def expected_search(runs: list[RunData]) -> tuple[int, float | None]:
    """Rows and top ``acc`` that ``FILTER`` ordered by ``ORDER_BY`` must return."""
    accs = [r.metrics["acc"] for r in runs if r.metrics["acc"] > 0.5 and r.params["p0"] == "rf"]
    return len(accs), (max(accs) if accs else None)


class Target:
    """The tool under test, reached through its MLflow-style public API only."""

    def __init__(self, name: str, tracking_uri: str | None) -> None:
        self.name = name
        self.mod: ModuleType = importlib.import_module(name)
        if tracking_uri:
            self.mod.set_tracking_uri(tracking_uri)
        # Pass the URI explicitly: loopml.Client() reads LOOPML_TRACKING_URI, not the fluent URI.
        factory = getattr(self.mod, "Client", None) or self.mod.MlflowClient
        self.client: Any = factory(tracking_uri) if tracking_uri else factory()
        self.entities: ModuleType | None
        try:  # mlflow.entities.Metric, else loopml.Metric (top level)
            self.entities = importlib.import_module(f"{name}.entities")
        except ImportError:
            self.entities = self.mod if hasattr(self.mod, "Metric") else None

    @property
    def version(self) -> str:
        """The tool's ``__version__``."""
        return str(getattr(self.mod, "__version__", "unknown"))

    def flush(self) -> None:
        """Wait until everything logged so far is durable (MLflow: its default mode)."""
        if self.name == "loopml":
            self.mod.flush()
            return
        flush = getattr(self.mod, "flush_async_logging", None)
        if flush is not None:
            flush()  # a no-op unless async logging was enabled, which we never do

    def experiment_id(self, name: str) -> str:
        """Create or select experiment ``name`` and return its id."""
        exp = self.mod.set_experiment(name)
        exp_id = getattr(exp, "experiment_id", None) or getattr(exp, "id", None)
        if exp_id is None:
            raise RuntimeError(f"set_experiment returned {exp!r} without an experiment id")
        return str(exp_id)

    @staticmethod
    def run_id(run: Any) -> str:
        """The id of a run object (``run.info.run_id`` as in MLflow, or ``run.run_id``)."""
        info = getattr(run, "info", None)
        rid = getattr(info, "run_id", None) if info is not None else None
        rid = rid or getattr(run, "run_id", None) or getattr(run, "id", None)
        if rid is None:
            raise RuntimeError(f"cannot find the run id of {run!r}")
        return str(rid)

    def metric(self, key: str, value: float, timestamp: int, step: int) -> Any:
        """A metric entity for ``log_batch``."""
        if self.entities is not None:
            return self.entities.Metric(key, value, timestamp, step)
        return {"key": key, "value": value, "timestamp": timestamp, "step": step}

    def param(self, key: str, value: str) -> Any:
        """A param entity for ``log_batch``."""
        if self.entities is not None:
            return self.entities.Param(key, value)
        return {"key": key, "value": value}

    def tag(self, key: str, value: str) -> Any:
        """A tag entity for ``log_batch``."""
        if self.entities is not None:
            return self.entities.RunTag(key, value)
        return {"key": key, "value": value}

    def search(self, exp_id: str, max_results: int | None = None) -> Any:
        """The benchmark's ``search_runs`` call (fluent API, returns a DataFrame)."""
        kwargs: dict[str, Any] = {}
        if max_results is not None:
            kwargs["max_results"] = max_results
        return self.mod.search_runs(
            experiment_ids=[exp_id], filter_string=FILTER, order_by=ORDER_BY, **kwargs
        )


def timed_repeats(fn: Callable[[], Any], repeats: int) -> tuple[Any, float, list[float]]:
    """Call ``fn`` once to warm up, then ``repeats`` times; return result, warm-up ms, ms list."""
    t0 = time.perf_counter()
    result = fn()
    first_ms = (time.perf_counter() - t0) * 1000
    times: list[float] = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        result = fn()
        times.append((time.perf_counter() - t0) * 1000)
    return result, first_ms, times


def top_acc(df: Any) -> float | None:
    """The ``metrics.acc`` of the first row of a search result, if any."""
    if len(df) == 0 or "metrics.acc" not in df.columns:
        return None
    return float(df["metrics.acc"].iloc[0])


def chunks(items: list[Any], size: int) -> Iterator[list[Any]]:
    """Split ``items`` into lists of at most ``size``."""
    for i in range(0, len(items), size):
        yield items[i : i + size]


def w_log_metric(t: Target, s: Sizes) -> dict[str, Any]:
    """1. Single ``log_metric`` calls in one run -> calls/s (incl. the final flush)."""
    n = s.log_metric_calls
    t.experiment_id("bench-log-metric")
    with t.mod.start_run() as run:
        t0 = time.perf_counter()
        for i in range(n):
            t.mod.log_metric("m", float(i), step=i)
        t.flush()
        dt = time.perf_counter() - t0
        rid = t.run_id(run)
    stored = len(t.client.get_metric_history(rid, "m"))
    return {"calls": n, "seconds": dt, "calls_per_s": n / dt, "stored": stored}


def w_log_metrics(t: Target, s: Sizes) -> dict[str, Any]:
    """2. Batched ``log_metrics`` of many keys per step -> points/s (incl. the final flush)."""
    n, k = s.log_metrics_calls, s.log_metrics_keys
    batches = [{f"k{j}": i + j / k for j in range(k)} for i in range(n)]
    t.experiment_id("bench-log-metrics")
    with t.mod.start_run() as run:
        t0 = time.perf_counter()
        for i, batch in enumerate(batches):
            t.mod.log_metrics(batch, step=i)
        t.flush()
        dt = time.perf_counter() - t0
        rid = t.run_id(run)
    stored = len(t.client.get_metric_history(rid, f"k{k - 1}"))
    return {
        "calls": n,
        "keys": k,
        "points": n * k,
        "seconds": dt,
        "points_per_s": n * k / dt,
        "stored_steps_last_key": stored,
    }


def w_runs(t: Target, s: Sizes) -> dict[str, Any]:
    """3. Many small runs via the fluent API, then a filtered, ordered ``search_runs``."""
    runs = make_runs(s.runs)
    exp_id = t.experiment_id("bench-runs")
    step = max(1, len(runs) // 10)
    t0 = time.perf_counter()
    for i, r in enumerate(runs, 1):
        with t.mod.start_run():
            t.mod.log_params(r.params)
            t.mod.log_metrics(r.metrics)
            t.mod.set_tags(r.tags)
        if i % step == 0:
            log(f"{t.name}: {i}/{len(runs)} runs ({time.perf_counter() - t0:.1f} s)")
    t.flush()
    dt = time.perf_counter() - t0
    exp_rows, exp_top = expected_search(runs)
    df, first_ms, times = timed_repeats(lambda: t.search(exp_id), s.search_repeats)
    return {
        "runs": len(runs),
        "seconds": dt,
        "runs_per_s": len(runs) / dt,
        "search": {
            "filter": FILTER,
            "order_by": ORDER_BY,
            "rows": len(df),
            "expected_rows": exp_rows,
            "top_acc": top_acc(df),
            "expected_top_acc": exp_top,
            "warmup_ms": first_ms,
            "times_ms": times,
            "median_ms": statistics.median(times),
        },
    }


def w_history(t: Target, s: Sizes) -> dict[str, Any]:
    """4. One metric with many steps (``log_batch`` setup), then ``get_metric_history``."""
    n = s.history_steps
    exp_id = t.experiment_id("bench-history")
    rid = t.run_id(t.client.create_run(exp_id))
    ts = int(time.time() * 1000)
    t0 = time.perf_counter()
    for part in chunks(list(range(n)), CHUNK):
        t.client.log_batch(rid, metrics=[t.metric("h", float(i), ts + i, i) for i in part])
    t.flush()
    setup_s = time.perf_counter() - t0
    hist, first_ms, times = timed_repeats(
        lambda: t.client.get_metric_history(rid, "h"), s.history_repeats
    )
    return {
        "steps": n,
        "setup_seconds": setup_s,
        "len": len(hist),
        "warmup_ms": first_ms,
        "times_ms": times,
        "median_ms": statistics.median(times),
    }


def w_big(t: Target, s: Sizes, method: str = "client") -> dict[str, Any]:
    """5. Many runs (``create_run`` + ``log_batch`` by default), then a capped ``search_runs``."""
    runs = make_runs(s.big_runs, seed=7)
    exp_id = t.experiment_id("bench-big")
    step = max(1, len(runs) // 20)
    ts = int(time.time() * 1000)
    t0 = time.perf_counter()
    for i, r in enumerate(runs, 1):
        if method == "fluent":
            with t.mod.start_run():
                t.mod.log_params(r.params)
                t.mod.log_metrics(r.metrics)
                t.mod.set_tags(r.tags)
        else:
            rid = t.run_id(t.client.create_run(exp_id))
            t.client.log_batch(
                rid,
                metrics=[t.metric(k, v, ts, 0) for k, v in r.metrics.items()],
                params=[t.param(k, v) for k, v in r.params.items()],
                tags=[t.tag(k, v) for k, v in r.tags.items()],
                **({"synchronous": False} if method == "client-async" else {}),
            )
        if i % step == 0:
            el = time.perf_counter() - t0
            log(f"{t.name}: {i}/{len(runs)} runs ({el:.1f} s, {i / el:.0f} runs/s)")
    t.flush()
    dt = time.perf_counter() - t0
    exp_rows, exp_top = expected_search(runs)
    df, first_ms, times = timed_repeats(lambda: t.search(exp_id, 100), s.big_repeats)
    return {
        "runs": len(runs),
        "method": method,
        "create_seconds": dt,
        "create_runs_per_s": len(runs) / dt,
        "search": {
            "filter": FILTER,
            "order_by": ORDER_BY,
            "max_results": 100,
            "rows": len(df),
            "expected_rows": min(100, exp_rows),
            "top_acc": top_acc(df),
            "expected_top_acc": exp_top,
            "warmup_ms": first_ms,
            "times_ms": times,
            "median_ms": statistics.median(times),
        },
    }


STEPS: dict[int, tuple[str, Callable[..., dict[str, Any]]]] = {
    1: ("log_metric", w_log_metric),
    2: ("log_metrics", w_log_metrics),
    3: ("runs", w_runs),
    4: ("history", w_history),
    5: ("big", w_big),
}


def main(argv: list[str] | None = None) -> int:
    """Run the selected workload steps and write the JSON results."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("tool", choices=["loopml", "mlflow"])
    ap.add_argument("--tracking-uri", default=None, help="unset: the tool's embedded default")
    ap.add_argument("--out", required=True, help="where to write the JSON results")
    ap.add_argument("--quick", action="store_true", help="1/10 sizes, fewer repeats")
    ap.add_argument("--steps", default="1,2,3,4", help="comma-separated subset of 1-5")
    ap.add_argument("--big-method", choices=BIG_METHODS, default=BIG_METHODS[0])
    args = ap.parse_args(argv)

    sizes = Sizes.quick() if args.quick else Sizes()
    t_import = time.perf_counter()
    target = Target(args.tool, args.tracking_uri)
    import_s = time.perf_counter() - t_import
    results: dict[str, Any] = {
        "tool": args.tool,
        "version": target.version,
        "tracking_uri": args.tracking_uri,
        "python": platform.python_version(),
        "sizes": asdict(sizes),
        "import_seconds": import_s,
        "step_wall_seconds": {},
    }
    for num in sorted({int(x) for x in args.steps.split(",") if x.strip()}):
        key, fn = STEPS[num]
        log(f"{args.tool}: step {num} ({key}) ...")
        t0 = time.perf_counter()
        if num == 5:
            results[key] = fn(target, sizes, args.big_method)
        else:
            results[key] = fn(target, sizes)
        results["step_wall_seconds"][key] = time.perf_counter() - t0
        log(f"{args.tool}: step {num} done in {results['step_wall_seconds'][key]:.1f} s")
        with open(args.out, "w") as f:  # partial results survive a later failure
            json.dump(results, f, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
