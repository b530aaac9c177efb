"""``loopml gate ...``: a table or JSON, exit 0 when every gate passed and 1 when one failed
(naming it and by how much on stderr), and a one-line ``error:`` for bad input, never a
traceback — in-process with click's runner, and as a real process the way CI runs it."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from click.testing import CliRunner, Result

import loopml.gates as lg
from loopml.cli import cli
from loopml.cli._gates import _METRICS


def _gate(*args: str) -> Result:
    # catch_exceptions=False: anything but a clean exit would surface here as a test error
    return CliRunner().invoke(cli, ["gate", *args], catch_exceptions=False)


@pytest.fixture
def files(
    churn: dict[str, Any], tmp_path: Path, make_data: Callable[..., pd.DataFrame]
) -> dict[str, str]:
    """The training data, a holdout, shifted data and a broken file, on disk."""
    paths = {
        "train": tmp_path / "train.parquet",
        "holdout": tmp_path / "holdout.csv",
        "shifted": tmp_path / "shifted.parquet",
        "broken": tmp_path / "broken.csv",
    }
    churn["train"].to_parquet(paths["train"])
    churn["holdout"].to_csv(paths["holdout"], index=False)
    make_data(500, 8, shift=2.0).to_parquet(paths["shifted"])
    churn["train"].drop(columns="x2").to_csv(paths["broken"], index=False)
    return {k: str(v) for k, v in paths.items()}


def test_data_and_drift_commands(files: dict[str, str]) -> None:
    ok = _gate("data", files["train"], "--model", "models:/churn@production")
    assert ok.exit_code == 0, ok.output
    assert "PASS" in ok.stdout and "rules passed" in ok.stdout

    bad = _gate("data", files["broken"], "--model", "models:/churn@production", "--json")
    assert bad.exit_code == 1
    report = json.loads(bad.stdout)
    assert report["passed"] is False and report["failed"] == ["data"]
    assert "'x2' missing" in report["results"][0]["detail"]
    assert "gate failed: data: 1 of" in bad.stderr and "'x2' missing" in bad.stderr

    drift = _gate("drift", files["shifted"], "--model", "models:/churn@production", "--json")
    assert drift.exit_code == 1
    result = json.loads(drift.stdout)["results"][0]
    assert "x1" in result["evidence"]["drifted_columns"]
    assert result["threshold"] == 0.5 and result["measured"] > 0.5
    assert "gate failed: drift:" in drift.stderr and "x1" in drift.stderr
    loose = _gate(
        "drift", files["shifted"], "--model", "models:/churn@production", "--max-share", "1"
    )
    assert loose.exit_code == 0 and "PASS" in loose.stdout


def test_metrics_regression_and_smoke_commands(files: dict[str, str]) -> None:
    fail = _gate("metrics", "models:/churn@challenger", "accuracy >= 0.85", "f1 > 0")
    assert fail.exit_code == 1
    assert fail.stderr.count("gate failed: metrics:") == 2  # f1 was never logged for it
    assert "short by" in fail.stderr and "f1 was not logged" in fail.stderr
    assert _gate("metrics", "models:/churn@production", "accuracy >= 0.8").exit_code == 0

    regression = ["--baseline", "models:/churn@production", "--data", files["holdout"]]
    worse = _gate("regression", "models:/churn/2", *regression, "--target", "y", "--json")
    assert worse.exit_code == 1
    assert json.loads(worse.stdout)["results"][0]["evidence"]["worse_by"] > 0
    assert "gate failed: regression: accuracy" in worse.stderr and "worse by" in worse.stderr
    same = _gate("regression", "models:/churn/1", *regression, "--target", "y", "--metric", "f1")
    assert same.exit_code == 0, same.output

    smoke = _gate("smoke", "models:/churn/1", "--data", files["holdout"], "--rows", "3", "--json")
    assert smoke.exit_code == 0, smoke.output
    result = json.loads(smoke.stdout)["results"][0]
    assert result["passed"] and result["measured"] == 3
    assert result["evidence"]["url"].startswith("http://127.0.0.1:")
    refused = _gate("smoke", "models:/churn/1", "--data", files["broken"])
    assert refused.exit_code == 1 and "answered 400" in refused.stderr


def test_all_command(files: dict[str, str]) -> None:
    common = ["--baseline", "models:/churn@production", "--holdout", files["holdout"]]
    good = _gate(
        "all", "models:/churn/1", "--data", files["train"], *common,
        "--target", "y", "--require", "accuracy >= 0.8", "--json",
    )  # fmt: skip
    assert good.exit_code == 0, good.output
    report = json.loads(good.stdout)
    assert [r["gate"] for r in report["results"]] == [
        "data", "drift", "metrics", "regression", "smoke",
    ]  # fmt: skip
    bad = _gate(
        "all", "models:/churn@challenger", *common, "--target", "y",
        "--require", "accuracy >= 0.8", "--fail-fast",
    )  # fmt: skip
    assert bad.exit_code == 1
    assert "SKIP" in bad.stdout and "gate failed: metrics: accuracy" in bad.stderr
    no_target = _gate("all", "models:/churn/1", *common)
    assert no_target.exit_code == 1 and no_target.stderr.startswith("error: --holdout")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["metrics", "models:/churn/1", "accuracy => 0.85"], "condition 'accuracy => 0.85'"),
        (["metrics", "models:/nope@production", "f1 > 0"], "registered model 'nope'"),
        (["data", "missing.parquet"], "does not exist"),
        (["data", "notes.txt"], "not a .parquet or .csv file"),
        (["drift", "{train}", "--model", "models:/churn/2"], "no training dataset"),
        (["regression", "models:/churn/2", "--baseline", "models:/churn/1",
          "--data", "{holdout}", "--target", "label"], "target column 'label'"),
        (["smoke", "models:/churn/9", "--data", "{holdout}"], "version"),
    ],
)  # fmt: skip
def test_bad_input_is_one_error_line(files: dict[str, str], args: list[str], message: str) -> None:
    result = _gate(*[a.format(**files) for a in args])
    assert result.exit_code == 1
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0]


def test_metric_choices_match_the_library() -> None:
    assert _METRICS == lg.METRICS


def test_gate_as_a_real_process(files: dict[str, str], loopml_cmd: list[str]) -> None:
    """As CI runs it: exit codes and output of the installed command."""

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*loopml_cmd, "gate", *args], capture_output=True, text=True, timeout=300
        )

    passed = run(
        "all", "models:/churn/1", "--data", files["train"], "--baseline",
        "models:/churn@production", "--holdout", files["holdout"], "--target", "y",
    )  # fmt: skip
    assert passed.returncode == 0, passed.stderr
    assert passed.stdout.count("PASS") == 4  # data, drift, regression, smoke
    failed = run("metrics", "models:/churn@challenger", "accuracy >= 0.85")
    assert failed.returncode == 1
    assert "gate failed: metrics: accuracy" in failed.stderr and "short by" in failed.stderr
    bad = run("metrics", "models:/churn/1", "accuracy >= high")
    assert bad.returncode == 1 and "Traceback" not in bad.stderr
    assert bad.stderr.strip().splitlines() == [
        "error: condition 'accuracy >= high' is malformed: write METRIC OP NUMBER with OP one "
        "of >=, >, <=, <, == (e.g. 'accuracy >= 0.85')"
    ]
