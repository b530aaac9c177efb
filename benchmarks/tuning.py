"""Tuning benchmark (issue 10): 200 Optuna trials tracked as child runs, loopml vs MLflow.

Usage::

    bash benchmarks/setup_tuning.sh          # once: MLflow + Optuna + optuna-integration
    python benchmarks/tuning.py [--trials 200] [--repeat 3] [--json out.json]

The same cheap objective (one float, one int, one categorical param) runs 200 trials with
``RandomSampler(seed)`` in fresh processes (``_tuning_worker.py``): plain Optuna without
tracking (the floor, in each tool's interpreter), ``loopml.tune(..., sampler="random")`` on the
embedded default store, and Optuna with ``MLflowCallback`` (nested runs under one parent) on
MLflow's SQLite backend and, opted in, its file store. Overhead per trial = (timed wall - the
floor's timed wall in the same interpreter) / trials. See ``benchmarks/README.md``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import json
import os
import platform
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

# benchmarks/ is on sys.path when this file is run as a script.
from serving import _machine_cpu_seconds, wait_idle
from tracking import MLFLOW_VENV, clean_env, log, render_table, tail

HERE = Path(__file__).resolve().parent
WORKER = HERE / "_tuning_worker.py"
MLFLOW_PY = MLFLOW_VENV / "bin" / "python"
# What an objective that trains a scikit-learn model has imported before the study starts
# (and what Optuna's parameter importances import on first use).
PREIMPORT = "sklearn.ensemble"
TARGET_SPEC = 10.0  # issue 10: at least 10x less tracking overhead per trial than MLflow


def targets(tmp: Path) -> dict[str, dict[str, Any]]:
    """name -> interpreter, worker arguments, extra environment, and the floor it is held to.

    ``{state}`` in an argument or a value is replaced by a fresh directory for each process.
    """
    return {
        "floor (loopml python)": {
            "python": sys.executable,
            "args": ["floor"],
            "env": {},
            "floor": None,
        },
        "floor (MLflow venv)": {
            "python": str(MLFLOW_PY),
            "args": ["floor"],
            "env": {},
            "floor": None,
        },
        "loopml embedded": {
            "python": sys.executable,
            "args": ["loopml"],
            "env": {"LOOPML_HOME": "{state}/home"},
            "floor": "floor (loopml python)",
        },
        "MLflow sqlite": {
            "python": str(MLFLOW_PY),
            "args": ["mlflow", "--tracking-uri", "sqlite:///{state}/mlflow.db"],
            "env": {},
            "floor": "floor (MLflow venv)",
        },
        "loopml embedded, sklearn imported": {
            "python": sys.executable,
            "args": ["loopml", "--preimport", PREIMPORT],
            "env": {"LOOPML_HOME": "{state}/home"},
            "floor": "floor (loopml python)",
        },
        "MLflow sqlite, sklearn imported": {
            "python": str(MLFLOW_PY),
            "args": [
                "mlflow",
                "--preimport",
                PREIMPORT,
                "--tracking-uri",
                "sqlite:///{state}/m.db",
            ],
            "env": {},
            "floor": "floor (MLflow venv)",
        },
        "MLflow file store": {
            "python": str(MLFLOW_PY),
            "args": ["mlflow", "--tracking-uri", "file://{state}/mlruns"],
            # MLflow 3.x refuses the file store ("maintenance mode") unless opted in.
            "env": {"MLFLOW_ALLOW_FILE_STORE": "true"},
            "floor": "floor (MLflow venv)",
        },
    }


def pytest_running() -> list[str]:
    """Command lines of other engineers' test runs (``pytest -q``) on this machine."""
    proc = subprocess.run(["pgrep", "-af", "pytest -q"], capture_output=True, text=True)
    return [ln for ln in proc.stdout.splitlines() if ln.strip() and "pgrep" not in ln]


def run_one(
    name: str, spec: dict[str, Any], args: argparse.Namespace, scratch: Path, rep: int
) -> dict[str, Any]:
    """One worker process to completion: its JSON result, the process's wall seconds, the
    kernel's CPU and peak RSS for it (``os.wait4``) and the CPU other processes used."""
    state = scratch / f"{name.replace(' ', '_').replace('(', '').replace(')', '')}-{rep}"
    state.mkdir(parents=True)
    sub = {"{state}": str(state)}

    def fill(s: str) -> str:
        for k, v in sub.items():
            s = s.replace(k, v)
        return s

    out = state / "result.json"
    cmd = [spec["python"], str(WORKER), *[fill(a) for a in spec["args"]]]
    cmd += ["--out", str(out), "--trials", str(args.trials), "--seed", str(args.seed)]
    env = clean_env({k: fill(v) for k, v in spec["env"].items()})
    info: dict[str, Any] = {"target": name, "repeat": rep, "cmd": shlex.join(cmd)}
    if args.idle_wait:
        info["idle_before"] = wait_idle(args.idle_wait)
    info["pytest_running"] = pytest_running()
    m0 = sum(_machine_cpu_seconds())
    t0 = time.perf_counter()
    with open(state / "worker.log", "wb") as logf:
        proc = subprocess.Popen(
            cmd, env=env, cwd=state, stdout=logf, stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )  # fmt: skip
        _, status, usage = os.wait4(proc.pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(status)
    wall = time.perf_counter() - t0
    cpu = usage.ru_utime + usage.ru_stime
    info["process_wall_seconds"] = wall
    info["process_cpu_seconds_kernel"] = cpu
    info["process_maxrss_mb_kernel"] = usage.ru_maxrss / 1024
    info["other_cpu_cores"] = max(0.0, sum(_machine_cpu_seconds()) - m0 - cpu) / wall
    if proc.returncode != 0 or not out.exists():
        info["error"] = f"exit {proc.returncode}: {tail(state / 'worker.log', 12)}"
        log(f"{name} #{rep}: FAILED (state kept in {state})\n{info['error']}")
        return info
    info.update(json.loads(out.read_text()))
    info["log_tail"] = tail(state / "worker.log", 5)
    if not args.keep:
        shutil.rmtree(state, ignore_errors=True)
    log(
        f"{name} #{rep}: timed {info['timed_seconds']:.3f} s, process {wall:.2f} s, "
        f"other CPU {info['other_cpu_cores']:.2f} cores"
    )
    return info


def med(runs: list[dict[str, Any]], key: str) -> float | None:
    """Median of ``key`` over the runs that have it."""
    vals = [r[key] for r in runs if isinstance(r.get(key), int | float)]
    return statistics.median(vals) if vals else None


def summarise(
    results: dict[str, list[dict[str, Any]]], specs: dict[str, dict[str, Any]], trials: int
) -> dict[str, dict[str, Any]]:
    """Medians per target, the overhead per trial against its floor and the ratio to loopml."""
    summary: dict[str, dict[str, Any]] = {}
    for name, runs in results.items():
        ok = [r for r in runs if "error" not in r]
        s: dict[str, Any] = {"runs_ok": len(ok), "runs": len(runs)}
        for key in (
            "timed_seconds",
            "timed_cpu_seconds",
            "process_wall_seconds",
            "process_cpu_seconds_kernel",
            "peak_rss_mb",
            "process_maxrss_mb_kernel",
            "tool_import_seconds",
            "store_init_seconds",
            "setup_seconds",
            "steady_per_trial_ms",
            "tail_seconds",
            "importances_first_call_seconds",
            "importances_second_call_seconds",
            "other_cpu_cores",
        ):
            s[key] = med(ok, key)
        if ok:
            s["timed_seconds_all"] = [r["timed_seconds"] for r in ok]
        summary[name] = s
    for name, s in summary.items():
        floor = specs[name]["floor"]
        if floor is None:
            if s["timed_seconds"] is not None:
                s["per_trial_ms"] = s["timed_seconds"] / trials * 1000
            continue
        f = summary.get(floor, {})
        if s["timed_seconds"] is not None and f.get("timed_seconds") is not None:
            s["overhead_per_trial_ms"] = (s["timed_seconds"] - f["timed_seconds"]) / trials * 1000
            s["cpu_overhead_per_trial_ms"] = (
                (s["timed_cpu_seconds"] - f["timed_cpu_seconds"]) / trials * 1000
            )
            s["steady_overhead_per_trial_ms"] = s["steady_per_trial_ms"] - f["steady_per_trial_ms"]
    for name, s in summary.items():
        # Each MLflow row against the loopml row with the same imports.
        suffix = ", sklearn imported" if name.endswith(", sklearn imported") else ""
        lo = summary.get(f"loopml embedded{suffix}", {})
        for key, out in (
            ("overhead_per_trial_ms", "ratio_to_loopml"),
            ("steady_overhead_per_trial_ms", "steady_ratio_to_loopml"),
        ):
            o, base = s.get(key), lo.get(key)
            s[out] = o / base if o is not None and base else None
    return summary


def checks(results: dict[str, list[dict[str, Any]]], trials: int) -> list[str]:
    """Every process ran the same trials, and every tracked one stored a child run per trial
    with its params, its value, status FINISHED and the parent's id."""
    problems: list[str] = []
    reference: list[dict[str, Any]] | None = None
    for name, runs in results.items():
        for r in runs:
            tag = f"{name} #{r['repeat']}"
            if "error" in r:
                problems.append(f"{tag}: {r['error'].splitlines()[0]}")
                continue
            got = r["trials"]
            if len(got) != trials or any(t["state"] != "COMPLETE" for t in got):
                problems.append(f"{tag}: {len(got)} trials, not {trials} complete ones")
            if reference is None:
                reference = got
            elif got != reference:
                problems.append(f"MISMATCH: {tag} sampled other trials than the first process")
            if "stored" not in r:
                continue
            stored = r["stored"]
            if len(stored) != trials:
                problems.append(f"{tag}: {len(stored)} child runs stored, expected {trials}")
            if r.get("runs_in_experiment") != trials + 1:
                problems.append(f"{tag}: {r.get('runs_in_experiment')} runs in the experiment")
            if r.get("parent_status") != "FINISHED":
                problems.append(f"{tag}: parent run {r.get('parent_status')}")
            by_number = {t["number"]: t for t in got}
            bad = 0
            parents = {s["parent"] for s in stored}
            for s in stored:
                t = by_number.get(s["number"])
                if (
                    t is None
                    or s["status"] != "FINISHED"
                    or s["value"] != t["value"]
                    or s["params"] != {k: str(v) for k, v in t["params"].items()}
                ):
                    bad += 1
            if bad:
                problems.append(f"{tag}: {bad} child runs differ from their trial")
            if len(parents) != 1:
                problems.append(f"{tag}: child runs have {len(parents)} different parents")
    return problems


def slim(results: dict[str, list[dict[str, Any]]]) -> list[dict[str, Any]] | None:
    """Replace each process's trials and stored runs by a digest and counts, in place (the
    checks have compared them); return the first process's trials, kept once."""
    first: list[dict[str, Any]] | None = None
    for runs in results.values():
        for r in runs:
            if "trials" in r:
                first = first if first is not None else r["trials"]
                blob = json.dumps(r.pop("trials"), sort_keys=True).encode()
                r["trials_sha256"] = hashlib.sha256(blob).hexdigest()
            if "stored" in r:
                stored = r.pop("stored")
                r["stored_child_runs"] = len(stored)
                r["stored_finished"] = sum(x["status"] == "FINISHED" for x in stored)
    return first


def fmt(v: Any, spec: str) -> str:
    """A table cell; '-' for a missing value."""
    return "-" if v is None else spec.format(v)


def print_report(
    summary: dict[str, dict[str, Any]], meta: dict[str, Any], problems: list[str]
) -> None:
    """The table, the target's verdict and any problems."""
    n = meta["trials"]
    header = [
        "target",
        f"timed wall, {n} trials (s)",
        "per trial (ms)",
        "overhead / trial (ms)",
        "ratio to loopml",
        "CPU overhead / trial (ms)",
        "steady overhead / trial (ms)",
        "ratio",
        "process wall incl. readback (s)",
        "peak RSS (MB)",
    ]
    table = []
    for name, s in summary.items():
        per = s.get("per_trial_ms")
        if per is None and s.get("timed_seconds") is not None:
            per = s["timed_seconds"] / n * 1000
        table.append(
            [
                name,
                fmt(s.get("timed_seconds"), "{:,.3f}"),
                fmt(per, "{:,.2f}"),
                fmt(s.get("overhead_per_trial_ms"), "{:,.2f}"),
                fmt(s.get("ratio_to_loopml"), "{:,.1f}x"),
                fmt(s.get("cpu_overhead_per_trial_ms"), "{:,.2f}"),
                fmt(s.get("steady_overhead_per_trial_ms"), "{:,.2f}"),
                fmt(s.get("steady_ratio_to_loopml"), "{:,.1f}x"),
                fmt(s.get("process_wall_seconds"), "{:,.2f}"),
                fmt(s.get("peak_rss_mb"), "{:,.0f}"),
            ]
        )
    title = (
        f"Tuning: {n} trials as child runs | loopml {meta['loopml_version'] or '-'} vs MLflow "
        f"{meta['mlflow_version'] or '-'} + optuna-integration {meta['oi_version'] or '-'} | "
        f"Optuna {meta['optuna_versions']} | {meta['date']} | nproc={meta['nproc']} | "
        f"median of {meta['repeat']}"
    )
    caption = (
        "overhead / trial = (timed wall - the floor's timed wall in the same interpreter) / "
        "trials; ratio = overhead / loopml's with the same imports (>1: loopml's tracking costs "
        "less); steady = "
        "between the first and the last trial's start, against the floor's; peak RSS = VmHWM "
        "right after the timed call"
    )
    render_table(title, header, table, caption)
    for name, s in summary.items():
        if s.get("setup_seconds") is None:
            continue
        line = (
            f"{name}: timed {s['timed_seconds']:.3f} s = {s['setup_seconds'] * 1000:.1f} ms "
            f"before trial 0 + {s['steady_per_trial_ms']:.2f} ms x {n - 1} trials + "
            f"{s['tail_seconds'] * 1000:.1f} ms after the last trial's start"
        )
        if s.get("store_init_seconds") is not None:
            line += (
                f"; untimed: import {s['tool_import_seconds']:.2f} s, store + experiment "
                f"creation {s['store_init_seconds']:.2f} s"
            )
        walls = ", ".join(f"{v:.3f}" for v in s.get("timed_seconds_all", []))
        print(f"{line}; timed walls {walls} s")
    f = summary.get("floor (loopml python)", {})
    if f.get("importances_first_call_seconds") is not None:
        print(
            "Optuna's get_param_importances on these trials (floor process, after its timer): "
            f"first call {f['importances_first_call_seconds']:.3f} s (imports scikit-learn, "
            f"SciPy, pandas), second call {f['importances_second_call_seconds']:.3f} s"
        )
    ratio = summary.get("MLflow sqlite", {}).get("ratio_to_loopml")
    verdict = "-" if ratio is None else ("PASS" if ratio >= TARGET_SPEC else "FAIL")
    print(
        f"target: loopml's tracking overhead per trial at most 1/{TARGET_SPEC:.0f} of MLflow's "
        f"(SQLite backend): {fmt(ratio, '{:.1f}x')} -> {verdict}"
    )
    pre_l = summary.get("loopml embedded, sklearn imported", {}).get("overhead_per_trial_ms")
    pre_m = summary.get("MLflow sqlite, sklearn imported", {}).get("overhead_per_trial_ms")
    if pre_l and pre_m is not None:
        pre = pre_m / pre_l
        print(
            f"  the same, both with {PREIMPORT} imported before the study (as by an objective "
            f"that trains a scikit-learn model): {pre:.1f}x -> "
            f"{'PASS' if pre >= TARGET_SPEC else 'FAIL'}"
        )
    steady = summary.get("MLflow sqlite", {}).get("steady_ratio_to_loopml")
    verdict = "-" if steady is None else ("PASS" if steady >= TARGET_SPEC else "FAIL")
    print(
        f"  the same, steady state (between trials, without the set-up before the first "
        f"trial and the summary after the last): {fmt(steady, '{:.1f}x')} -> {verdict}"
    )
    busy = [
        f"{name} #{r['repeat']} ({r['other_cpu_cores']:.2f} cores)"
        for name, runs in meta["_results"].items()
        for r in runs
        if r.get("other_cpu_cores", 0) > 0.25
    ]
    if busy:
        print(f"NOTE: other processes used > 0.25 cores during: {', '.join(busy)}")
    if any(r.get("pytest_running") for runs in meta["_results"].values() for r in runs):
        print("NOTE: a `pytest -q` run was active during some measurements (contention)")
    for p in problems:
        print(f"WARNING: {p}")
    if not problems:
        print(
            "checks: identical trials in every process; every tracked process stored one "
            "FINISHED child run per trial with its params and value under one parent"
        )


def main(argv: list[str] | None = None) -> int:
    """Run every target ``--repeat`` times, the order rotated each repeat, and report."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--trials", type=int, default=200)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument(
        "--only",
        default="",
        help="subset of targets: floor,loopml,mlflow-sqlite,mlflow-file,preimport",
    )
    ap.add_argument("--idle-wait", type=float, default=60.0, help="wait up to S s for idle CPU")
    ap.add_argument("--json", type=Path, help="write every raw number here")
    ap.add_argument("--keep", action="store_true", help="keep the scratch directories")
    args = ap.parse_args(argv)

    scratch = Path(tempfile.mkdtemp(prefix="loopml-bench-tuning-"))
    specs = targets(scratch)
    short = {
        "floor": ["floor (loopml python)", "floor (MLflow venv)"],
        "loopml": ["loopml embedded", "floor (loopml python)"],
        "mlflow-sqlite": ["MLflow sqlite", "floor (MLflow venv)"],
        "mlflow-file": ["MLflow file store", "floor (MLflow venv)"],
        "preimport": [
            "loopml embedded, sklearn imported",
            "MLflow sqlite, sklearn imported",
            "floor (loopml python)",
            "floor (MLflow venv)",
        ],
    }
    wanted = [w.strip() for w in args.only.split(",") if w.strip()]
    if any(w not in short for w in wanted):
        ap.error(f"--only takes some of {','.join(short)}")
    names = [n for n in specs if not wanted or any(n in short[w] for w in wanted)]
    if not MLFLOW_PY.exists():
        log(f"{MLFLOW_PY} not found: run `bash benchmarks/setup_tuning.sh`; MLflow skipped")
        names = [n for n in names if specs[n]["python"] != str(MLFLOW_PY)]

    load_before = os.getloadavg()
    results: dict[str, list[dict[str, Any]]] = {n: [] for n in names}
    t0 = time.perf_counter()
    for rep in range(args.repeat):
        order = names[rep % len(names) :] + names[: rep % len(names)]
        for name in order:
            results[name].append(run_one(name, specs[name], args, scratch, rep))
    summary = summarise(results, specs, args.trials)
    problems = checks(results, args.trials)

    def first(key: str, mode: str) -> Any:
        found = (r.get(key) for rs in results.values() for r in rs if r.get("mode") == mode)
        return next((v for v in found if v is not None), None)

    meta = {
        "date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "trials": args.trials,
        "seed": args.seed,
        "repeat": args.repeat,
        "loopml_version": first("version", "loopml"),
        "mlflow_version": first("version", "mlflow"),
        "oi_version": first("optuna_integration_version", "mlflow"),
        "callback": first("callback", "mlflow"),
        "optuna_versions": "/".join(
            sorted({r["optuna_version"] for rs in results.values() for r in rs if "trials" in r})
        ),
        "nproc": os.cpu_count(),
        "mem_gib": round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1),
        "python": platform.python_version(),
        "platform": f"{platform.system()} {platform.machine()}",
        "commit": subprocess.run(
            ["git", "-C", str(HERE), "log", "-1", "--format=%h %s"],
            capture_output=True,
            text=True,
        ).stdout.strip(),
        "load_before": load_before,
        "load_after": os.getloadavg(),
        "total_wall_seconds": time.perf_counter() - t0,
        "argv": sys.argv[1:],
        "_results": results,
    }
    print_report(summary, meta, problems)
    if args.json:
        meta.pop("_results")
        trials = slim(results)
        payload = {"meta": meta, "summary": summary, "problems": problems, "runs": results}
        payload["trials_of_first_process"] = trials
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(payload, indent=2))
        print(f"raw numbers written to {args.json}")
    if not args.keep and not any("error" in r for rs in results.values() for r in rs):
        shutil.rmtree(scratch, ignore_errors=True)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
