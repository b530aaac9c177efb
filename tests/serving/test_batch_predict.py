"""Batch prediction: a Parquet or CSV file in, its rows and their predictions out, in input order;
bad rows reported by row number while the rest are predicted; typed one-line errors that leave
no output behind; ``loopml predict-batch`` in-process and as a real process; and the same job on
a local Ray instance."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner
from sklearn.linear_model import LogisticRegression

import loopml
from loopml.cli import cli
from loopml.errors import InvalidInput, MissingDependency, NotFound
from loopml.serving import BatchResult, predict_batch

N = 1_000
URI = "models:/churn@production"


def _data(n: int = N) -> pd.DataFrame:
    rng = np.random.default_rng(3)
    return pd.DataFrame(
        {
            "id": np.arange(n, dtype=np.int64),
            "age": rng.normal(45.0, 12.0, n).round(3),
            "income": rng.normal(3.0, 1.0, n).round(3),
        }
    )


@pytest.fixture
def model_uri() -> str:
    """A logistic regression on (age, income), registered as churn@production."""
    x = _data(200)[["age", "income"]]
    model = LogisticRegression().fit(x, (x["age"] + 5 * x["income"] > 60).astype(int))
    with loopml.start_run():
        info = loopml.log_model(
            model, "model", registered_model_name="churn", input_example=x.iloc[:2]
        )
    loopml.Client().set_registered_model_alias(
        "churn", "production", info.registered_model_version
    )
    return URI


def _expected(frame: pd.DataFrame, *, runtime: str = "auto") -> np.ndarray:
    """The model's own predictions (same runtime), independent of batching."""
    model = loopml.load_model(URI, runtime=runtime)  # type: ignore[arg-type]
    return np.asarray(model.predict(frame[["age", "income"]].astype("float64")))


def _leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.endswith(".tmp"))


def test_parquet_in_order_with_progress(model_uri: str, tmp_path: Path) -> None:
    data = _data()
    data.to_parquet(tmp_path / "in.parquet", row_group_size=300)
    calls: list[tuple[int, int | None]] = []
    result = predict_batch(
        model_uri,
        tmp_path / "in.parquet",
        tmp_path / "out.parquet",
        chunk_rows=128,
        workers=2,
        progress=lambda done, total: calls.append((done, total)),
    )
    assert isinstance(result, BatchResult)
    assert (result.rows, result.rows_ok, result.rows_failed, result.bad_rows) == (N, N, 0, ())
    assert result.output_path == str(tmp_path / "out.parquet") and result.executor == "local"
    out = pd.read_parquet(tmp_path / "out.parquet")
    assert list(out.columns) == ["id", "age", "income", "prediction"]
    pd.testing.assert_frame_equal(out[["id", "age", "income"]], data)
    np.testing.assert_array_equal(out["prediction"].to_numpy(), _expected(data))
    assert calls[-1] == (N, N)
    assert [done for done, _ in calls] == sorted(done for done, _ in calls)
    assert _leftovers(tmp_path) == []


def test_csv_with_bad_rows_reports_their_numbers(model_uri: str, tmp_path: Path) -> None:
    """A non-numeric age in the middle (the CSV reader's first block sees only numbers) and a
    missing income, which the native scikit-learn model refuses: both reported, the rest
    predicted, in order."""
    data = _data()
    text = data.astype({"age": object, "income": object})
    text.loc[537, "age"] = "abc"
    text.loc[800, "income"] = None
    text.to_csv(tmp_path / "in.csv", index=False)
    result = predict_batch(
        model_uri, tmp_path / "in.csv", tmp_path / "out.parquet", chunk_rows=100, runtime="native"
    )
    assert (result.rows, result.rows_ok, result.rows_failed) == (N, N - 2, 2)
    assert [row for row, _ in result.bad_rows] == [537, 800]
    assert "'age'" in result.bad_rows[0][1] and "'abc'" in result.bad_rows[0][1]
    assert "NaN" in result.bad_rows[1][1]
    out = pd.read_parquet(tmp_path / "out.parquet")
    kept = data.drop(index=[537, 800]).reset_index(drop=True)
    assert out["id"].tolist() == kept["id"].tolist()
    assert str(out["age"].dtype) == "float64"  # CSV text parsed to the signature's type
    np.testing.assert_array_equal(out["prediction"].to_numpy(), _expected(kept, runtime="native"))


def test_text_column_in_parquet_is_parsed(model_uri: str, tmp_path: Path) -> None:
    data = _data(300)
    text = data.assign(age=data["age"].astype(str))
    text.loc[150, "age"] = "n/a?"
    text.to_parquet(tmp_path / "in.parquet")
    result = predict_batch(model_uri, tmp_path / "in.parquet", tmp_path / "out.parquet")
    assert [row for row, _ in result.bad_rows] == [150]
    out = pd.read_parquet(tmp_path / "out.parquet")
    assert len(out) == 299 and 150 not in out["id"].tolist()


def test_a_model_returning_a_frame_gives_its_columns(tmp_path: Path) -> None:
    class Both(loopml.models.PythonModel):
        def predict(self, context: Any, model_input: pd.DataFrame) -> pd.DataFrame:
            return pd.DataFrame({"double": model_input["x"] * 2, "big": model_input["x"] > 1})

    x = pd.DataFrame({"x": [0.5, 1.5, 2.5, -1.0, 4.0]})
    with loopml.start_run():
        loopml.log_model(Both(), "model", registered_model_name="both", input_example=x)
    x.assign(key=list("abcde")).to_parquet(tmp_path / "in.parquet")
    predict_batch("models:/both/1", tmp_path / "in.parquet", tmp_path / "o.parquet", chunk_rows=2)
    out = pd.read_parquet(tmp_path / "o.parquet")
    assert list(out.columns) == ["x", "key", "double", "big"]
    assert out["double"].tolist() == [1.0, 3.0, 5.0, -2.0, 8.0]
    assert out["big"].tolist() == [False, True, True, False, True]


def test_input_that_does_not_fit_fails_whole(model_uri: str, tmp_path: Path) -> None:
    data = _data(50)
    data.drop(columns="income").to_parquet(tmp_path / "noincome.parquet")
    with pytest.raises(InvalidInput, match="no column 'income'"):
        predict_batch(model_uri, tmp_path / "noincome.parquet", tmp_path / "out.parquet")
    data.assign(age="old").to_csv(tmp_path / "words.csv", index=False)
    with pytest.raises(InvalidInput, match="no row of the first chunk .* row 0: column 'age'"):
        predict_batch(model_uri, tmp_path / "words.csv", tmp_path / "out.parquet")
    assert not (tmp_path / "out.parquet").exists() and _leftovers(tmp_path) == []


def test_errors_are_typed_and_leave_no_output(model_uri: str, tmp_path: Path) -> None:
    _data(20).to_parquet(tmp_path / "in.parquet")
    (tmp_path / "in.json").write_text("{}")
    (tmp_path / "broken.parquet").write_bytes(b"not parquet at all")
    out = tmp_path / "out.parquet"
    cases: list[tuple[type[Exception], str, Any, Any]] = [
        (NotFound, "does not exist", tmp_path / "missing.csv", out),
        (InvalidInput, "must be a Parquet", tmp_path / "in.json", out),
        (InvalidInput, "as Parquet", tmp_path / "broken.parquet", out),
        (
            InvalidInput,
            "folder .* does not exist",
            tmp_path / "in.parquet",
            tmp_path / "no/o.parquet",
        ),
        (InvalidInput, "must be a .parquet file", tmp_path / "in.parquet", tmp_path / "o.csv"),
        (InvalidInput, "is the input file", tmp_path / "in.parquet", tmp_path / "in.parquet"),
    ]
    for error, words, source, target in cases:
        with pytest.raises(error, match=words):
            predict_batch(model_uri, source, target)
    with pytest.raises(InvalidInput, match="executor"):
        predict_batch(model_uri, tmp_path / "in.parquet", out, executor="spark")
    with pytest.raises(NotFound):
        predict_batch("models:/nope@production", tmp_path / "in.parquet", out)
    assert not out.exists() and _leftovers(tmp_path) == []


def test_empty_input_gives_an_empty_output(model_uri: str, tmp_path: Path) -> None:
    _data(0).to_parquet(tmp_path / "in.parquet")
    result = predict_batch(model_uri, tmp_path / "in.parquet", tmp_path / "out.parquet")
    assert (result.rows, result.rows_failed) == (0, 0)
    out = pd.read_parquet(tmp_path / "out.parquet")
    assert list(out.columns) == ["id", "age", "income", "prediction"] and len(out) == 0


def test_ray_executor_needs_the_extra(
    model_uri: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _data(20).to_parquet(tmp_path / "in.parquet")
    monkeypatch.setitem(sys.modules, "ray", None)  # import ray → ImportError
    with pytest.raises(MissingDependency, match=r"pip install 'loopml\[ray\]'"):
        predict_batch(model_uri, tmp_path / "in.parquet", tmp_path / "o.parquet", executor="ray")


# -- the command -------------------------------------------------------------------------------
def _bad_csv(path: Path) -> None:
    text = _data().astype({"age": object})
    text.loc[[10, 700], "age"] = ["ten", "seventy"]
    text.to_csv(path, index=False)


def test_cli(model_uri: str, tmp_path: Path) -> None:
    _bad_csv(tmp_path / "in.csv")
    runner = CliRunner()
    args = ["predict-batch", model_uri, "--input", str(tmp_path / "in.csv")]
    done = runner.invoke(cli, [*args, "--output", str(tmp_path / "a.parquet"), "--json"])
    assert done.exit_code == 0, done.output
    report = json.loads(done.stdout)
    assert (report["rows"], report["rows_ok"], report["rows_failed"]) == (N, N - 2, 2)
    assert [b["row"] for b in report["bad_rows"]] == [10, 700]
    assert len(pd.read_parquet(tmp_path / "a.parquet")) == N - 2

    done = runner.invoke(
        cli,
        [*args, "--output", str(tmp_path / "b.parquet"), "--chunk-rows", "64", "--workers", "1"],
    )
    assert done.exit_code == 0, done.output
    assert f"predicted {N - 2:,} of {N:,} rows" in done.stdout
    assert "2 rows failed" in done.stdout and "row 10: column 'age'" in done.stdout

    done = runner.invoke(
        cli, ["predict-batch", model_uri, "--input", "nope.csv", "--output", "o.parquet"]
    )
    assert done.exit_code == 1
    assert done.stderr.strip() == "error: input file nope.csv does not exist"


def test_cli_as_a_process(model_uri: str, tmp_path: Path, loopml_cmd: list[str]) -> None:
    _bad_csv(tmp_path / "in.csv")
    cmd = loopml_cmd
    args = ["predict-batch", model_uri, "--input", "in.csv", "--output", "out.parquet"]
    done = subprocess.run(
        [*cmd, *args, "--json"], env=dict(os.environ), capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["rows_failed"] == 2
    assert len(pd.read_parquet(tmp_path / "out.parquet")) == N - 2
    bad = subprocess.run(
        [*cmd, *args[:2], "--input", "in.txt", "--output", "o.parquet"],
        env=dict(os.environ),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert bad.returncode == 1 and bad.stderr.strip().count("\n") == 0
    assert bad.stderr.startswith("error: input in.txt must be a Parquet")


# -- Ray ---------------------------------------------------------------------------------------
def test_ray_executor_matches_local(model_uri: str, tmp_path: Path) -> None:
    ray = pytest.importorskip("ray")
    _bad_csv(tmp_path / "in.csv")
    local = predict_batch(
        model_uri, tmp_path / "in.csv", tmp_path / "local.parquet", chunk_rows=90
    )
    ray.init(num_cpus=2, include_dashboard=False)
    try:
        result = predict_batch(
            model_uri,
            tmp_path / "in.csv",
            tmp_path / "ray.parquet",
            executor="ray",
            chunk_rows=90,
            workers=2,
        )
        assert ray.is_initialized()  # a Ray instance the caller started is left running
    finally:
        ray.shutdown()
    assert result.executor == "ray"
    assert (result.rows, result.rows_ok, result.bad_rows) == (N, N - 2, local.bad_rows)
    pd.testing.assert_frame_equal(
        pd.read_parquet(tmp_path / "ray.parquet"), pd.read_parquet(tmp_path / "local.parquet")
    )
    assert _leftovers(tmp_path) == []
