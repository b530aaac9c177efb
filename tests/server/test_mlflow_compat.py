"""The official ``mlflow`` client against a real ``loopml server``: the seed documents' tracking
flows, MLflow's error codes, and both directions of visibility (what the client writes, loopml's
SDK reads, and the other way round)."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

import loopml

mlflow = pytest.importorskip("mlflow")
from mlflow import MlflowClient  # noqa: E402
from mlflow.exceptions import MlflowException  # noqa: E402


@pytest.fixture
def url(server_factory: Callable[..., Any], monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A real loopml server; the mlflow client points at it and fails fast on errors."""
    server = server_factory()
    monkeypatch.setenv("MLFLOW_TRACKING_URI", server.url)
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    monkeypatch.setenv("MLFLOW_DISABLE_TELEMETRY", "true")
    mlflow.set_tracking_uri(server.url)
    yield server.url
    while mlflow.active_run() is not None:
        mlflow.end_run()
    mlflow.set_tracking_uri(None)
    # The client remembers the active experiment id across servers; the next test's server
    # has other ids. (MLflow has no public way to unset it.)
    mlflow.tracking.fluent._active_experiment_id = None


def _code(exc: pytest.ExceptionInfo[MlflowException]) -> str:
    return str(exc.value.error_code)


def test_seed_tracking_flow_lands_in_loopml(url: str, tmp_path: Path) -> None:
    mlflow.set_experiment("churn")
    with mlflow.start_run(run_name="rf") as run:
        mlflow.log_params({"n_estimators": 100, "max_depth": 6})
        for step in range(5):
            mlflow.log_metric("loss", 1 / (step + 1), step=step)
        mlflow.log_metrics({"accuracy": 0.93, "f1": 0.91})
        mlflow.set_tags({"team": "growth", "stage": "dev"})
        mlflow.log_metric("nan_metric", math.nan)
        note = tmp_path / "notes.txt"
        note.write_text("trained on March data")
        mlflow.log_artifact(str(note))
        mlflow.log_dict({"features": ["age", "tenure"]}, "features.json")
    run_id = run.info.run_id

    client = MlflowClient()
    got = client.get_run(run_id)
    assert got.info.status == "FINISHED" and got.info.run_name == "rf"
    assert got.data.params == {"n_estimators": "100", "max_depth": "6"}
    assert got.data.metrics["accuracy"] == 0.93 and math.isnan(got.data.metrics["nan_metric"])
    assert got.data.tags["team"] == "growth"
    history = client.get_metric_history(run_id, "loss")
    assert [(m.step, m.value) for m in history] == [(i, 1 / (i + 1)) for i in range(5)]
    assert {m.run_id for m in history} == {run_id}
    assert sorted(f.path for f in client.list_artifacts(run_id)) == [
        "features.json",
        "notes.txt",
    ]
    local = client.download_artifacts(run_id, "notes.txt", str(tmp_path / "dl"))
    assert Path(local).read_text() == "trained on March data"
    frame = mlflow.search_runs(
        filter_string="metrics.accuracy > 0.9 and params.max_depth = '6'",
        order_by=["metrics.accuracy DESC"],
    )
    assert list(frame["run_id"]) == [run_id]

    # loopml's own SDK sees exactly what the client wrote.
    mine = loopml.Client(url).get_run(run_id)
    assert mine.data.params == got.data.params
    assert mine.data.tags["team"] == "growth"
    assert mine.data.metrics["accuracy"] == 0.93
    assert [m.value for m in loopml.Client(url).get_metric_history(run_id, "loss")] == [
        1 / (i + 1) for i in range(5)
    ]
    files = {f.path for f in loopml.Client(url).list_artifacts(run_id)}
    assert files == {"features.json", "notes.txt"}


def test_search_paging_delete_restore(url: str) -> None:
    client = MlflowClient()
    eid = client.create_experiment("paging")
    ids = []
    for i in range(7):
        run = client.create_run(eid, run_name=f"r{i}")
        client.log_metric(run.info.run_id, "m", float(i))
        ids.append(run.info.run_id)
    seen, token = [], None
    while True:
        page = client.search_runs([eid], max_results=3, page_token=token, order_by=["metrics.m"])
        seen.extend(r.info.run_id for r in page)
        token = page.token
        if not token:
            break
    assert seen == ids

    client.delete_run(ids[0])
    assert ids[0] not in {r.info.run_id for r in client.search_runs([eid])}
    client.restore_run(ids[0])
    assert client.get_run(ids[0]).info.lifecycle_stage == "active"
    client.delete_experiment(eid)
    assert client.get_experiment(eid).lifecycle_stage == "deleted"
    client.restore_experiment(eid)
    client.rename_experiment(eid, "paging-renamed")
    assert client.get_experiment_by_name("paging-renamed").experiment_id == eid
    found = client.search_experiments(filter_string="name LIKE 'paging%'")
    assert [e.name for e in found] == ["paging-renamed"]


def test_errors_carry_mlflow_codes(url: str) -> None:
    client = MlflowClient()
    with pytest.raises(MlflowException) as exc:
        client.get_run("0123456789abcdef0123456789abcdef")
    assert _code(exc) == "RESOURCE_DOES_NOT_EXIST"
    client.create_experiment("dup")
    with pytest.raises(MlflowException) as exc:
        client.create_experiment("dup")
    assert _code(exc) == "RESOURCE_ALREADY_EXISTS"
    eid = client.get_experiment_by_name("dup").experiment_id
    with pytest.raises(MlflowException) as exc:
        client.search_runs([eid], filter_string="metrics.acc >> 1")
    assert _code(exc) == "INVALID_PARAMETER_VALUE"
    assert client.get_experiment_by_name("nope") is None
    with pytest.raises(MlflowException) as exc:
        client.get_experiment("999999")
    assert _code(exc) == "RESOURCE_DOES_NOT_EXIST"


def test_loopml_runs_are_visible_to_the_client(url: str, tmp_path: Path) -> None:
    loopml.set_tracking_uri(url)
    loopml.set_experiment("from-loopml")
    with loopml.start_run(run_name="mine") as run:
        loopml.log_param("alpha", 0.5)
        loopml.log_metric("rmse", 1.25, step=3)
        loopml.log_text("hello", "greeting.txt")
    client = MlflowClient()
    got = client.get_run(run.info.run_id)
    assert got.info.run_name == "mine" and got.data.params == {"alpha": "0.5"}
    assert got.data.metrics == {"rmse": 1.25}
    (point,) = client.get_metric_history(run.info.run_id, "rmse")
    assert point.step == 3
    path = client.download_artifacts(run.info.run_id, "greeting.txt", str(tmp_path))
    assert Path(path).read_text() == "hello"


def test_default_experiment_and_resuming_a_run(url: str) -> None:
    """Without set_experiment the client uses experiment 0, which loopml creates on first use;
    start_run(run_id=...) reopens a finished run; logging to a finished run is INVALID_STATE."""
    assert mlflow.get_experiment("0").name == "Default"
    with mlflow.start_run() as run:
        mlflow.log_metric("a", 1.0)
    with mlflow.start_run(run_id=run.info.run_id):
        mlflow.log_metric("a", 2.0, step=1)
        mlflow.log_param("later", "yes")
    got = MlflowClient().get_run(run.info.run_id)
    assert got.info.experiment_id == "0" and got.data.metrics == {"a": 2.0}
    with pytest.raises(MlflowException) as exc:
        MlflowClient().log_param(run.info.run_id, "too_late", "x")
    assert _code(exc) == "INVALID_STATE"


def test_bare_attribute_names_and_folders(url: str, tmp_path: Path) -> None:
    client = MlflowClient()
    eid = client.create_experiment("attrs")
    first = client.create_run(eid, run_name="first")
    client.set_terminated(first.info.run_id)
    second = client.create_run(eid, run_name="second")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "a.txt").write_text("a")
    client.log_artifacts(second.info.run_id, str(tmp_path / "sub"), "sub")
    done = client.search_runs([eid], filter_string="status = 'FINISHED'")
    assert [r.info.run_name for r in done] == ["first"]
    ordered = client.search_runs([eid], order_by=["start_time DESC"])
    assert [r.info.run_name for r in ordered] == ["second", "first"]
    named = client.search_runs([eid], filter_string="run_name = 'second'")
    assert [r.info.run_id for r in named] == [second.info.run_id]
    assert [f.path for f in client.list_artifacts(second.info.run_id, "sub")] == ["sub/a.txt"]


def test_malformed_requests_are_4xx(url: str) -> None:
    import httpx

    api = f"{url}/api/2.0/mlflow"
    run = MlflowClient().create_run(MlflowClient().create_experiment("bad"))
    rid = run.info.run_id
    cases = [
        httpx.get(f"{api}/registered-models/search", params={"max_results": "--5"}),
        httpx.post(f"{api}/runs/create", json={"experiment_id": "0", "start_time": "1" * 5000}),
        httpx.post(f"{api}/runs/log-batch", json={"run_id": rid, "metrics": 5}),
        httpx.post(
            f"{api}/runs/log-batch",
            json={"run_id": rid, "params": [{"key": "k"}] * 2 + [{"key": "k", "value": "x"}]},
        ),
        httpx.post(
            f"{api}/experiments/create",
            json={"name": "x", "artifact_location": "mlflow-artifacts:/1/x"},
        ),
        httpx.post(f"{api}/runs/log-batch", content=b"{not json"),
    ]
    for resp in cases:
        assert resp.status_code == 400, resp.text
        assert resp.json()["error_code"] == "INVALID_PARAMETER_VALUE"
    resp = httpx.post(
        f"{api}/runs/log-batch", json={"run_id": rid, "params": [{"key": "k", "value": None}]}
    )
    assert resp.status_code == 200
    assert MlflowClient().get_run(rid).data.params == {"k": ""}
