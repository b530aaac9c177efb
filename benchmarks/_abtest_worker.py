"""One measured step of the A/B analysis benchmark, run in a fresh process by ``abtest.py``.

``--mode generate --rows N --path P`` writes the Parquet file of one size
(``_abtest_data.generate``).

``--mode run --tool loopml|pandas --data P --methods m1,m2,...`` imports the tool, then runs
the methods one after the other in this process (``frequentist``, ``sequential``,
``bayesian``, ``cuped``: frequentist with revenue_pre as revenue's covariate):

- loopml: one ``analyze(P, metrics=["converted", "revenue"], method=m)`` call per method
  (``covariates={"revenue": "revenue_pre"}`` for cuped); each call reads the file itself;
- pandas: ``pd.read_parquet`` once (its *read* step), then one function of
  ``_abtest_pandas`` per method on that frame.

It writes to ``--out`` what each step took (wall and CPU seconds, RSS and the process's peak
after it), the import, the analysis total (read + every method), the p-values, probabilities
and verdicts, and the in-memory size of the data (after the timed steps).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import time
from pathlib import Path
from typing import Any

# benchmarks/ is on sys.path when this file is run as a script.
from _abtest_data import generate
from _drift_worker import Clock as BaseClock
from _drift_worker import _status_mb

METRICS = ["converted", "revenue"]
COVARIATES = {"revenue": "revenue_pre"}
METHODS = ("frequentist", "sequential", "bayesian", "cuped")
ROW_KEYS = (
    "metric", "variant", "p_value", "p_adjusted", "prob_beat_control", "lift", "relative",
    "significant", "variance_reduction", "expected_loss",
)  # fmt: skip


class Clock(BaseClock):
    """The drift worker's clock, reported as a dict."""

    def as_dict(self) -> dict[str, float]:
        return {
            "wall_seconds": self.wall,
            "cpu_seconds": self.cpu,
            "rss_after_mb": self.rss,
            "peak_after_mb": self.peak,
        }


def module_hashes(package: Path) -> dict[str, str]:
    """The first 16 hex digits of the SHA-256 of each module of ``package`` (a directory)."""
    return {
        p.name: hashlib.sha256(p.read_bytes()).hexdigest()[:16]
        for p in sorted(package.glob("*.py"))
    }


def _plain(value: Any) -> Any:
    """A NumPy scalar as a Python number (JSON)."""
    return value.item() if hasattr(value, "item") else value


def _rows(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{k: _plain(r[k]) for k in ROW_KEYS if r.get(k) is not None} for r in rows]


def run_loopml(path: str, methods: list[str], res: dict[str, Any]) -> None:
    """One ``analyze`` call per method; each reads the Parquet file itself."""
    with Clock() as imp:
        import loopml
        from loopml.abtest import analyze

    res["import"] = imp.as_dict()
    res["versions"] = {"loopml": loopml.__version__}
    # the code this process measured: the driver checks that every process ran the same
    res["abtest_sha256"] = module_hashes(Path(loopml.abtest.__file__).parent)
    steps, outputs = {}, {}
    for m in methods:
        kw: dict[str, Any] = {"metrics": METRICS, "method": m}
        if m == "cuped":
            kw.update(method="frequentist", covariates=COVARIATES)
        with Clock() as step:
            analysis = analyze(path, **kw)
        steps[m] = step.as_dict()
        outputs[m] = {
            "rows": _rows(analysis.rows),
            "srm_p": analysis.srm["p_value"],
            "units": analysis.variants,
            "verdict": analysis.verdict,
        }
    res["steps"], res["outputs"] = steps, outputs


def run_pandas(path: str, methods: list[str], res: dict[str, Any]) -> Any:
    """``pd.read_parquet`` once, then each method's pandas/SciPy function on the frame."""
    with Clock() as imp:
        import _abtest_pandas as floor
        import pandas as pd
        import scipy
        import statsmodels
        from scipy import stats  # noqa: F401
        from statsmodels.stats import multitest, proportion  # noqa: F401

    res["import"] = imp.as_dict()
    res["versions"] = {
        "pandas": pd.__version__,
        "scipy": scipy.__version__,
        "statsmodels": statsmodels.__version__,
    }
    with Clock() as read:
        df = floor.read(path)
    res["read"] = read.as_dict()
    steps, outputs = {}, {}
    for m in methods:
        with Clock() as step:
            out = floor.METHODS[m](df)
        steps[m] = step.as_dict()
        out["rows"] = _rows(out["rows"])
        outputs[m] = out
    res["steps"], res["outputs"] = steps, outputs
    return df


def run(tool: str, path: str, methods: list[str]) -> dict[str, Any]:
    """Import ``tool``, run ``methods`` on ``path``; every figure of the process."""
    import numpy as np

    res: dict[str, Any] = {"tool": tool, "methods": methods, "rss_start_mb": _status_mb("VmRSS")}
    df = run_pandas(path, methods, res) if tool == "pandas" else None
    if tool == "loopml":
        run_loopml(path, methods, res)
    res["peak_rss_mb"] = _status_mb("VmHWM")  # before anything below is allocated
    timed = [res["steps"][m] for m in methods] + ([res["read"]] if "read" in res else [])
    res["analysis"] = {
        "wall_seconds": sum(s["wall_seconds"] for s in timed),
        "cpu_seconds": sum(s["cpu_seconds"] for s in timed),
    }
    res["versions"]["numpy"] = np.__version__
    if df is not None:
        res["frame_mb"] = float(df.memory_usage(deep=True).sum()) / 1e6
        res["frame_dtypes"] = {c: str(t) for c, t in df.dtypes.items()}
    return res


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--mode", choices=("generate", "run"), required=True)
    ap.add_argument("--tool", choices=("loopml", "pandas"))
    ap.add_argument("--rows", type=int)
    ap.add_argument("--path", type=Path, help="the Parquet file to write (generate)")
    ap.add_argument("--data", help="the Parquet file to analyse (run)")
    ap.add_argument("--methods", default=",".join(METHODS))
    ap.add_argument("--out", type=Path, required=True)
    args = ap.parse_args(argv)
    if args.mode == "generate":
        t0 = time.perf_counter()
        result = generate(args.path, args.rows)
        result["wall_seconds"] = time.perf_counter() - t0
    else:
        methods = [m for m in args.methods.split(",") if m]
        if not methods or set(methods) - set(METHODS):
            ap.error(f"--methods takes some of {','.join(METHODS)}")
        result = run(args.tool, args.data, methods)
    args.out.write_text(json.dumps(result, indent=2, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
