"""Small helpers shared by the examples: synthetic data and a server run in the background.

Not an example itself (the leading underscore keeps it out of the examples' test).
"""

from __future__ import annotations

import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

FEATURES = ["age", "tenure_months", "monthly_charges", "support_calls"]


def churn_frame(n: int = 1_000, *, seed: int = 0, shift: float = 0.0) -> pd.DataFrame:
    """A synthetic customer-churn table: four numeric features and a 0/1 ``churned`` label.

    ``shift`` moves the customers' ages and charges, to simulate drifted production traffic.
    """
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame(
        {
            "age": rng.normal(40 + 10 * shift, 12, n).clip(18, 90),
            "tenure_months": rng.integers(1, 72, n).astype(float),
            "monthly_charges": rng.normal(70 + 20 * shift, 20, n).clip(10, 200),
            "support_calls": rng.poisson(2, n).astype(float),
        }
    )
    risk = (
        0.04 * (frame["monthly_charges"] - 70)
        - 0.06 * (frame["tenure_months"] - 36)
        + 0.5 * (frame["support_calls"] - 2)
    )
    frame["churned"] = (risk + rng.normal(0, 1, n) > 0).astype(int)
    return frame


def split(frame: pd.DataFrame, test_share: float = 0.25) -> tuple[pd.DataFrame, pd.DataFrame]:
    """First rows for training, the rest for testing (the data is already shuffled)."""
    cut = int(len(frame) * (1 - test_share))
    return frame.iloc[:cut].reset_index(drop=True), frame.iloc[cut:].reset_index(drop=True)


def scores(y_true: Any, y_pred: Any) -> dict[str, float]:
    """The seeds' two test metrics: accuracy and (weighted) F1."""
    from sklearn.metrics import accuracy_score, f1_score

    return {
        "accuracy": float(accuracy_score(y_true, y_pred)),
        "f1_score": float(f1_score(y_true, y_pred, average="weighted")),
    }


@contextmanager
def serve_in_background(app: Any) -> Iterator[str]:
    """Run an ASGI app (loopml's inference server) on a free 127.0.0.1 port until the block
    ends; yields its base URL. What ``loopml serve`` does, inside this process."""
    import uvicorn

    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))  # port 0: the OS picks a free port, already ours
    server = uvicorn.Server(uvicorn.Config(app, lifespan="on", log_level="warning"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 20
        while not server.started:
            if not thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the inference server did not start")
            time.sleep(0.02)
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        server.should_exit = True
        thread.join(10)
        sock.close()


@contextmanager
def loopml_process(*args: str, ready: str = "/health") -> Iterator[str]:
    """Run ``loopml <args> --port <a free port>`` as its own process until the block ends;
    yields its base URL once ``GET <ready>`` answers 200."""
    import httpx

    with socket.socket() as sock:  # a free port; the process binds it a moment later
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    exe = Path(sys.executable).with_name("loopml")  # the `loopml` of this environment
    command = [str(exe)] if exe.exists() else [sys.executable, "-m", "loopml"]
    process = subprocess.Popen([*command, *args, "--port", str(port)], stdout=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(base + ready).status_code == 200:
                    break
            except httpx.TransportError:
                pass  # not listening yet
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"`loopml {' '.join(args)}` did not become ready")
            time.sleep(0.1)
        yield base
    finally:
        process.terminate()
        process.wait(timeout=15)
