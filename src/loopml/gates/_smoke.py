"""The smoke test: serve a model with loopml's inference server on a free loopback port, send a
few rows to its native ``POST /predict`` over real HTTP, check the answers, and stop the server,
whatever happened.

The server runs in this process (uvicorn in a thread, on a socket bound here to port 0, so no
other process can take the port between choosing and binding it). Its lifespan closes the
model's batcher on the way out, and the thread is joined before the gate returns.
"""

from __future__ import annotations

import socket
import statistics
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pandas as pd

from loopml.errors import InvalidInput, NotFound
from loopml.gates._data import as_frame
from loopml.gates._report import GateResult, fmt

__all__ = ["smoke_test"]

_STOP_SECONDS = 10.0


@contextmanager
def _serving(app: Any, deadline: float) -> Iterator[str]:
    """Run ``app`` on 127.0.0.1 until the block ends; yields its base URL.

    Raises:
        TimeoutError: the server did not start before ``deadline``.
        RuntimeError: the server stopped during start-up.
    """
    import uvicorn

    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
        config = uvicorn.Config(
            app, lifespan="on", log_config=None, log_level="warning", access_log=False
        )
        server = uvicorn.Server(config)
        thread = threading.Thread(
            target=server.run, kwargs={"sockets": [sock]}, name="loopml-gate-smoke", daemon=True
        )
        thread.start()
        try:
            while not server.started:
                if not thread.is_alive():
                    raise RuntimeError("the server stopped during start-up")
                if time.monotonic() > deadline:
                    raise TimeoutError("the server did not start in time")
                time.sleep(0.01)
            yield f"http://127.0.0.1:{port}"
        finally:
            server.should_exit = True
            thread.join(_STOP_SECONDS)
            if thread.is_alive():  # open connections keep a graceful stop waiting
                server.force_exit = True
                thread.join(_STOP_SECONDS)
    finally:
        sock.close()


def _payload(frame: pd.DataFrame, names: list[str]) -> pd.DataFrame:
    """The columns a client would send: the signature's (in its order) where it names any."""
    if not names:
        return frame
    return frame[[c for c in names if c in frame.columns]]


def _why(resp: Any) -> str:
    try:
        body = resp.json()
    except ValueError:
        return resp.text[:200]
    if isinstance(body, dict) and "message" in body:
        return str(body["message"])
    return str(body)[:200]


def _exchange(
    url: str, payload: pd.DataFrame, deadline: float
) -> tuple[str | None, dict[str, Any]]:
    """Send the rows as one list, then one by one; (why it failed or None, evidence)."""
    import httpx
    import orjson

    records = orjson.loads(payload.to_json(orient="records", date_format="iso"))
    n = len(records)
    latencies: list[float] = []
    evidence: dict[str, Any] = {"url": url, "rows": n}

    def post(body: Any) -> httpx.Response:
        left = deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError("the time for the smoke test ran out")
        start = time.perf_counter()
        resp = http.post("/predict", content=orjson.dumps(body), timeout=left)
        latencies.append((time.perf_counter() - start) * 1000)
        return resp

    with httpx.Client(base_url=url, headers={"content-type": "application/json"}) as http:
        resp = post(records)
        evidence["batch_latency_ms"] = latencies[0]
        if resp.status_code != 200:
            return f"POST /predict of {n} rows answered {resp.status_code}: {_why(resp)}", evidence
        body = resp.json()
        predictions = body.get("predictions") if isinstance(body, dict) else None
        evidence["model_version"] = body.get("model_version") if isinstance(body, dict) else None
        if not isinstance(predictions, list) or len(predictions) != n:
            got = len(predictions) if isinstance(predictions, list) else "no"
            return f"POST /predict of {n} rows gave {got} predictions", evidence
        nulls = sum(p is None for p in predictions)
        if nulls:
            return f"{nulls} of {n} predictions are null", evidence
        for i, record in enumerate(records):
            resp = post(record)
            if resp.status_code != 200:
                why = f"POST /predict of row {i} answered {resp.status_code}: {_why(resp)}"
                return why, evidence
            one = resp.json()
            if not isinstance(one, dict) or one.get("prediction") is None:
                return f"POST /predict of row {i} gave no prediction", evidence
    single = latencies[1:]
    evidence["latency_ms"] = {"p50": statistics.median(single), "max": max(single)}
    return None, evidence


def smoke_test(
    model_uri: str,
    data: Any,
    *,
    rows: int = 5,
    timeout: float = 60.0,
    max_latency_ms: float | None = None,
) -> GateResult:
    """Serve the model on a free 127.0.0.1 port, predict a few rows over HTTP, stop it.

    The first ``rows`` rows of ``data`` are sent to ``POST /predict`` as one list, then one at
    a time; each answer must be HTTP 200 with one (non-null) prediction per row. Columns the
    model's signature does not name (such as the target) are not sent.

    Args:
        model_uri: the model to serve, e.g. ``models:/churn/5`` or ``models:/churn@staging``.
        data: rows to send: a DataFrame, Arrow table, dataset reference or Parquet/CSV path.
        rows: how many rows to send, at least 1.
        timeout: seconds the server may take to start and answer every request.
        max_latency_ms: also fail when a single-row request takes longer than this.

    Returns:
        A ``GateResult`` named ``smoke``: ``measured`` is the rows predicted, ``threshold`` the
        rows sent; the evidence holds the latencies.

    Raises:
        InvalidInput: bad arguments or no rows. NotFound: an unknown model, version or alias.
    """
    import httpx

    from loopml.models import pin_model_uri
    from loopml.serving import ModelRuntime, create_serving_app

    if isinstance(rows, bool) or not isinstance(rows, int) or rows < 1:
        raise InvalidInput(f"rows must be a whole number >= 1, got {rows!r}")
    if isinstance(timeout, bool) or not isinstance(timeout, int | float) or not timeout > 0:
        raise InvalidInput(f"timeout must be a number of seconds > 0, got {timeout!r}")
    if max_latency_ms is not None and not (
        isinstance(max_latency_ms, int | float) and max_latency_ms > 0
    ):
        raise InvalidInput(f"max_latency_ms must be a number > 0, got {max_latency_ms!r}")
    frame = as_frame(data).head(rows)
    if frame.empty:
        raise InvalidInput("the smoke test needs at least one row of data")
    pin_model_uri(model_uri)  # an unknown model is an error, not a failed gate
    n = len(frame)
    evidence: dict[str, Any] = {"model_uri": model_uri, "rows": n}
    try:
        runtime = ModelRuntime.load(model_uri)
    except (NotFound, InvalidInput):
        raise
    except Exception as exc:  # noqa: BLE001 - a model that does not load fails the gate
        detail = f"the model did not load: {type(exc).__name__}: {exc}"
        return GateResult("smoke", False, detail, 0, n, evidence)
    signature = runtime.model.signature
    payload = _payload(frame, signature.input_names if signature is not None else [])
    deadline = time.monotonic() + timeout
    try:
        with _serving(create_serving_app(runtime), deadline) as url:
            why, found = _exchange(url, payload, deadline)
    except (httpx.HTTPError, OSError, RuntimeError, ValueError) as exc:  # TimeoutError is OSError
        why, found = f"{type(exc).__name__}: {exc}", {}
    evidence.update(found)
    if why is not None:
        return GateResult("smoke", False, why, 0, n, evidence)
    latency = evidence["latency_ms"]
    timing = (
        f"batch {fmt(evidence['batch_latency_ms'])} ms; one row p50 {fmt(latency['p50'])} ms, "
        f"max {fmt(latency['max'])} ms"
    )
    if max_latency_ms is not None and latency["max"] > max_latency_ms:
        over = latency["max"] - max_latency_ms
        detail = (
            f"slowest one-row request took {fmt(latency['max'])} ms > {fmt(float(max_latency_ms))}"
            f" ms (over by {fmt(over)} ms)"
        )
        return GateResult("smoke", False, detail, n, n, evidence)
    detail = f"{n} rows predicted over HTTP ({timing})"
    return GateResult("smoke", True, detail, n, n, evidence)
