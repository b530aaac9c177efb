"""Deployments served for real: sticky routing, shadow copies, the prediction log, hot swap
under continuous load, and gradual rollouts that advance or roll back on their guardrails."""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pandas as pd
import pytest

import loopml
from loopml.abtest import assign
from loopml.config import get_settings
from loopml.monitoring import PredictionLog, read_predictions
from loopml.serving import (
    Guardrails,
    VariantSpec,
    build_service,
    create_serving_app,
    get_deployment_store,
)
from loopml.serving._follow import prediction_log_stats


class _Const(loopml.pyfunc.PythonModel):  # type: ignore[name-defined,misc]
    """Answers its own number for every row, so a response shows which model served it."""

    def __init__(self, k: int) -> None:
        self.k = k

    def predict(self, context: Any, model_input: pd.DataFrame) -> Any:
        return [self.k] * len(model_input)


class _Broken(loopml.pyfunc.PythonModel):  # type: ignore[name-defined,misc]
    """Passes its warm-up (negative x) and fails on every real request."""

    def predict(self, context: Any, model_input: pd.DataFrame) -> Any:
        if (model_input["x"] >= 0).any():
            raise RuntimeError("this version is broken")
        return [0] * len(model_input)


def _register(model: Any) -> str:
    example = pd.DataFrame({"x": [-1.0, -2.0]})
    with loopml.start_run():
        info = loopml.log_model(model, "model", registered_model_name="m", input_example=example)
    return str(info.registered_model_version)


@pytest.fixture
def served(
    server_factory: Callable[..., Any], tmp_path: Path
) -> Iterator[Callable[..., tuple[str, Any]]]:
    """Serves a deployment as ``loopml serve NAME`` does; returns (url, prediction log)."""
    logs: list[PredictionLog] = []

    def make(name: str) -> tuple[str, Any]:
        uri = str(tmp_path / "predictions")
        log = PredictionLog(uri, flush_interval=0.2)
        logs.append(log)
        service = build_service(
            get_deployment_store(),
            name,
            prediction_log=log,
            interval=0.2,
            stats=prediction_log_stats(uri),
        )
        return str(server_factory(app=create_serving_app(service), lifespan="on").url), log

    yield make
    for log in logs:
        log.close()


def test_sticky_routing_shadow_and_prediction_log(served: Callable[..., Any]) -> None:
    for k in (1, 2, 3):
        _register(_Const(k))
    store = get_deployment_store()
    variants = [
        VariantSpec("blue", "models:/m/1", 50, "primary"),
        VariantSpec("green", "models:/m/2", 50, "canary"),
        VariantSpec("dark", "models:/m/3", 0, "shadow"),
    ]
    store.create_deployment("churn", variants, unit_key="user_id")
    url, log = served("churn")
    seen: Counter[str] = Counter()
    with httpx.Client(base_url=url) as http:
        for i in range(120):
            user = f"user-{i}"
            want = assign("churn", user, [("blue", 50), ("green", 50)])
            for _ in range(2):  # the same unit lands on the same variant every time
                resp = http.post("/predict", json={"user_id": user, "x": 1.0})
                body = resp.json()
                assert resp.status_code == 200, body
                assert body["variant"] == resp.headers["x-loopml-variant"] == want
                assert body["prediction"] == {"blue": 1, "green": 2}[want]
            seen[want] += 1
        # the unit may come in a header instead of the body
        resp = http.post("/predict", json={"x": 1.0}, headers={"user-id": "user-7"})
        assert resp.json()["variant"] == assign("churn", "user-7", [("blue", 50), ("green", 50)])
        info = http.get("/model/info").json()
    assert seen["blue"] > 30 and seen["green"] > 30
    assert {v["name"] for v in info["variants"]} == {"blue", "green", "dark"}

    log.flush()
    deadline = time.monotonic() + 10
    while True:  # shadow copies run in the background
        rows = read_predictions(log.uri, deployment="churn")
        if (rows["variant"] == "dark").sum() >= 241 or time.monotonic() > deadline:
            break
        time.sleep(0.1)
        log.flush()
    counts = rows["variant"].value_counts().to_dict()
    assert counts["dark"] == 241 and counts["blue"] + counts["green"] == 241
    dark = rows[rows["variant"] == "dark"]
    assert set(dark["model_version"]) == {"3"} and set(dark["status"]) == {"ok"}
    assert rows["unit_id"].str.startswith("user-").all()
    assert set(rows[rows["variant"] == "green"]["model_version"]) == {"2"}


def test_hot_swap_under_continuous_load_drops_nothing(served: Callable[..., Any]) -> None:
    for k in (1, 2, 3):
        _register(_Const(k))
    client = loopml.Client()
    client.set_registered_model_alias("m", "production", "1")
    store = get_deployment_store()
    store.create_deployment("live", [VariantSpec("main", "models:/m@production")])
    url, _ = served("live")

    statuses: Counter[int] = Counter()
    answers: list[int] = []
    stop = threading.Event()

    def hammer() -> None:
        with httpx.Client(base_url=url, timeout=30) as http:
            while not stop.is_set():
                resp = http.post("/predict", json={"x": 1.0})
                statuses[resp.status_code] += 1
                if resp.status_code == 200:
                    answers.append(resp.json()["prediction"])

    threads = [threading.Thread(target=hammer) for _ in range(4)]
    for t in threads:
        t.start()
    try:
        _wait_for(lambda: len(answers) > 50)
        client.set_registered_model_alias("m", "production", "2")  # an alias move
        _wait_for(lambda: answers[-1] == 2)
        store.update_deployment("live", variants=[VariantSpec("main", "models:/m/3")])
        _wait_for(lambda: answers[-1] == 3)
        n = len(answers)
        _wait_for(lambda: len(answers) > n + 50)
    finally:
        stop.set()
        for t in threads:
            t.join()
    assert set(statuses) == {200}, statuses
    assert answers[0] == 1 and set(answers) == {1, 2, 3}
    assert set(answers[-40:]) == {3}  # requests already queued on an old model finished there


def _wait_for(cond: Callable[[], bool], timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


def _load(url: str, stop: threading.Event, statuses: Counter[str]) -> None:
    with httpx.Client(base_url=url, timeout=30) as http:
        i = 0
        while not stop.is_set():
            i += 1
            resp = http.post("/predict", json={"user_id": f"u{i % 500}", "x": 1.0})
            variant = resp.headers.get("x-loopml-variant", "?")
            statuses[f"{variant}:{resp.status_code}"] += 1


def test_rollout_advances_then_a_failing_version_is_rolled_back(
    served: Callable[..., Any],
) -> None:
    _register(_Const(1))
    _register(_Const(2))
    _register(_Broken())
    store = get_deployment_store()
    store.create_deployment("fraud", [VariantSpec("main", "models:/m/1")], unit_key="user_id")
    url, _ = served("fraud")
    statuses: Counter[str] = Counter()
    stop = threading.Event()
    threads = [threading.Thread(target=_load, args=(url, stop, statuses)) for _ in range(3)]
    for t in threads:
        t.start()
    try:
        rails = Guardrails(max_error_rate=0.05, min_requests=10)
        store.start_rollout(
            "fraud", "models:/m/2", steps=[20, 50, 100], interval_seconds=0.5, guardrails=rails
        )
        _wait_for(lambda: store.get_deployment("fraud").rollout.status != "running", 60)
        dep = store.get_deployment("fraud")
        assert dep.rollout.status == "succeeded", dep.rollout
        assert [(v.name, v.model_uri, v.weight) for v in dep.variants] == [
            ("main", "models:/m/2", 100.0)
        ]
        kinds = [e.kind for e in store.list_events("fraud")]
        assert kinds[-4:] == ["rollout_started", "rollout_step", "rollout_succeeded"][-3:] or (
            kinds.count("rollout_step") == 1 and kinds[-1] == "rollout_succeeded"
        )
        steps = [e for e in store.list_events("fraud") if e.kind == "rollout_step"]
        assert steps[0].detail["percent"] == 50 and steps[0].detail["stats"]["requests"] >= 10

        # now a version that fails every request: rolled back automatically
        store.start_rollout(
            "fraud", "models:/m/3", steps=[20, 100], interval_seconds=30, guardrails=rails
        )
        _wait_for(lambda: store.get_deployment("fraud").rollout.status != "running", 60)
        _wait_for(lambda: statuses["main:200"] > 0)
        before = statuses["main:200"]
        _wait_for(lambda: statuses["main:200"] > before + 20)
    finally:
        stop.set()
        for t in threads:
            t.join()
    dep = store.get_deployment("fraud")
    assert dep.rollout.status == "rolled_back"
    assert "error rate" in dep.rollout.reason
    assert [(v.name, v.model_uri, v.weight) for v in dep.variants] == [
        ("main", "models:/m/2", 100.0)
    ]
    last = store.list_events("fraud")[-1]
    assert last.kind == "rollout_rolled_back" and last.detail["stats"]["errors"] >= 1
    assert statuses["canary:500"] > 0  # the broken canary really served (and failed)
    assert get_settings().workspace == "default"


def test_unit_key_change_and_client_errors_do_not_roll_back(served: Callable[..., Any]) -> None:
    """A new unit key applies at once; a canary's 400s are the clients' fault, not its own."""
    _register(_Const(1))
    _register(_Const(2))
    store = get_deployment_store()
    store.create_deployment("ab", [VariantSpec("main", "models:/m/1")], unit_key="user_id")
    url, log = served("ab")
    rails = Guardrails(max_error_rate=0.05, min_requests=5)
    store.start_rollout(
        "ab", "models:/m/2", steps=[50, 100], interval_seconds=3600, guardrails=rails
    )
    store.update_deployment("ab", unit_key="account")
    with httpx.Client(base_url=url) as http:
        _wait_for(
            lambda: (
                http.post("/predict", json={"x": 1.0}).headers.get("x-loopml-variant") == "canary"
            )
        )
        variants = set()
        for i in range(60):
            resp = http.post("/predict", json={"x": 1.0}, headers={"account": f"a{i}"})
            assert resp.status_code == 200, resp.text
            assert resp.headers["x-loopml-variant"] == assign(
                "ab", f"a{i}", [("main", 50), ("canary", 50)]
            )
            variants.add(resp.headers["x-loopml-variant"])
            bad = http.post("/predict", json={"x": "not a number"}, headers={"account": f"a{i}"})
            assert bad.status_code == 400
        assert variants == {"main", "canary"}
    log.flush()
    rows = read_predictions(log.uri, deployment="ab")
    assert set(rows["status"]) == {"ok", "rejected"}
    time.sleep(1.0)  # several follower ticks: none may roll back on the clients' 400s
    assert store.get_deployment("ab").rollout.status == "running"


def test_a_rollout_whose_model_cannot_load_is_rolled_back(served: Callable[..., Any]) -> None:
    _register(_Const(1))
    store = get_deployment_store()
    store.create_deployment("gone", [VariantSpec("main", "models:/m/1")])
    url, _ = served("gone")
    store.start_rollout("gone", "models:/m/99", steps=[10, 100], interval_seconds=60)
    _wait_for(lambda: store.get_deployment("gone").rollout.status != "running")
    dep = store.get_deployment("gone")
    assert dep.rollout.status == "rolled_back" and "could not be loaded" in dep.rollout.reason
    assert httpx.post(f"{url}/predict", json={"x": 1.0}).json()["prediction"] == 1


@pytest.mark.parametrize(
    "kwargs",
    [
        {"rules": ("p99_ms < 1..2",)},
        {"rules": ("p99_ms < nan",)},
        {"rules": ("latency < 5",)},
        {"max_p99_ms": float("nan")},
        {"max_error_rate": 2.0},
        {"min_requests": -1},
    ],
)
def test_bad_guardrails(kwargs: dict[str, Any]) -> None:
    from loopml.errors import InvalidInput

    with pytest.raises(InvalidInput):
        Guardrails(**kwargs)
