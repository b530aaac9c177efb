"""The 20 steps of ``pipelines.py``'s DAG: plain functions, the same bodies for every tool.

Each step does trivial work on a DataFrame of ~1,000 rows (or on a few numbers), so that what a
run costs beyond the floor (the same calls made directly) is the orchestrator's. ``wire`` lays
out the DAG once for every tool: it calls the steps through ``s``, which holds plain functions
(the floor), loopml ``@step`` objects (inside a ``@pipeline``: placeholders) or Prefect
``task.submit`` methods (futures)::

    load → clean → enrich ─┬→ feature(k=1) ─┐
                           ├→ …             ├→ join4 ─┐
                           ├→ feature(k=4) ─┘         │
                           ├→ feature(k=5) ─┐         ├→ join2 → standardize
                           ├→ …             ├→ join4 ─┘
                           └→ feature(k=8) ─┘
    standardize ─┬→ summarize ─┬→ score ─────┐
                 └─────────────┴→ threshold ─┴→ validate → report

20 steps: a chain of 3, a fan-out of 8, a two-level fan-in (2 + 1), a chain of 3 with a
diamond (threshold reads standardize and summarize), and a chain of 2. Every step is an
ancestor of ``report``, so its result means that all 20 have finished. Each ``feature`` gets
its own ``k``: no two steps are the same computation, so a first run executes all 20.

Needs only NumPy and pandas (it runs in loopml's interpreter and in ``.venv-prefect``).
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable
from types import SimpleNamespace
from typing import Any

import numpy as np
import pandas as pd

ROWS = 1000
N_STEPS = 20
# (function, seconds) of every step call in this process, appended by the bodies themselves.
CALLS: list[tuple[str, float]] = []


def _timed(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Record how long each call of the body takes (its own work, measured in-process)."""

    @functools.wraps(fn)
    def body(*args: Any, **kwargs: Any) -> Any:
        t0 = time.perf_counter()
        try:
            return fn(*args, **kwargs)
        finally:
            CALLS.append((fn.__name__, time.perf_counter() - t0))

    return body


@_timed
def load(rows: int, seed: int) -> pd.DataFrame:
    """The input: ``rows`` rows of generated data."""
    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        {
            "id": np.arange(rows),
            "x": rng.normal(size=rows),
            "y": rng.uniform(size=rows),
            "group": rng.integers(0, 5, size=rows),
        }
    )


@_timed
def clean(frame: pd.DataFrame) -> pd.DataFrame:
    """Clip outliers."""
    return frame.assign(x=frame["x"].clip(-3.0, 3.0))


@_timed
def enrich(frame: pd.DataFrame) -> pd.DataFrame:
    """Add a product column."""
    return frame.assign(xy=frame["x"] * frame["y"])


@_timed
def feature(frame: pd.DataFrame, k: int) -> pd.DataFrame:
    """One derived column, a different one per ``k``."""
    return pd.DataFrame({f"f{k}": frame["x"] * k + frame["y"] ** k + frame["xy"]})


@_timed
def join4(a: pd.DataFrame, b: pd.DataFrame, c: pd.DataFrame, d: pd.DataFrame) -> pd.DataFrame:
    """Four frames side by side."""
    return pd.concat([a, b, c, d], axis=1)


@_timed
def join2(a: pd.DataFrame, b: pd.DataFrame) -> pd.DataFrame:
    """Two frames side by side."""
    return pd.concat([a, b], axis=1)


@_timed
def standardize(frame: pd.DataFrame) -> pd.DataFrame:
    """Zero mean, unit variance per column."""
    return (frame - frame.mean()) / frame.std()


@_timed
def summarize(frame: pd.DataFrame) -> dict[str, float]:
    """Mean absolute value per column."""
    return {c: round(float(frame[c].abs().mean()), 12) for c in frame.columns}


@_timed
def score(stats: dict[str, float]) -> float:
    """The mean of the column summaries."""
    return round(sum(stats.values()) / len(stats), 12)


@_timed
def threshold(frame: pd.DataFrame, stats: dict[str, float]) -> dict[str, int]:
    """Rows above each column's mean absolute value."""
    return {c: int((frame[c].abs() > stats[c]).sum()) for c in frame.columns}


@_timed
def validate(score: float, counts: dict[str, int]) -> dict[str, Any]:
    """A verdict from the score and the counts."""
    above = sum(counts.values())
    return {"score": score, "rows_above": above, "ok": bool(0.5 < score < 1.5 and above > 0)}


@_timed
def report(check: dict[str, Any]) -> str:
    """One line of text."""
    return f"score={check['score']:.9f} rows_above={check['rows_above']} ok={check['ok']}"


FUNCTIONS = {
    f.__name__: f
    for f in (
        load, clean, enrich, feature, join4, join2, standardize, summarize, score, threshold,
        validate, report,
    )
}  # fmt: skip


def wire(s: Any, rows: int, seed: int) -> Any:
    """Lay out the 20-step DAG, calling each step through ``s.<name>``; returns what
    ``report`` returned (a value, a placeholder or a future)."""
    frame = s.enrich(s.clean(s.load(rows, seed)))
    feats = [s.feature(frame, k) for k in range(1, 9)]
    table = s.standardize(s.join2(s.join4(*feats[:4]), s.join4(*feats[4:])))
    stats = s.summarize(table)
    return s.report(s.validate(s.score(stats), s.threshold(table, stats)))


def floor_run(rows: int, seed: int) -> Any:
    """The same DAG as plain calls, one after the other: the steps' own work."""
    return wire(SimpleNamespace(**FUNCTIONS), rows, seed)
