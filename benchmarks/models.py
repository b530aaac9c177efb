"""Side-by-side model benchmark: log + register, load by alias, predict latency.

Usage::

    bash benchmarks/setup_mlflow.sh          # once: MLflow in benchmarks/.venv-mlflow
    python benchmarks/models.py [--quick] [--only loopml|mlflow] [--json out.json]

The same RandomForest (100 trees, fixed seed, identical data) is trained in each tool's process;
each tool then logs and registers it, loads it back by alias, and predicts. Predict latency is
measured on 1 row and on 64 rows through loopml's uniform wrapper (native and ONNX runtime),
through ``mlflow.pyfunc``, and on the raw scikit-learn object in the same process, as the median
of many calls after warm-up. See ``benchmarks/README.md``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
MLFLOW_PYTHON = HERE / ".venv-mlflow" / "bin" / "python"
QUIET_ENV = {"MLFLOW_DISABLE_TELEMETRY": "true", "DO_NOT_TRACK": "true"}
N_FEATURES = 20
COLUMNS = [f"f{i}" for i in range(N_FEATURES)]


# -- the workload, run inside each tool's interpreter --------------------------------------------
def _data() -> tuple[Any, Any]:
    import numpy as np
    import pandas as pd
    from sklearn.datasets import make_classification

    x, y = make_classification(
        n_samples=5000, n_features=N_FEATURES, n_informative=10, random_state=7
    )
    return pd.DataFrame(x.astype(np.float64), columns=COLUMNS), y


def _train(x: Any, y: Any) -> Any:
    from sklearn.ensemble import RandomForestClassifier

    return RandomForestClassifier(n_estimators=100, max_depth=10, random_state=7, n_jobs=1).fit(
        x, y
    )


def _latency(fn: Any, batch: Any, repeats: int) -> dict[str, float]:
    for _ in range(max(5, repeats // 20)):
        fn(batch)
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn(batch)
        times.append(time.perf_counter() - t0)
    times.sort()
    return {
        "median_ms": statistics.median(times) * 1000,
        "p90_ms": times[int(len(times) * 0.9)] * 1000,
        "repeats": repeats,
    }


def _timed(fn: Any) -> tuple[Any, float]:
    t0 = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - t0


def _predict_rows(out: dict[str, Any], label: str, predict: Any, x: Any, repeats: int) -> None:
    out[label] = {
        "1_row": _latency(predict, x.iloc[:1], repeats),
        "64_rows": _latency(predict, x.iloc[:64], repeats),
    }


def run_loopml(repeats: int) -> dict[str, Any]:
    """Log + register with loopml, load by alias (native and ONNX), predict."""
    import loopml

    x, y = _data()
    model = _train(x, y)
    out: dict[str, Any] = {"tool": "loopml", "version": loopml.__version__}
    loopml.set_experiment("bench-models")
    with loopml.start_run():
        info, seconds = _timed(
            lambda: loopml.log_model(
                model, "model", registered_model_name="bench-rf", input_example=x.iloc[:5]
            )
        )
    out["log_and_register_s"] = seconds
    out["onnx_available"] = bool(info.onnx_available)
    client = loopml.Client()
    client.set_registered_model_alias("bench-rf", "production", info.registered_model_version)
    for runtime in ("native", "onnx"):
        loaded, seconds = _timed(
            lambda runtime=runtime: loopml.load_model(
                "models:/bench-rf@production", runtime=runtime
            )
        )
        out[f"load_by_alias_{runtime}_s"] = seconds
        _predict_rows(out, f"predict_{runtime}", loaded.predict, x, repeats)
        ref = model.predict(x.iloc[:256])
        out[f"predict_{runtime}_agrees"] = bool((loaded.predict(x.iloc[:256]) == ref).all())
    _predict_rows(out, "predict_raw_sklearn", model.predict, x, repeats)
    return out


def run_mlflow(repeats: int) -> dict[str, Any]:
    """Log + register with MLflow, load by alias through mlflow.pyfunc, predict."""
    import mlflow
    from mlflow import MlflowClient

    tmp = Path(os.environ["BENCH_TMP"])
    mlflow.set_tracking_uri(f"sqlite:///{tmp / 'mlflow.db'}")
    x, y = _data()
    model = _train(x, y)
    out: dict[str, Any] = {"tool": "mlflow", "version": mlflow.__version__}
    mlflow.set_experiment("bench-models")
    with mlflow.start_run():
        info, seconds = _timed(
            lambda: mlflow.sklearn.log_model(
                model,
                name="model",
                registered_model_name="bench-rf",
                input_example=x.iloc[:5],
                # MLflow 3.17 saves with skops by default and asks for the tree type to be
                # trusted explicitly; this keeps its default format.
                skops_trusted_types=["sklearn.tree._tree.Tree"],
            )
        )
    out["log_and_register_s"] = seconds
    version = info.registered_model_version
    MlflowClient().set_registered_model_alias("bench-rf", "production", str(version))
    loaded, seconds = _timed(lambda: mlflow.pyfunc.load_model("models:/bench-rf@production"))
    out["load_by_alias_pyfunc_s"] = seconds
    _predict_rows(out, "predict_pyfunc", loaded.predict, x, repeats)
    ref = model.predict(x.iloc[:256])
    out["predict_pyfunc_agrees"] = bool((loaded.predict(x.iloc[:256]) == ref).all())
    _predict_rows(out, "predict_raw_sklearn", model.predict, x, repeats)
    return out


# -- the driver --------------------------------------------------------------------------------
def _run_worker(tool: str, python: str, repeats: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix=f"bench-models-{tool}-") as tmp:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("LOOPML_", "MLFLOW_"))}
        env.update(QUIET_ENV)
        env["LOOPML_HOME"] = str(Path(tmp) / "home")
        env["BENCH_TMP"] = tmp
        cmd = [python, str(Path(__file__).resolve()), "--worker", tool, "--repeats", str(repeats)]
        proc = subprocess.run(cmd, env=env, cwd=tmp, capture_output=True, text=True, check=False)
        if proc.returncode != 0:
            sys.stderr.write(proc.stderr[-4000:])
            raise SystemExit(f"{tool} worker failed (exit {proc.returncode})")
        return json.loads(proc.stdout.strip().splitlines()[-1])


def _fmt(value: float | None, unit: str) -> str:
    return "-" if value is None else f"{value:,.3f} {unit}"


def _print_table(results: dict[str, dict[str, Any]]) -> None:
    lo, ml = results.get("loopml", {}), results.get("mlflow", {})

    def g(d: dict[str, Any], *path: str) -> Any:
        for p in path:
            if not isinstance(d, dict) or p not in d:
                return None
            d = d[p]
        return d

    lines = [("log + register (s)", g(lo, "log_and_register_s"), g(ml, "log_and_register_s"))]
    lines.append(
        (
            "load by alias (s), loopml native / mlflow pyfunc",
            g(lo, "load_by_alias_native_s"),
            g(ml, "load_by_alias_pyfunc_s"),
        )
    )
    lines.append(("load by alias (s), loopml onnx", g(lo, "load_by_alias_onnx_s"), None))
    print(f"{'':55} {'loopml':>14} {'mlflow':>14} {'ratio':>8}")
    for label, a, b in lines:
        ratio = f"{b / a:,.1f}x" if a and b else ""
        print(f"{label:55} {_fmt(a, 's'):>14} {_fmt(b, 's'):>14} {ratio:>8}")
    print()
    print(f"{'predict latency, median ms':40} {'1 row':>10} {'64 rows':>10}")
    for label, d in (
        ("raw scikit-learn (loopml process)", g(lo, "predict_raw_sklearn")),
        ("loopml wrapper, native", g(lo, "predict_native")),
        ("loopml wrapper, onnx", g(lo, "predict_onnx")),
        ("raw scikit-learn (mlflow process)", g(ml, "predict_raw_sklearn")),
        ("mlflow.pyfunc", g(ml, "predict_pyfunc")),
    ):
        if d:
            print(
                f"{label:40} {d['1_row']['median_ms']:>10.3f} {d['64_rows']['median_ms']:>10.3f}"
            )
    raw = g(lo, "predict_raw_sklearn")
    if raw:
        nat, onnx = g(lo, "predict_native"), g(lo, "predict_onnx")
        over = nat["64_rows"]["median_ms"] / raw["64_rows"]["median_ms"] - 1
        print(f"\nloopml native wrapper overhead at 64 rows: {over * 100:+.1f}% (target <= 5%)")
        if onnx:
            speed = raw["1_row"]["median_ms"] / onnx["1_row"]["median_ms"]
            print(f"loopml onnx vs raw scikit-learn at 1 row: {speed:.1f}x faster (target >= 5x)")
        pyf = g(ml, "predict_pyfunc")
        if pyf:
            for rows in ("1_row", "64_rows"):
                r = pyf[rows]["median_ms"] / nat[rows]["median_ms"]
                print(f"mlflow.pyfunc / loopml native at {rows}: {r:.2f}x")
                if onnx:
                    r = pyf[rows]["median_ms"] / onnx[rows]["median_ms"]
                    print(f"mlflow.pyfunc / loopml onnx at {rows}: {r:.1f}x")


def main() -> None:
    """Run the benchmark (or, with --worker, one tool's half of it)."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--worker", choices=["loopml", "mlflow"])
    parser.add_argument("--only", choices=["loopml", "mlflow"])
    parser.add_argument("--quick", action="store_true", help="fewer repeats")
    parser.add_argument("--repeats", type=int, default=None)
    parser.add_argument("--json", type=Path, default=None, help="write raw results here")
    args = parser.parse_args()
    repeats = args.repeats or (50 if args.quick else 500)
    if args.worker:
        fn = run_loopml if args.worker == "loopml" else run_mlflow
        print(json.dumps(fn(repeats)))
        return
    results: dict[str, dict[str, Any]] = {}
    if args.only in (None, "loopml"):
        results["loopml"] = _run_worker("loopml", sys.executable, repeats)
    if args.only in (None, "mlflow"):
        if not MLFLOW_PYTHON.exists():
            raise SystemExit("run `bash benchmarks/setup_mlflow.sh` first (or use --only loopml)")
        results["mlflow"] = _run_worker("mlflow", str(MLFLOW_PYTHON), repeats)
    results["machine"] = {
        "python": platform.python_version(),
        "cpus": os.cpu_count(),
        "platform": platform.platform(),
        "date": time.strftime("%Y-%m-%d"),
    }
    _print_table(results)
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
