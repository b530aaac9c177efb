"""The MLflow-style SDK, embedded and through a real ``loopml server`` (``tracking_mode``)."""

from __future__ import annotations

import json
import math
import threading
from pathlib import Path

import pandas as pd
import pytest

import loopml
from loopml.errors import InvalidInput, InvalidState


def test_start_run_context_manager_finishes(tracking_mode: str) -> None:
    loopml.set_experiment("sdk")
    with loopml.start_run(run_name="r") as run:
        assert loopml.active_run() is run
        loopml.log_param("lr", 0.1)
        loopml.log_params({"depth": 3, "model": "rf"})
        loopml.log_metric("loss", 0.5, step=1)
        loopml.log_metrics({"acc": 0.9, "f1": 0.8}, step=2)
        loopml.set_tag("team", "ml")
        loopml.set_tags({"a": 1})
    assert loopml.active_run() is None
    got = loopml.get_run(run.info.run_id)
    assert got.info.status == "FINISHED"
    assert got.info.end_time is not None
    assert got.data.params == {"lr": "0.1", "depth": "3", "model": "rf"}
    assert got.data.metrics == {"loss": 0.5, "acc": 0.9, "f1": 0.8}
    assert got.data.tags["team"] == "ml" and got.data.tags["a"] == "1"
    assert got.data.tags["mlflow.runName"] == "r"
    assert loopml.last_active_run().info.run_id == run.info.run_id  # type: ignore[union-attr]


def test_exception_marks_run_failed_and_reraises(tracking_mode: str) -> None:
    with pytest.raises(ZeroDivisionError):
        with loopml.start_run() as run:
            loopml.log_metric("m", 1.0)
            1 / 0  # noqa: B018
    got = loopml.get_run(run.info.run_id)
    assert got.info.status == "FAILED"
    assert got.data.metrics == {"m": 1.0}  # what was logged before the failure is kept


def test_nested_runs(tracking_mode: str) -> None:
    with loopml.start_run() as parent:
        with pytest.raises(InvalidState, match="nested=True"):
            loopml.start_run()
        with loopml.start_run(nested=True) as child:
            loopml.log_metric("c", 1.0)
        assert loopml.active_run() is parent
    got = loopml.get_run(child.info.run_id)
    assert got.info.parent_run_id == parent.info.run_id
    assert got.data.tags["mlflow.parentRunId"] == parent.info.run_id


def test_end_run_ends_nested_children(tracking_mode: str) -> None:
    parent = loopml.start_run()
    child = loopml.start_run(nested=True)
    loopml.end_run()  # ends the child
    assert loopml.active_run() is parent
    loopml.end_run(status="KILLED")
    assert loopml.get_run(child.info.run_id).info.status == "FINISHED"
    assert loopml.get_run(parent.info.run_id).info.status == "KILLED"
    with pytest.raises(InvalidInput):
        loopml.end_run(status="DONE")


def test_logging_without_a_run_starts_one(tracking_mode: str) -> None:
    loopml.log_metric("auto", 1.0)
    run = loopml.active_run()
    assert run is not None
    loopml.end_run()
    assert loopml.get_run(run.info.run_id).data.metrics == {"auto": 1.0}
    assert loopml.get_experiment(run.info.experiment_id).name == "Default"


def test_resume_a_run(tracking_mode: str) -> None:
    with loopml.start_run() as run:
        loopml.log_metric("m", 1.0, step=0)
    with loopml.start_run(run_id=run.info.run_id):
        loopml.log_metric("m", 2.0, step=1)
    history = loopml.Client().get_metric_history(run.info.run_id, "m")
    assert [p.value for p in history] == [1.0, 2.0]


def test_changed_param_is_an_error_at_the_call(tracking_mode: str) -> None:
    with loopml.start_run() as run:
        loopml.log_param("p", 1)
        loopml.log_param("p", 1)
        with pytest.raises(InvalidInput, match="'p'"):
            loopml.log_param("p", 2)
    assert loopml.get_run(run.info.run_id).data.params == {"p": "1"}


def test_conflict_from_another_writer_surfaces_at_end_run(tracking_mode: str) -> None:
    with pytest.raises(InvalidInput, match="'p'"):
        with loopml.start_run() as run:
            loopml.Client().log_param(run.info.run_id, "p", "other")
            loopml.log_param("p", "mine")
            loopml.log_metric("kept", 3.0)
    got = loopml.get_run(run.info.run_id)
    assert got.data.params == {"p": "other"}
    assert got.data.metrics == {"kept": 3.0}  # the bad param did not cost the metric
    assert got.info.status == "FINISHED"  # nor the run its end


def test_logging_errors_belong_to_their_run(tracking_mode: str) -> None:
    errors: dict[str, BaseException | None] = {}

    def work(name: str, conflict: bool) -> None:
        try:
            with loopml.start_run() as run:
                if conflict:
                    loopml.Client().log_param(run.info.run_id, "p", "other")
                    loopml.log_param("p", "mine")
                for i in range(200):
                    loopml.log_metric("m", float(i))
            errors[name] = None
        except InvalidInput as exc:
            errors[name] = exc

    threads = [threading.Thread(target=work, args=(f"t{n}", n == 0)) for n in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert isinstance(errors["t0"], InvalidInput)
    assert errors["t1"] is None and errors["t2"] is None


def test_a_logging_error_never_hides_the_users_exception(tracking_mode: str) -> None:
    with pytest.raises(KeyError):
        with loopml.start_run() as run:
            loopml.Client().log_param(run.info.run_id, "p", "other")
            loopml.log_param("p", "mine")
            raise KeyError("the user's own error")
    assert loopml.get_run(run.info.run_id).info.status == "FAILED"


@pytest.mark.parametrize(
    "call",
    [
        lambda: loopml.log_metric("m", "high"),
        lambda: loopml.log_metric("bad key!", 1.0),
        lambda: loopml.log_metric("m", 1.0, step=1.5),
        lambda: loopml.log_metrics([1, 2]),  # type: ignore[arg-type]
        lambda: loopml.log_params("x"),  # type: ignore[arg-type]
        lambda: loopml.set_tags(None),  # type: ignore[arg-type]
        lambda: loopml.log_param("p", "x" * 6001),
        lambda: loopml.set_tag("t", "a\x00b"),
        lambda: loopml.set_tag("mlflow.runName", "x" * 300),
        lambda: loopml.log_metric(["a"], 1.0),  # type: ignore[arg-type]
        lambda: loopml.log_text(b"bytes", "a.txt"),  # type: ignore[arg-type]
        lambda: loopml.Client().log_batch(
            loopml.active_run().info.run_id,  # type: ignore[union-attr]
            metrics=[("acc", 0.9)],  # type: ignore[list-item]
            synchronous=False,
        ),
    ],
)
def test_bad_logging_calls_raise_at_once(tracking_mode: str, call: object) -> None:
    with loopml.start_run():
        with pytest.raises(InvalidInput):
            call()  # type: ignore[operator]


def test_points_keep_order_and_none_is_lost(tracking_mode: str) -> None:
    with loopml.start_run() as run:
        for i in range(3000):
            loopml.log_metric("seq", float(i), step=i % 7)
        loopml.log_metrics({f"k{i}": float(i) for i in range(500)})
    history = loopml.Client().get_metric_history(run.info.run_id, "seq")
    assert len(history) == 3000
    for step in range(7):
        values = [p.value for p in history if p.step == step]
        assert values == sorted(values)  # same step: logging order kept
    assert len(loopml.get_run(run.info.run_id).data.metrics) == 501


def test_synchronous_and_flush(tracking_mode: str) -> None:
    with loopml.start_run() as run:
        loopml.log_metric("now", 1.0, synchronous=True)
        assert loopml.Client().store.get_run(run.info.run_id).data.metrics == {"now": 1.0}
        loopml.log_metric("later", 2.0)
        loopml.flush()
        assert loopml.Client().store.get_run(run.info.run_id).data.metrics["later"] == 2.0


def test_threads_have_their_own_active_runs(tracking_mode: str) -> None:
    ids: dict[int, str] = {}

    def work(n: int) -> None:
        with loopml.start_run() as run:
            loopml.log_metric("n", float(n))
            ids[n] = run.info.run_id

    threads = [threading.Thread(target=work, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(set(ids.values())) == 4
    for n, run_id in ids.items():
        assert loopml.get_run(run_id).data.metrics == {"n": float(n)}


def test_set_experiment(tracking_mode: str) -> None:
    exp = loopml.set_experiment("named")
    assert loopml.set_experiment(experiment_id=exp.experiment_id).name == "named"
    with loopml.start_run() as run:
        pass
    assert run.info.experiment_id == exp.experiment_id
    loopml.delete_experiment(exp.experiment_id)
    with pytest.raises(InvalidState, match="deleted"):
        loopml.set_experiment("named")
    with pytest.raises(InvalidInput):
        loopml.set_experiment()


def test_search_runs_dataframe(tracking_mode: str) -> None:
    loopml.set_experiment("search")
    for i in range(6):
        with loopml.start_run(run_name=f"r{i}"):
            loopml.log_params({"model": "rf" if i % 2 else "lr", "i": i})
            loopml.log_metric("acc", i / 10)
            loopml.set_tag("team", "x")
    df = loopml.search_runs(
        filter_string="metrics.acc > 0.15 and params.model = 'rf'", order_by=["metrics.acc DESC"]
    )
    assert isinstance(df, pd.DataFrame)
    assert list(df["params.i"]) == ["5", "3"]
    assert list(df["metrics.acc"]) == [0.5, 0.3]
    assert {"run_id", "experiment_id", "status", "artifact_uri", "start_time", "end_time"} <= set(
        df.columns
    )
    assert isinstance(df["start_time"].dtype, pd.DatetimeTZDtype)
    assert str(df["start_time"].dt.tz) == "UTC"
    runs = loopml.search_runs(output_format="list", max_results=2)
    assert len(runs) == 2
    by_name = loopml.search_runs(experiment_names=["search"])
    assert len(by_name) == 6
    empty = loopml.search_runs(experiment_names=["missing"])
    assert empty.empty
    with pytest.raises(InvalidInput, match="position"):
        loopml.search_runs(filter_string="metrics.acc >> 1")


def test_search_experiments(tracking_mode: str) -> None:
    for name in ("e1", "e2"):
        loopml.create_experiment(name)
    names = [e.name for e in loopml.search_experiments()]
    assert {"e1", "e2"} <= set(names)
    assert loopml.get_experiment_by_name("e1").name == "e1"  # type: ignore[union-attr]
    assert loopml.get_experiment_by_name("zzz") is None


def test_artifacts(tracking_mode: str, tmp_path: Path) -> None:
    src = tmp_path / "report.txt"
    src.write_text("hello")
    folder = tmp_path / "folder"
    (folder / "sub").mkdir(parents=True)
    (folder / "sub" / "a.csv").write_text("a,b\n1,2\n")
    with loopml.start_run() as run:
        loopml.log_artifact(src)
        loopml.log_artifact(src, "docs")
        loopml.log_artifacts(folder, "data")
        loopml.log_text("some text", "notes/readme.md")
        loopml.log_dict({"a": [1, 2]}, "config.json")
        loopml.log_dict({"a": 1}, "config.yaml")
        assert loopml.get_artifact_uri("x").endswith("/artifacts/x")
    client = loopml.Client()
    paths = {f.path for f in client.list_artifacts(run.info.run_id)}
    assert paths == {"report.txt", "docs", "data", "notes", "config.json", "config.yaml"}
    out = Path(client.download_artifacts(run.info.run_id, "", tmp_path / "out"))
    assert (out / "docs" / "report.txt").read_text() == "hello"
    assert (out / "data" / "sub" / "a.csv").read_text() == "a,b\n1,2\n"
    assert json.loads((out / "config.json").read_text()) == {"a": [1, 2]}
    assert (out / "config.yaml").read_text().strip() == "a: 1"
    one = Path(client.download_artifacts(run.info.run_id, "notes/readme.md", tmp_path / "one"))
    assert one.read_text() == "some text"
    with loopml.start_run():
        with pytest.raises(InvalidInput):
            loopml.log_artifact(tmp_path / "missing.txt")


def test_log_figure(tracking_mode: str) -> None:
    matplotlib = pytest.importorskip("matplotlib")
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots()
    ax.plot([1, 2, 3])
    with loopml.start_run() as run:
        loopml.log_figure(fig, "plots/line.png")
        with pytest.raises(InvalidInput):
            loopml.log_figure(object(), "x.png")
    plt.close(fig)
    files = loopml.Client().list_artifacts(run.info.run_id, "plots")
    assert files[0].path == "plots/line.png" and (files[0].file_size or 0) > 100


def test_non_finite_metrics(tracking_mode: str) -> None:
    with loopml.start_run() as run:
        loopml.log_metric("nan", math.nan)
        loopml.log_metric("inf", math.inf)
    metrics = loopml.get_run(run.info.run_id).data.metrics
    assert math.isnan(metrics["nan"]) and metrics["inf"] == math.inf


def test_forked_children_log(tracking_mode: str) -> None:
    import multiprocessing

    with loopml.start_run() as parent:
        loopml.log_metric("before", 1.0)  # the parent's logger thread is running now
    ctx = multiprocessing.get_context("fork")
    with ctx.Pool(2) as pool:
        run_ids = pool.map(_child_work, range(4))
    for n, run_id in enumerate(run_ids):
        got = loopml.get_run(run_id)
        assert got.info.status == "FINISHED"
        assert got.data.metrics == {"child": float(n)}
        assert len(loopml.Client().get_metric_history(run_id, "child")) == 100
    assert loopml.get_run(parent.info.run_id).data.metrics == {"before": 1.0}


def _child_work(n: int) -> str:
    with loopml.start_run() as run:
        for _ in range(100):
            loopml.log_metric("child", float(n))
    return run.info.run_id


def test_tracking_uri(tmp_path: Path) -> None:
    uri = f"sqlite:///{tmp_path / 'other.db'}"
    loopml.set_tracking_uri(uri)
    assert loopml.get_tracking_uri() == uri
    with loopml.start_run() as run:
        loopml.log_metric("m", 1.0)
    assert loopml.get_run(run.info.run_id).data.metrics == {"m": 1.0}
    assert (tmp_path / "other.db").exists()
    with pytest.raises(InvalidInput, match="not supported"):
        loopml.set_tracking_uri("ftp://example")
    assert loopml.Client().store.get_run(run.info.run_id).info.run_id == run.info.run_id
    loopml.set_tracking_uri(None)
    assert loopml.get_tracking_uri().endswith("loopml.db")


def test_mlflow_call_shapes(tracking_mode: str) -> None:
    """Positional arguments and names as MLflow has them."""
    assert loopml.MlflowClient is loopml.Client
    loopml.set_experiment("shapes")
    loopml.set_experiment_tag("owner", "ml")
    loopml.set_experiment_tags({"stage": "dev"})
    assert loopml.get_experiment_by_name("shapes").tags == {"owner": "ml", "stage": "dev"}  # type: ignore[union-attr]
    with loopml.start_run() as parent:
        loopml.log_metric("a", 1.0, 3, True)  # key, value, step, synchronous
        loopml.log_metrics({"b": 2.0}, 4, True)  # metrics, step, synchronous
        loopml.set_tag("temp", "x")
        loopml.delete_tag("temp")
        with loopml.start_run(nested=True) as child:
            pass
        loopml.flush_async_logging()
    assert loopml.get_parent_run(child.info.run_id).info.run_id == parent.info.run_id  # type: ignore[union-attr]
    assert loopml.get_parent_run(parent.info.run_id) is None
    got = loopml.get_run(parent.info.run_id)
    assert "temp" not in got.data.tags
    history = loopml.Client().get_metric_history(parent.info.run_id, "a")
    assert [(p.value, p.step) for p in history] == [(1.0, 3)]
    names = [e.name for e in loopml.search_experiments(filter_string="name = 'shapes'")]
    assert names == ["shapes"]
