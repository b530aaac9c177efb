"""Side-by-side experiment-tracking benchmark: loopml vs MLflow, embedded and through a server.

Usage::

    bash benchmarks/setup_mlflow.sh          # once: MLflow in benchmarks/.venv-mlflow
    python benchmarks/tracking.py [--quick] [--only loopml|mlflow] [--json out.json]

Each target (loopml embedded, loopml server, MLflow embedded, MLflow server) runs the workload
in ``_workload.py`` in a fresh subprocess with its own temporary state; servers are started as
subprocesses on a free 127.0.0.1 port and stopped afterwards. See ``benchmarks/README.md``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

# benchmarks/ is on sys.path when this file is run as a script.
from _workload import BIG_METHODS, Sizes

HERE = Path(__file__).resolve().parent
WORKLOAD = HERE / "_workload.py"
MLFLOW_VENV = HERE / ".venv-mlflow"
TARGETS = [
    ("loopml", "embedded"),
    ("loopml", "server"),
    ("mlflow", "embedded"),
    ("mlflow", "server"),
]
# Keep both tools at their defaults, but never phone home (there is no network here anyway).
QUIET_ENV = {"MLFLOW_DISABLE_TELEMETRY": "true", "DO_NOT_TRACK": "true"}


@dataclass(frozen=True)
class Row:
    """One line of the results table."""

    label: str
    path: tuple[str, ...]
    higher_is_better: bool
    fmt: str = "{:,.0f}"
    ratio: bool = True


def rows(sizes: dict[str, int]) -> list[Row]:
    """The table rows, labelled with the sizes that were actually run."""
    s = sizes
    return [
        Row(
            f"log_metric x{s['log_metric_calls']:,} (calls/s)", ("log_metric", "calls_per_s"), True
        ),
        Row(
            f"log_metrics {s['log_metrics_calls']}x{s['log_metrics_keys']:,} keys (points/s)",
            ("log_metrics", "points_per_s"),
            True,
        ),
        Row(f"create {s['runs']:,} runs (runs/s)", ("runs", "runs_per_s"), True, "{:,.1f}"),
        Row(f"create {s['runs']:,} runs (total s)", ("runs", "seconds"), False, "{:,.2f}"),
        Row(
            f"search_runs over {s['runs']:,} runs (median ms)",
            ("runs", "search", "median_ms"),
            False,
            "{:,.1f}",
        ),
        Row("  rows returned", ("runs", "search", "rows"), True, "{:,}", ratio=False),
        Row(
            f"get_metric_history {s['history_steps']:,} pts (median ms)",
            ("history", "median_ms"),
            False,
            "{:,.1f}",
        ),
        Row("  points returned", ("history", "len"), True, "{:,}", ratio=False),
        Row(
            f"create {s['big_runs']:,} runs, loopml only (runs/s)",
            ("big", "create_runs_per_s"),
            True,
            "{:,.0f}",
            ratio=False,
        ),
        Row(
            f"search_runs over {s['big_runs']:,} runs, max 100 (median ms)",
            ("big", "search", "median_ms"),
            False,
            "{:,.1f}",
            ratio=False,
        ),
    ]


def dig(d: dict[str, Any] | None, path: tuple[str, ...]) -> Any:
    """``d[path[0]][path[1]]...`` or None."""
    cur: Any = d
    for key in path:
        if not isinstance(cur, dict) or key not in cur:
            return None
        cur = cur[key]
    return cur


def speedup(loop: Any, mlf: Any, higher_is_better: bool) -> float | None:
    """How many times faster loopml is than MLflow (>1: loopml faster)."""
    if not isinstance(loop, int | float) or not isinstance(mlf, int | float):
        return None
    if loop <= 0 or mlf <= 0:
        return None
    return loop / mlf if higher_is_better else mlf / loop


def free_port() -> int:
    """An unused TCP port on 127.0.0.1."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def clean_env(extra: dict[str, str]) -> dict[str, str]:
    """The current environment without ``LOOPML_*``/``MLFLOW_*`` settings, plus ``extra``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LOOPML_", "MLFLOW_"))}
    env.update(QUIET_ENV)
    env.update(extra)
    return env


def tail(path: Path, n: int = 30) -> str:
    """The last ``n`` lines of a log file."""
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-n:])
    except OSError:
        return ""


def log(msg: str) -> None:
    """Print a progress line to stderr."""
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


class Server:
    """A tracking server subprocess in its own process group, stopped on exit."""

    def __init__(self, cmd: list[str], env: dict[str, str], cwd: Path, port: int) -> None:
        self.cmd, self.env, self.cwd, self.port = cmd, env, cwd, port
        self.log_path = cwd / "server.log"
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        """The server's base URL."""
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 180.0) -> float:
        """Start the server and wait for ``GET /health`` = 200; return the seconds it took."""
        t0 = time.perf_counter()
        with open(self.log_path, "wb") as out:
            self.proc = subprocess.Popen(
                self.cmd,
                env=self.env,
                cwd=self.cwd,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        while time.perf_counter() - t0 < timeout:
            if self.proc.poll() is not None:
                raise RuntimeError(
                    f"server exited with {self.proc.returncode}:\n{tail(self.log_path)}"
                )
            try:
                with urllib.request.urlopen(f"{self.url}/health", timeout=2) as resp:
                    if resp.status == 200:
                        return time.perf_counter() - t0
            except (urllib.error.URLError, ConnectionError, TimeoutError, OSError):
                pass
            time.sleep(0.25)
        raise RuntimeError(f"server not healthy after {timeout:.0f} s:\n{tail(self.log_path)}")

    def stop(self) -> None:
        """Terminate the server's process group (SIGTERM, then SIGKILL)."""
        if self.proc is None or self.proc.poll() is not None:
            return
        pgid = self.proc.pid  # start_new_session: the group id is the leader's pid
        try:
            os.killpg(pgid, signal.SIGTERM)
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(pgid, signal.SIGKILL)
            self.proc.wait(timeout=10)
        except ProcessLookupError:
            pass


def python_for(tool: str) -> Path:
    """The interpreter that runs ``tool``'s workload."""
    return Path(sys.executable) if tool == "loopml" else MLFLOW_VENV / "bin" / "python"


def check_importable(tool: str) -> str | None:
    """None if ``tool`` imports in its interpreter, else the reason it can't run."""
    py = python_for(tool)
    if not py.exists():
        return f"{py} not found: run `bash benchmarks/setup_mlflow.sh` first"
    proc = subprocess.run(
        [str(py), "-c", f"import {tool}"], capture_output=True, text=True, check=False
    )
    if proc.returncode != 0:
        hint = "pip install -e ." if tool == "loopml" else "bash benchmarks/setup_mlflow.sh"
        last = (proc.stderr.strip().splitlines() or ["?"])[-1]
        return f"`import {tool}` failed in {py} ({last}); try `{hint}`"
    return None


def server_cmd(tool: str, tmp: Path, port: int) -> list[str]:
    """The command line that starts ``tool``'s tracking server."""
    if tool == "loopml":
        script = Path(sys.executable).parent / "loopml"
        if script.exists():
            head = [str(script)]
        else:
            head = [
                sys.executable,
                "-c",
                "import sys; from loopml.cli import main; sys.exit(main())",
            ]
        return [*head, "server", "--host", "127.0.0.1", "--port", str(port)]
    return [
        str(MLFLOW_VENV / "bin" / "mlflow"),
        "server",
        "--backend-store-uri",
        f"sqlite:///{tmp / 'srv.db'}",
        "--artifacts-destination",
        str(tmp / "art"),
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--workers",
        "1",
    ]


def run_target(tool: str, mode: str, args: argparse.Namespace, steps: str) -> dict[str, Any]:
    """Run the workload for one (tool, mode) in a fresh subprocess; return its results."""
    tmp = Path(tempfile.mkdtemp(prefix=f"loopml-bench-{tool}-{mode}-"))
    info: dict[str, Any] = {"tool": tool, "mode": mode, "scratch": str(tmp)}
    info["date"] = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    server: Server | None = None
    t_start = time.perf_counter()
    try:
        client_env = clean_env({"LOOPML_HOME": str(tmp / "home")})
        uri: str | None
        if mode == "embedded":
            uri = None if tool == "loopml" else f"sqlite:///{tmp / 'mlflow.db'}"
        else:
            port = free_port()
            srv_home = tmp / "server-home"
            srv_env = clean_env({"LOOPML_HOME": str(srv_home)})
            srv_home.mkdir()
            server = Server(server_cmd(tool, tmp, port), srv_env, tmp, port)
            log(f"{tool} {mode}: starting {' '.join(server.cmd)}")
            info["server_start_seconds"] = server.start()
            log(f"{tool} {mode}: healthy after {info['server_start_seconds']:.1f} s")
            uri = server.url
        out = tmp / "result.json"
        cmd = [str(python_for(tool)), str(WORKLOAD), tool, "--out", str(out), "--steps", steps]
        cmd += ["--big-method", args.big_method]
        if uri:
            cmd += ["--tracking-uri", uri]
        if args.quick:
            cmd.append("--quick")
        log(f"{tool} {mode}: running workload steps {steps} (uri={uri or 'embedded default'})")
        with open(tmp / "workload.stdout.log", "wb") as stdout:
            proc = subprocess.run(cmd, env=client_env, cwd=tmp, stdout=stdout, check=False)
        if out.exists():
            info.update(json.loads(out.read_text()))
        if proc.returncode != 0:
            info["error"] = f"workload exited with {proc.returncode}"
    except Exception as exc:  # report it and go on with the other targets
        info["error"] = f"{type(exc).__name__}: {exc}"
    finally:
        if server is not None:
            server.stop()
            info["server_log_tail"] = tail(server.log_path, 15)
        info["wall_seconds"] = time.perf_counter() - t_start
        if "error" in info:
            log(f"{tool} {mode}: FAILED: {info['error']} (scratch kept in {tmp})")
        elif not args.keep:
            shutil.rmtree(tmp, ignore_errors=True)
    log(f"{tool} {mode}: finished in {info['wall_seconds']:.1f} s")
    return info


def fmt(value: Any, spec: str) -> str:
    """Format a table cell; '-' for a missing value."""
    if value is None:
        return "-"
    try:
        return spec.format(value)
    except (ValueError, TypeError):
        return str(value)


def build_table(results: dict[str, dict[str, Any]]) -> tuple[list[str], list[list[str]]]:
    """Header and cells of the side-by-side table."""
    sizes = next((r["sizes"] for r in results.values() if "sizes" in r), asdict(Sizes()))
    header = [
        "workload",
        "loopml embedded",
        "MLflow embedded",
        "ratio",
        "loopml server",
        "MLflow server",
        "ratio",
    ]
    table: list[list[str]] = []
    has_big = any("big" in r for r in results.values())
    for row in rows(sizes):
        if row.path[0] == "big" and not has_big:
            continue
        cells = [row.label]
        for mode in ("embedded", "server"):
            lv = dig(results.get(f"loopml/{mode}"), row.path)
            mv = dig(results.get(f"mlflow/{mode}"), row.path)
            ratio = speedup(lv, mv, row.higher_is_better) if row.ratio else None
            cells += [fmt(lv, row.fmt), fmt(mv, row.fmt), fmt(ratio, "{:,.1f}x")]
        table.append(cells)
    return header, table


def compute_ratios(results: dict[str, dict[str, Any]]) -> dict[str, dict[str, float | None]]:
    """Speedups (loopml over MLflow) per mode and workload, for the JSON output."""
    sizes = next((r["sizes"] for r in results.values() if "sizes" in r), None)
    if sizes is None:
        return {}
    out: dict[str, dict[str, float | None]] = {}
    for mode in ("embedded", "server"):
        out[mode] = {}
        for row in rows(sizes):
            if row.ratio:
                lv = dig(results.get(f"loopml/{mode}"), row.path)
                mv = dig(results.get(f"mlflow/{mode}"), row.path)
                out[mode][".".join(row.path)] = speedup(lv, mv, row.higher_is_better)
    return out


def checks(results: dict[str, dict[str, Any]]) -> list[str]:
    """Correctness problems: row counts that differ or are wrong, short histories, errors."""
    problems: list[str] = []
    rowcounts: dict[str, int] = {}
    for name, res in results.items():
        if "error" in res:
            problems.append(f"{name}: {res['error']}")
        for key in ("runs", "big"):
            search = dig(res, (key, "search"))
            if search is None:
                continue
            if search["rows"] != search["expected_rows"]:
                problems.append(
                    f"{name}: {key} search returned {search['rows']} rows, "
                    f"expected {search['expected_rows']}"
                )
            top, exp_top = search.get("top_acc"), search.get("expected_top_acc")
            if top is not None and exp_top is not None and abs(top - exp_top) > 1e-9:
                problems.append(f"{name}: {key} search not ordered (top acc {top} != {exp_top})")
            if key == "runs":
                rowcounts[name] = search["rows"]
        hist = res.get("history")
        if hist and hist["len"] != hist["steps"]:
            problems.append(f"{name}: get_metric_history returned {hist['len']}/{hist['steps']}")
        for key, want, got in (
            ("log_metric", "calls", "stored"),
            ("log_metrics", "calls", "stored_steps_last_key"),
        ):
            part = res.get(key)
            if part and part[want] != part[got]:
                problems.append(f"{name}: {key} stored {part[got]} of {part[want]} steps")
    if len(set(rowcounts.values())) > 1:
        problems.append(f"MISMATCH: search_runs row counts differ between targets: {rowcounts}")
    return problems


def render_table(title: str, header: list[str], table: list[list[str]], caption: str) -> None:
    """Print a table with a title and a caption (with rich if it is installed, else plain)."""
    try:
        from rich.console import Console
        from rich.table import Table
    except ImportError:
        widths = [max(len(r[i]) for r in [header, *table]) for i in range(len(header))]
        print(f"\n{title}\n")
        print(
            "  ".join(
                h.ljust(w) if i == 0 else h.rjust(w)
                for i, (h, w) in enumerate(zip(header, widths, strict=True))
            )
        )
        print("  ".join("-" * w for w in widths))
        for r in table:
            print(
                "  ".join(
                    c.ljust(w) if i == 0 else c.rjust(w)
                    for i, (c, w) in enumerate(zip(r, widths, strict=True))
                )
            )
        print(f"\n{caption}")
    else:
        tbl = Table(title=title, caption=caption)
        for i, h in enumerate(header):
            tbl.add_column(h, justify="left" if i == 0 else "right", no_wrap=i == 0)
        for r in table:
            tbl.add_row(*r)
        Console(width=max(140, shutil.get_terminal_size().columns)).print(tbl)


def print_wall_times(results: dict[str, dict[str, Any]]) -> None:
    """One line per target: wall time, server start-up time and each step's wall time."""
    for name, res in results.items():
        if "wall_seconds" in res:
            parts = ", ".join(
                f"{k} {v:.1f} s" for k, v in res.get("step_wall_seconds", {}).items()
            )
            start = res.get("server_start_seconds")
            srv = f", server start {start:.1f} s" if start is not None else ""
            print(f"{name}: wall {res['wall_seconds']:.1f} s{srv} ({parts})")


def print_report(results: dict[str, dict[str, Any]], meta: dict[str, Any]) -> None:
    """Print the machine/version header, the side-by-side table and any problems."""
    header, table = build_table(results)
    title = (
        f"loopml {meta['loopml_version'] or '-'} vs MLflow {meta['mlflow_version'] or '-'}"
        f" | {meta['date']} | nproc={meta['nproc']} | {meta['mem_gib']} GiB"
        f" | Python {meta['python']}"
        f" | {meta['platform']}{' | QUICK' if meta['quick'] else ''}"
    )
    caption = "ratio = how many times faster loopml is than MLflow (>1: loopml is faster)"
    render_table(title, header, table, caption)
    print_wall_times(results)
    problems = checks(results)
    for p in problems:
        print(f"WARNING: {p}")
    if not problems:
        print("checks: row counts, ordering and history lengths as expected")


def main(argv: list[str] | None = None) -> int:
    """Run the selected targets one after the other and report."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="1/10 sizes, no 100k-run step")
    ap.add_argument("--only", choices=["loopml", "mlflow"], help="run just one tool")
    ap.add_argument("--modes", default="embedded,server", help="subset of embedded,server")
    ap.add_argument("--json", type=Path, help="write all raw numbers here")
    ap.add_argument(
        "--reuse",
        type=Path,
        help="fill targets that are not run now from an earlier --json file",
    )
    ap.add_argument(
        "--big-server", action="store_true", help="also run the 100k-run step via loopml server"
    )
    ap.add_argument("--no-big", action="store_true", help="skip the 100k-run step")
    ap.add_argument(
        "--big-method",
        choices=BIG_METHODS,
        default=BIG_METHODS[0],
        help="how the 100k runs are created (client create_run+log_batch, optionally "
        "queued with synchronous=False, or the fluent API)",
    )
    ap.add_argument("--keep", action="store_true", help="keep the temporary state dirs")
    args = ap.parse_args(argv)

    modes = {m.strip() for m in args.modes.split(",") if m.strip()}
    if not modes <= {"embedded", "server"}:
        ap.error("--modes takes embedded and/or server")
    selected = [
        (tool, mode)
        for tool, mode in TARGETS
        if (args.only is None or tool == args.only) and mode in modes
    ]
    results: dict[str, dict[str, Any]] = {}
    if args.reuse:
        old = json.loads(args.reuse.read_text()).get("targets", {})
        want = asdict(Sizes.quick() if args.quick else Sizes())
        for name, res in old.items():
            if tuple(name.split("/")) in selected:
                continue
            if res.get("sizes") != want:
                log(f"{name}: not reused from {args.reuse}: measured with other sizes (--quick?)")
                continue
            results[name] = {**res, "reused": str(args.reuse)}

    t0 = time.perf_counter()
    unavailable: dict[str, str | None] = {}
    for tool, mode in selected:
        if tool not in unavailable:
            unavailable[tool] = check_importable(tool)
        name = f"{tool}/{mode}"
        if unavailable[tool]:
            log(f"{name}: skipped: {unavailable[tool]}")
            results[name] = {"tool": tool, "mode": mode, "error": f"skipped: {unavailable[tool]}"}
            continue
        steps = "1,2,3,4"
        big = tool == "loopml" and not args.quick and not args.no_big
        if big and (mode == "embedded" or args.big_server):
            steps += ",5"
        results[name] = run_target(tool, mode, args, steps)

    def version(tool: str) -> str | None:
        return next(
            (r["version"] for r in results.values() if r.get("tool") == tool and "version" in r),
            None,
        )

    pythons = {n: r["python"] for n, r in results.items() if "python" in r}
    meta = {
        "date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "loopml_version": version("loopml"),
        "mlflow_version": version("mlflow"),
        "nproc": os.cpu_count(),
        "mem_gib": round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1),
        "python": platform.python_version(),
        "workload_pythons": pythons,
        "platform": f"{platform.system()} {platform.machine()}",
        "quick": args.quick,
        "argv": sys.argv[1:],
        "total_wall_seconds": time.perf_counter() - t0,
    }
    print_report(results, meta)
    if args.json:
        payload = {"meta": meta, "targets": results, "ratios": compute_ratios(results)}
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(payload, indent=2))
        print(f"raw numbers written to {args.json}")
    return 1 if any("error" in r for r in results.values() if not r.get("reused")) else 0


if __name__ == "__main__":
    sys.exit(main())
