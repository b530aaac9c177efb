"""One measured process of ``tuning.py``: 200 trials of a cheap objective, with or without
tracking.

Usage (run by ``tuning.py``, in a fresh process each time)::

    python _tuning_worker.py floor  --out r.json [--trials 200 --seed 0]
    python _tuning_worker.py loopml --out r.json          # LOOPML_HOME set by the driver
    python _tuning_worker.py mlflow --out r.json --tracking-uri sqlite:///.../mlflow.db
    python _tuning_worker.py loopml --out r.json --preimport sklearn.ensemble

Every mode runs the same objective with ``RandomSampler(seed)``, so the trials are identical.
Imports and the creation of the tracking store and its experiment happen before the timer;
the timer covers the study and its tracking: for loopml ``loopml.tune(...)`` (parent run, a
child run per trial, the summary written to the parent, with Optuna's parameter importances,
whose first use imports scikit-learn), for MLflow ``mlflow.start_run()`` (the
parent), ``study.optimize(..., callbacks=[MLflowCallback(...)])`` (a nested run per trial) and
the parent's end. After the timer (untimed) the child runs are read back from the store.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import platform
import resource
import sys
import time
from pathlib import Path
from typing import Any

T_START = time.perf_counter()
WEIGHTS = {"a": 0.0, "b": 0.5, "c": 1.0}
EXPERIMENT = "tuning-bench"
RUN_NAME = "bench-tune"
HEAVY = ("pandas", "pyarrow", "scipy", "sklearn", "sqlalchemy")


CALLS: list[float] = []  # perf_counter() at the start of each objective call


def objective(trial: Any) -> float:
    """A cheap objective of three params: one float, one int, one categorical."""
    CALLS.append(time.perf_counter())
    x = trial.suggest_float("x", -10.0, 10.0)
    n = trial.suggest_int("n", 1, 10)
    kind = trial.suggest_categorical("kind", ["a", "b", "c"])
    return (x - 2.0) ** 2 + (n - 3) ** 2 + WEIGHTS[kind]


def timed(res: dict[str, Any], t0: float, c0: float) -> None:
    """Wall and CPU of the timed call, split by the objective's calls: before the first trial,
    between the first and the last trial's start (per trial), after the last trial's start."""
    t1 = time.perf_counter()
    res["timed_seconds"] = t1 - t0
    res["timed_cpu_seconds"] = time.process_time() - c0
    res["peak_rss_mb"] = vm_hwm_mb()
    res["setup_seconds"] = CALLS[0] - t0
    res["steady_per_trial_ms"] = (CALLS[-1] - CALLS[0]) / (len(CALLS) - 1) * 1000
    res["tail_seconds"] = t1 - CALLS[-1]
    res["heavy_modules_after"] = sorted(m for m in HEAVY if m in sys.modules)


def vm_hwm_mb() -> float | None:
    """Peak resident memory of this process so far (VmHWM), in MB."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return None


def trials_of(study: Any) -> list[dict[str, Any]]:
    """Number, params, value and state of every trial, in order."""
    return [
        {"number": t.number, "params": t.params, "value": t.value, "state": t.state.name}
        for t in sorted(study.trials, key=lambda t: t.number)
    ]


def stored_rows(runs: list[Any], number_of: Any) -> list[dict[str, Any]]:
    """What a store holds for each child run: trial number, params, value, status."""
    rows = []
    for r in runs:
        rows.append(
            {
                "number": number_of(r),
                "params": dict(r.data.params),
                "value": r.data.metrics.get("value"),
                "status": r.info.status,
                "parent": r.data.tags.get("mlflow.parentRunId"),
            }
        )
    return sorted(rows, key=lambda x: (x["number"] is None, x["number"]))


def run_floor(optuna: Any, args: argparse.Namespace, res: dict[str, Any]) -> None:
    sampler = optuna.samplers.RandomSampler(seed=args.seed)
    res["heavy_modules_before"] = sorted(m for m in HEAVY if m in sys.modules)
    c0, t0 = time.process_time(), time.perf_counter()
    study = optuna.create_study(sampler=sampler, direction="minimize")
    study.optimize(objective, n_trials=args.trials)
    timed(res, t0, c0)
    res["trials"] = trials_of(study)
    # After the timer: what Optuna's parameter importances (which loopml.tune computes for
    # the parent run) cost on these trials, the first call (with its imports) and a second one.
    for key in ("importances_first_call_seconds", "importances_second_call_seconds"):
        t0 = time.perf_counter()
        optuna.importance.get_param_importances(study)
        res[key] = time.perf_counter() - t0


def run_loopml(optuna: Any, args: argparse.Namespace, res: dict[str, Any]) -> None:
    t0 = time.perf_counter()
    import loopml

    res["version"] = loopml.__version__
    res["tool_import_seconds"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    exp = loopml.set_experiment(EXPERIMENT)  # creates the default store (untimed)
    res["store_init_seconds"] = time.perf_counter() - t0

    res["heavy_modules_before"] = sorted(m for m in HEAVY if m in sys.modules)
    c0, t0 = time.process_time(), time.perf_counter()
    result = loopml.tune(
        objective, n_trials=args.trials, sampler="random", seed=args.seed, run_name=RUN_NAME
    )
    timed(res, t0, c0)
    res["trials"] = trials_of(result.study)

    pid = result.parent_run_id
    runs = loopml.search_runs(
        experiment_ids=[exp.experiment_id],
        filter_string=f"tags.mlflow.parentRunId = '{pid}'",
        output_format="list",
    )
    res["stored"] = stored_rows(runs, lambda r: int(r.data.tags["loopml.trial"]))
    res["parent_status"] = loopml.get_run(pid).info.status
    res["runs_in_experiment"] = len(
        loopml.search_runs(experiment_ids=[exp.experiment_id], output_format="list")
    )


def run_mlflow(optuna: Any, args: argparse.Namespace, res: dict[str, Any]) -> None:
    t0 = time.perf_counter()
    import mlflow

    try:
        from optuna_integration.mlflow import MLflowCallback

        res["callback"] = "optuna_integration.mlflow.MLflowCallback"
    except ImportError:  # older Optuna kept it in optuna.integration
        from optuna.integration.mlflow import MLflowCallback

        res["callback"] = "optuna.integration.mlflow.MLflowCallback"
    import optuna_integration

    res["version"] = mlflow.__version__
    res["optuna_integration_version"] = optuna_integration.__version__
    res["tool_import_seconds"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    mlflow.set_tracking_uri(args.tracking_uri)
    exp_id = mlflow.set_experiment(EXPERIMENT).experiment_id  # creates the store (untimed)
    res["store_init_seconds"] = time.perf_counter() - t0

    res["heavy_modules_before"] = sorted(m for m in HEAVY if m in sys.modules)
    c0, t0 = time.process_time(), time.perf_counter()
    callback = MLflowCallback(
        tracking_uri=args.tracking_uri,
        metric_name="value",
        create_experiment=False,
        mlflow_kwargs={"nested": True},
    )
    with mlflow.start_run(run_name=RUN_NAME) as parent:
        study = optuna.create_study(
            sampler=optuna.samplers.RandomSampler(seed=args.seed), direction="minimize"
        )
        study.optimize(objective, n_trials=args.trials, callbacks=[callback])
    timed(res, t0, c0)
    res["trials"] = trials_of(study)

    pid = parent.info.run_id
    runs = mlflow.search_runs(
        experiment_ids=[exp_id],
        filter_string=f"tags.mlflow.parentRunId = '{pid}'",
        output_format="list",
        max_results=10_000,
    )
    res["stored"] = stored_rows(runs, lambda r: int(r.info.run_name))
    res["parent_status"] = mlflow.get_run(pid).info.status
    res["runs_in_experiment"] = len(
        mlflow.search_runs(experiment_ids=[exp_id], output_format="list", max_results=10_000)
    )


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("mode", choices=["floor", "loopml", "mlflow"])
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--trials", type=int, default=200)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--tracking-uri")
    ap.add_argument(
        "--preimport", default="", help="modules to import before the timer (comma-separated)"
    )
    args = ap.parse_args()
    t0 = time.perf_counter()
    for mod in filter(None, args.preimport.split(",")):
        importlib.import_module(mod)
    preimport_seconds = time.perf_counter() - t0

    res: dict[str, Any] = {"mode": args.mode, "python": platform.python_version()}
    res["preimport"], res["preimport_seconds"] = args.preimport, preimport_seconds
    t0 = time.perf_counter()
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)  # loopml.tune does this too
    res["optuna_version"] = optuna.__version__
    res["optuna_import_seconds"] = time.perf_counter() - t0
    {"floor": run_floor, "loopml": run_loopml, "mlflow": run_mlflow}[args.mode](optuna, args, res)
    ru = resource.getrusage(resource.RUSAGE_SELF)
    res["process_cpu_seconds"] = ru.ru_utime + ru.ru_stime
    res["ru_maxrss_mb"] = ru.ru_maxrss / 1024
    res["process_seconds_in_python"] = time.perf_counter() - T_START
    res["pid"] = os.getpid()
    args.out.write_text(json.dumps(res))
    return 0


if __name__ == "__main__":
    sys.exit(main())
