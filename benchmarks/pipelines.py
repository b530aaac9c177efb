"""Pipelines benchmark: the overhead of a 20-step pipeline, cold and fully cached, loopml vs
Prefect 3.

Usage::

    bash benchmarks/setup_prefect.sh          # once: Prefect 3 in benchmarks/.venv-prefect
    python benchmarks/pipelines.py [--repeat 5] [--extra-repeat 2] [--only loopml,prefect]
                                   [--json benchmarks/results/pipelines.json] [--profile]

The DAG (``_pipelines_steps.py``: a chain, a fan-out of 8, a two-level fan-in, a diamond; 20
steps, each trivial work on a DataFrame of 1,000 rows or on a few numbers) runs in a fresh
process and a fresh state folder per repetition (``_pipelines_worker.py``): loopml's
``pipeline.run()`` on the default thread executor and the embedded SQLite store in a new
``LOOPML_HOME``, and the same step bodies as Prefect ``@task``s submitted in a ``@flow`` on
Prefect's temporary local server (SQLite in a new ``PREFECT_HOME``, no ``PREFECT_API_URL``),
with persisted results and a cache policy of the task's source and its inputs. Each process
measures, one after the other: the import, the store's start (database or temporary server),
the first run (cold: all 20 steps run), the same run again (cached: all 20 are cache hits), a
run with another seed (cold, warm process) and that again (cached). The steps' own work is the
same DAG as plain calls in the same process (the floor); overhead per step = (wall - floor) / 20
for a run that executes the steps, wall / 20 for a fully cached one.

Extra targets (``--extra-repeat`` processes each; cold and cached only for the process
executors): Prefect with the documented ``INPUTS + TASK_SOURCE`` policy (its input hashes are
pickles; see ``docs/benchmarks.md``), loopml's ``processes`` executor (a fresh process per
step) and Prefect's ``ProcessPoolTaskRunner`` (a pool of processes, reused).
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

# benchmarks/ is on sys.path when this file is run as a script.
from drift import run_worker

from serving import wait_idle
from tracking import log, render_table

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
WORKER = HERE / "_pipelines_worker.py"
PREFECT_VENV = HERE / ".venv-prefect"
PREFECT_PY = PREFECT_VENV / "bin" / "python"
N_STEPS = 20
PHASES = ("cold", "cached", "cold_warm", "cached_warm")
EXECUTES = {"cold": True, "cached": False, "cold_warm": True, "cached_warm": False}
LABELS = {"cold": "cold", "cached": "cached", "cold_warm": "cold, warm", "cached_warm": "cached 2"}
NOISY_CORES = 0.25  # CPU other processes used during a measured process above which it is flagged

# name -> tool, worker arguments, the loopml target it is compared with, main or extra
TARGETS: dict[str, dict[str, Any]] = {
    "loopml": {"tool": "loopml", "args": [], "versus": None, "extra": False},
    "Prefect": {"tool": "prefect", "args": [], "versus": "loopml", "extra": False},
    "Prefect, INPUTS + TASK_SOURCE": {
        "tool": "prefect",
        "args": ["--prefect-cache", "inputs"],
        "versus": "loopml",
        "extra": True,
    },
    "loopml, processes": {
        "tool": "loopml",
        "args": ["--executor", "processes", "--phases", "cold,cached"],
        "versus": None,
        "extra": True,
    },
    "Prefect, process pool": {
        "tool": "prefect",
        "args": ["--executor", "processes", "--phases", "cold,cached"],
        "versus": "loopml, processes",
        "extra": True,
    },
}
SHORT = {
    "loopml": ["loopml"],
    "prefect": ["Prefect"],
    "prefect-inputs": ["Prefect, INPUTS + TASK_SOURCE"],
    "processes": ["loopml, processes", "Prefect, process pool"],
}


def python_for(tool: str) -> str:
    """The interpreter that runs ``tool``."""
    return str(PREFECT_PY) if tool == "prefect" else sys.executable


def measure(name: str, rep: int, scratch: Path, args: argparse.Namespace) -> dict[str, Any]:
    """One worker process of target ``name`` in a fresh folder; its result or its error."""
    spec = TARGETS[name]
    slug = name.lower().replace(",", "").replace("+", "").replace(" ", "-").replace("--", "-")
    folder = scratch / f"{slug}-{rep}"
    folder.mkdir(parents=True)
    info: dict[str, Any] = {"target": name, "repeat": rep}
    if args.idle_wait:
        info["idle_before"] = wait_idle(args.idle_wait)
    worker_args = [spec["tool"], "--home", str(folder / "home"), *spec["args"]]
    try:
        info.update(run_worker(name, worker_args, python_for(spec["tool"]), folder, WORKER))
    except RuntimeError as exc:
        info["error"] = str(exc)
        log(f"{name} #{rep}: FAILED (kept in {folder})\n{exc}")
        return info
    phases = " ".join(f"{p} {v['wall_seconds']:.3f} s" for p, v in info["phases"].items())
    log(
        f"{name} #{rep}: import {info['import']['wall_seconds']:.2f} s, init "
        f"{info['init']['wall_seconds']:.2f} s, {phases}; process "
        f"{info['process']['wall_seconds']:.1f} s, other CPU "
        f"{info['process']['other_cpu_cores']:.2f} cores"
    )
    if not args.keep:
        shutil.rmtree(folder, ignore_errors=True)
    return info


def med(values: list[Any]) -> float | None:
    """The median of the numbers among ``values``."""
    nums = [v for v in values if isinstance(v, int | float)]
    return statistics.median(nums) if nums else None


def overhead_per_step(run: dict[str, Any], phase: str) -> float | None:
    """(wall - the steps' own work) / 20 for a run that executes them, wall / 20 for a cached
    one; the own work is the floor measured in the same process."""
    p = run.get("phases", {}).get(phase)
    if p is None:
        return None
    floor = run["floor"]["median_wall_seconds"] if EXECUTES[phase] else 0.0
    return (p["wall_seconds"] - floor) / N_STEPS


def summarise(results: dict[str, list[dict[str, Any]]]) -> dict[str, dict[str, Any]]:
    """Medians per target over its processes, and the ratios to the loopml target it faces."""
    summary: dict[str, dict[str, Any]] = {}
    for name, runs in results.items():
        ok = [r for r in runs if "error" not in r]
        s: dict[str, Any] = {"runs_ok": len(ok), "runs": len(runs)}
        s["version"] = next((r.get("version") for r in ok), None)
        s["import_seconds"] = med([r["import"]["wall_seconds"] for r in ok])
        s["init_seconds"] = med([r["init"]["wall_seconds"] for r in ok])
        s["libraries_import_seconds"] = med([r["libraries"]["wall_seconds"] for r in ok])
        s["floor_seconds"] = med([r["floor"]["median_wall_seconds"] for r in ok])
        s["process_wall_seconds"] = med([r["process"]["wall_seconds"] for r in ok])
        s["process_cpu_seconds"] = med([r["process"]["cpu_seconds"] for r in ok])
        s["peak_rss_mb"] = med([r["process"]["ru_maxrss_mb"] for r in ok])
        s["other_cpu_cores_max"] = max((r["process"]["other_cpu_cores"] for r in ok), default=None)
        for phase in PHASES:
            have = [r for r in ok if phase in r["phases"]]
            if not have:
                continue
            s[phase] = {
                "wall_seconds": med([r["phases"][phase]["wall_seconds"] for r in have]),
                "cpu_seconds": med([r["phases"][phase]["cpu_seconds"] for r in have]),
                "overhead_per_step_ms": 1000 * med([overhead_per_step(r, phase) for r in have]),
                "wall_seconds_all": [r["phases"][phase]["wall_seconds"] for r in have],
                "step_states": [r["phases"][phase].get("step_states") for r in have],
            }
        summary[name] = s
    for name, s in summary.items():
        versus = summary.get(TARGETS[name]["versus"] or "")
        if not versus:
            continue
        s["ratios"] = {}
        for phase in PHASES:
            a, b = s.get(phase), versus.get(phase)
            if not a or not b:
                continue
            s["ratios"][phase] = {
                "wall": a["wall_seconds"] / b["wall_seconds"],
                "overhead_per_step": a["overhead_per_step_ms"] / b["overhead_per_step_ms"],
            }
        for key in ("import_seconds", "init_seconds", "process_wall_seconds"):
            if s.get(key) and versus.get(key):
                s["ratios"][key] = s[key] / versus[key]
    return summary


def checks(results: dict[str, list[dict[str, Any]]]) -> tuple[list[str], list[str]]:
    """(problems, notes): every run gave the floor's result; every cold run ran all 20 steps
    and every cached run had 20 cache hits, as the tool's store recorded them."""
    problems: list[str] = []
    notes: list[str] = []
    for name, runs in results.items():
        for r in runs:
            tag = f"{name} #{r['repeat']}"
            if "error" in r:
                problems.append(f"{tag}: {r['error'].splitlines()[0]}")
                continue
            noisy = r["process"]["other_cpu_cores"]
            if noisy > NOISY_CORES:
                notes.append(f"{tag}: other processes used {noisy:.2f} cores meanwhile")
            threads = "--executor" not in TARGETS[name]["args"]
            for phase, p in r["phases"].items():
                if not p.get("result_matches_floor"):
                    problems.append(
                        f"{tag} {phase}: result {p.get('result')!r} is not the floor's"
                    )
                states = p.get("step_states") or {}
                want = ("SUCCEEDED", "Completed") if EXECUTES[phase] else ("CACHED", "Cached")
                hits = sum(states.get(w, 0) for w in want)
                if hits != N_STEPS or p.get("steps") != N_STEPS:
                    line = f"{tag} {phase}: step states {states}, not {N_STEPS} x {want[0]}"
                    if name == "Prefect, INPUTS + TASK_SOURCE" and not EXECUTES[phase]:
                        notes.append(line + " (expected: pickled inputs hash differently)")
                    else:
                        problems.append(line)
                calls = p.get("body_calls_in_process")
                if threads and calls != (N_STEPS if EXECUTES[phase] else 0):
                    notes.append(f"{tag} {phase}: {calls} step bodies ran in the process")
    return problems, notes


def _f(v: Any, spec: str) -> str:
    return "-" if v is None else format(v, spec)


def print_report(
    summary: dict[str, dict[str, Any]], meta: dict[str, Any], problems: list[str], notes: list[str]
) -> None:
    """The figures, the ratios, and what the checks found."""
    shown = ("cold", "cached", "cold_warm")  # cached_warm is in the JSON
    header = ["target", "import s", "store start s"]
    header += [h for phase in shown for h in (LABELS[phase] + " s", "/step ms")]
    header += ["floor ms", "process s", "peak RSS MB"]
    table = []
    for name, s in summary.items():
        row = [name, _f(s["import_seconds"], ".2f"), _f(s["init_seconds"], ".2f")]
        for phase in shown:
            p = s.get(phase)
            row += [_f(p and p["wall_seconds"], ".3f"), _f(p and p["overhead_per_step_ms"], ".2f")]
        row += [
            _f(s["floor_seconds"] and s["floor_seconds"] * 1000, ".2f"),
            _f(s["process_wall_seconds"], ".1f"),
            _f(s["peak_rss_mb"], ",.0f"),
        ]
        table.append(row)
    render_table(
        f"Pipelines: 20 steps, 1,000 rows | loopml {meta['loopml_version']} at {meta['commit']}"
        f" vs Prefect {meta['prefect_version']} | {meta['date']} | nproc={meta['nproc']} | "
        f"median of {meta['repeat']} processes ({meta['extra_repeat']} for the extra rows)",
        header,
        table,
        "/step = (wall - floor) / 20 for a run that executes the steps, wall / 20 for a cached "
        "one; floor = the 20 bodies as plain calls in the same process; store start: loopml's "
        "SQLite database, Prefect's temporary server; import and store start are in no run's "
        "figure; process = the whole fresh process",
    )
    header = ["target / its loopml row"]
    header += [h for phase in shown for h in (LABELS[phase], "/step")]
    header += ["import", "process"]
    table = []
    for name, s in summary.items():
        r = s.get("ratios")
        if not r:
            continue
        row = [f"{name} / {TARGETS[name]['versus']}"]
        for phase in shown:
            got = r.get(phase, {})
            row += [_f(got.get("wall"), ".1f"), _f(got.get("overhead_per_step"), ".1f")]
        row += [_f(r.get("import_seconds"), ".2f"), _f(r.get("process_wall_seconds"), ".1f")]
        table.append(row)
    if not table:
        table.append(["(no pair measured)"] + ["-"] * (len(header) - 1))
    render_table(
        "Ratios: Prefect / loopml (above 1: Prefect takes longer)",
        header,
        table,
        "process: the whole fresh process (interpreter, imports, floor, store start, the runs, "
        "the checks' read-back, exit)",
    )
    for note in notes:
        print(f"NOTE: {note}")
    for p in problems:
        print(f"WARNING: {p}")
    if not problems:
        print(
            "checks: every run returned the floor's result; every cold run ran 20 steps and "
            "every cached run had 20 cache hits, as each tool's store recorded them (except "
            "where noted)"
        )


def profile_loopml(scratch: Path) -> dict[str, Any]:
    """One more loopml process with cProfile around each run: the top functions."""
    import io
    import pstats

    folder = scratch / "profile"
    folder.mkdir()
    stem = folder / "loopml"
    worker_args = ["loopml", "--home", str(folder / "home"), "--profile", str(stem)]
    run_worker("profile", worker_args, sys.executable, folder, WORKER)
    out: dict[str, Any] = {}
    for phase in ("cold", "cached", "cold_warm"):
        buf = io.StringIO()
        stats = pstats.Stats(f"{stem}.{phase}.pstats", stream=buf)
        stats.strip_dirs().sort_stats("cumulative").print_stats(35)
        stats.sort_stats("tottime").print_stats(20)
        out[phase] = buf.getvalue()
        print(f"\n--- cProfile of loopml's {phase} run ---\n{out[phase]}")
    return out


def git_state() -> dict[str, Any]:
    """The commit, the changed files under src/, and a hash of loopml's pipelines package as
    measured (others edit the tree meanwhile)."""

    def git(*a: str) -> str:
        return subprocess.run(["git", *a], cwd=REPO, capture_output=True, text=True).stdout

    digest = hashlib.sha256()
    for path in sorted((REPO / "src" / "loopml" / "pipelines").glob("*.py")):
        digest.update(path.name.encode() + path.read_bytes())
    return {
        "commit": git("rev-parse", "--short", "HEAD").strip(),
        "subject": git("log", "-1", "--format=%s").strip(),
        "src_changed": [ln[3:] for ln in git("status", "--porcelain", "--", "src").splitlines()],
        "pipelines_package_sha256": digest.hexdigest(),
    }


def main(argv: list[str] | None = None) -> int:
    """Run every target's processes, the order rotated each repetition, and report."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=5, help="processes per main target")
    ap.add_argument("--extra-repeat", type=int, default=2, help="processes per extra target")
    ap.add_argument("--only", default="", help=f"some of {','.join(SHORT)}")
    ap.add_argument("--idle-wait", type=float, default=30.0, help="wait up to S s for idle CPU")
    ap.add_argument("--json", type=Path, default=HERE / "results" / "pipelines.json")
    ap.add_argument("--profile", action="store_true", help="also cProfile one loopml process")
    ap.add_argument("--keep", action="store_true", help="keep the scratch folders")
    args = ap.parse_args(argv)
    wanted = [w.strip() for w in args.only.split(",") if w.strip()]
    if any(w not in SHORT for w in wanted):
        ap.error(f"--only takes some of {','.join(SHORT)}")
    names = [n for n in TARGETS if not wanted or any(n in SHORT[w] for w in wanted)]
    names = [n for n in names if (args.extra_repeat if TARGETS[n]["extra"] else args.repeat)]
    if not PREFECT_PY.exists():
        log(f"{PREFECT_PY} not found: run `bash benchmarks/setup_prefect.sh`; Prefect skipped")
        names = [n for n in names if TARGETS[n]["tool"] != "prefect"]

    scratch = Path(tempfile.mkdtemp(prefix="loopml-bench-pipelines-"))
    state_before = git_state()
    load_before = os.getloadavg()
    t0 = time.perf_counter()
    results: dict[str, list[dict[str, Any]]] = {n: [] for n in names}
    rounds = max([args.repeat] + [args.extra_repeat])
    for rep in range(rounds):
        due = [
            n for n in names if rep < (args.extra_repeat if TARGETS[n]["extra"] else args.repeat)
        ]
        order = due[rep % len(due) :] + due[: rep % len(due)] if due else []
        for name in order:
            results[name].append(measure(name, rep, scratch, args))
    summary = summarise(results)
    problems, notes = checks(results)
    state_after = git_state()
    if state_after["pipelines_package_sha256"] != state_before["pipelines_package_sha256"]:
        problems.append("src/loopml/pipelines changed while the benchmark ran: rerun")

    def first(tool: str, *path: str) -> Any:
        for name in names:
            if TARGETS[name]["tool"] != tool:
                continue
            for r in results[name]:
                v: Any = r
                for key in path:
                    v = v.get(key) if isinstance(v, dict) else None
                if v is not None:
                    return v
        return None

    meta = {
        "date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "repeat": args.repeat,
        "extra_repeat": args.extra_repeat,
        "loopml_version": first("loopml", "version"),
        "prefect_version": first("prefect", "version"),
        "python": {"loopml": first("loopml", "python"), "prefect": first("prefect", "python")},
        "pandas": {
            "loopml": first("loopml", "libraries", "pandas"),
            "prefect": first("prefect", "libraries", "pandas"),
        },
        "numpy": {
            "loopml": first("loopml", "libraries", "numpy"),
            "prefect": first("prefect", "libraries", "numpy"),
        },
        "nproc": os.cpu_count(),
        "mem_gib": round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1),
        "platform": f"{platform.system()} {platform.machine()}",
        **state_before,
        "load_before": load_before,
        "load_after": os.getloadavg(),
        "total_wall_seconds": time.perf_counter() - t0,
        "argv": sys.argv[1:],
    }
    print_report(summary, meta, problems, notes)
    payload: dict[str, Any] = {
        "meta": meta,
        "summary": summary,
        "problems": problems,
        "notes": notes,
        "runs": results,
    }
    if args.profile and "loopml" in names:
        payload["profile"] = profile_loopml(scratch)
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(payload, indent=2, default=str))
    print(f"raw numbers written to {args.json}")
    if not args.keep and not problems:
        shutil.rmtree(scratch, ignore_errors=True)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
