"""Side-by-side drift benchmark: loopml's ``detect_drift`` vs Evidently's data-drift preset,
with a NumPy/SciPy floor, and loopml's repeated check against a stored reference profile.

Usage::

    bash benchmarks/setup_evidently.sh       # once: Evidently 0.7 in benchmarks/.venv-evidently
    python benchmarks/drift.py [--sizes 10000,100000,1000000]
                               [--only evidently,loopml,loopml-profile,floor]
                               [--repeat N] [--reuse old.json] [--json out.json]

One generated data set per size (20 numeric and 5 categorical columns, 5 numeric and 2
categorical of them shifted; reference and current of the same number of rows, Parquet files
written once from a fixed seed) serves every tool: Evidently (``Report([DataDriftPreset()])``,
column types declared, in ``benchmarks/.venv-evidently``), loopml (``detect_drift(ref, cur)``)
and the floor (the same statistics written directly with NumPy and SciPy). Each measurement is
a fresh process that imports the tool, reads both files with pandas and runs the check: wall and
CPU seconds of the read and of the check, the process's wall, CPU and peak RSS, the data's size
in memory, and the columns the tool flagged, compared with the shifted ones.

``loopml-profile`` is the check a deployment repeats: once per size, a fresh process reads the
reference, builds ``profile_reference(ref)`` and writes its ``to_dict()`` as JSON (the "profile
build", measured once); each check then reads only that JSON and the current file, and runs
``detect_drift(ReferenceProfile.from_dict(d), cur)``; its data size is the current frame's. See
``benchmarks/README.md``.
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
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

# benchmarks/ is on sys.path when this file is run as a script.
from _drift_data import SHIFTED, describe

from features import median_of
from serving import wait_idle
from tracking import clean_env, log, render_table, tail

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
EVIDENTLY_VENV = HERE / ".venv-evidently"
WORKER = HERE / "_drift_worker.py"
TOOLS = ("evidently", "loopml", "loopml-profile", "floor")
LABELS = {
    "evidently": "Evidently",
    "loopml": "loopml",
    "loopml-profile": "loopml-profile",
    "floor": "floor",
}
SIZES = (10_000, 100_000, 1_000_000)
STEP_TIMEOUT = 3600.0
NOISY_CORES = 0.25  # CPU other processes used during a step above which it is flagged


# -- processes ---------------------------------------------------------------------------------
def python_for(tool: str) -> str:
    """The interpreter that measures ``tool``."""
    return str(EVIDENTLY_VENV / "bin" / "python") if tool == "evidently" else sys.executable


def import_error(tool: str) -> str | None:
    """Why ``tool`` cannot run here, or None."""
    if tool == "evidently" and not (EVIDENTLY_VENV / "bin" / "python").exists():
        return "run `bash benchmarks/setup_evidently.sh` first"
    module = {
        "evidently": "evidently",
        "loopml": "loopml.monitoring",
        "loopml-profile": "loopml.monitoring",
        "floor": "scipy",
    }[tool]
    proc = subprocess.run(
        [python_for(tool), "-c", f"import {module}"],
        env=clean_env({}),
        capture_output=True,
        text=True,
    )
    return None if proc.returncode == 0 else proc.stderr.strip().splitlines()[-1]


def machine_cpu_seconds() -> float:
    """CPU seconds all cores have spent since boot running processes and interrupts."""
    ticks = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:9]]
    return (ticks[0] + ticks[1] + ticks[2] + ticks[5] + ticks[6] + ticks[7]) / os.sysconf(
        "SC_CLK_TCK"
    )


def run_worker(
    name: str, args_: list[str], python: str, scratch: Path, worker: Path = WORKER
) -> dict[str, Any]:
    """One worker process to completion: its JSON result plus the process's wall seconds, CPU
    seconds and peak RSS as the kernel reports them (``os.wait4``), and the CPU that other
    processes used meanwhile."""
    out, log_path = scratch / "out" / f"{name}.json", scratch / "logs" / f"{name}.log"
    out.parent.mkdir(exist_ok=True)
    log_path.parent.mkdir(exist_ok=True)
    out.unlink(missing_ok=True)
    cmd = [python, str(worker), *args_, "--out", str(out)]
    m0 = machine_cpu_seconds()
    t0 = time.perf_counter()
    with open(log_path, "wb") as logf:
        proc = subprocess.Popen(
            cmd, env=clean_env({}), cwd=scratch, stdout=logf, stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )  # fmt: skip
        while True:
            pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
            if pid:
                break
            if time.perf_counter() - t0 > STEP_TIMEOUT:
                proc.kill()
            time.sleep(0.01)
    wall = time.perf_counter() - t0
    other = max(0.0, machine_cpu_seconds() - m0 - usage.ru_utime - usage.ru_stime) / wall
    code = os.waitstatus_to_exitcode(status)
    if code != 0 or not out.exists():
        raise RuntimeError(f"`{shlex.join(cmd)}` exited with {code}:\n{tail(log_path)}")
    result: dict[str, Any] = json.loads(out.read_text())
    result["process"] = {
        "cmd": shlex.join(cmd),
        "wall_seconds": wall,
        "cpu_seconds": usage.ru_utime + usage.ru_stime,
        "user_seconds": usage.ru_utime,
        "sys_seconds": usage.ru_stime,
        "ru_maxrss_mb": usage.ru_maxrss * 1.024e-3,
        "other_cpu_cores": other,
        "log": str(log_path),
    }
    return result


def settle(freed_mb: float, args: argparse.Namespace, minimum: float | None = None) -> Any:
    """Flush dirty pages and pause after a step that freed memory, so that every step faults
    its memory in from the same (cold) state: this VM's host takes freed guest memory back, and
    touching it again soon after is much cheaper than later (see the Memory notes of the
    datasets and feature-store benchmarks in ``benchmarks/README.md``)."""
    t0 = time.perf_counter()
    os.sync()
    synced = time.perf_counter() - t0
    pause = max(args.settle if minimum is None else minimum, freed_mb / 1e3 * args.settle_per_gb)
    time.sleep(pause)
    return {"freed_mb": freed_mb, "sync_seconds": synced, "pause_seconds": pause}


def measure(
    tool: str, rows: int, files: dict[str, str], scratch: Path, args: argparse.Namespace, run: int
) -> dict[str, Any]:
    """One tool's check of one size in a fresh process."""
    res: dict[str, Any] = {}
    if args.idle_wait:
        res["idle_before"] = wait_idle(args.idle_wait)
    worker_args = ["--mode", "check", "--tool", tool]
    if tool == "loopml-profile":  # the stored profile instead of the reference data
        worker_args += ["--profile", files["profile"], "--cur", files["current"]]
    else:
        worker_args += ["--ref", files["reference"], "--cur", files["current"]]
    name = f"{tool}-{rows}" + (f"-run{run + 1}" if args.repeat > 1 else "")
    res.update(run_worker(name, worker_args, python_for(tool), scratch))
    return res


def build_profile(
    rows: int, files: dict[str, str], scratch: Path, args: argparse.Namespace
) -> dict[str, Any]:
    """loopml-profile's one-off step of one size in a fresh process: read the reference,
    ``profile_reference`` it, write the profile's JSON to ``files["profile"]``."""
    res: dict[str, Any] = {}
    if args.idle_wait:
        res["idle_before"] = wait_idle(args.idle_wait)
    worker_args = ["--mode", "profile", "--ref", files["reference"]]
    worker_args += ["--profile", files["profile"]]
    res.update(run_worker(f"profile-build-{rows}", worker_args, sys.executable, scratch))
    return res


# -- results -----------------------------------------------------------------------------------
def reuse(results: dict[str, Any], path: Path) -> None:
    """Fill the tools (and sizes) not measured now from an earlier ``--json`` file made from
    the same data."""
    old = json.loads(path.read_text())
    if json.dumps(old.get("data"), sort_keys=True) != json.dumps(results["data"], sort_keys=True):
        log(f"--reuse {path}: made from other data than this run's; not used")
        return
    for tool, by_size in old.get("tools", {}).items():
        for size, res in by_size.items():
            if int(size) in results["sizes"] and size not in results["tools"].get(tool, {}):
                results["tools"].setdefault(tool, {})[size] = res
                results.setdefault("reused", {}).setdefault(tool, []).append(int(size))
    if "reused" in results:
        results["reused_from"] = {"path": str(path), "meta": old.get("meta")}


def get(res: dict[str, Any] | None, *path: str) -> Any:
    """``res[path[0]][path[1]]...`` or None."""
    for key in path:
        if not isinstance(res, dict):
            return None
        res = res.get(key)
    return res


def _f(v: Any, spec: str) -> str:
    return "" if v is None else format(v, spec)


def _x(a: Any, b: Any) -> str:
    ok = isinstance(a, int | float) and isinstance(b, int | float) and b
    return f"{a / b:.2f}x" if ok else ""


def memory_ratio(res: dict[str, Any]) -> float | None:
    """(peak RSS - RSS after the imports) / the data's size in memory: what reading and checking
    held at most, in units of the data."""
    peak, base, data = (get(res, k) for k in ("peak_rss_mb", "rss_after_import_mb", "data_mb"))
    if None in (peak, base, data) or not data:
        return None
    return (peak - base) / data


def check_memory_ratio(res: dict[str, Any]) -> str:
    """(peak RSS during the check - RSS when it started) / the data's size: what the check held
    beyond the data it was given. Known when the check set the process's peak; otherwise ``<=``
    the same figure taken from the read's peak."""
    peak, read_peak = get(res, "peak_rss_mb"), get(res, "peak_after_read_mb")
    start, data = get(res, "rss_after_read_mb"), get(res, "data_mb")
    if None in (peak, read_peak, start, data) or not data:
        return ""
    ratio = (peak - start) / data
    return f"{ratio:.2f}" if peak > read_peak else f"<={ratio:.2f}"


def flag_text(res: dict[str, Any]) -> str:
    """'yes' if the tool flagged exactly the shifted columns, else what it missed and added."""
    flagged = set(res.get("flagged", []))
    missed, extra = sorted(set(SHIFTED) - flagged), sorted(flagged - set(SHIFTED))
    if not missed and not extra:
        return f"yes ({len(flagged)})"
    parts = [f"missed {','.join(missed)}"] if missed else []
    parts += [f"extra {','.join(extra)}"] if extra else []
    return "NO: " + "; ".join(parts)


def margins(tool: str, res: dict[str, Any]) -> tuple[float | None, float | None]:
    """(smallest score among the shifted columns, largest among the others): the effect size
    each tool's verdict rests on."""
    key = {"evidently": "score", "loopml": "effect_size", "loopml-profile": "effect_size"}.get(
        tool
    )
    scores = {}
    for name, col in res.get("columns", {}).items():
        if tool == "floor":
            scores[name] = col.get("wasserstein_norm", col.get("jensenshannon"))
        else:
            scores[name] = col.get(key)
    shifted = [v for c, v in scores.items() if c in SHIFTED and v is not None]
    others = [v for c, v in scores.items() if c not in SHIFTED and v is not None]
    return (min(shifted) if shifted else None, max(others) if others else None)


def build_tables(results: dict[str, Any]) -> dict[str, list[list[str]]]:
    """The tables: times and memory (one row per size and tool), ratios (one per size) and
    verdicts (one per size and tool)."""
    out: dict[str, list[list[str]]] = {
        "times": [],
        "memory": [],
        "ratios": [],
        "profile_ratios": [],
        "profile_build": [],
        "verdicts": [],
    }
    for size in results["sizes"]:
        key = str(size)
        by_tool = {t: results["tools"].get(t, {}).get(key) for t in TOOLS}
        for tool, res in by_tool.items():
            if not res:
                continue
            reused = "*" if size in results.get("reused", {}).get(tool, []) else ""
            head = [f"{size:,}", LABELS[tool] + reused]
            if "error" in res:
                out["times"].append([*head, "failed", *[""] * 6])
                continue
            out["times"].append(
                [
                    *head,
                    _f(get(res, "process", "wall_seconds"), ".2f"),
                    _f(get(res, "process", "cpu_seconds"), ".2f"),
                    _f(get(res, "import", "wall_seconds"), ".2f"),
                    _f(get(res, "read", "wall_seconds"), ".3f"),
                    _f(get(res, "check", "wall_seconds"), ".3f"),
                    _f(get(res, "total", "wall_seconds"), ".3f"),
                    _f(get(res, "check", "cpu_seconds"), ".3f"),
                ]
            )
            out["memory"].append(
                [
                    *head,
                    _f(get(res, "process", "ru_maxrss_mb"), ",.0f"),
                    _f(get(res, "rss_after_import_mb"), ",.0f"),
                    _f(get(res, "peak_after_read_mb"), ",.0f"),
                    _f(get(res, "data_mb"), ",.1f"),
                    _f(memory_ratio(res), ".2f"),
                    check_memory_ratio(res),
                ]
            )
            flagged = set(res.get("flagged", []))
            lo, hi = margins(tool, res)
            out["verdicts"].append(
                [
                    *head,
                    "yes" if flagged == set(SHIFTED) else "NO",
                    ", ".join(sorted(set(SHIFTED) - flagged)),
                    ", ".join(sorted(flagged - set(SHIFTED))),
                    _f(lo, ".3f"),
                    _f(hi, ".3f"),
                ]
            )
        ev, lm, lp, fl = (by_tool[t] for t in TOOLS)

        def r(a: Any, b: Any, *path: str) -> str:
            return _x(get(a, *path), get(b, *path)) if a and b else ""

        out["ratios"].append(
            [
                f"{size:,}",
                r(ev, lm, "check", "wall_seconds"),
                r(ev, lm, "total", "wall_seconds"),
                r(ev, lm, "process", "wall_seconds"),
                r(ev, lm, "process", "cpu_seconds"),
                r(ev, lm, "process", "ru_maxrss_mb"),
                r(lm, fl, "check", "wall_seconds"),
                r(lm, fl, "total", "wall_seconds"),
                r(lm, fl, "process", "wall_seconds"),
                r(lm, fl, "process", "cpu_seconds"),
                r(lm, fl, "process", "ru_maxrss_mb"),
            ]
        )
        if lp:
            out["profile_ratios"].append(
                [
                    f"{size:,}",
                    r(ev, lp, "check", "wall_seconds"),
                    r(ev, lp, "total", "wall_seconds"),
                    r(ev, lp, "process", "wall_seconds"),
                    r(ev, lp, "process", "cpu_seconds"),
                    r(ev, lp, "process", "ru_maxrss_mb"),
                    r(lp, lm, "check", "wall_seconds"),
                    r(lp, lm, "total", "wall_seconds"),
                    r(lp, lm, "process", "wall_seconds"),
                    r(lp, lm, "process", "cpu_seconds"),
                    r(lp, lm, "process", "ru_maxrss_mb"),
                ]
            )
        build = get(lp, "build")
        if build:
            reused = "*" if size in results.get("reused", {}).get("loopml-profile", []) else ""
            if "error" in build:
                out["profile_build"].append([f"{size:,}{reused}", "failed", *[""] * 9])
                continue
            ref_file_mb = get(results, "generate", key, "file_mb", "reference")
            out["profile_build"].append(
                [
                    f"{size:,}{reused}",
                    _f(get(build, "process", "wall_seconds"), ".2f"),
                    _f(get(build, "process", "cpu_seconds"), ".2f"),
                    _f(get(build, "read", "wall_seconds"), ".3f"),
                    _f(get(build, "profile", "wall_seconds"), ".3f"),
                    _f(get(build, "write", "wall_seconds"), ".3f"),
                    _f(get(build, "process", "ru_maxrss_mb"), ",.0f"),
                    _f(get(build, "data_mb"), ",.1f"),
                    _f(get(build, "json_bytes"), ",d"),
                    _f(
                        get(build, "json_bytes") / (ref_file_mb * 1e6)
                        if ref_file_mb and get(build, "json_bytes")
                        else None,
                        ".4f",
                    ),
                    _f(break_even(build, lm, lp), ".1f"),
                ]
            )
    return out


def break_even(build: dict[str, Any], lm: dict[str, Any] | None, lp: dict[str, Any] | None) -> Any:
    """The profile build's read + profile + write over what one check saves by using the
    profile (loopml's read + check - loopml-profile's): after how many checks it has paid off.
    None when the check saves nothing."""
    cost = get(build, "total", "wall_seconds")
    full, short = get(lm, "total", "wall_seconds"), get(lp, "total", "wall_seconds")
    if None in (cost, full, short) or full <= short:
        return None
    return cost / (full - short)


def profile_agreement(results: dict[str, Any]) -> dict[str, Any]:
    """Per size, loopml-profile's report against loopml's: whether the verdicts are the same
    and the largest absolute difference of each figure (they should be identical: a check
    against a DataFrame profiles it the same way)."""
    out: dict[str, Any] = {}
    for size in results["sizes"]:
        lm = get(results, "tools", "loopml", str(size))
        lp = get(results, "tools", "loopml-profile", str(size))
        if not lm or not lp or "error" in lm or "error" in lp:
            continue
        diffs: dict[str, float] = {}
        same = lm.get("flagged") == lp.get("flagged")
        for name, a in lm.get("columns", {}).items():
            b = lp.get("columns", {}).get(name)
            if b is None:
                same = False
                continue
            same = same and a.get("drifted") == b.get("drifted")
            for k in ("statistic", "p_value", "effect_size"):
                x, y = a.get(k), b.get(k)
                if isinstance(x, int | float) and isinstance(y, int | float):
                    diffs[k] = max(diffs.get(k, 0.0), abs(x - y))
                elif x != y:
                    diffs[k] = float("inf")
        out[str(size)] = {"same_verdicts": same, "max_abs_diff": diffs}
    return out


def report(results: dict[str, Any]) -> list[str]:
    """Print the tables and notes; return the problems (loopml's or the floor's verdicts that
    are not exactly the shifted columns, failed steps)."""
    meta = results["meta"]
    print(
        f"\nDrift: {meta['date']}, {meta['nproc']} cores, {meta['mem_gib']} GiB, Python "
        f"{meta['python']}, loopml {meta.get('loopml_version', '?')} at "
        f"{meta.get('commit', '?')}{' (src/ changed)' if meta.get('src_changed') else ''}, "
        f"Evidently {meta.get('evidently_version', '?')} (pandas "
        f"{meta.get('evidently_pandas', '?')}), pandas {meta.get('pandas_version', '?')}"
    )
    tables = build_tables(results)
    reused = ""
    if results.get("reused"):
        reused = f"; * reused from {results['reused_from']['path']}"
        old = results["reused_from"].get("meta") or {}
        print(
            f"Reused (*): {', '.join(sorted(results['reused']))} from "
            f"{results['reused_from']['path']}, measured {old.get('date', '?')} with loopml at "
            f"{old.get('commit', '?')}{' (src/ changed)' if old.get('src_changed') else ''}"
        )
    header = [
        "rows", "tool", "process s", "process CPU s", "import s", "read s", "check s",
        "read+check s", "check CPU s",
    ]  # fmt: skip
    render_table(
        "Drift check, times: reference and current of `rows` rows each, 25 columns",
        header,
        tables["times"],
        "process: the fresh process from start to exit (interpreter, imports, read, check) and "
        "its user+sys CPU; read: both Parquet files into pandas (loopml-profile: the profile's "
        "JSON and the current file); check: the tool's call and reading its verdicts "
        f"(loopml-profile: from_dict and detect_drift){reused}",
    )
    header = [
        "rows", "tool", "peak RSS MB", "after imports MB", "peak after read MB", "data MB",
        "(peak-imports)/data", "check's own/data",
    ]  # fmt: skip
    render_table(
        "Drift check, memory",
        header,
        tables["memory"],
        "peak RSS: the process's ru_maxrss; data: memory_usage(deep=True) of both frames in "
        "that process (loopml-profile: the current frame only); check's own: (peak RSS during "
        "the check - RSS when it started) / data",
    )
    header = [
        "rows", "E/l check", "E/l read+check", "E/l process", "E/l CPU", "E/l peak RSS",
        "l/f check", "l/f read+check", "l/f process", "l/f CPU", "l/f peak RSS",
    ]  # fmt: skip
    render_table(
        "Ratios: Evidently / loopml (E/l) and loopml / floor (l/f)",
        header,
        tables["ratios"],
        "times and peak RSS divided as they stand: above 1, the first is slower or bigger",
    )
    if tables["profile_ratios"]:
        header = [
            "rows", "E/lp check", "E/lp read+check", "E/lp process", "E/lp CPU",
            "E/lp peak RSS", "lp/l check", "lp/l read+check", "lp/l process", "lp/l CPU",
            "lp/l peak RSS",
        ]  # fmt: skip
        render_table(
            "Ratios: Evidently / loopml-profile (E/lp) and loopml-profile / loopml (lp/l)",
            header,
            tables["profile_ratios"],
            "below 1 in lp/l: the check against the stored profile is faster or smaller than "
            "loopml's check against the reference data",
        )
    if tables["profile_build"]:
        header = [
            "rows", "process s", "process CPU s", "read s", "profile s", "JSON write s",
            "peak RSS MB", "reference MB", "JSON bytes", "JSON/file", "break-even checks",
        ]  # fmt: skip
        render_table(
            "loopml-profile: the profile build, once per size (a fresh process)",
            header,
            tables["profile_build"],
            "read: the reference Parquet file; profile: profile_reference(ref); JSON write: "
            "json.dumps(profile.to_dict()) to a file; reference MB: the reference frame in "
            "memory; JSON/file: the JSON's size over the reference Parquet file's; "
            "break-even: the build's read+profile+write over what one check saves (loopml's "
            f"read+check - loopml-profile's){reused}",
        )
    header = ["rows", "tool", "exactly the shifted", "missed", "also flagged", "min shifted",
              "max other"]  # fmt: skip
    render_table(
        f"Verdicts: the shifted columns are {', '.join(SHIFTED)}",
        header,
        tables["verdicts"],
        "min shifted / max other: the score the verdict rests on (Wasserstein distance / "
        "reference std, Jensen-Shannon distance; loopml's effect_size), threshold 0.1",
    )
    problems = []
    agreement = profile_agreement(results)
    results["profile_agreement"] = agreement
    for size, agree in agreement.items():
        diffs = ", ".join(f"{k} {v:.3g}" for k, v in agree["max_abs_diff"].items())
        line = (
            f"loopml-profile vs loopml at {int(size):,} rows: "
            f"{'same' if agree['same_verdicts'] else 'DIFFERENT'} verdicts; largest "
            f"difference: {diffs}"
        )
        if agree["same_verdicts"]:
            print(line)
        else:
            problems.append(line)
    for tool in TOOLS:
        for size, res in results["tools"].get(tool, {}).items():
            build = res.get("build")
            if build and "error" in build:
                problems.append(f"profile build at {int(size):,} rows failed: {build['error']}")
            noisy = get(build, "process", "other_cpu_cores")
            if noisy is not None and noisy > NOISY_CORES:
                print(
                    f"NOTE: other processes used {noisy:.2f} cores while the profile of "
                    f"{int(size):,} rows was built: rerun before quoting it"
                )
            if "error" in res:
                problems.append(f"{tool} at {int(size):,} rows failed: {res['error']}")
                continue
            text = flag_text(res)
            if not text.startswith("yes"):
                line = f"{LABELS[tool]} at {int(size):,} rows: {text}"
                if tool == "evidently":
                    print(f"NOTE: {line}")
                else:
                    problems.append(line)
            noisy = get(res, "process", "other_cpu_cores")
            if noisy is not None and noisy > NOISY_CORES:
                print(
                    f"NOTE: other processes used {noisy:.2f} cores while {tool} ran at "
                    f"{int(size):,} rows: rerun before quoting it"
                )
            if tool == "evidently":
                count = res.get("drifted_count_metric")
                if count is not None and int(count) != len(res.get("flagged", [])):
                    problems.append(
                        f"Evidently at {int(size):,} rows: DriftedColumnsCount says {count}, "
                        f"the ValueDrift metrics {len(res['flagged'])}: the verdicts read "
                        "from its output are wrong"
                    )
    for p in problems:
        print(f"WARNING: {p}")
    return problems


def versions(results: dict[str, Any]) -> dict[str, Any]:
    """The tools' versions from the workers' results."""
    out: dict[str, Any] = {}
    for tool, by_size in results["tools"].items():
        for res in by_size.values():
            v = res.get("versions") or {}
            if tool == "evidently" and v:
                out["evidently_version"] = v.get("evidently")
                out["evidently_pandas"] = v.get("pandas")
                out["evidently_numpy"] = v.get("numpy")
            elif tool in ("loopml", "loopml-profile") and v:
                out["loopml_version"] = v.get("loopml")
                out["pandas_version"] = v.get("pandas")
                out["numpy_version"] = v.get("numpy")
            elif tool == "floor" and v:
                out["scipy_version"] = v.get("scipy")
    return out


def git_state() -> dict[str, Any]:
    """The commit, the files under src/ changed since, and hashes of the drift and profile
    modules as they were measured (another change may be under way)."""

    def git(*a: str) -> str:
        proc = subprocess.run(["git", *a], cwd=REPO, capture_output=True, text=True)
        return proc.stdout

    def sha256(name: str) -> str | None:
        path = REPO / "src" / "loopml" / "monitoring" / name
        return hashlib.sha256(path.read_bytes()).hexdigest() if path.exists() else None

    changed = [line[3:] for line in git("status", "--porcelain", "--", "src").splitlines()]
    return {
        "commit": git("rev-parse", "--short", "HEAD").strip(),
        "src_changed": changed,
        "drift_module_sha256": sha256("_drift.py"),
        "profile_module_sha256": sha256("_profile.py"),
    }


# -- main --------------------------------------------------------------------------------------
def main(argv: list[str] | None = None) -> int:
    """Run the benchmark."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default=",".join(map(str, SIZES)), help="rows of each sample")
    ap.add_argument("--only", default=",".join(TOOLS), help=f"subset of {','.join(TOOLS)}")
    ap.add_argument(
        "--repeat",
        type=int,
        default=1,
        help="runs of every step, the tools' order reversed in every other run; the table "
        "shows medians",
    )
    ap.add_argument("--reuse", type=Path, help="an earlier --json: its figures for tools not run")
    ap.add_argument(
        "--idle-wait",
        type=float,
        default=30.0,
        help="before each step, wait up to S s for an idle CPU (0: no)",
    )
    ap.add_argument("--settle", type=float, default=3.0, help="pause before each step (s)")
    ap.add_argument(
        "--settle-per-gb",
        type=float,
        default=2.5,
        help="... at least this many seconds per GB the previous step's process held",
    )
    ap.add_argument("--settle-start", type=float, default=10.0, help="pause before the first step")
    ap.add_argument("--workdir", type=Path, help="where the scratch dir goes (default: $TMPDIR)")
    ap.add_argument("--json", type=Path, help="write every raw number here")
    ap.add_argument("--keep", action="store_true", help="keep the scratch dir (data, logs)")
    args = ap.parse_args(argv)
    tools = [t.strip() for t in args.only.split(",") if t.strip()]
    if not tools or set(tools) - set(TOOLS):
        ap.error(f"--only takes some of {','.join(TOOLS)}")
    sizes = sorted({int(s.replace("_", "")) for s in args.sizes.split(",") if s.strip()})
    tools = [t for t in TOOLS if t in tools]
    skipped = {}
    for tool in list(tools):
        if why := import_error(tool):
            log(f"{tool}: skipped: {why}")
            skipped[tool] = why
            tools.remove(tool)

    if args.workdir:
        args.workdir.mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(prefix="loopml-bench-drift-", dir=args.workdir))
    t0 = time.perf_counter()
    results: dict[str, Any] = {"data": describe(), "sizes": sizes, "tools": {}, "skipped": skipped}
    runs: dict[str, dict[str, list[dict[str, Any]]]] = {t: {} for t in tools}
    builds: dict[str, dict[str, Any]] = {}  # loopml-profile's profile build, per size
    load_before = os.getloadavg()
    state = git_state()
    failed = False
    try:
        files = {}
        for size in sizes:
            log(f"generating reference and current of {size:,} rows in {scratch}")
            gen = run_worker(
                f"generate-{size}",
                ["--mode", "generate", "--rows", str(size), "--dir", str(scratch)],
                sys.executable,
                scratch,
            )
            results.setdefault("generate", {})[str(size)] = gen
            files[size] = gen["paths"]
        log(f"sync and a {args.settle_start:g} s pause, then the first step")
        settle(0.0, args, args.settle_start)
        for size in sizes:
            if "loopml-profile" in tools:
                files[size]["profile"] = str(scratch / f"profile_{size}.json")
                log(f"loopml-profile: building the profile of {size:,} rows")
                try:
                    build = build_profile(size, files[size], scratch, args)
                except RuntimeError as exc:
                    log(f"loopml-profile: {exc}")
                    failed = True
                    build = {"error": str(exc).splitlines()[0]}
                builds[str(size)] = build
                took = get(build, "process", "wall_seconds")
                if took is not None:
                    log(f"loopml-profile: built in {took:.1f} s, {build['json_bytes']:,} bytes")
                build["settle_after"] = settle(get(build, "process", "ru_maxrss_mb") or 0, args)
            for r in range(args.repeat):
                for tool in tools if r % 2 == 0 else tools[::-1]:
                    log(f"{tool}: {size:,} rows, run {r + 1}/{args.repeat}")
                    try:
                        res = measure(tool, size, files[size], scratch, args, r)
                    except RuntimeError as exc:
                        log(f"{tool}: {exc}")
                        failed = True
                        res = {"error": str(exc).splitlines()[0]}
                    runs[tool].setdefault(str(size), []).append(res)
                    took = get(res, "process", "wall_seconds")
                    if took is not None:
                        log(f"{tool}: {took:.1f} s, flagged {', '.join(res['flagged'])}")
                    res["settle_after"] = settle(get(res, "process", "ru_maxrss_mb") or 0, args)
    finally:
        results["runs"] = runs
        results["tools"] = {
            t: {s: median_of(rs) for s, rs in by_size.items()} for t, by_size in runs.items()
        }
        for size_key, build in builds.items():  # with its checks, so that --reuse takes both
            results["tools"]["loopml-profile"].setdefault(size_key, {})["build"] = build
        if args.reuse:
            reuse(results, args.reuse)
        results["meta"] = {
            "date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
            **versions(results),
            **state,
            "nproc": os.cpu_count(),
            "mem_gib": round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1),
            "python": platform.python_version(),
            "platform": f"{platform.system()} {platform.release()} {platform.machine()}",
            "argv": sys.argv[1:],
            "loadavg_before": load_before,
            "loadavg_after": os.getloadavg(),
            "total_wall_seconds": time.perf_counter() - t0,
            "scratch": str(scratch),
        }
    problems = report(results)
    results["problems"] = problems
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(results, indent=2, default=str))
        print(f"raw numbers written to {args.json}")
    if args.keep or failed or problems:
        print(f"scratch kept in {scratch}")
    else:
        shutil.rmtree(scratch, ignore_errors=True)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
