"""The MLflow client against loopml server vs mlflow server: same client, same workload.

Usage::

    bash benchmarks/setup_mlflow.sh          # once: MLflow in benchmarks/.venv-mlflow
    python benchmarks/mlflow_compat.py [--quick] [--json out.json] [--keep]

The tracking workload of ``_workload.py`` (steps 1-4, no 100k-run step) is run by the ``mlflow``
client in ``benchmarks/.venv-mlflow`` twice, each time in a fresh process and against a fresh
server on a free 127.0.0.1 port: ``mlflow server`` (SQLite backend, ``--artifacts-destination``,
``--workers 1``, as ``tracking.py`` starts it) and ``loopml server`` (``sys.executable -m loopml
server``, own fresh ``LOOPML_HOME``). Only the server differs. See ``benchmarks/README.md``.
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
import urllib.request
from dataclasses import asdict
from pathlib import Path
from typing import Any

# benchmarks/ is on sys.path when this file is run as a script.
from _workload import Sizes

from tracking import (
    MLFLOW_VENV,
    WORKLOAD,
    Server,
    check_importable,
    checks,
    clean_env,
    dig,
    fmt,
    free_port,
    log,
    print_wall_times,
    render_table,
    rows,
    server_cmd,
    speedup,
    tail,
)

HERE = Path(__file__).resolve().parent
STEPS = "1,2,3,4"  # everything but the 100k-run step
SERVERS = ["loopml", "mlflow"]  # run one after the other, in this order
TARGET_SPEEDUP = 3.0  # the target: loopml server >= 3x mlflow server, same client calls
# Cross-server agreement: these must be equal on both servers.
AGREE = [
    ("search_runs rows", ("runs", "search", "rows")),
    ("search_runs top metrics.acc", ("runs", "search", "top_acc")),
    ("get_metric_history length", ("history", "len")),
    ("log_metric points stored", ("log_metric", "stored")),
    ("log_metrics steps stored (last key)", ("log_metrics", "stored_steps_last_key")),
]


def name_of(server: str) -> str:
    """The results key of a server."""
    return f"{server} server"


def loopml_server_cmd(port: int) -> list[str]:
    """``loopml server`` run by the interpreter that runs this script."""
    return [sys.executable, "-m", "loopml", "server", "--host", "127.0.0.1", "--port", str(port)]


def health(url: str) -> Any:
    """The body of ``GET /health`` (JSON if it parses, else text)."""
    with urllib.request.urlopen(f"{url}/health", timeout=5) as resp:
        body = resp.read().decode(errors="replace")
    try:
        return json.loads(body)
    except ValueError:
        return body.strip()


# The mlflow client prints two links per run; they go to the log file only.
QUIET_PREFIXES = ("\N{TEST TUBE} View experiment at:", "\N{RUNNER} View run ")


def run_tee(
    cmd: list[str], env: dict[str, str], cwd: Path, log_path: Path
) -> tuple[int, list[str]]:
    """Run ``cmd``, its stdout+stderr copied to ``log_path`` and our stderr; rc and lines."""
    lines: list[str] = []
    with open(log_path, "w") as logf:
        proc = subprocess.Popen(
            cmd,
            env=env,
            cwd=cwd,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            errors="replace",
        )
        assert proc.stdout is not None
        for line in proc.stdout:
            if not line.startswith(QUIET_PREFIXES):
                sys.stderr.write(line)
            logf.write(line)
            lines.append(line.rstrip("\n"))
        rc = proc.wait()
    return rc, lines


def run_server_target(server: str, args: argparse.Namespace) -> dict[str, Any]:
    """Start ``server``, run the workload with the mlflow client against it, stop it."""
    tmp = Path(tempfile.mkdtemp(prefix=f"loopml-compat-{server}-"))
    info: dict[str, Any] = {"server": server, "client": "mlflow", "scratch": str(tmp)}
    info["date"] = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    srv: Server | None = None
    t_start = time.perf_counter()
    tag = name_of(server)
    try:
        port = free_port()
        srv_home = tmp / "server-home"
        srv_home.mkdir()
        cmd = loopml_server_cmd(port) if server == "loopml" else server_cmd("mlflow", tmp, port)
        srv = Server(cmd, clean_env({"LOOPML_HOME": str(srv_home)}), tmp, port)
        info["server_cmd"] = cmd
        log(f"{tag}: starting {' '.join(cmd)}")
        info["server_start_seconds"] = srv.start()
        info["server_health"] = health(srv.url)
        log(f"{tag}: healthy after {info['server_start_seconds']:.1f} s")
        out = tmp / "result.json"
        wcmd = [str(MLFLOW_VENV / "bin" / "python"), str(WORKLOAD), "mlflow"]
        wcmd += ["--out", str(out), "--steps", STEPS, "--tracking-uri", srv.url]
        if args.quick:
            wcmd.append("--quick")
        log(f"{tag}: mlflow client running workload steps {STEPS} against {srv.url}")
        # The client runs at its defaults (retries included); only telemetry is switched off.
        rc, lines = run_tee(wcmd, clean_env({}), tmp, tmp / "workload.log")
        if out.exists():
            info.update(json.loads(out.read_text()))
        info["client_version"] = info.pop("version", None)
        retries = [ln for ln in lines if "Retrying" in ln]
        if retries:  # urllib3 retried a request: the timings include back-off sleeps
            info["client_retry_lines"] = retries[:50]
        if rc != 0:
            info["error"] = f"mlflow client workload exited with {rc}"
            info["error_output_tail"] = lines[-40:]
    except Exception as exc:  # report it and go on with the other server
        info["error"] = f"{type(exc).__name__}: {exc}"
    finally:
        if srv is not None:
            srv.stop()
            info["server_log_tail"] = tail(srv.log_path, 40)
        info["wall_seconds"] = time.perf_counter() - t_start
        if "error" in info:
            log(f"{tag}: FAILED: {info['error']} (scratch kept in {tmp})")
        elif not args.keep:
            shutil.rmtree(tmp, ignore_errors=True)
    log(f"{tag}: finished in {info['wall_seconds']:.1f} s")
    return info


def table_rows(results: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    """Every workload figure on both servers, with the speedup of loopml server."""
    sizes = next((r["sizes"] for r in results.values() if "sizes" in r), asdict(Sizes()))
    out = []
    for row in rows(sizes):
        if row.path[0] == "big":
            continue
        lv = dig(results.get(name_of("loopml")), row.path)
        mv = dig(results.get(name_of("mlflow")), row.path)
        entry: dict[str, Any] = {
            "label": row.label,
            "path": ".".join(row.path),
            "fmt": row.fmt,
            "loopml_server": lv,
            "mlflow_server": mv,
            "higher_is_better": row.higher_is_better,
        }
        if row.ratio:
            entry["speedup"] = speedup(lv, mv, row.higher_is_better)
            sp = entry["speedup"]
            entry["meets_target"] = None if sp is None else sp >= TARGET_SPEEDUP
        else:
            entry["same"] = None if lv is None or mv is None else lv == mv
        out.append(entry)
    return out


def agreement(results: dict[str, dict[str, Any]]) -> list[str]:
    """Figures that must be equal on both servers but are not (one line each)."""
    problems: list[str] = []
    a, b = results.get(name_of("loopml")), results.get(name_of("mlflow"))
    if a is None or b is None:
        return problems
    for label, path in AGREE:
        va, vb = dig(a, path), dig(b, path)
        if va is None and vb is None:
            continue
        same = va == vb
        if isinstance(va, float) and isinstance(vb, float):
            same = abs(va - vb) <= 1e-9
        if not same:
            problems.append(f"MISMATCH: {label}: loopml server {va!r}, mlflow server {vb!r}")
    return problems


def print_report(
    results: dict[str, dict[str, Any]], table: list[dict[str, Any]], meta: dict[str, Any]
) -> list[str]:
    """Print the table, wall times and all problems; return the problems."""
    title = (
        f"mlflow {meta['mlflow_version'] or '-'} client: loopml server "
        f"{meta['loopml_version'] or '-'} vs mlflow server {meta['mlflow_version'] or '-'}"
        f" | {meta['date']} | nproc={meta['nproc']} | {meta['mem_gib']} GiB"
        f" | Python {meta['python']} | {meta['platform']} | {meta['commit']}"
        f"{' | QUICK' if meta['quick'] else ''}"
    )
    header = ["workload", "mlflow server", "loopml server", "ratio", f">= {TARGET_SPEEDUP:g}x"]
    cells = []
    for e in table:
        if "speedup" in e:
            ratio = fmt(e["speedup"], "{:,.1f}x")
            met = {True: "yes", False: "NO", None: "-"}[e["meets_target"]]
        else:
            ratio = {True: "same", False: "DIFFERENT", None: "-"}[e["same"]]
            met = ""
        cells.append(
            [e["label"], fmt(e["mlflow_server"], e["fmt"]), fmt(e["loopml_server"], e["fmt"])]
            + [ratio, met]
        )
    caption = (
        "same mlflow client, same calls; ratio = how many times faster loopml server is than "
        "mlflow server (>1: loopml faster)"
    )
    render_table(title, header, cells, caption)
    print_wall_times(results)
    problems = checks(results) + agreement(results)
    for name, res in results.items():
        if res.get("client_retry_lines"):
            n = len(res["client_retry_lines"])
            problems.append(
                f"{name}: the mlflow client logged {n} retry line(s), first: "
                f"{res['client_retry_lines'][0]}"
            )
        if res.get("error_output_tail"):
            print(f"--- {name}: last lines of the failed mlflow client workload ---")
            print("\n".join(res["error_output_tail"]))
            print(f"--- {name}: last lines of the server log ---")
            print(res.get("server_log_tail", ""))
    for p in problems:
        print(f"WARNING: {p}")
    if not problems:
        print("checks: row counts, ordering and history lengths as expected and equal on both")
    return problems


def git_commit() -> str:
    """``git log -1 --format=%h`` of the checkout, with ``+dirty`` if ``src/`` has changes."""

    def git(*a: str) -> str:
        proc = subprocess.run(
            ["git", *a], cwd=HERE, capture_output=True, text=True, check=False, timeout=30
        )
        return proc.stdout.strip() if proc.returncode == 0 else ""

    commit = git("log", "-1", "--format=%h") or "unknown"
    return commit + ("+dirty" if git("status", "--porcelain", "--", "../src") else "")


def main(argv: list[str] | None = None) -> int:
    """Run the workload with the mlflow client against both servers and report."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="1/10 sizes, fewer repeats")
    ap.add_argument("--json", type=Path, help="write all raw numbers here")
    ap.add_argument("--keep", action="store_true", help="keep the temporary state dirs")
    args = ap.parse_args(argv)

    for tool in ("mlflow", "loopml"):
        reason = check_importable(tool)
        if reason:
            print(f"error: {reason}", file=sys.stderr)
            return 2

    t0 = time.perf_counter()
    load_before = os.getloadavg()
    results = {name_of(s): run_server_target(s, args) for s in SERVERS}
    loopml_health = results[name_of("loopml")].get("server_health")
    meta = {
        "date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "client": "mlflow",
        "mlflow_version": next(
            (r["client_version"] for r in results.values() if r.get("client_version")), None
        ),
        "loopml_version": loopml_health.get("version")
        if isinstance(loopml_health, dict)
        else None,
        "commit": git_commit(),
        "nproc": os.cpu_count(),
        "mem_gib": round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1),
        "python": platform.python_version(),
        "client_python": next((r["python"] for r in results.values() if "python" in r), None),
        "platform": f"{platform.system()} {platform.machine()}",
        "quick": args.quick,
        "steps": STEPS,
        "target_speedup": TARGET_SPEEDUP,
        "argv": sys.argv[1:],
        "loadavg_before": load_before,
        "loadavg_after": os.getloadavg(),
        "total_wall_seconds": time.perf_counter() - t0,
    }
    table = table_rows(results)
    problems = print_report(results, table, meta)
    if args.json:
        payload = {"meta": meta, "targets": results, "table": table, "problems": problems}
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(payload, indent=2))
        print(f"raw numbers written to {args.json}")
    return 1 if any("error" in r for r in results.values()) else 0


if __name__ == "__main__":
    sys.exit(main())
