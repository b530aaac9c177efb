"""The demo's inference server and its clients: ``loopml serve DEPLOYMENT`` run in a background
thread on a free 127.0.0.1 port (it follows the deployment and appends every prediction to the
prediction log), and customers' requests sent to it over HTTP, a few at a time."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pandas as pd

__all__ = ["DemoServer", "send_requests"]

_STOP_SECONDS = 10.0


class DemoServer:
    """A deployment's inference server in this process, as ``loopml serve NAME`` runs it.

    ``start()`` returns once it answers; ``stop()`` stops it, its deployment follower and its
    batchers, and writes what the prediction log still holds.
    """

    def __init__(self, deployment: str, *, follow_interval: float = 0.5) -> None:
        self.deployment = deployment
        self.follow_interval = follow_interval
        self.url = ""
        self.log: Any = None
        self._server: Any = None
        self._thread: threading.Thread | None = None
        self._sock: socket.socket | None = None

    def start(self, timeout: float = 60.0) -> DemoServer:
        """Load the deployment's models and serve them; raises if it does not come up."""
        import uvicorn

        from loopml.monitoring import PredictionLog
        from loopml.serving import build_service, create_serving_app, get_deployment_store

        self.log = PredictionLog(flush_interval=0.2)
        service = build_service(
            get_deployment_store(),
            self.deployment,
            prediction_log=self.log,
            interval=self.follow_interval,
        )
        sock = self._sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.bind(("127.0.0.1", 0))  # bound here: no other process can take the port meanwhile
        self.url = f"http://127.0.0.1:{sock.getsockname()[1]}"
        config = uvicorn.Config(
            create_serving_app(service),
            lifespan="on",
            log_config=None,
            log_level="warning",
            access_log=False,
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(
            target=self._server.run,
            kwargs={"sockets": [sock]},
            name=f"loopml-demo-serve-{self.deployment}",
            daemon=True,
        )
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"the inference server of {self.deployment!r} did not start")
            time.sleep(0.01)
        return self

    def stop(self) -> None:
        """Stop serving and join the thread (idempotent)."""
        if self._server is not None and self._thread is not None:
            self._server.should_exit = True
            self._thread.join(_STOP_SECONDS)
            if self._thread.is_alive():  # open connections keep a graceful stop waiting
                self._server.force_exit = True
                self._thread.join(_STOP_SECONDS)
        if self.log is not None:
            self.log.close()  # the app's lifespan closed it too; closing twice is fine
        if self._sock is not None:
            self._sock.close()
        self._server = self._thread = self._sock = None

    def flush(self) -> None:
        """Write every logged prediction now (monitoring reads the files)."""
        self.log.flush()

    def info(self) -> dict[str, Any]:
        """What ``GET /model/info`` says: the primary model and every variant."""
        import httpx

        return dict(httpx.get(f"{self.url}/model/info", timeout=10).json())

    def wait_until(self, served: Callable[[dict[str, Any]], bool], timeout: float = 30.0) -> None:
        """Wait until the server has followed a change of its deployment."""
        deadline = time.monotonic() + timeout
        while not served(self.info()):
            if time.monotonic() > deadline:
                raise RuntimeError(f"{self.deployment!r} did not pick up its new variants")
            time.sleep(0.1)


def send_requests(
    url: str, rows: pd.DataFrame, columns: list[str], *, unit_key: str, workers: int = 4
) -> pd.DataFrame:
    """POST one request per row to ``/predict`` (the unit id in the body) from ``workers``
    threads; returns one row per request: the unit, HTTP status, prediction, variant, model
    version and prediction id."""
    import httpx

    records = rows[[unit_key, *columns]].to_dict("records")
    chunks = [records[i::workers] for i in range(workers)]

    def run(chunk: list[dict[str, Any]]) -> list[dict[str, Any]]:
        out = []
        with httpx.Client(base_url=url, timeout=30) as http:
            for record in chunk:
                resp = http.post("/predict", json=record)
                body = resp.json() if resp.status_code == 200 else {}
                out.append(
                    {
                        unit_key: record[unit_key],
                        "status": resp.status_code,
                        "prediction": body.get("prediction"),
                        "variant": body.get("variant"),
                        "model_version": body.get("model_version"),
                        "prediction_id": body.get("prediction_id"),
                    }
                )
        return out

    with ThreadPoolExecutor(workers, thread_name_prefix="loopml-demo-client") as pool:
        answers = [a for part in pool.map(run, chunks) for a in part]
    return pd.DataFrame(answers)
