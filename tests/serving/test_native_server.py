"""The inference server's first slice on real ports: a registered model served by alias over the
native JSON protocol, its health and info routes, bad input answered with 400s naming the
field, and ``loopml serve`` as a real process."""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression

import loopml
from loopml.errors import InvalidInput
from loopml.serving import ModelRuntime, create_serving_app


def _register() -> tuple[LogisticRegression, pd.DataFrame]:
    x = pd.DataFrame({"age": [20.0, 35.0, 50.0, 65.0], "income": [1.0, 3.0, 2.0, 5.0]})
    model = LogisticRegression().fit(x, [0, 0, 1, 1])
    with loopml.start_run():
        info = loopml.log_model(
            model, "model", registered_model_name="churn", input_example=x.iloc[:2]
        )
    loopml.Client().set_registered_model_alias(
        "churn", "production", info.registered_model_version
    )
    return model, x


def test_native_protocol(server_factory: Callable[..., Any]) -> None:
    model, x = _register()
    runtime = ModelRuntime.load("models:/churn@production")
    url = server_factory(app=create_serving_app(runtime)).url
    with httpx.Client(base_url=url) as http:
        assert http.get("/health").json() == {"status": "ok"}
        assert http.get("/ready").json()["ready"] is True
        info = http.get("/model/info").json()
        assert (info["name"], info["version"], info["flavor"]) == ("churn", "1", "sklearn")
        assert info["runtime"] in ("onnx", "native")
        assert [c["name"] for c in info["signature"]["inputs"]] == ["age", "income"]

        resp = http.post("/predict", json={"age": 60.0, "income": 4.0})
        one = resp.json()
        assert one["prediction"] == int(
            model.predict(pd.DataFrame([[60.0, 4.0]], columns=x.columns))[0]
        )
        assert (one["model_version"], one["variant"]) == ("1", "default")
        assert resp.headers["x-loopml-model-version"] == "1"
        assert resp.headers["x-loopml-variant"] == "default"
        assert resp.headers["x-prediction-id"] == one["prediction_id"] != ""
        records = x.to_dict(orient="records")
        many = http.post("/predict", json=records).json()["predictions"]
        assert many == model.predict(x).tolist()
        batch = http.post("/predict/batch", json={"instances": records}).json()["predictions"]
        assert batch == many


@pytest.mark.parametrize(
    ("body", "status", "words"),
    [
        ({"age": 60.0}, 400, "income"),
        ({"age": 60.0, "income": 4.0, "colour": "red"}, 400, "colour"),
        ({"age": "old", "income": 4.0}, 400, "age"),
        ([], 400, "no instances"),
        ("just a string", 400, "instance"),
        ({"instances": 5}, 400, "instances"),
    ],
)
def test_bad_input_is_400_naming_the_field(
    server_factory: Callable[..., Any], body: Any, status: int, words: str
) -> None:
    _register()
    url = server_factory(app=create_serving_app(ModelRuntime.load("models:/churn@production"))).url
    resp = httpx.post(f"{url}/predict", json=body)
    assert resp.status_code == status, resp.text
    assert resp.json()["error_code"] == InvalidInput.code
    assert words in resp.json()["message"]
    resp = httpx.post(f"{url}/predict", content=b"{not json")
    assert resp.status_code == 400 and "JSON" in resp.json()["message"]


def test_loopml_serve_process(
    tmp_path: Path, free_tcp_port: int, loopml_cmd: list[str], loopml_process: Any
) -> None:
    """The command as an operator runs it: a real process, ready only once loaded."""
    _register()
    port = free_tcp_port
    cmd = loopml_cmd
    env = dict(os.environ)
    args = ["serve", "models:/churn@production", "--port", str(port)]
    ready = f"http://127.0.0.1:{port}/ready"
    with loopml_process(args, log=tmp_path / "serve.log", ready=ready):
        resp = httpx.post(f"http://127.0.0.1:{port}/predict", json={"age": 20.0, "income": 1.0})
        assert resp.json()["prediction"] == 0
    bad = subprocess.run(
        [*cmd, "serve", "models:/nope@production", "--port", str(port)],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert bad.returncode == 1
    assert "registered model 'nope' does not exist" in bad.stderr
    assert "Traceback" not in bad.stderr


def test_tf_serving_v1_protocol(server_factory: Callable[..., Any]) -> None:
    model, x = _register()
    url = server_factory(app=create_serving_app(ModelRuntime.load("models:/churn@production"))).url
    expected = model.predict(x).tolist()
    with httpx.Client(base_url=url) as http:
        status = http.get("/v1/models/churn").json()
        assert status["model_version_status"][0]["state"] == "AVAILABLE"
        rows = http.post("/v1/models/churn:predict", json={"instances": x.to_dict("records")})
        assert rows.json() == {"predictions": expected}
        lists = http.post(
            "/v1/models/churn/versions/1:predict", json={"instances": x.values.tolist()}
        )
        assert lists.json() == {"predictions": expected}
        columns = http.post("/v1/models/churn:predict", json={"inputs": x.to_dict("list")})
        assert columns.json() == {"outputs": expected}

        def error(resp: Any, status: int, words: str) -> None:
            assert resp.status_code == status, resp.text
            assert words in resp.json()["error"]

        error(http.post("/v1/models/other:predict", json={"instances": [[1, 2]]}), 404, "other")
        error(http.get("/v1/models/churn/versions/7"), 404, "version 1")
        error(
            http.post("/v1/models/churn:predict", json={"instances": [[1.0]]}), 400, "age, income"
        )
        error(http.post("/v1/models/churn:predict", json={"rows": []}), 400, "instances")
        error(
            http.post("/v1/models/churn:predict", json={"inputs": {"age": [1.0], "income": []}}),
            400,
            "one length",
        )
        error(
            http.post("/v1/models/churn:predict", json={"instances": [{"age": 1.0}]}),
            400,
            "income",
        )


def test_loopml_serve_with_workers(
    tmp_path: Path, free_tcp_port: int, loopml_process: Any
) -> None:
    """``--workers 2``: two processes share the port, each with the model loaded and warm."""
    _register()
    port = free_tcp_port
    log = tmp_path / "serve.log"
    args = ["serve", "models:/churn/1", "--port", str(port), "--workers", "2"]
    url = f"http://127.0.0.1:{port}"
    with loopml_process(args, log=log, ready=url + "/ready", timeout=120) as server:
        deadline = time.monotonic() + 120
        answered = 0
        while answered < 20:
            assert server.proc.poll() is None, log.read_text()
            assert time.monotonic() < deadline, log.read_text()
            try:
                with httpx.Client(base_url=url, timeout=5) as http:  # a new connection each time
                    resp = http.post("/predict", json={"age": 20.0, "income": 1.0})
                assert resp.status_code == 200, resp.text
                assert resp.json()["prediction"] == 0
                answered += 1
            except httpx.TransportError:
                time.sleep(0.2)
        assert len(_children(server.proc.pid)) >= 2
    assert "Traceback" not in log.read_text()


def _children(pid: int) -> list[int]:
    """Process ids whose parent is ``pid`` (from /proc)."""
    out = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            out.append(int(stat.parent.name))
    return out
