"""Adaptive micro-batching, the bounded queue and the inference server's Prometheus metrics."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression

import loopml
from loopml.errors import InvalidInput, Overloaded
from loopml.serving import BatchingConfig, ModelRuntime, create_serving_app
from loopml.serving._batcher import Batcher


class _SlowModel:
    """Sums each row; every call waits ``delay`` seconds and records its batch size."""

    def __init__(self, delay: float) -> None:
        self.delay = delay
        self.sizes: list[int] = []
        self.lock = threading.Lock()

    def __call__(self, records: list[Any]) -> list[Any]:
        if any(not isinstance(r.get("x"), int | float) for r in records):
            raise InvalidInput("column 'x' must be a number")
        with self.lock:
            self.sizes.append(len(records))
        time.sleep(self.delay)
        return [r["x"] * 2 for r in records]


def test_concurrent_requests_share_model_calls() -> None:
    model = _SlowModel(0.05)
    batcher = Batcher(model, BatchingConfig(max_batch_size=64))

    async def main() -> list[list[Any]]:
        first = asyncio.ensure_future(batcher.submit([{"x": 0}]))
        await asyncio.sleep(0.01)  # the idle server starts it at once, alone
        rest = await asyncio.gather(*(batcher.submit([{"x": i}]) for i in range(1, 40)))
        return [await first, *rest]

    results = asyncio.run(main())
    batcher.close()
    assert results == [[i * 2] for i in range(40)]
    # the first request ran alone (nothing waited), the 39 others gathered behind it
    assert model.sizes == [1, 39]


def test_max_batch_size_splits_batches_and_latency_waits_for_more() -> None:
    model = _SlowModel(0.0)
    batcher = Batcher(model, BatchingConfig(max_batch_size=8, max_latency_ms=200))

    async def main() -> None:
        first = asyncio.ensure_future(batcher.submit([{"x": 0}]))
        await asyncio.sleep(0.02)  # well inside the 200 ms window
        rest = [batcher.submit([{"x": i}]) for i in range(1, 20)]
        await asyncio.gather(first, *rest)

    asyncio.run(main())
    batcher.close()
    assert max(model.sizes) <= 8 and sum(model.sizes) == 20
    assert model.sizes[0] == 8  # the first request waited for the batch to fill


def test_one_bad_request_does_not_fail_its_batch_neighbours() -> None:
    model = _SlowModel(0.02)
    batcher = Batcher(model, BatchingConfig())

    async def main() -> list[Any]:
        return await asyncio.gather(
            *(batcher.submit([{"x": "bad" if i == 3 else i}]) for i in range(6)),
            return_exceptions=True,
        )

    results = asyncio.run(main())
    batcher.close()
    assert isinstance(results[3], InvalidInput)
    assert [r for i, r in enumerate(results) if i != 3] == [[0], [2], [4], [8], [10]]


def test_full_queue_refuses_at_once() -> None:
    model = _SlowModel(0.2)
    batcher = Batcher(model, BatchingConfig(max_queue=2))

    async def main() -> list[Any]:
        return await asyncio.gather(
            *(batcher.submit([{"x": i}]) for i in range(8)), return_exceptions=True
        )

    results = asyncio.run(main())
    batcher.close()
    refused = [r for r in results if isinstance(r, Overloaded)]
    answered = [r for r in results if isinstance(r, list)]
    assert refused and answered and len(refused) + len(answered) == 8


@pytest.mark.parametrize(
    "kwargs", [{"max_batch_size": 0}, {"max_latency_ms": -1}, {"max_queue": 0}]
)
def test_bad_batching_config(kwargs: dict[str, Any]) -> None:
    with pytest.raises(InvalidInput, match=next(iter(kwargs))):
        BatchingConfig(**kwargs)


class _Slow(loopml.pyfunc.PythonModel):  # type: ignore[name-defined,misc]
    def predict(self, context: Any, model_input: pd.DataFrame) -> Any:
        time.sleep(0.05)
        return model_input.iloc[:, 0] * 2


def _serve(server_factory: Callable[..., Any], **batching: Any) -> str:
    x = pd.DataFrame({"x": [1.0, 2.0]})
    with loopml.start_run():
        loopml.log_model(_Slow(), "model", registered_model_name="slow", input_example=x)
    runtime = ModelRuntime.load("models:/slow/1")
    app = create_serving_app(runtime, batching=BatchingConfig(**batching))
    return str(server_factory(app=app).url)


def test_overload_is_503_with_retry_after(server_factory: Callable[..., Any]) -> None:
    url = _serve(server_factory, max_queue=1)
    with ThreadPoolExecutor(16) as pool:
        resps = list(
            pool.map(lambda i: httpx.post(f"{url}/predict", json={"x": i}, timeout=30), range(16))
        )
    codes = sorted({r.status_code for r in resps})
    assert codes == [200, 503], codes
    busy = next(r for r in resps if r.status_code == 503)
    assert busy.headers["retry-after"] == "1"
    assert busy.json()["error_code"] == Overloaded.code


def test_metrics_count_requests_batches_and_errors(server_factory: Callable[..., Any]) -> None:
    url = _serve(server_factory)
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda i: httpx.post(f"{url}/predict", json={"x": i}), range(8)))
    httpx.post(f"{url}/predict", json={"y": 1})
    httpx.post(f"{url}/v1/models/slow:predict", json={"instances": [{"x": 1.0}]})
    text = httpx.get(f"{url}/metrics").text
    labels = 'model="slow",protocol="native",status="200",variant="default",version="1"'
    assert f"loopml_requests_total{{{labels}}} 8.0" in text
    assert 'protocol="native",status="400"' in text
    assert 'protocol="tfserving",status="200"' in text
    batches = _sample(text, 'loopml_batch_size_count{model="slow",variant="default",version="1"}')
    rows = _sample(text, 'loopml_batch_size_sum{model="slow",variant="default",version="1"}')
    assert rows >= 9 and batches < rows  # some requests shared a model call
    for name in (
        "loopml_request_latency_seconds_bucket",
        "loopml_in_flight_requests",
        "loopml_queue_depth",
        "loopml_model_load_seconds",
    ):
        assert name in text


def _sample(text: str, prefix: str) -> float:
    line = next(line for line in text.splitlines() if line.startswith(prefix))
    return float(line.rsplit(" ", 1)[1])


def test_body_over_limit_is_413(server_factory: Callable[..., Any]) -> None:
    x = pd.DataFrame({"a": [1.0, 2.0], "b": [0.0, 1.0]})
    with loopml.start_run():
        loopml.log_model(LogisticRegression().fit(x, [0, 1]), "m", registered_model_name="lr")
    app = create_serving_app(ModelRuntime.load("models:/lr/1"), max_body_bytes=1000)
    url = server_factory(app=app).url
    big = [{"a": 1.0, "b": 2.0}] * 200
    for path in ("/predict", "/v1/models/lr:predict"):
        body = {"instances": big}
        resp = httpx.post(f"{url}{path}", json=body)
        assert resp.status_code == 413, (path, resp.text)
    assert httpx.post(f"{url}/predict", json={"a": 1.0, "b": 2.0}).status_code == 200


@pytest.mark.parametrize("latency_ms", [0.0, 300.0])
def test_drain_and_close_answer_every_request(latency_ms: float) -> None:
    """A batch being filled or run when its model is retired is answered, never left hanging."""
    model = _SlowModel(0.2)
    batcher = Batcher(model, BatchingConfig(max_latency_ms=latency_ms))

    async def main() -> list[Any]:
        pending = [asyncio.ensure_future(batcher.submit([{"x": i}])) for i in range(3)]
        await asyncio.sleep(0.05)  # the batch is now filling (or running)
        assert not batcher.idle
        await batcher.drain(timeout=5)
        return await asyncio.wait_for(asyncio.gather(*pending, return_exceptions=True), 5)

    assert asyncio.run(main()) == [[0], [2], [4]]

    closing = Batcher(_SlowModel(0.2), BatchingConfig(max_latency_ms=latency_ms))

    async def closed() -> list[Any]:
        pending = [asyncio.ensure_future(closing.submit([{"x": i}])) for i in range(3)]
        await asyncio.sleep(0.05)
        closing.close()
        return await asyncio.wait_for(asyncio.gather(*pending, return_exceptions=True), 5)

    assert all(isinstance(r, Overloaded) for r in asyncio.run(closed()))


def test_a_request_missing_a_field_is_400_even_when_batched(
    server_factory: Callable[..., Any],
) -> None:
    """Batched with complete requests, a request lacking a field is still refused (not NaN)."""
    x = pd.DataFrame({"a": [1.0, 2.0], "b": [0.0, 1.0]})
    with loopml.start_run():
        loopml.log_model(_Slow(), "m", registered_model_name="two", input_example=x)
    url = server_factory(app=create_serving_app(ModelRuntime.load("models:/two/1"))).url
    bodies = [{"a": 1.0, "b": 2.0}] * 6 + [{"a": 1.0}] + [{"a": 1.0, "b": 2.0}] * 6
    with ThreadPoolExecutor(13) as pool:
        resps = list(pool.map(lambda b: httpx.post(f"{url}/predict", json=b, timeout=30), bodies))
    assert [r.status_code for r in resps] == [200] * 6 + [400] + [200] * 6
    assert "'b'" in resps[6].json()["message"]
    mixed = httpx.post(f"{url}/predict", json=[{"a": 1.0, "b": 2.0}, {"a": 3.0}])
    assert mixed.status_code == 400 and "instance 1 lacks 'b'" in mixed.json()["message"]
