"""One measured step of the drift benchmark, run in a fresh process by ``drift.py``.

``--mode generate --rows N --dir D`` writes the reference and current Parquet files of one
size. ``--mode check --tool evidently|loopml|floor --ref R --cur C`` imports the tool, reads
both files into pandas, runs the tool's drift check with its defaults and writes to ``--out``
what it took (import, read and check: wall and CPU seconds; RSS after the imports, after the
read, and the process's peak), the in-memory size of the data and the columns flagged.

``--mode profile --ref R --profile P`` reads the reference Parquet file, builds loopml's
``profile_reference`` of it and writes ``P`` as JSON (``ReferenceProfile.to_dict``): what a
deployment stores once per model version. ``--mode check --tool loopml-profile --profile P
--cur C`` is the repeated check against that stored profile: it reads only the profile JSON and
the current Parquet file (its read), then runs ``ReferenceProfile.from_dict`` and
``detect_drift(profile, cur)`` (its check); its data size is the current frame's.

Runs in loopml's interpreter (loopml, loopml-profile, floor; generate, profile) and in
``benchmarks/.venv-evidently`` (Evidently): it needs only NumPy, pandas and pyarrow besides the
tool.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

# benchmarks/ is on sys.path when this file is run as a script.
from _drift_data import CATEGORICAL_COLUMNS, COLUMNS, NUMERIC_COLUMNS, generate

# Evidently's and loopml's defaults for more than 1,000 reference rows (p-values below).
SMALL = 1000
WASSERSTEIN_THRESHOLD = 0.1
JS_THRESHOLD = 0.1
P_THRESHOLD = 0.05


def _status_mb(key: str) -> float:
    """VmRSS or VmHWM of this process in MB (10^6 bytes), from /proc/self/status."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1]) * 1.024e-3
    return float("nan")


class Clock:
    """Wall and CPU seconds (every thread of the process) of a block, and the RSS after it."""

    def __enter__(self) -> Clock:
        self.t0, self.c0 = time.perf_counter(), time.process_time()
        return self

    def __exit__(self, *exc: object) -> None:
        self.wall = time.perf_counter() - self.t0
        self.cpu = time.process_time() - self.c0
        self.rss, self.peak = _status_mb("VmRSS"), _status_mb("VmHWM")


# -- the tools ---------------------------------------------------------------------------------
def import_tool(tool: str) -> dict[str, str]:
    """Import what ``tool``'s check needs; return the versions that matter."""
    import numpy as np
    import pandas as pd

    out = {"numpy": np.__version__, "pandas": pd.__version__}
    if tool == "evidently":
        import evidently
        from evidently import DataDefinition, Dataset, Report  # noqa: F401
        from evidently.presets import DataDriftPreset  # noqa: F401

        out["evidently"] = evidently.__version__
    elif tool in ("loopml", "loopml-profile"):
        import loopml
        from loopml.monitoring import (  # noqa: F401
            ReferenceProfile,
            detect_drift,
            profile_reference,
        )

        out["loopml"] = loopml.__version__
    else:
        import scipy
        from scipy import stats  # noqa: F401
        from scipy.spatial.distance import jensenshannon  # noqa: F401

        out["scipy"] = scipy.__version__
    return out


def check_evidently(ref: Any, cur: Any) -> dict[str, Any]:
    """Evidently's data-drift preset at its defaults, the column types declared."""
    from evidently import DataDefinition, Dataset, Report
    from evidently.presets import DataDriftPreset

    definition = DataDefinition(
        numerical_columns=NUMERIC_COLUMNS, categorical_columns=CATEGORICAL_COLUMNS
    )
    report = Report([DataDriftPreset()])
    snapshot = report.run(
        current_data=Dataset.from_pandas(cur, data_definition=definition),
        reference_data=Dataset.from_pandas(ref, data_definition=definition),
    )
    result = snapshot.dict()
    # Each column's ValueDrift metric holds the score, the method and the threshold it used; a
    # p-value test drifts below its threshold, a distance at or above it (Evidently's stattests).
    # The DriftedColumnsCount metric, computed separately, gives the count to check against.
    columns: dict[str, Any] = {}
    count = None
    for metric in result["metrics"]:
        config = metric["config"]
        if config["type"].endswith(":DriftedColumnsCount"):
            count = metric["value"]["count"]
        elif config["type"].endswith(":ValueDrift"):
            method, threshold, score = config["method"], config["threshold"], metric["value"]
            is_p = "p_value" in method
            drifted = score < threshold if is_p else score >= threshold
            columns[config["column"]] = {
                "method": method,
                "threshold": threshold,
                "score": score,
                "drifted": bool(drifted),
            }
    return {"columns": columns, "drifted_count_metric": count}


def check_loopml(ref: Any, cur: Any) -> dict[str, Any]:
    """``loopml.monitoring.detect_drift`` at its defaults."""
    from loopml.monitoring import detect_drift

    return _loopml_result(detect_drift(ref, cur))


def check_loopml_profile(profile: dict[str, Any], cur: Any) -> dict[str, Any]:
    """``detect_drift`` at its defaults against a stored profile: ``profile`` is the JSON as
    read from the file (``ReferenceProfile.to_dict``)."""
    from loopml.monitoring import ReferenceProfile, detect_drift

    return _loopml_result(detect_drift(ReferenceProfile.from_dict(profile), cur))


def _loopml_result(report: Any) -> dict[str, Any]:
    """The per-column figures of a loopml ``DriftReport``."""
    flagged = set(report.drifted_columns)
    columns = {}
    for name, col in report.columns.items():
        columns[name] = {
            "test": getattr(col, "test", None),
            "statistic": col.statistic,
            "p_value": col.p_value,
            "effect_size": col.effect_size,
            "drifted": bool(col.drifted),
            "in_drifted_columns": name in flagged,
        }
    return {"columns": columns, "dataset_drift": getattr(report, "dataset_drift", None)}


def check_floor(ref: Any, cur: Any) -> dict[str, Any]:
    """The same statistics written directly with NumPy and SciPy: per numeric column the
    Wasserstein distance / reference std and the two-sample KS test; per categorical column the
    Jensen-Shannon distance of the category shares and the chi-square test of the 2 x k table.
    The verdict as Evidently's and loopml's defaults give it: distances for more than 1,000
    reference rows, p-values up to that."""
    import numpy as np
    from scipy import stats
    from scipy.spatial.distance import jensenshannon

    columns = {}
    for name in NUMERIC_COLUMNS:
        r = ref[name].to_numpy(dtype=float, na_value=np.nan)
        c = cur[name].to_numpy(dtype=float, na_value=np.nan)
        r, c = r[~np.isnan(r)], c[~np.isnan(c)]
        w = stats.wasserstein_distance(r, c) / max(float(np.std(r)), 1e-3)
        ks = stats.ks_2samp(r, c)
        drifted = ks.pvalue < P_THRESHOLD if len(r) <= SMALL else w >= WASSERSTEIN_THRESHOLD
        columns[name] = {
            "wasserstein_norm": float(w),
            "ks": float(ks.statistic),
            "ks_p_value": float(ks.pvalue),
            "drifted": bool(drifted),
        }
    for name in CATEGORICAL_COLUMNS:
        counts = ref[name].value_counts().to_frame("r").join(cur[name].value_counts(), how="outer")
        table = counts.fillna(0).to_numpy(dtype=float).T
        p, q = table[0] / table[0].sum(), table[1] / table[1].sum()
        js = float(jensenshannon(p, q))
        chi2 = stats.chi2_contingency(table, correction=False)
        n_ref = table[0].sum()
        drifted = chi2.pvalue < P_THRESHOLD if n_ref <= SMALL else js >= JS_THRESHOLD
        columns[name] = {
            "jensenshannon": js,
            "chi2": float(chi2.statistic),
            "chi2_p_value": float(chi2.pvalue),
            "drifted": bool(drifted),
        }
    return {"columns": columns}


CHECKS = {
    "evidently": check_evidently,
    "loopml": check_loopml,
    "loopml-profile": check_loopml_profile,
    "floor": check_floor,
}


def run_check(tool: str, ref_path: str, cur_path: str) -> dict[str, Any]:
    """Import, read, check: the figures and the flagged columns. For ``loopml-profile``,
    ``ref_path`` is the profile's JSON file, read with ``json.loads``."""
    res: dict[str, Any] = {"tool": tool, "rss_start_mb": _status_mb("VmRSS")}
    with Clock() as imp:
        res["versions"] = import_tool(tool)
    res["import"] = {"wall_seconds": imp.wall, "cpu_seconds": imp.cpu}
    res["rss_after_import_mb"] = _status_mb("VmRSS")
    import pandas as pd

    with Clock() as read:
        if tool == "loopml-profile":
            ref = json.loads(Path(ref_path).read_bytes())
        else:
            ref = pd.read_parquet(ref_path)
        cur = pd.read_parquet(cur_path)
    res["read"] = {"wall_seconds": read.wall, "cpu_seconds": read.cpu}
    res["rss_after_read_mb"] = _status_mb("VmRSS")
    res["peak_after_read_mb"] = _status_mb("VmHWM")
    with Clock() as check:
        out = CHECKS[tool](ref, cur)
    res["check"] = {"wall_seconds": check.wall, "cpu_seconds": check.cpu}
    res["rss_after_check_mb"] = _status_mb("VmRSS")
    res["peak_rss_mb"] = _status_mb("VmHWM")  # before anything else is allocated
    res["total"] = {
        "wall_seconds": read.wall + check.wall,
        "cpu_seconds": read.cpu + check.cpu,
    }
    res.update(out)
    res["flagged"] = sorted(c for c, v in out["columns"].items() if v["drifted"])
    res["dtypes"] = {c: str(cur[c].dtype) for c in COLUMNS}
    # after the check, so that computing it (it walks every Python string object under pandas 2)
    # touches nothing the check's figures include
    if tool == "loopml-profile":
        res["rows"] = {"reference": int(ref["n_rows"]), "current": len(cur)}
        res["profile_json_bytes"] = Path(ref_path).stat().st_size
        res["data_mb"] = float(cur.memory_usage(deep=True).sum()) / 1e6  # the current only
    else:
        res["rows"] = {"reference": len(ref), "current": len(cur)}
        res["data_mb"] = (
            float(ref.memory_usage(deep=True).sum() + cur.memory_usage(deep=True).sum()) / 1e6
        )
    return res


def build_profile(ref_path: str, profile_path: Path) -> dict[str, Any]:
    """Import loopml, read the reference, ``profile_reference`` it, write the profile's JSON:
    each phase's wall and CPU seconds, RSS after each, the peak, and the JSON's size."""
    res: dict[str, Any] = {"tool": "loopml-profile", "rss_start_mb": _status_mb("VmRSS")}
    with Clock() as imp:
        res["versions"] = import_tool("loopml-profile")
    res["import"] = {"wall_seconds": imp.wall, "cpu_seconds": imp.cpu}
    res["rss_after_import_mb"] = _status_mb("VmRSS")
    import pandas as pd

    from loopml.monitoring import profile_reference

    with Clock() as read:
        ref = pd.read_parquet(ref_path)
    res["read"] = {"wall_seconds": read.wall, "cpu_seconds": read.cpu}
    res["rss_after_read_mb"] = _status_mb("VmRSS")
    res["peak_after_read_mb"] = _status_mb("VmHWM")
    with Clock() as build:
        profile = profile_reference(ref)
    res["profile"] = {"wall_seconds": build.wall, "cpu_seconds": build.cpu}
    with Clock() as write:
        profile_path.write_text(json.dumps(profile.to_dict()))
    res["write"] = {"wall_seconds": write.wall, "cpu_seconds": write.cpu}
    res["rss_after_write_mb"] = _status_mb("VmRSS")
    res["peak_rss_mb"] = _status_mb("VmHWM")
    res["total"] = {
        "wall_seconds": read.wall + build.wall + write.wall,
        "cpu_seconds": read.cpu + build.cpu + write.cpu,
    }
    res["json_bytes"] = profile_path.stat().st_size
    res["path"] = str(profile_path)
    res["rows"] = {"reference": len(ref)}
    res["columns"] = {
        name: {
            "kind": col.kind,
            "n": col.n,
            "points": None if col.points is None else len(col.points),
        }
        for name, col in profile.columns.items()
    }
    res["data_mb"] = float(ref.memory_usage(deep=True).sum()) / 1e6  # the reference only
    return res


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--mode", choices=("generate", "profile", "check"), required=True)
    ap.add_argument("--tool", choices=tuple(CHECKS))
    ap.add_argument("--rows", type=int)
    ap.add_argument("--dir", type=Path)
    ap.add_argument("--ref")
    ap.add_argument("--cur")
    ap.add_argument("--profile", help="the profile's JSON file (written, or read)")
    ap.add_argument("--out", type=Path, required=True)
    args = ap.parse_args(argv)
    if args.mode == "generate":
        t0 = time.perf_counter()
        paths = generate(args.dir, args.rows)
        result: dict[str, Any] = {"paths": paths, "wall_seconds": time.perf_counter() - t0}
        result["file_mb"] = {k: Path(p).stat().st_size / 1e6 for k, p in paths.items()}
    elif args.mode == "profile":
        result = build_profile(args.ref, Path(args.profile))
    elif args.tool == "loopml-profile":
        result = run_check(args.tool, args.profile, args.cur)
    else:
        result = run_check(args.tool, args.ref, args.cur)
    args.out.write_text(json.dumps(result, indent=2, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
