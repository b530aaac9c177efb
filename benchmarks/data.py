"""Side-by-side datasets benchmark: ``loopml data`` vs DVC with a local remote.

Usage::

    bash benchmarks/setup_dvc.sh             # once: DVC in benchmarks/.venv-dvc
    python benchmarks/data.py [--quick] [--only loopml|dvc] [--json out.json] [--workdir DIR]

Two datasets are generated from a fixed seed: a folder of 10,000 files of 10-30 KB (~200 MB) in
100 subfolders, and one 2 GiB file. Each tool gets its own copy of them and fresh state, and
every step is one CLI call in a subprocess, timed from launch to exit: DVC's ``add`` and
``push`` to a local remote against loopml's ``data add`` (hash and store in one step), a
no-change re-add, a change (v2) added and pushed, and the pull of v1 into a clean folder,
checked file by file against the generated data. See ``benchmarks/README.md``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import json
import os
import platform
import resource
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

# benchmarks/ is on sys.path when this file is run as a script.
from serving import wait_idle
from tracking import clean_env, log, render_table

HERE = Path(__file__).resolve().parent
DVC_VENV = HERE / ".venv-dvc"
TOOLS = ("dvc", "loopml")
DATASETS = ("small", "big")
SEED = 20240611
PIECE = 64 << 20  # the big file is written (and changed) in pieces of this size
PATCH = 1 << 20  # v2 of the big file: this many bytes overwritten in the middle
STEP_TIMEOUT = 3600.0
NOISY_CORES = 0.5  # CPU used meanwhile by other processes (incl. kernel writeback) to flag
TARGET_RATIO = 5.0  # add + push: loopml at least this many times faster than DVC
TARGET_READD = 2.0  # no-change re-add of the 10,000 files, seconds


class StepFailed(Exception):
    """A command exited with an error; its record (command, exit code, output) is attached."""

    def __init__(self, record: dict[str, Any]) -> None:
        super().__init__(f"`{record['cmd']}` exited with {record['rc']}")
        self.record = record


class Mismatch(Exception):
    """A tool stored or restored something else than the generated data."""


@dataclass(frozen=True)
class Sizes:
    """What is generated; ``--quick`` divides every size by 10."""

    n_files: int = 10_000
    n_dirs: int = 100
    min_bytes: int = 10_000
    max_bytes: int = 30_000
    changed: int = 100
    added: int = 100
    big_bytes: int = 2 << 30

    def quick(self) -> Sizes:
        return replace(
            self,
            n_files=self.n_files // 10,
            n_dirs=self.n_dirs // 10,
            changed=self.changed // 10,
            added=self.added // 10,
            big_bytes=self.big_bytes // 10,
        )


@dataclass
class Spec:
    """One generated dataset: where v1 is, what it holds, and how it is named in each tool."""

    key: str  # loopml dataset name; "small" or "big"
    label: str
    target: str  # the copy's name: "data" (a folder) or "big.bin"
    source: Path
    expected: dict[str, str]  # v1: relative path -> sha256
    num_files: int
    size_bytes: int
    v2_label: str
    v2_num_files: int
    v2_size_bytes: int
    generate_seconds: float = 0.0


# -- data --------------------------------------------------------------------------------------
def _random(rng: np.random.Generator, n: int) -> bytes:
    """``n`` random bytes (64-bit draws: faster than ``Generator.bytes``)."""
    words = rng.integers(0, 2**63, n // 8 + 1, dtype=np.uint64)
    return words.tobytes()[:n]


def _small_path(i: int, sizes: Sizes) -> str:
    return f"d{i % sizes.n_dirs:03d}/f{i:05d}.bin"


def make_small(root: Path, sizes: Sizes) -> None:
    """``n_files`` files of ``min_bytes``-``max_bytes`` random bytes in ``n_dirs`` subfolders."""
    rng = np.random.default_rng(SEED)
    lengths = rng.integers(sizes.min_bytes, sizes.max_bytes + 1, sizes.n_files)
    blob = _random(rng, int(lengths.sum()))
    for d in range(sizes.n_dirs):
        (root / f"d{d:03d}").mkdir(parents=True, exist_ok=True)
    pos = 0
    for i, n in enumerate(lengths.tolist()):
        (root / _small_path(i, sizes)).write_bytes(blob[pos : pos + n])
        pos += n


def change_small(root: Path, sizes: Sizes) -> int:
    """v2: ``changed`` files get new random contents (same size range), ``added`` files are new.
    A changed file is replaced (unlink, then write), never written through a possible link.
    Returns the bytes unlinked."""
    rng = np.random.default_rng(SEED + 1)
    picked = rng.choice(sizes.n_files, sizes.changed, replace=False)
    freed = 0
    for i in sorted(picked.tolist()):
        path = root / _small_path(i, sizes)
        freed += path.stat().st_size
        path.unlink()
        path.write_bytes(_random(rng, int(rng.integers(sizes.min_bytes, sizes.max_bytes + 1))))
    for j in range(sizes.added):
        path = root / f"d{j % sizes.n_dirs:03d}/new{j:05d}.bin"
        path.write_bytes(_random(rng, int(rng.integers(sizes.min_bytes, sizes.max_bytes + 1))))
    return freed


def make_big(path: Path, size: int) -> None:
    """One file of ``size`` random bytes, written in pieces of ``PIECE``."""
    rng = np.random.default_rng(SEED + 2)
    with open(path, "wb") as f:
        left = size
        while left:
            n = min(PIECE, left)
            f.write(_random(rng, n))
            left -= n


def change_big(path: Path) -> int:
    """v2: ``PATCH`` new bytes in the middle of a copy of the file, at an odd offset. The file
    is rewritten to a new inode (as a copy would be), never patched through a possible link.
    Returns the bytes unlinked (the old file)."""
    rng = np.random.default_rng(SEED + 3)
    size = path.stat().st_size
    offset = size // 2 + 4097
    new = path.with_name(path.name + ".v2")
    with open(path, "rb") as src, open(new, "wb") as dst:
        pos = 0
        while pos < size:
            piece = bytearray(src.read(PIECE))
            lo, hi = max(offset, pos), min(offset + PATCH, pos + len(piece))
            if lo < hi:
                piece[lo - pos : hi - pos] = _random(rng, hi - lo)
            dst.write(piece)
            pos += len(piece)
    path.unlink()
    new.rename(path)
    return size


def _sha256(path: Path) -> str:
    with open(path, "rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


def manifest(path: Path) -> dict[str, str]:
    """sha256 of every file under ``path`` by relative POSIX path (or of ``path`` itself)."""
    if path.is_file():
        return {path.name: _sha256(path)}
    return {
        p.relative_to(path).as_posix(): _sha256(p) for p in sorted(path.rglob("*")) if p.is_file()
    }


def check_restored(expected: dict[str, str], path: Path, who: str) -> None:
    """Raise ``Mismatch`` unless ``path`` holds exactly the files in ``expected``, byte for byte.
    A restored folder may hold them directly or under one top folder (e.g. ``data/``)."""
    if not path.exists():
        raise Mismatch(f"{who}: nothing restored at {path}")
    got = manifest(path)
    if set(got) != set(expected):
        tops = {k.split("/", 1)[0] for k in got}
        if len(tops) == 1 and all("/" in k for k in got):
            got = {k.split("/", 1)[1]: v for k, v in got.items()}
    if len(expected) == 1 and len(got) == 1:  # one file: its name is the tool's choice
        got = {next(iter(expected)): next(iter(got.values()))}
    missing = sorted(set(expected) - set(got))
    extra = sorted(set(got) - set(expected))
    differ = sorted(k for k in set(expected) & set(got) if expected[k] != got[k])
    if missing or extra or differ:
        raise Mismatch(
            f"{who}: restored data differs from v1 in {path}: {len(missing)} missing "
            f"{missing[:3]}, {len(extra)} extra {extra[:3]}, {len(differ)} with other bytes "
            f"{differ[:3]}"
        )


def generate(key: str, root: Path, sizes: Sizes) -> Spec:
    """Write v1 of a dataset under ``root`` and describe it."""
    t0 = time.perf_counter()
    root.mkdir(parents=True, exist_ok=True)
    if key == "small":
        source = root / "small-v1"
        make_small(source, sizes)
        label = f"{sizes.n_files:,} files"
        v2_label = f"{sizes.changed} changed + {sizes.added} new files"
        target = "data"
    else:
        source = root / "big-v1.bin"
        make_big(source, sizes.big_bytes)
        label = "1 file"
        v2_label = f"{PATCH >> 20} MiB overwritten mid-file"
        target = "big.bin"
    expected = manifest(source)
    files = [source] if source.is_file() else [p for p in source.rglob("*") if p.is_file()]
    size = sum(p.stat().st_size for p in files)
    spec = Spec(
        key=key,
        label=f"{label}, {size / 1e6:,.0f} MB",
        target=target,
        source=source,
        expected=expected,
        num_files=len(files),
        size_bytes=size,
        v2_label=v2_label,
        v2_num_files=len(files) + (sizes.added if key == "small" else 0),
        v2_size_bytes=0,  # known after the change, from a tool's working copy
    )
    spec.generate_seconds = time.perf_counter() - t0
    return spec


def copy_source(spec: Spec, dest: Path) -> float:
    """Copy v1 to a tool's working copy (untimed for the tool); return the seconds taken."""
    t0 = time.perf_counter()
    if spec.source.is_file():
        shutil.copyfile(spec.source, dest)
    else:
        shutil.copytree(spec.source, dest)
    return time.perf_counter() - t0


def change(spec: Spec, path: Path, sizes: Sizes) -> int:
    """Apply v2 to a working copy; the bytes it unlinked."""
    return change_small(path, sizes) if spec.key == "small" else change_big(path)


def tree_bytes(path: Path) -> int:
    """Apparent size of every file under ``path``."""
    if not path.exists():
        return 0
    if path.is_file():
        return path.stat().st_size
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


# -- timed commands ----------------------------------------------------------------------------
def _machine_ticks() -> tuple[float, float]:
    """(busy, iowait) CPU seconds of all cores since boot, from /proc/stat."""
    t = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:9]]
    hz = os.sysconf("SC_CLK_TCK")
    return (t[0] + t[1] + t[2] + t[5] + t[6] + t[7]) / hz, t[4] / hz


def run_cmd(
    cmd: list[str],
    *,
    env: dict[str, str],
    cwd: Path,
    prepare: bool = False,
    idle_wait: float = 0.0,
) -> tuple[dict[str, Any], str]:
    """Run ``cmd`` to completion; its record (wall seconds, CPU, output tails) and stdout.
    Raises ``StepFailed`` on a non-zero exit.

    With ``prepare``, first flush every dirty page to disk (``sync``: the page cache stays warm,
    but no earlier write is flushed during this step) and wait up to ``idle_wait`` seconds for
    an idle CPU."""
    sync_seconds, idle = None, None
    if prepare:
        t0 = time.perf_counter()
        os.sync()
        sync_seconds = time.perf_counter() - t0
        idle = wait_idle(idle_wait) if idle_wait > 0 else None
    kids0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    busy0, io0 = _machine_ticks()
    t0 = time.perf_counter()
    proc = subprocess.run(
        cmd,
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=STEP_TIMEOUT,
        check=False,
        stdin=subprocess.DEVNULL,
    )
    wall = time.perf_counter() - t0
    busy1, io1 = _machine_ticks()
    kids1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (kids1.ru_utime - kids0.ru_utime) + (kids1.ru_stime - kids0.ru_stime)
    record = {
        "cmd": shlex.join(cmd),
        "seconds": wall,
        "cpu_seconds": cpu,
        "other_cpu_cores": max(0.0, (busy1 - busy0) - cpu) / wall,
        "iowait_cores": (io1 - io0) / wall,
        "sync_seconds": sync_seconds,
        "idle_wait": idle,
        "rc": proc.returncode,
        "stdout_tail": proc.stdout[-3000:],
        "stderr_tail": proc.stderr[-3000:],
    }
    if proc.returncode != 0:
        raise StepFailed(record)
    return record, proc.stdout


@dataclass(frozen=True)
class Settler:
    """Flush dirty pages, then pause after the script freed memory (a deleted run, a replaced
    file), so that the next tool writes into cold memory like the others.

    On a VM whose host takes freed guest memory back (free page reporting), writing into pages
    freed a moment ago is ~10x faster than into cold ones, and the host takes them back at
    roughly 1 GB/s; without the pause, the tool that runs right after a large deletion would be
    measured in the faster state.
    """

    min_seconds: float
    seconds_per_gb: float

    def __call__(self, freed_bytes: int) -> dict[str, float]:
        t0 = time.perf_counter()
        os.sync()
        synced = time.perf_counter() - t0
        pause = max(self.min_seconds, freed_bytes / 1e9 * self.seconds_per_gb)
        time.sleep(pause)
        return {"freed_bytes": freed_bytes, "sync_seconds": synced, "pause_seconds": pause}


def parse_json(stdout: str) -> dict[str, Any]:
    """The JSON object a ``--json`` command printed (possibly after other lines)."""
    text = stdout.strip()
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        lines = text.splitlines()
        for i, line in enumerate(lines):
            if line.startswith("{"):
                try:
                    return json.loads("\n".join(lines[i:]))
                except json.JSONDecodeError:
                    continue
    raise Mismatch(f"no JSON object in the output: {text[-500:]!r}")


def dvc_env(state: Path) -> dict[str, str]:
    """DVC at its defaults, without its anonymous usage report and with its site cache (repo
    index, hash and link state) under ``state`` instead of /var/tmp/dvc."""
    return clean_env({"DVC_NO_ANALYTICS": "1", "DVC_SITE_CACHE_DIR": str(state / "dvc-site")})


def loopml_cmd() -> list[str]:
    """The ``loopml`` entry point of the interpreter running this script (no pyenv shim)."""
    exe = Path(sys.executable).parent / "loopml"
    return [str(exe)] if exe.exists() else [sys.executable, "-m", "loopml"]


def dvc_cmd() -> list[str]:
    return [str(DVC_VENV / "bin" / "dvc")]


# -- one tool's sequence -----------------------------------------------------------------------
def run_dvc(
    spec: Spec,
    run_dir: Path,
    sizes: Sizes,
    env: dict[str, str],
    idle_wait: float,
    settler: Settler,
) -> dict[str, Any]:
    """init + remote, add, push, no-change add, v2 add + push, pull of v1 in a fresh clone."""
    dvc = dvc_cmd()
    proj, remote, clone = run_dir / "proj", run_dir / "remote", run_dir / "clone"
    out: dict[str, Any] = {"steps": {}, "setup": {}}
    steps = out["steps"]

    def init(project: Path) -> None:
        project.mkdir(parents=True)
        run_cmd([*dvc, "init", "--no-scm", "-q"], env=env, cwd=project)
        run_cmd([*dvc, "remote", "add", "-d", "local", str(remote)], env=env, cwd=project)

    t0 = time.perf_counter()
    init(proj)
    out["setup"]["init_seconds"] = time.perf_counter() - t0
    out["setup"]["copy_seconds"] = copy_source(spec, proj / spec.target)
    dvcfile = proj / f"{spec.target}.dvc"

    def step(name: str, *args: str, cwd: Path = proj) -> None:
        log(f"  dvc {spec.key}: {name}")
        steps[name], _ = run_cmd(
            [*dvc, *args], env=env, cwd=cwd, prepare=True, idle_wait=idle_wait
        )

    step("add", "add", spec.target)
    step("push", "push")
    v1 = dvcfile.read_text()
    out["dvcfile_v1"] = v1
    step("readd", "add", spec.target)
    if dvcfile.read_text() != v1:
        raise Mismatch(f"dvc {spec.key}: the no-change re-add rewrote {dvcfile.name}")
    out["setup"]["settle_after_change"] = settler(change(spec, proj / spec.target, sizes))
    out["v2_size_bytes"] = tree_bytes(proj / spec.target)
    step("v2_add", "add", spec.target)
    if dvcfile.read_text() == v1:
        raise Mismatch(f"dvc {spec.key}: add after the v2 change left {dvcfile.name} as it was")
    step("v2_push", "push")
    out["stored_bytes"] = {
        "cache": tree_bytes(proj / ".dvc" / "cache"),
        "remote": tree_bytes(remote),
    }
    init(clone)  # a clone of the project as git would give it: config and the v1 .dvc file
    (clone / dvcfile.name).write_text(v1)
    step("pull", "pull", cwd=clone)
    check_restored(spec.expected, clone / spec.target, f"dvc pull of {spec.key} v1")
    out["verified"] = True
    return out


def run_loopml(
    spec: Spec,
    run_dir: Path,
    sizes: Sizes,
    env: dict[str, str],
    idle_wait: float,
    settler: Settler,
) -> dict[str, Any]:
    """data add (v1), no-change data add, v2 data add, data get name@1 into a clean folder."""
    loopml = loopml_cmd()
    home, work, restored = run_dir / "home", run_dir / spec.target, run_dir / "restored"
    run_dir.mkdir(parents=True)
    env = {**env, "LOOPML_HOME": str(home)}
    out: dict[str, Any] = {"steps": {}, "setup": {}, "json": {}}
    steps = out["steps"]
    # Untimed: open the store once (creates the database), as `dvc init` is untimed for DVC.
    t0 = time.perf_counter()
    try:
        run_cmd([*loopml, "data", "list", "--json"], env=env, cwd=run_dir)
        out["setup"]["init"] = "loopml data list --json"
    except StepFailed as exc:
        out["setup"]["init"] = f"failed (ignored): {exc.record['stderr_tail'][-300:]}"
    out["setup"]["init_seconds"] = time.perf_counter() - t0
    out["setup"]["copy_seconds"] = copy_source(spec, work)

    def step(name: str, *args: str) -> dict[str, Any]:
        log(f"  loopml {spec.key}: {name}")
        steps[name], stdout = run_cmd(
            [*loopml, "data", *args], env=env, cwd=run_dir, prepare=True, idle_wait=idle_wait
        )
        data = parse_json(stdout)
        out["json"][name] = data
        return data

    def expect(what: str, data: dict[str, Any], **want: Any) -> None:
        wrong = {k: (data.get(k), v) for k, v in want.items() if data.get(k) != v}
        if wrong:
            raise Mismatch(f"loopml {spec.key} {what}: (got, expected) {wrong}; output {data}")

    add = ["add", str(work), "--name", spec.key, "--json"]
    v1 = step("add", *add)
    expect("add", v1, created=True, version=1, num_files=spec.num_files)
    expect("add", v1, size_bytes=spec.size_bytes)
    again = step("readd", *add)
    expect("no-change re-add", again, created=False, version=1, content_hash=v1["content_hash"])
    out["setup"]["settle_after_change"] = settler(change(spec, work, sizes))
    out["v2_size_bytes"] = tree_bytes(work)
    v2 = step("v2_add", *add)
    expect("v2 add", v2, created=True, version=2, num_files=spec.v2_num_files)
    expect("v2 add", v2, size_bytes=out["v2_size_bytes"])
    out["stored_bytes"] = {"home": tree_bytes(home)}
    step("get", "get", f"{spec.key}@1", "--out", str(restored), "--json")
    check_restored(spec.expected, restored, f"loopml data get {spec.key}@1")
    out["verified"] = True
    return out


def run_tool(
    tool: str,
    spec: Spec,
    run_dir: Path,
    sizes: Sizes,
    args: argparse.Namespace,
    settler: Settler,
    freed_before: int,
) -> dict[str, Any]:
    """One sequence with fresh state; errors are recorded, not raised."""
    env = dvc_env(run_dir) if tool == "dvc" else clean_env({})
    settled = settler(freed_before)  # the previous run's state was just deleted
    t0 = time.perf_counter()
    try:
        if tool == "dvc":
            res = run_dvc(spec, run_dir, sizes, env, args.idle_wait, settler)
        else:
            res = run_loopml(spec, run_dir, sizes, env, args.idle_wait, settler)
    except StepFailed as exc:
        res = {"error": str(exc), "failed_step": exc.record}
    except Mismatch as exc:
        res = {"error": f"MISMATCH: {exc}"}
    except subprocess.TimeoutExpired as exc:
        res = {"error": f"timed out after {exc.timeout:.0f} s: {exc.cmd}"}
    res["settle_before"] = settled
    res["wall_seconds"] = time.perf_counter() - t0
    res["run_dir"] = str(run_dir)
    if "error" in res:
        log(f"  {tool} {spec.key}: {res['error']}")
    elif not args.keep:
        res["freed_bytes"] = tree_bytes(run_dir)
        shutil.rmtree(run_dir, ignore_errors=True)
    return res


def startup(cmd: list[str], env: dict[str, str], n: int = 5) -> dict[str, Any]:
    """Median wall time of ``cmd --version`` (the CLI's start-up), after one warm-up."""
    times, version = [], ""
    for i in range(n + 1):
        rec, stdout = run_cmd([*cmd, "--version"], env=env, cwd=Path.cwd())
        version = stdout.split()[-1] if stdout.strip() else ""  # "loopml, version 0.1.0"
        if i:
            times.append(rec["seconds"])
    return {"median_seconds": statistics.median(times), "seconds": times, "version": version}


# -- report ------------------------------------------------------------------------------------
def _steps(results: dict[str, Any], key: str, tool: str) -> list[dict[str, Any]]:
    return [r["steps"] for r in results["datasets"].get(key, {}).get(tool, []) if "error" not in r]


def median_of(results: dict[str, Any], key: str, tool: str, *names: str) -> float | None:
    """Median over repeats of the sum of ``names``' seconds (None if not measured)."""
    runs = _steps(results, key, tool)
    sums = [sum(s[n]["seconds"] for n in names) for s in runs if all(n in s for n in names)]
    return statistics.median(sums) if sums else None


def own_seconds(results: dict[str, Any], key: str, step: str) -> float | None:
    """Median of the ``seconds`` loopml reports in its JSON for a step (its work without the
    CLI start-up and store opening)."""
    runs = results["datasets"].get(key, {}).get("loopml", [])
    own = [r["json"][step].get("seconds") for r in runs if "error" not in r]
    own = [v for v in own if isinstance(v, int | float)]
    return statistics.median(own) if own else None


def _fmt(v: float | None, spec: str = "{:.2f}") -> str:
    return "-" if v is None else spec.format(v)


def _ratio(a: float | None, b: float | None) -> str:
    return f"{a / b:.1f}x" if a and b else "-"


IN_ADD = -1.0  # a DVC-only step that loopml's data add includes


def build_table(results: dict[str, Any]) -> tuple[list[str], list[list[str]]]:
    header = [
        "dataset / step (loopml command)",
        "DVC s",
        "loopml s",
        "DVC / loopml",
        "loopml own s",
    ]
    su = results.get("startup", {})
    d, lm = (su.get(t, {}).get("median_seconds") for t in TOOLS)
    table = [
        ["CLI start-up (--version)", _fmt(d, "{:.3f}"), _fmt(lm, "{:.3f}"), _ratio(d, lm), ""]
    ]
    for key, info in results["datasets"].items():
        v2 = info["spec"]["v2_label"]
        has_loopml = bool(_steps(results, key, "loopml"))

        def med(tool: str, *names: str, k: str = key) -> float | None:
            return median_of(results, k, tool, *names)

        v2_pair = (med("dvc", "v2_add", "v2_push"), med("loopml", "v2_add"))
        rows = [
            ("add", med("dvc", "add"), IN_ADD, ""),
            ("push", med("dvc", "push"), IN_ADD, ""),
            ("add + push (data add)", med("dvc", "add", "push"), med("loopml", "add"), "add"),
            ("no-change re-add (data add)", med("dvc", "readd"), med("loopml", "readd"), "readd"),
            (f"v2 add: {v2}", med("dvc", "v2_add"), IN_ADD, ""),
            ("v2 push", med("dvc", "v2_push"), IN_ADD, ""),
            ("v2 add + push (data add)", *v2_pair, "v2_add"),
            (
                "pull v1 to a clean folder (data get @1)",
                med("dvc", "pull"),
                med("loopml", "get"),
                "get",
            ),
        ]
        table.append([info["spec"]["label"], "", "", "", ""])
        for name, a, b, step in rows:
            if b is IN_ADD:
                table.append([f"  {name}", _fmt(a), "(in add)" if has_loopml else "-", "", ""])
            else:
                own = _fmt(own_seconds(results, key, step)) if step else ""
                table.append([f"  {name}", _fmt(a), _fmt(b), _ratio(a, b), own])
    return header, table


def checks(results: dict[str, Any], quick: bool) -> list[tuple[bool | None, str]]:
    """The issue's targets: (passed, description); None = not measured."""
    out: list[tuple[bool | None, str]] = []
    suffix = " [quick sizes: indicative only]" if quick else ""
    for key in results["datasets"]:
        label = results["datasets"][key]["spec"]["label"]
        dvc = median_of(results, key, "dvc", "add", "push")
        mine = median_of(results, key, "loopml", "add")
        if dvc is None or mine is None:
            out.append((None, f"{label}: add + push >= {TARGET_RATIO:g}x DVC: not measured"))
        else:
            ratio = dvc / mine
            text = (
                f"{label}: add + push: DVC {dvc:.2f} s / loopml {mine:.2f} s = {ratio:.1f}x "
                f"(target >= {TARGET_RATIO:g}x){suffix}"
            )
            out.append((ratio >= TARGET_RATIO, text))
    if "small" in results["datasets"]:
        readd = median_of(results, "small", "loopml", "readd")
        label = results["datasets"]["small"]["spec"]["label"]
        text = f"{label}: loopml no-change re-add"
        if readd is None:
            out.append((None, f"{text}: not measured"))
        else:
            out.append(
                (readd < TARGET_READD, f"{text} {readd:.2f} s (< {TARGET_READD:g} s){suffix}")
            )
    return out


def report(results: dict[str, Any], args: argparse.Namespace) -> list[str]:
    """Print the table and the targets; return the problems found."""
    meta = results["meta"]
    title = (
        f"loopml {meta.get('loopml_version') or '-'} vs DVC {meta.get('dvc_version') or '-'}"
        f" (local remote) | {meta['date']} | nproc={meta['nproc']} | {meta['mem_gib']} GiB"
        f" | Python {meta['python']} | {meta['fs']}{' | QUICK' if args.quick else ''}"
    )
    caption = (
        "seconds from launching the command to its exit, median of "
        f"{args.repeat} run(s) with fresh state; DVC / loopml above 1: loopml is faster; "
        "loopml's data add hashes and stores in the artifact store in one step, so it is "
        "compared with DVC's add + push; page cache warm for both tools (data copied just "
        "before, nothing dropped); loopml own s = the seconds loopml reports in its JSON (its "
        "work, without the CLI start-up)"
    )
    render_table(title, *build_table(results), caption)
    problems = []
    noisy = []
    for key, info in results["datasets"].items():
        for tool in TOOLS:
            for i, run in enumerate(info.get(tool, [])):
                if "error" in run:
                    problems.append(f"{tool} {key} (run {i + 1}): {run['error']}")
                    failed = run.get("failed_step")
                    if failed:
                        print(f"\n{tool} {key}: `{failed['cmd']}` exited with {failed['rc']}:")
                        print((failed["stderr_tail"] or failed["stdout_tail"])[-1500:])
                for name, rec in run.get("steps", {}).items():
                    if rec["other_cpu_cores"] > NOISY_CORES:
                        noisy.append(f"{tool} {key} {name}: {rec['other_cpu_cores']:.2f}")
            stored = [r.get("stored_bytes") for r in info.get(tool, []) if r.get("stored_bytes")]
            if stored:
                parts = ", ".join(f"{k} {v / 1e6:,.0f} MB" for k, v in stored[0].items())
                print(f"{tool} {key}: stored after v2: {parts}")
    if noisy:
        print(
            f"NOTE: CPU used by other processes (incl. kernel writeback) above {NOISY_CORES} "
            "cores during: " + ", ".join(noisy)
        )
    print("\ntargets:")
    for ok, text in checks(results, args.quick):
        print(f"  {'PASS' if ok else 'FAIL' if ok is False else 'n/a '}  {text}")
    for p in problems:
        print(f"WARNING: {p}")
    return problems


def _git(*args: str) -> str:
    """Output of a read-only git command in the repository (empty if git is unavailable)."""
    try:
        proc = subprocess.run(
            ["git", *args], cwd=HERE, capture_output=True, text=True, timeout=30, check=False
        )
    except (OSError, subprocess.TimeoutExpired):
        return ""
    return proc.stdout.rstrip()


def _fs_of(path: Path) -> str:
    """The file system type holding ``path`` (longest mount point prefix in /proc/mounts)."""
    best, fs = "", "?"
    for line in Path("/proc/mounts").read_text().splitlines():
        parts = line.split()
        if len(parts) > 2 and str(path).startswith(parts[1]) and len(parts[1]) > len(best):
            best, fs = parts[1], parts[2]
    return fs


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="1/10 of every size")
    ap.add_argument("--only", choices=TOOLS, help="run one tool only")
    ap.add_argument("--datasets", default="small,big", help="subset of small,big")
    ap.add_argument("--repeat", type=int, default=1, help="sequences per tool, fresh state each")
    ap.add_argument("--workdir", type=Path, help="where the scratch dir goes (default: $TMPDIR)")
    ap.add_argument(
        "--idle-wait",
        type=float,
        default=None,
        help="before each timed step, wait up to S s for an idle CPU (default 30, quick 5)",
    )
    ap.add_argument(
        "--settle",
        type=float,
        default=3.0,
        help="after the script deletes or replaces data, sync and pause at least S seconds",
    )
    ap.add_argument(
        "--settle-per-gb",
        type=float,
        default=2.5,
        help="... and this many seconds per GB it freed (the VM's host takes it back at ~1 GB/s)",
    )
    ap.add_argument(
        "--settle-start",
        type=float,
        default=20.0,
        help="pause before the first step, for memory other processes freed just before",
    )
    ap.add_argument("--json", type=Path, help="write every raw number here")
    ap.add_argument("--keep", action="store_true", help="keep the scratch dir (generated data)")
    args = ap.parse_args(argv)
    datasets = [d.strip() for d in args.datasets.split(",") if d.strip()]
    if not datasets or set(datasets) - set(DATASETS):
        ap.error("--datasets takes small and/or big")
    if args.repeat < 1:
        ap.error("--repeat must be at least 1")
    if args.idle_wait is None:
        args.idle_wait = 5.0 if args.quick else 30.0
    tools = [args.only] if args.only else list(TOOLS)
    if "dvc" in tools and not (DVC_VENV / "bin" / "dvc").exists():
        log("dvc: skipped: run `bash benchmarks/setup_dvc.sh` first")
        tools.remove("dvc")
    sizes = Sizes().quick() if args.quick else Sizes()
    settler = Settler(args.settle, args.settle_per_gb)

    if args.workdir:
        args.workdir.mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(prefix="loopml-bench-data-", dir=args.workdir))
    t0 = time.perf_counter()
    results: dict[str, Any] = {"sizes": asdict(sizes), "startup": {}, "datasets": {}}
    load_before = os.getloadavg()
    try:
        for tool in tools:
            cmd = dvc_cmd() if tool == "dvc" else loopml_cmd()
            env = dvc_env(scratch) if tool == "dvc" else clean_env({})
            try:
                results["startup"][tool] = startup(cmd, env)
            except StepFailed as exc:
                results["startup"][tool] = {"error": str(exc), "record": exc.record}
        log(f"sync and a {args.settle_start:g} s pause, then the first step")
        results["settle_start"] = Settler(args.settle_start, 0.0)(0)
        freed = 0  # bytes the last run's clean-up freed
        for key in datasets:
            log(f"generating {key} in {scratch}")
            spec = generate(key, scratch / "src", sizes)
            info: dict[str, Any] = {"spec": {**asdict(spec), "source": str(spec.source)}}
            del info["spec"]["expected"]
            results["datasets"][key] = info
            for tool in tools:
                info[tool] = []
            for r in range(args.repeat):
                # DVC first in odd repeats, loopml first in even ones: what one run leaves
                # behind (page cache, writeback, freed memory) favours neither tool on average.
                for tool in tools if r % 2 == 0 else tools[::-1]:
                    log(f"{tool} {key} ({spec.label}), run {r + 1}/{args.repeat}")
                    run_dir = scratch / f"{key}-{tool}-{r + 1}"
                    res = run_tool(tool, spec, run_dir, sizes, args, settler, freed)
                    freed = res.get("freed_bytes", 0)
                    res["position"] = (tools if r % 2 == 0 else tools[::-1]).index(tool) + 1
                    info[tool].append(res)
            v2 = [x.get("v2_size_bytes") for t in tools for x in info[t] if x.get("v2_size_bytes")]
            info["spec"]["v2_size_bytes"] = v2[0] if v2 else None
    finally:
        su = results["startup"]
        results["meta"] = {
            "date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
            "loopml_version": su.get("loopml", {}).get("version"),
            "dvc_version": su.get("dvc", {}).get("version"),
            "loopml_cmd": shlex.join(loopml_cmd()),
            "dvc_cmd": shlex.join(dvc_cmd()),
            "commit": _git("rev-parse", "HEAD"),
            # loopml is measured as it is in the working tree: files changed since the commit
            "src_changed": _git("status", "--porcelain", "--", "../src").splitlines(),
            "nproc": os.cpu_count(),
            "mem_gib": round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1),
            "python": platform.python_version(),
            "platform": f"{platform.system()} {platform.release()} {platform.machine()}",
            "fs": _fs_of(scratch),
            "quick": args.quick,
            "repeat": args.repeat,
            "settle": {
                "min_seconds": args.settle,
                "seconds_per_gb": args.settle_per_gb,
                "start_seconds": args.settle_start,
            },
            "idle_wait_seconds": args.idle_wait,
            "argv": sys.argv[1:],
            "loadavg_before": load_before,
            "loadavg_after": os.getloadavg(),
            "total_wall_seconds": time.perf_counter() - t0,
            "scratch": str(scratch),
            "caches": "warm: each tool copies the data just before its steps; nothing dropped",
        }
    problems = report(results, args)
    results["problems"] = problems
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(results, indent=2, default=str))
        print(f"raw numbers written to {args.json}")
    if args.keep or problems:
        print(f"scratch kept in {scratch}")
    else:
        shutil.rmtree(scratch, ignore_errors=True)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
