"""KServe's Open Inference Protocol (v2) on a real port: health, metadata and inference with
plain JSON over httpx, and with NVIDIA's own client (``tritonclient.http``), binary tensor data
and request compression included. Bad requests are 400s naming the tensor or field."""

from __future__ import annotations

import gzip
import struct
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import orjson
import pandas as pd
import pytest
import tritonclient.http as triton
from sklearn.ensemble import RandomForestRegressor
from sklearn.linear_model import LogisticRegression
from tritonclient.utils import InferenceServerException

import loopml
from loopml.errors import Overloaded
from loopml.models import PythonModel, PythonModelContext
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


@pytest.fixture
def churn(server_factory: Callable[..., Any]) -> tuple[str, Any, pd.DataFrame]:
    """The churn model served on a real port: (url, the sklearn model, its training frame)."""
    model, x = _register()
    app = create_serving_app(ModelRuntime.load("models:/churn@production"))
    return server_factory(app=app).url, model, x


def _binary_outputs(resp: httpx.Response) -> dict[str, np.ndarray]:
    """Decode a binary-extension answer by hand (what tritonclient does), as arrays by name."""
    n = int(resp.headers["inference-header-content-length"])
    head = orjson.loads(resp.content[:n])
    out, pos = {}, n
    for t in head["outputs"]:
        size = t["parameters"]["binary_data_size"]
        dtype = {"INT64": "<i8", "FP64": "<f8", "BOOL": "?"}[t["datatype"]]
        out[t["name"]] = np.frombuffer(resp.content[pos : pos + size], dtype).reshape(t["shape"])
        pos += size
    assert pos == len(resp.content)
    return out


def test_health_and_metadata(churn: tuple[str, Any, pd.DataFrame]) -> None:
    url, _, _ = churn
    with httpx.Client(base_url=url) as http:
        assert http.get("/v2/health/live").json() == {"live": True}
        assert http.get("/v2/health/ready").json() == {"ready": True}
        server = http.get("/v2").json()
        assert (server["name"], server["version"]) == ("loopml", loopml.__version__)
        assert "binary_tensor_data" in server["extensions"]

        meta = http.get("/v2/models/churn").json()
        assert meta["name"] == "churn" and meta["versions"] == ["1"]
        assert meta["platform"] in ("onnxruntime", "loopml-sklearn")
        assert meta["inputs"] == [
            {"name": "age", "datatype": "FP64", "shape": [-1]},
            {"name": "income", "datatype": "FP64", "shape": [-1]},
        ]
        assert meta["outputs"] == [{"name": "predict", "datatype": "INT64", "shape": [-1]}]
        assert http.get("/v2/models/churn/versions/1").json() == meta

        assert http.get("/v2/models/churn/ready").json() == {"name": "churn", "ready": True}
        assert http.get("/v2/models/churn/versions/1/ready").status_code == 200
        for path in ("/v2/models/churn/versions/7/ready", "/v2/models/churn/versions/7"):
            resp = http.get(path)
            assert resp.status_code == 404 and "7" in resp.json()["error"]
        for path in ("/v2/models/other", "/v2/models/other/ready"):
            resp = http.get(path)
            assert resp.status_code == 404 and "'other'" in resp.json()["error"]


def test_infer_with_json(churn: tuple[str, Any, pd.DataFrame]) -> None:
    url, model, x = churn
    expected = model.predict(x).tolist()
    n = len(x)
    columns = [
        {"name": c, "shape": [n], "datatype": "FP64", "data": x[c].tolist()} for c in x.columns
    ]
    with httpx.Client(base_url=url) as http:
        resp = http.post("/v2/models/churn/infer", json={"id": "req-7", "inputs": columns})
        body = resp.json()
        assert resp.status_code == 200, body
        assert body["outputs"] == [
            {"name": "predict", "datatype": "INT64", "shape": [n], "data": expected}
        ]
        assert (body["model_name"], body["model_version"], body["id"]) == ("churn", "1", "req-7")
        assert body["parameters"]["variant"] == "default"
        assert body["parameters"]["prediction_id"] == resp.headers["x-prediction-id"] != ""
        assert resp.headers["x-loopml-model-version"] == "1"

        # [N, 1] column tensors, nested data, and float ints in an FP32 tensor.
        nested = [
            {"name": c, "shape": [n, 1], "datatype": "FP32", "data": [[v] for v in x[c]]}
            for c in x.columns
        ]
        resp = http.post("/v2/models/churn/versions/1/infer", json={"inputs": nested})
        assert resp.json()["outputs"][0]["data"] == expected
        assert "id" not in resp.json()

        # One [N, 2] tensor of any name: the signature's columns in order, flat or nested.
        for data in (x.to_numpy().ravel().tolist(), x.to_numpy().tolist()):
            matrix = {"name": "input-0", "shape": [n, 2], "datatype": "FP64", "data": data}
            resp = http.post("/v2/models/churn/infer", json={"inputs": [matrix]})
            assert resp.json()["outputs"][0]["data"] == expected

        # One row, integers: the benchmarked shape of request.
        one = {"name": "x", "shape": [1, 2], "datatype": "INT32", "data": [60, 4]}
        resp = http.post("/v2/models/churn/infer", json={"inputs": [one]})
        assert (
            resp.json()["outputs"][0]["data"]
            == model.predict(pd.DataFrame([[60.0, 4.0]], columns=x.columns)).tolist()
        )

        # Binary outputs: asked per output, or for all with binary_data_output.
        for extra in (
            {"outputs": [{"name": "predict", "parameters": {"binary_data": True}}]},
            {"parameters": {"binary_data_output": True}},
        ):
            resp = http.post("/v2/models/churn/infer", json={"inputs": columns, **extra})
            assert resp.headers["content-type"] == "application/octet-stream"
            assert _binary_outputs(resp)["predict"].tolist() == expected
        # An explicit binary_data: false wins over binary_data_output.
        body = {
            "inputs": columns,
            "parameters": {"binary_data_output": True},
            "outputs": [{"name": "predict", "parameters": {"binary_data": False}}],
        }
        resp = http.post("/v2/models/churn/infer", json=body)
        assert "inference-header-content-length" not in resp.headers
        assert resp.json()["outputs"][0]["data"] == expected


def test_tritonclient(churn: tuple[str, Any, pd.DataFrame]) -> None:
    """The acceptance test: NVIDIA's own HTTP client, binary tensor data by default."""
    url, model, x = churn
    loaded = loopml.load_model("models:/churn@production")
    expected = np.asarray(loaded.predict(x))
    assert expected.tolist() == model.predict(x).tolist()
    arr = x.to_numpy(dtype=np.float64)
    client = triton.InferenceServerClient(url=url.removeprefix("http://"))
    try:
        assert client.is_server_live() and client.is_server_ready()
        assert client.is_model_ready("churn") and client.is_model_ready("churn", "1")
        assert not client.is_model_ready("other")
        assert not client.is_model_ready("churn", "7")
        server = client.get_server_metadata()
        assert server["name"] == "loopml" and "binary_tensor_data" in server["extensions"]
        meta = client.get_model_metadata("churn")
        assert [t["name"] for t in meta["inputs"]] == ["age", "income"]

        def infer(*, binary_in: bool, binary_out: bool | None, **kwargs: Any) -> Any:
            matrix = triton.InferInput("input-0", list(arr.shape), "FP64")
            matrix.set_data_from_numpy(arr, binary_data=binary_in)
            outputs = (
                None
                if binary_out is None
                else [triton.InferRequestedOutput("predict", binary_data=binary_out)]
            )
            return client.infer("churn", inputs=[matrix], outputs=outputs, **kwargs)

        for binary_in in (True, False):
            for binary_out in (True, False, None):
                result = infer(binary_in=binary_in, binary_out=binary_out, request_id="r1")
                np.testing.assert_array_equal(result.as_numpy("predict"), expected)
                assert result.as_numpy("predict").dtype == np.int64
                response = result.get_response()
                assert (response["model_name"], response["id"]) == ("churn", "r1")
                wire = response["outputs"][0]
                assert ("parameters" in wire) == (binary_out is not False)

        # One tensor per column, binary, against a named version.
        per_column = []
        for c in x.columns:
            t = triton.InferInput(c, [len(x)], "FP64")
            t.set_data_from_numpy(x[c].to_numpy())
            per_column.append(t)
        result = client.infer("churn", inputs=per_column, model_version="1")
        np.testing.assert_array_equal(result.as_numpy("predict"), expected)
        assert result.get_response()["model_version"] == "1"

        for algorithm in ("gzip", "deflate"):
            result = infer(
                binary_in=True, binary_out=True, request_compression_algorithm=algorithm
            )
            np.testing.assert_array_equal(result.as_numpy("predict"), expected)

        with pytest.raises(InferenceServerException, match="version") as info:
            infer(binary_in=True, binary_out=True, model_version="7")
        assert info.value.status() == "404"
        with pytest.raises(InferenceServerException, match="'other'") as info:
            client.infer("other", inputs=per_column)
        assert info.value.status() == "404"
        with pytest.raises(InferenceServerException) as info:
            client.get_model_metadata("other")
        assert info.value.status() == "404"
        bad = triton.InferInput("input-0", [len(x), 2], "FP32")
        bad.set_data_from_numpy(arr.astype(np.float32)[:, :1].repeat(2, axis=1))
        bad.set_shape([len(x), 3])
        with pytest.raises(InferenceServerException, match="input-0") as info:
            client.infer("churn", inputs=[bad])
        assert info.value.status() == "400"
    finally:
        client.close()


def _post(url: str, body: Any, headers: dict[str, str] | None = None) -> httpx.Response:
    content = body if isinstance(body, bytes) else orjson.dumps(body)
    return httpx.post(f"{url}/v2/models/churn/infer", content=content, headers=headers)


def _t(name: str, shape: list[int], datatype: str, data: Any, **params: Any) -> dict[str, Any]:
    t = {"name": name, "shape": shape, "datatype": datatype, "data": data}
    if params:
        t["parameters"] = params
    return t


AGE = _t("age", [1], "FP64", [60.0])
INCOME = _t("income", [1], "FP64", [4.0])


@pytest.mark.parametrize(
    ("body", "words"),
    [
        ({"inputs": [_t("input-0", [1, 2], "FP64", [1.0, 2.0, 3.0])]}, ["'input-0'", "3"]),
        ({"inputs": [_t("input-0", [1, 3], "FP64", [1.0, 2.0, 3.0])]}, ["'input-0'", "3 col"]),
        ({"inputs": [_t("input-0", [3], "FP64", [1.0, 2.0, 3.0])]}, ["'input-0'", "[N, 2]"]),
        ({"inputs": [_t("input-0", [1, 2], "FP32", [1.0, "x"])]}, ["'input-0'", "FP32", "'x'"]),
        ({"inputs": [_t("input-0", [1, 2], "FP99", [1.0, 2.0])]}, ["'input-0'", "FP99"]),
        ({"inputs": [_t("input-0", [1, 2], "INT8", [1, 300])]}, ["'input-0'", "300", "INT8"]),
        ({"inputs": [_t("input-0", [1, 2], "BOOL", [True, False])]}, ["'input-0'", "BOOL"]),
        ({"inputs": [_t("input-0", [1, 2], "BYTES", ["a", "b"])]}, ["'input-0'", "BYTES"]),
        ({"inputs": [_t("input-0", [-1, 2], "FP64", [1.0, 2.0])]}, ["'input-0'", "shape"]),
        ({"inputs": [AGE, _t("colour", [1], "BYTES", ["red"])]}, ["'colour'", "age, income"]),
        ({"inputs": [AGE]}, ["'income'"]),
        ({"inputs": [AGE, _t("income", [2], "FP64", [1.0, 2.0])]}, ["'income'", "2 rows"]),
        ({"inputs": [AGE, _t("income", [1, 2], "FP64", [1.0, 2.0])]}, ["'income'", "[N, 1]"]),
        ({"inputs": [AGE, AGE]}, ["'age'", "more than once"]),
        ({"inputs": [AGE, {"name": "income", "shape": [1], "datatype": "FP64"}]}, ["'income'"]),
        ({"inputs": []}, ["'inputs'"]),
        ({"rows": [[1.0, 2.0]]}, ["'inputs'"]),
        ([AGE], ["'inputs'"]),
        ({"inputs": [AGE, INCOME], "outputs": [{"name": "proba"}]}, ["'proba'", "predict"]),
        ({"inputs": [AGE, INCOME], "outputs": "predict"}, ["'outputs'"]),
        ({"inputs": [AGE, INCOME], "id": 7}, ["'id'"]),
        (b"{not json", ["JSON"]),
    ],
)
def test_bad_requests_are_400_naming_the_tensor(
    churn: tuple[str, Any, pd.DataFrame], body: Any, words: list[str]
) -> None:
    url, _, _ = churn
    resp = _post(url, body)
    assert resp.status_code == 400, resp.text
    message = resp.json()["error"]
    for word in words:
        assert word in message


def test_bad_binary_framing_is_400(churn: tuple[str, Any, pd.DataFrame]) -> None:
    url, _, _ = churn
    tensor = _t("input-0", [1, 2], "FP64", None, binary_data_size=16)
    del tensor["data"]
    head = orjson.dumps({"inputs": [tensor]})
    data = struct.pack("<2d", 60.0, 4.0)
    good = _post(url, head + data, {"Inference-Header-Content-Length": str(len(head))})
    assert good.status_code == 200, good.text

    def bad(body: bytes, length: str | None, *words: str) -> None:
        headers = {} if length is None else {"Inference-Header-Content-Length": length}
        resp = _post(url, body, headers)
        assert resp.status_code == 400, resp.text
        for word in words:
            assert word in resp.json()["error"], resp.json()

    bad(head + data, str(len(head) + 100), "Inference-Header-Content-Length")
    bad(head + data, "twelve", "Inference-Header-Content-Length")
    bad(head + data, str(len(head) - 3), "Inference-Header-Content-Length", "JSON")
    bad(head + data, str(len(head) + 4), "Inference-Header-Content-Length", "JSON")
    bad(head + data[:12], str(len(head)), "'input-0'", "binary_data_size")
    bad(head + data + b"xx", str(len(head)), "2 bytes", "Inference-Header-Content-Length")
    short = orjson.dumps({"inputs": [{**tensor, "parameters": {"binary_data_size": 12}}]})
    bad(short + data[:12], str(len(short)), "'input-0'", "12 bytes")
    both = orjson.dumps({"inputs": [{**tensor, "data": [1.0, 2.0]}]})
    bad(both + data, str(len(both)), "'input-0'", "both")
    resp = _post(url, b"\x1f\x8b not gzip", {"Content-Encoding": "gzip"})
    assert resp.status_code == 400 and "gzip" in resp.json()["error"]
    resp = _post(url, gzip.compress(head + data)[:-8], {"Content-Encoding": "gzip"})
    assert resp.status_code == 400 and "gzip" in resp.json()["error"]
    resp = _post(url, zlib.compress(head), {"Content-Encoding": "br"})
    assert resp.status_code == 415 and "br" in resp.json()["error"]


def test_compressed_body_is_bounded(server_factory: Callable[..., Any]) -> None:
    """A small gzip body that inflates past the limit is refused, not inflated into memory."""
    _register()
    app = create_serving_app(ModelRuntime.load("models:/churn@production"), max_body_bytes=4096)
    url = server_factory(app=app).url
    bomb = gzip.compress(b'{"inputs": [' + b" " * 1_000_000 + b"]}")
    assert len(bomb) < 4096
    resp = _post(url, bomb, {"Content-Encoding": "gzip"})
    assert resp.status_code == 413 and "4096" in resp.json()["error"]
    resp = _post(url, b"{" + b" " * 5000 + b"}")
    assert resp.status_code == 413 and "error" in resp.json()


def test_overload_is_503_with_retry_after(server_factory: Callable[..., Any]) -> None:
    _register()
    app = create_serving_app(ModelRuntime.load("models:/churn@production"))

    async def full(*args: Any, **kwargs: Any) -> Any:
        raise Overloaded("the queue of variant 'default' is full (1024 waiting)")

    app.state.service.predict = full
    url = server_factory(app=app).url
    resp = _post(url, {"inputs": [AGE, INCOME]})
    assert resp.status_code == 503 and resp.headers["retry-after"] == "1"
    assert "full" in resp.json()["error"]


class _Scaled(PythonModel):
    """Returns a table per row: two named outputs of different datatypes."""

    def predict(self, context: PythonModelContext, model_input: pd.DataFrame) -> pd.DataFrame:
        scaled = model_input["x"] * 2.5
        return pd.DataFrame({"scaled": scaled, "positive": scaled > 0})


def test_table_outputs_are_one_tensor_per_column(
    server_factory: Callable[..., Any], tmp_path: Path
) -> None:
    loopml.save_model(_Scaled(), tmp_path / "scaled", input_example=pd.DataFrame({"x": [1.0]}))
    runtime = ModelRuntime.load(str(tmp_path / "scaled"), trusted=True)
    url = server_factory(app=create_serving_app(runtime)).url
    with httpx.Client(base_url=url) as http:
        meta = http.get("/v2/models/model").json()
        assert meta["outputs"] == [
            {"name": "scaled", "datatype": "FP64", "shape": [-1]},
            {"name": "positive", "datatype": "BOOL", "shape": [-1]},
        ]
        body = {"inputs": [_t("x", [2], "FP64", [2.0, -1.0])]}
        outputs = http.post("/v2/models/model/infer", json=body).json()["outputs"]
        assert outputs == [
            {"name": "scaled", "datatype": "FP64", "shape": [2], "data": [5.0, -2.5]},
            {"name": "positive", "datatype": "BOOL", "shape": [2], "data": [True, False]},
        ]
        body["outputs"] = [{"name": "positive", "parameters": {"binary_data": True}}]
        resp = http.post("/v2/models/model/infer", json=body)
        decoded = _binary_outputs(resp)
        assert list(decoded) == ["positive"] and decoded["positive"].tolist() == [True, False]


class _Greeter(PythonModel):
    """Takes a string and an integer column; returns text and integers."""

    def predict(self, context: PythonModelContext, model_input: pd.DataFrame) -> pd.DataFrame:
        return pd.DataFrame(
            {"greeting": "hi " + model_input["city"], "twice": model_input["n"] * 2}
        )


def test_bytes_tensors_through_tritonclient(
    server_factory: Callable[..., Any], tmp_path: Path
) -> None:
    """BYTES in and out, binary (length-prefixed) and JSON, UTF-8 included."""
    example = pd.DataFrame({"city": ["Oslo"], "n": [1]})
    loopml.save_model(_Greeter(), tmp_path / "greeter", input_example=example)
    runtime = ModelRuntime.load(str(tmp_path / "greeter"), trusted=True)
    url = server_factory(app=create_serving_app(runtime)).url
    client = triton.InferenceServerClient(url=url.removeprefix("http://"))
    try:
        meta = client.get_model_metadata("model")
        assert [(t["name"], t["datatype"]) for t in meta["inputs"]] == [
            ("city", "BYTES"),
            ("n", "INT64"),
        ]
        for binary in (True, False):
            city = triton.InferInput("city", [2], "BYTES")
            city.set_data_from_numpy(np.array(["Zürich", "Oslo"], dtype=object), binary)
            n = triton.InferInput("n", [2, 1], "INT64")
            n.set_data_from_numpy(np.array([[3], [4]], dtype=np.int64), binary)
            outputs = [
                triton.InferRequestedOutput("greeting", binary_data=binary),
                triton.InferRequestedOutput("twice", binary_data=not binary),
            ]
            result = client.infer("model", inputs=[city, n], outputs=outputs)
            greeting = result.as_numpy("greeting").tolist()
            assert [g.decode() if binary else g for g in greeting] == ["hi Zürich", "hi Oslo"]
            assert result.as_numpy("twice").tolist() == [6, 8]
        wrong = triton.InferInput("n", [2], "BYTES")
        wrong.set_data_from_numpy(np.array(["3", "4"], dtype=object))
        with pytest.raises(InferenceServerException, match="'n' is BYTES") as info:
            client.infer("model", inputs=[city, wrong])
        assert info.value.status() == "400"
        not_utf8 = triton.InferInput("city", [2], "BYTES")
        not_utf8.set_data_from_numpy(np.array([b"\xff", b"ok"], dtype=object))
        with pytest.raises(InferenceServerException, match="'city'.*UTF-8"):
            client.infer("model", inputs=[not_utf8, n])
    finally:
        client.close()


@pytest.mark.parametrize("kind", ["random_forest_array", "xgboost_frame"])
def test_twenty_float_features_through_tritonclient(
    server_factory: Callable[..., Any], kind: str
) -> None:
    """A tree model over 20 float features, sent as one binary FP32 [N, 20] tensor."""
    rng = np.random.default_rng(7)
    x = rng.normal(size=(200, 20)).astype(np.float32)
    y = x[:, 0] * 2 + x[:, 1] ** 2 + rng.normal(scale=0.1, size=200)
    if kind == "random_forest_array":
        native: Any = RandomForestRegressor(n_estimators=20, random_state=0).fit(x, y)
        example: Any = x[:5]
    else:
        import xgboost

        example = pd.DataFrame(x, columns=[f"f{i}" for i in range(20)])
        native = xgboost.XGBRegressor(n_estimators=20, max_depth=4).fit(example, y)
        example = example.iloc[:5]
    with loopml.start_run():
        info = loopml.log_model(
            native, "model", registered_model_name="trees", input_example=example
        )
    uri = f"models:/trees/{info.registered_model_version}"
    url = server_factory(app=create_serving_app(ModelRuntime.load(uri))).url
    loaded = loopml.load_model(uri)
    batch = x[:16]
    expected = np.asarray(
        loaded.predict(
            batch
            if kind == "random_forest_array"
            else pd.DataFrame(batch, columns=example.columns)
        )
    ).ravel()
    client = triton.InferenceServerClient(url=url.removeprefix("http://"))
    try:
        assert client.get_model_metadata("trees")["inputs"][0]["datatype"] == "FP32"
        tensor = triton.InferInput("input-0", list(batch.shape), "FP32")
        tensor.set_data_from_numpy(batch, binary_data=True)
        result = client.infer(
            "trees", inputs=[tensor], outputs=[triton.InferRequestedOutput("predict")]
        )
        got = result.as_numpy("predict")
        assert got.shape == (16,)
        np.testing.assert_array_equal(got, expected.astype(got.dtype))
        np.testing.assert_allclose(got, native.predict(batch), rtol=1e-5, atol=1e-5)
        for row in batch[:3]:  # one row per request, as the benchmark sends
            one = triton.InferInput("input-0", [1, 20], "FP32")
            one.set_data_from_numpy(row[None, :])
            value = client.infer("trees", inputs=[one]).as_numpy("predict")
            np.testing.assert_allclose(value, native.predict(row[None, :]), rtol=1e-5, atol=1e-5)
    finally:
        client.close()
