"""A/B analysis benchmark: loopml's ``analyze`` vs the same analysis written with pandas, SciPy
and statsmodels, on one generated Parquet file of unit-level exposure rows per size.

Usage::

    python benchmarks/abtest.py [--rows 1000000,10000000] [--only loopml,pandas]
                                [--repeat N] [--no-single] [--json out.json] [--keep]

The data (``_abtest_data.py``, fixed seed): one row per unit, 3 variants (control, a, b, equal
split), ``converted`` 0/1 (10%, +0.5 point in a), ``revenue`` (gamma, +0.2% in b) and its
pre-period covariate ``revenue_pre``. The methods: frequentist, sequential (mSPRT), bayesian,
and frequentist with CUPED (``covariates={"revenue": "revenue_pre"}``), over 2 metrics and 2
comparisons each. For each tool and size, fresh processes (``_abtest_worker.py``):

- *all*: one process runs the four methods one after the other (loopml: four ``analyze``
  calls, each reading the file; pandas: one ``pd.read_parquet``, then the four computations of
  ``_abtest_pandas.py``): the issue's "analysis (all methods)";
- *single* (unless ``--no-single``): one process per method, the method alone (pandas: read
  + that method), so that each method's time and peak memory include its first-call costs.

Wall and CPU seconds of each step, RSS and peak RSS (the process's VmHWM and the kernel's
``ru_maxrss``), the data's size (Parquet bytes, Arrow bytes, the pandas frame), and a check that
both tools give the same p-values (1e-6 relative), probabilities to beat control (0.01: the
Beta-Binomial ones are Monte Carlo, with different seeds) and verdicts. The issue's targets:
all methods at 10M rows under 5 s and at least 5x faster than pandas. See
``benchmarks/README.md``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

# benchmarks/ is on sys.path when this file is run as a script.
from _abtest_data import describe
from _abtest_worker import METHODS, module_hashes
from drift import _f, get, median_of, settle
from drift import run_worker as drift_run_worker

from serving import wait_idle
from tracking import clean_env, log, render_table

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
WORKER = HERE / "_abtest_worker.py"
TOOLS = ("loopml", "pandas")
LABELS = {"loopml": "loopml", "pandas": "pandas+SciPy"}
METHOD_LABELS = {
    "frequentist": "frequentist",
    "sequential": "sequential",
    "bayesian": "bayesian",
    "cuped": "freq.+CUPED",
}
SIZES = (1_000_000, 10_000_000)
TARGET_ROWS = 10_000_000
TARGET_SECONDS = 5.0
TARGET_RATIO = 5.0
P_RTOL = 1e-6  # p-values: relative difference
PROB_ATOL = 0.01  # probabilities to beat control: absolute difference
STEP_TIMEOUT = 3600.0
NOISY_CORES = 0.25  # CPU other processes used during a step above which it is flagged


# -- processes ---------------------------------------------------------------------------------
def import_error(tool: str) -> str | None:
    """Why ``tool`` cannot run here, or None."""
    module = {"loopml": "loopml.abtest", "pandas": "scipy, statsmodels, pandas"}[tool]
    proc = subprocess.run(
        [sys.executable, "-c", f"import {module}"], env=clean_env({}), capture_output=True,
        text=True,
    )  # fmt: skip
    return None if proc.returncode == 0 else proc.stderr.strip().splitlines()[-1]


def run_worker(name: str, args_: list[str], scratch: Path) -> dict[str, Any]:
    """One measured step in a fresh process (the drift benchmark's runner, this worker)."""
    return drift_run_worker(name, args_, sys.executable, scratch, worker=WORKER)


def measure(
    tool: str, methods: list[str], rows: int, path: str, scratch: Path, args: argparse.Namespace,
    run: int,
) -> dict[str, Any]:  # fmt: skip
    """``methods`` of ``tool`` on one size in a fresh process."""
    res: dict[str, Any] = {}
    if args.idle_wait:
        res["idle_before"] = wait_idle(args.idle_wait)
    which = "all" if len(methods) > 1 else methods[0]
    name = f"{tool}-{which}-{rows}" + (f"-run{run + 1}" if args.repeat > 1 else "")
    worker_args = ["--mode", "run", "--tool", tool, "--data", path]
    res.update(run_worker(name, [*worker_args, "--methods", ",".join(methods)], scratch))
    return res


# -- results -----------------------------------------------------------------------------------
def _x(a: Any, b: Any) -> str:
    ok = isinstance(a, int | float) and isinstance(b, int | float) and b
    return f"{a / b:.1f}x" if ok else ""


def single_figures(res: dict[str, Any] | None, method: str) -> dict[str, Any]:
    """A one-method process: the analysis (pandas: read + method), its CPU, the peak RSS and
    the process's wall."""
    if not res or "error" in res:
        return {}
    return {
        "wall": get(res, "analysis", "wall_seconds"),
        "cpu": get(res, "analysis", "cpu_seconds"),
        "peak": get(res, "process", "ru_maxrss_mb"),
        "process": get(res, "process", "wall_seconds"),
        "step": get(res, "steps", method, "wall_seconds"),
    }


def build_tables(results: dict[str, Any]) -> dict[str, list[list[str]]]:
    """The tables: the all-methods process and the single-method processes per size, loopml
    against pandas, and the steps of the all-methods process."""
    out: dict[str, list[list[str]]] = {"all": [], "single": [], "steps": [], "data": []}
    for size in results["sizes"]:
        key = str(size)
        gen = get(results, "generate", key) or {}
        frame = get(results, "tools", "pandas", key, "all", "frame_mb")
        out["data"].append(
            [
                f"{size:,}",
                _f(gen.get("file_bytes"), ",d"),
                _f(gen.get("arrow_bytes", 0) / 1e6 if gen else None, ",.1f"),
                _f(frame, ",.1f"),
                " / ".join(f"{v:,}" for v in (gen.get("units") or {}).values()),
            ]
        )
        lm = get(results, "tools", "loopml", key, "all")
        pd_ = get(results, "tools", "pandas", key, "all")
        figs = {}
        for tool, res in (("loopml", lm), ("pandas", pd_)):
            figs[tool] = {
                "wall": get(res, "analysis", "wall_seconds"),
                "cpu": get(res, "analysis", "cpu_seconds"),
                "peak": get(res, "process", "ru_maxrss_mb"),
                "process": get(res, "process", "wall_seconds"),
            }
        a, b = figs["loopml"], figs["pandas"]
        out["all"].append(
            [
                f"{size:,}",
                _f(a["wall"], ".3f"),
                _f(b["wall"], ".3f"),
                _x(b["wall"], a["wall"]),
                _f(a["cpu"], ".2f"),
                _f(b["cpu"], ".2f"),
                _x(b["cpu"], a["cpu"]),
                _f(a["peak"], ",.0f"),
                _f(b["peak"], ",.0f"),
                _x(b["peak"], a["peak"]),
                _f(a["process"], ".2f"),
                _f(b["process"], ".2f"),
            ]
        )
        for m in METHODS:
            a = single_figures(get(results, "tools", "loopml", key, m), m)
            b = single_figures(get(results, "tools", "pandas", key, m), m)
            if a or b:
                out["single"].append(
                    [
                        f"{size:,}",
                        METHOD_LABELS[m],
                        _f(a.get("wall"), ".3f"),
                        _f(b.get("wall"), ".3f"),
                        _x(b.get("wall"), a.get("wall")),
                        _f(a.get("cpu"), ".2f"),
                        _f(b.get("cpu"), ".2f"),
                        _f(a.get("peak"), ",.0f"),
                        _f(b.get("peak"), ",.0f"),
                        _x(b.get("peak"), a.get("peak")),
                        _f(a.get("process"), ".2f"),
                        _f(b.get("process"), ".2f"),
                    ]
                )
        for m in ("import", "read", *METHODS):
            cells = []
            for res in (lm, pd_):
                step = get(res, m) if m in ("import", "read") else get(res, "steps", m)
                cells += [
                    _f(get(step, "wall_seconds"), ".3f"),
                    _f(get(step, "cpu_seconds"), ".3f"),
                    _f(get(step, "peak_after_mb"), ",.0f"),
                ]
            if any(cells):
                label = METHOD_LABELS.get(m, m)
                out["steps"].append([f"{size:,}", label, *cells])
    return out


def _rel(a: float, b: float) -> float:
    """|a - b| relative to the larger; infinite when either is NaN (a NaN result is wrong)."""
    if a != a or b != b:
        return float("inf")
    if a == b:
        return 0.0
    return abs(a - b) / max(abs(a), abs(b))


def compare(lm: dict[str, Any], pd_: dict[str, Any]) -> dict[str, Any]:
    """Per method, loopml's outputs against pandas': the largest relative difference of the
    p-values (raw and Holm-adjusted), of the SRM p-value and of the CUPED variance reduction,
    the largest absolute difference of the probabilities to beat control, and the verdicts."""
    out: dict[str, Any] = {}
    for m, a in (lm.get("outputs") or {}).items():
        b = (pd_.get("outputs") or {}).get(m)
        if b is None:
            continue
        rows_b = {(r["metric"], r["variant"]): r for r in b["rows"]}
        p_rel, prob_abs, other_rel, values = 0.0, 0.0, 0.0, []
        missing = [
            f"{r['metric']}/{r['variant']} (pandas only)"
            for r in b["rows"]
            if (r["metric"], r["variant"]) not in {(x["metric"], x["variant"]) for x in a["rows"]}
        ]
        for ra in a["rows"]:
            rb = rows_b.get((ra["metric"], ra["variant"]))
            if rb is None:
                missing.append(f"{ra['metric']}/{ra['variant']}")
                continue
            for k in ("p_value", "p_adjusted", "prob_beat_control", "variance_reduction"):
                if (k in ra) != (k in rb):  # one side lacks a figure the other gives
                    missing.append(f"{ra['metric']}/{ra['variant']} {k}")
                elif k == "prob_beat_control" and k in ra:
                    prob_abs = max(prob_abs, abs(ra[k] - rb[k]))
                elif k == "variance_reduction" and k in ra:
                    other_rel = max(other_rel, _rel(ra[k], rb[k]))
                elif k in ra:
                    p_rel = max(p_rel, _rel(ra[k], rb[k]))
            k = "prob_beat_control" if m == "bayesian" else "p_value"
            values.append(
                {
                    "metric": ra["metric"],
                    "variant": ra["variant"],
                    "what": k,
                    "loopml": ra.get(k),
                    "pandas": rb.get(k),
                    "loopml_significant": ra.get("significant"),
                    "pandas_significant": rb.get("significant"),
                }
            )
        other_rel = max(other_rel, _rel(a["srm_p"], b["srm_p"]))
        va, vb = a["verdict"], b["verdict"]
        same_verdict = (va["decision"], va["variant"]) == (vb["decision"], vb["variant"])
        same_sig = all(v["loopml_significant"] == v["pandas_significant"] for v in values)
        ok = (
            not missing
            and p_rel <= P_RTOL
            and prob_abs <= PROB_ATOL
            and other_rel <= P_RTOL
            and same_verdict
            and same_sig
        )
        out[m] = {
            "agree": ok,
            "max_p_rel_diff": p_rel,
            "max_prob_abs_diff": prob_abs,
            "max_srm_or_reduction_rel_diff": other_rel,
            "same_verdict": same_verdict,
            "same_significance": same_sig,
            "missing_rows": missing,
            "verdict_loopml": va,
            "verdict_pandas": vb,
            "values": values,
        }
    return out


def agreement(results: dict[str, Any]) -> dict[str, Any]:
    """``compare`` for every size, on the all-methods processes' outputs, and a check that
    each one-method process gave what the all-methods process of its tool did (within the
    same tolerances: DuckDB's parallel sums need not add in the same order every time)."""
    out: dict[str, Any] = {}
    for size in results["sizes"]:
        key = str(size)
        lm = get(results, "tools", "loopml", key, "all")
        pd_ = get(results, "tools", "pandas", key, "all")
        entry: dict[str, Any] = {}
        if lm and pd_ and "error" not in lm and "error" not in pd_:
            entry["methods"] = compare(lm, pd_)
        stable = []
        for tool in TOOLS:
            whole = get(results, "tools", tool, key, "all", "outputs") or {}
            for m in METHODS:
                single = get(results, "tools", tool, key, m, "outputs", m)
                if single is not None and m in whole:
                    same = compare({"outputs": {m: single}}, {"outputs": {m: whole[m]}})
                    if not same[m]["agree"]:
                        stable.append(f"{tool} {m}")
        entry["single_differs_from_all"] = stable
        out[key] = entry
    return out


def report(results: dict[str, Any]) -> list[str]:
    """Print the tables, the agreement and the targets; return the problems."""
    meta = results["meta"]
    print(
        f"\nA/B analysis: {meta['date']}, {meta['nproc']} cores, {meta['mem_gib']} GiB, Python "
        f"{meta['python']}, loopml {meta.get('loopml_version', '?')} at "
        f"{meta.get('commit', '?')}{' (src/ changed)' if meta.get('src_changed') else ''}, "
        f"pandas {meta.get('pandas_version', '?')}, SciPy {meta.get('scipy_version', '?')}, "
        f"statsmodels {meta.get('statsmodels_version', '?')}, DuckDB "
        f"{meta.get('duckdb_version', '?')}"
        + (f"; medians of {meta['repeat']} runs" if meta.get("repeat", 1) > 1 else "")
    )
    tables = build_tables(results)
    render_table(
        "Data: one Parquet file per size (unit, variant, converted, revenue, revenue_pre)",
        ["rows", "Parquet bytes", "Arrow MB", "pandas frame MB", "units control / a / b"],
        tables["data"],
        "Arrow: the table's nbytes as written (5 columns); pandas frame: memory_usage(deep=True) "
        "of the 4 columns the pandas version reads",
    )
    header = [
        "rows", "loopml s", "pandas s", "speed-up", "loopml CPU", "pandas CPU", "CPU x",
        "loopml MB", "pandas MB", "memory x", "loopml proc s", "pandas proc s",
    ]  # fmt: skip
    render_table(
        "All methods (frequentist, sequential, bayesian, frequentist+CUPED), one process each",
        header,
        tables["all"],
        "s: the analysis, from the first call to the last result (loopml: 4 analyze calls, "
        "each reading the file; pandas: read_parquet once + the 4 computations); CPU: its "
        "user+sys seconds; MB: the process's peak RSS (ru_maxrss); proc: interpreter start "
        "to exit; x: pandas / loopml",
    )
    if tables["single"]:
        header = [
            "rows", "method", "loopml s", "pandas s", "speed-up", "loopml CPU", "pandas CPU",
            "loopml MB", "pandas MB", "memory x", "loopml proc s", "pandas proc s",
        ]  # fmt: skip
        render_table(
            "One method per process",
            header,
            tables["single"],
            "s: loopml's analyze call; pandas: read_parquet + the method (both include their "
            "first-call costs); MB: the process's peak RSS (ru_maxrss); x: pandas / loopml",
        )
    header = [
        "rows", "step", "loopml s", "loopml CPU", "loopml peak MB", "pandas s", "pandas CPU",
        "pandas peak MB",
    ]  # fmt: skip
    render_table(
        "Steps of the all-methods processes",
        header,
        tables["steps"],
        "import: the tool's modules; read: pd.read_parquet (loopml reads inside each call); "
        "peak: the process's VmHWM after the step",
    )
    problems: list[str] = []
    agree = agreement(results)
    results["agreement"] = agree
    for size in results["sizes"]:
        entry = agree.get(str(size), {})
        for m, c in entry.get("methods", {}).items():
            vl, vp = c["verdict_loopml"], c["verdict_pandas"]
            line = (
                f"{int(size):,} rows, {METHOD_LABELS[m]}: "
                f"{'agree' if c['agree'] else 'DISAGREE'}: p-values within "
                f"{c['max_p_rel_diff']:.1e} relative, prob_beat within "
                f"{c['max_prob_abs_diff']:.4f}, SRM/variance reduction within "
                f"{c['max_srm_or_reduction_rel_diff']:.1e}; verdict loopml "
                f"{verdict_text(vl)}, pandas {verdict_text(vp)}"
            )
            print(line)
            if not c["agree"]:
                problems.append(line)
            for v in c["values"]:
                print(
                    f"    {v['metric']:>9} {v['variant']:>2} {v['what']:<17} "
                    f"loopml {_f(v['loopml'], '.6g')}  pandas {_f(v['pandas'], '.6g')}"
                    f"{'  significant' if v['loopml_significant'] else ''}"
                )
        for item in entry.get("single_differs_from_all", []):
            problems.append(f"{int(size):,} rows: {item} alone differs from the all-methods run")
    targets = target_lines(results)
    results["targets"] = targets
    if targets:
        print("\nIssue 9 targets at 10,000,000 rows (all methods):")
        for t in targets:
            mark = {True: "PASS", False: "FAIL", None: "n/a "}[t["met"]]
            print(f"  {mark}  {t['text']}")
    for tool in TOOLS:
        for size, by_run in results["tools"].get(tool, {}).items():
            for which, res in by_run.items():
                if "error" in res:
                    problems.append(f"{tool} {which} at {int(size):,} rows failed: {res['error']}")
                    continue
                noisy = get(res, "process", "other_cpu_cores")
                if noisy is not None and noisy > NOISY_CORES:
                    print(
                        f"NOTE: other processes used {noisy:.2f} cores while {tool} {which} ran "
                        f"at {int(size):,} rows: rerun before quoting it"
                    )
    if meta.get("nproc") != 2:
        print(f"NOTE: the targets are for 2 cores; this machine has {meta.get('nproc')}")
    for p in problems:
        print(f"WARNING: {p}")
    return problems


def verdict_text(verdict: dict[str, Any]) -> str:
    """'ship a', 'keep running'."""
    return " ".join(str(v) for v in (verdict["decision"], verdict["variant"]) if v)


def target_lines(results: dict[str, Any]) -> list[dict[str, Any]]:
    """The issue's targets, judged on the all-methods processes at 10M rows."""
    key = str(TARGET_ROWS)
    if TARGET_ROWS not in results["sizes"]:
        return []
    lm = get(results, "tools", "loopml", key, "all", "analysis", "wall_seconds")
    pd_ = get(results, "tools", "pandas", key, "all", "analysis", "wall_seconds")
    ratio = pd_ / lm if lm and pd_ else None
    return [
        {
            "target": f"all methods < {TARGET_SECONDS:g} s",
            "value": lm,
            "met": None if lm is None else lm < TARGET_SECONDS,
            "text": f"loopml, all methods under {TARGET_SECONDS:g} s: "
            + ("not measured" if lm is None else f"{lm:.2f} s"),
        },
        {
            "target": f">= {TARGET_RATIO:g}x pandas",
            "value": ratio,
            "met": None if ratio is None else ratio >= TARGET_RATIO,
            "text": f"at least {TARGET_RATIO:g}x faster than pandas+SciPy: "
            + ("not measured" if ratio is None else f"{ratio:.1f}x ({pd_:.2f} s)"),
        },
    ]


def code_changes(results: dict[str, Any]) -> list[str]:
    """Whether loopml's abtest modules changed during the run: every loopml process records
    the hashes of the modules it imported, and the driver those at its start and end."""
    start = results["meta"]["abtest_sha256"]
    out = []
    if results["meta"].get("abtest_sha256_after") != start:
        out.append("src/loopml/abtest changed during the run: rerun on a stable tree")
    for size, by_run in results["runs"].get("loopml", {}).items():
        for which, rs in by_run.items():
            for k, res in enumerate(rs):
                seen = res.get("abtest_sha256")
                if seen is not None and seen != start:
                    out.append(
                        f"loopml {which} at {int(size):,} rows (run {k + 1}) ran other abtest "
                        "code than the run started with"
                    )
    return out


def versions(results: dict[str, Any]) -> dict[str, Any]:
    """The tools' versions from the workers' results."""
    out: dict[str, Any] = {}
    for by_size in results["tools"].values():
        for by_run in by_size.values():
            for res in by_run.values():
                for k, v in (res.get("versions") or {}).items():
                    out[f"{k}_version"] = v
    try:
        import duckdb

        out["duckdb_version"] = duckdb.__version__
    except ImportError:
        pass
    return out


def git_state() -> dict[str, Any]:
    """The commit, the files under src/ changed since, and a hash of each abtest module as it
    was measured (another change may be under way)."""

    def git(*a: str) -> str:
        proc = subprocess.run(["git", *a], cwd=REPO, capture_output=True, text=True)
        return proc.stdout

    hashes = module_hashes(REPO / "src" / "loopml" / "abtest")
    changed = [line[3:] for line in git("status", "--porcelain", "--", "src").splitlines()]
    return {
        "commit": git("rev-parse", "--short", "HEAD").strip(),
        "src_changed": changed,
        "abtest_sha256": hashes,
    }


# -- main --------------------------------------------------------------------------------------
def main(argv: list[str] | None = None) -> int:
    """Run the benchmark."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", default=",".join(map(str, SIZES)), help="sizes, comma-separated")
    ap.add_argument("--only", default=",".join(TOOLS), help=f"subset of {','.join(TOOLS)}")
    ap.add_argument(
        "--single",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="also run each method alone in its own process",
    )
    ap.add_argument(
        "--repeat",
        type=int,
        default=1,
        help="runs of every process, the tools' order reversed in every other run; the "
        "tables show medians",
    )
    ap.add_argument(
        "--idle-wait",
        type=float,
        default=30.0,
        help="before each process, wait up to S s for an idle CPU (0: no)",
    )
    ap.add_argument("--settle", type=float, default=2.0, help="pause before each process (s)")
    ap.add_argument(
        "--settle-per-gb",
        type=float,
        default=2.5,
        help="... at least this many seconds per GB the previous process held",
    )
    ap.add_argument("--settle-start", type=float, default=10.0, help="pause before the first")
    ap.add_argument("--workdir", type=Path, help="where the scratch dir goes (default: $TMPDIR)")
    ap.add_argument("--json", type=Path, help="write every raw number here")
    ap.add_argument("--keep", action="store_true", help="keep the scratch dir (data, logs)")
    args = ap.parse_args(argv)
    tools = [t.strip() for t in args.only.split(",") if t.strip()]
    if not tools or set(tools) - set(TOOLS):
        ap.error(f"--only takes some of {','.join(TOOLS)}")
    tools = [t for t in TOOLS if t in tools]
    sizes = sorted({int(s.replace("_", "")) for s in args.rows.split(",") if s.strip()})
    skipped = {}
    for tool in list(tools):
        if why := import_error(tool):
            log(f"{tool}: skipped: {why}")
            skipped[tool] = why
            tools.remove(tool)
    if args.workdir:
        args.workdir.mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(prefix="loopml-bench-abtest-", dir=args.workdir))
    t0 = time.perf_counter()
    results: dict[str, Any] = {"data": describe(), "sizes": sizes, "tools": {}, "skipped": skipped}
    runs: dict[str, dict[str, dict[str, list[dict[str, Any]]]]] = {t: {} for t in tools}
    load_before = os.getloadavg()
    state = git_state()
    failed = False
    layouts = [list(METHODS)] + ([[m] for m in METHODS] if args.single else [])
    try:
        paths = {}
        for size in sizes:
            path = scratch / f"exposures_{size}.parquet"
            log(f"generating {size:,} rows in {path}")
            gen = run_worker(
                f"generate-{size}",
                ["--mode", "generate", "--rows", str(size), "--path", str(path)],
                scratch,
            )
            results.setdefault("generate", {})[str(size)] = gen
            paths[size] = str(path)
        log(f"sync and a {args.settle_start:g} s pause, then the first process")
        settle(0.0, args, args.settle_start)
        for size in sizes:
            for r in range(args.repeat):
                for tool in tools if r % 2 == 0 else tools[::-1]:
                    for methods in layouts:
                        which = "all" if len(methods) > 1 else methods[0]
                        log(f"{tool}: {which}, {size:,} rows, run {r + 1}/{args.repeat}")
                        try:
                            res = measure(tool, methods, size, paths[size], scratch, args, r)
                        except RuntimeError as exc:
                            log(f"{tool}: {exc}")
                            failed = True
                            res = {"error": str(exc).splitlines()[0]}
                        by_run = runs[tool].setdefault(str(size), {})
                        by_run.setdefault(which, []).append(res)
                        took = get(res, "analysis", "wall_seconds")
                        if took is not None:
                            log(
                                f"{tool}: {which}: analysis {took:.3f} s, process "
                                f"{res['process']['wall_seconds']:.2f} s, peak "
                                f"{res['process']['ru_maxrss_mb']:,.0f} MB"
                            )
                        peak = get(res, "process", "ru_maxrss_mb") or 0
                        res["settle_after"] = settle(peak, args)
    finally:
        results["runs"] = runs
        results["tools"] = {
            t: {s: {w: median_of(rs) for w, rs in by_run.items()} for s, by_run in by_size.items()}
            for t, by_size in runs.items()
        }
        results["meta"] = {
            "date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
            **versions(results),
            **state,
            "repeat": args.repeat,
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
    results["meta"]["abtest_sha256_after"] = git_state()["abtest_sha256"]
    problems = report(results)
    for change in code_changes(results):
        print(f"WARNING: {change}")
        problems.append(change)
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
