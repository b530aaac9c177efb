"""Steps and pipelines at module level, importable by other processes (processes, Ray,
``module:attr`` targets). Counters are files, so that every executor's workers can bump them."""

from __future__ import annotations

import enum
import os
import time
from pathlib import Path

import numpy as np
import pandas as pd

import loopml
from loopml.pipelines import pipeline, step


def bump(name: str) -> int:
    """Count a call in ``$COUNTS/<name>`` (a file per call: safe across processes)."""
    folder = Path(os.environ.get("COUNTS", "counts"))
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{name}-{os.getpid()}-{time.monotonic_ns()}").touch()
    return len(list(folder.glob(f"{name}-*")))


def calls(name: str) -> int:
    """How many times ``bump(name)`` ran."""
    folder = Path(os.environ.get("COUNTS", "counts"))
    return len(list(folder.glob(f"{name}-*")))


class Level(enum.IntEnum):
    HIGH = 2


@step
def make_frame(n: int = 100, seed: int = 0) -> pd.DataFrame:
    bump("make_frame")
    rng = np.random.default_rng(seed)
    x = rng.normal(size=n)
    print(f"made {n} rows")
    return pd.DataFrame({"x": x, "y": (x + rng.normal(scale=0.5, size=n) > 0).astype(int)})


@step(outputs=("train", "test"))
def split(frame: pd.DataFrame, test_share: float = 0.25):
    bump("split")
    cut = int(len(frame) * (1 - test_share))
    return frame.iloc[:cut], frame.iloc[cut:]


@step
def fit(train: pd.DataFrame, c: float = 1.0):
    from sklearn.linear_model import LogisticRegression

    bump("fit")
    with loopml.start_run(run_name="fit"):
        loopml.log_param("c", c)
        model = LogisticRegression(C=c).fit(train[["x"]], train["y"])
        loopml.log_metric("train_rows", len(train))
    return model


@step
def score(model, test: pd.DataFrame) -> dict:
    bump("score")
    accuracy = float((model.predict(test[["x"]]) == test["y"]).mean())
    return {"accuracy": accuracy, "rows": len(test)}


@pipeline
def training(n: int = 200, c: float = 1.0):
    """Make data, split, fit and score a logistic regression."""
    frame = make_frame(n)
    train, test = split(frame)
    model = fit(train, c=c)
    return {"model": model, "metrics": score(model, test)}


@step
def slow(seconds: float) -> float:
    bump("slow")
    time.sleep(seconds)
    return seconds


slow_with_timeout = slow.options(name="slow_limited", timeout=0.5)


@pipeline
def sleepy(seconds: float = 5.0):
    return slow_with_timeout(seconds)


@step
def flaky(fail_times: int) -> str:
    """Fails ``fail_times`` times, then succeeds (counted across processes)."""
    n = bump("flaky")
    if n <= fail_times:
        raise RuntimeError(f"flaky failure {n}")
    return f"ok after {n}"


@pipeline
def retrying(fail_times: int = 2):
    return flaky.options(retries=3, retry_delay=0.05)(fail_times)


@step
def pid() -> int:
    return os.getpid()


@pipeline
def where():
    return pid()
