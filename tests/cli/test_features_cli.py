"""``loopml features``: a repository goes plan -> apply -> materialize -> get, list, describe,
skew; bad input gives one line on stderr and exit 1."""

from __future__ import annotations

import json
import subprocess
import textwrap
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from click.testing import CliRunner

from loopml.cli import cli
from loopml.config import reset_settings

NOW = pd.Timestamp.now(tz="UTC").floor("s")

REPO = """
from datetime import timedelta

from loopml.features import Entity, FeatureService, FeatureView, Field, FileSource, Float64, Int64

driver = Entity(name="driver", join_keys=["driver_id"])
stats = FeatureView(
    name="driver_stats",
    entities=[driver],
    schema=[Field(name="conv_rate", dtype=Float64), Field(name="trips", dtype=Int64)],
    source=FileSource(path="data/stats.parquet", timestamp_field="event_timestamp",
                      created_timestamp_column="created"),
    ttl=timedelta(days={days}),
)
ranker = FeatureService(name="ranker", features=[stats[["trips"]]])
"""


def _invoke(*args: str) -> Any:
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


def _json(*args: str) -> Any:
    result = _invoke(*args, "--json")
    assert result.exit_code == 0, result.output
    return json.loads(result.output)


def _repo(root: Path, driver_rows: Any, days: int = 1) -> Path:
    (root / "data").mkdir(parents=True, exist_ok=True)
    driver_rows(start=NOW - pd.Timedelta(hours=4)).drop(columns=["city"]).to_parquet(
        root / "data" / "stats.parquet"
    )
    (root / "repo.py").write_text(textwrap.dedent(REPO).format(days=days))
    return root


@pytest.fixture(params=["embedded", "server", "embedded+redis", "server+redis"])
def where(
    request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch, server_factory: Any
) -> str:
    """The CLI on the embedded database or against a loopml server (its HTTP API), with the
    SQLite or the Redis online store."""
    if request.param.endswith("+redis"):
        monkeypatch.setenv("LOOPML_ONLINE_STORE_URI", request.getfixturevalue("redis_url"))
        reset_settings()
    if request.param.startswith("server"):
        monkeypatch.setenv("LOOPML_TRACKING_URI", server_factory().url)
        reset_settings()
    return str(request.param)


def test_repo_plan_apply_materialize_get(tmp_path: Path, driver_rows: Any, where: str) -> None:
    repo = str(_repo(tmp_path / "repo", driver_rows))
    plan = _json("features", "plan", repo)
    assert [(i["kind"], i["action"]) for i in plan["items"]] == [
        ("entity", "add"),
        ("feature_view", "add"),
        ("feature_service", "add"),
    ]
    assert _json("features", "apply", repo)["has_changes"] is True
    assert _json("features", "plan", repo)["has_changes"] is False
    start, end = (NOW - pd.Timedelta(days=1)).isoformat(), NOW.isoformat()
    [done] = _json("features", "materialize", start, end)
    assert done["rows"] == 5 and done["stats"]["trips"]["max"] == 403
    got = _json(
        "features", "get", "--feature", "driver_stats:trips", "--entity", "driver_id=1001,5"
    )
    assert got["values"] == {"driver_id": [1001, 5], "trips": [103, None]}
    assert got["statuses"]["trips"] == ["PRESENT", "NOT_FOUND"]
    got = _json("features", "get", "--service", "ranker", "--entity", "driver_id=1000")
    assert got["values"]["trips"] == [3]
    text = _invoke("features", "get", "--service", "ranker", "--entity", "driver_id=1000")
    assert text.exit_code == 0 and "1000" in text.output
    listed = _json("features", "list")
    assert [v["name"] for v in listed["views"]] == ["driver_stats"]
    assert _invoke("features", "list").exit_code == 0
    described = _json("features", "describe", "driver_stats")
    assert described["online_rows"] == 5 and [v["version"] for v in described["versions"]] == [1]
    assert _invoke("features", "describe", "driver_stats").exit_code == 0
    skew = _json("features", "skew", "driver_stats")
    assert skew["ok"] is True and skew["entities"] == 5
    assert _invoke("features", "skew", "driver_stats").exit_code == 0
    # Change the ttl: plan shows a change to version 2; the old version stays.
    _repo(tmp_path / "repo", driver_rows, days=2)
    plan = _json("features", "plan", repo)
    assert [(i["name"], i["version"]) for i in plan["items"] if i["action"] == "change"] == [
        ("driver_stats", 2)
    ]
    _json("features", "apply", repo)
    assert [v["version"] for v in _json("features", "describe", "driver_stats")["versions"]] == [
        1,
        2,
    ]
    inc = _json("features", "materialize-incremental")
    assert inc[0]["start_us"] == done["end_us"]
    # A training set from a file of entity rows, written out and saved as a dataset version.
    entities = pd.DataFrame(
        {
            "driver_id": [1001, 1003, 99],
            "event_timestamp": [NOW - pd.Timedelta(hours=2), NOW, NOW],
        }
    )
    entities.to_csv(tmp_path / "entities.csv", index=False)
    out = tmp_path / "train.parquet"
    made = _json(
        "features",
        "historical",
        "--entities",
        str(tmp_path / "entities.csv"),
        "--service",
        "ranker",
        "--out",
        str(out),
        "--dataset",
        "train",
    )
    assert made["rows"] == 3 and made["feature_views"] == ["driver_stats@2"]
    assert made["dataset"] == "train@1"
    train = pd.read_parquet(out)
    assert train["driver_id"].tolist() == [1001, 1003, 99]
    assert train["trips"].tolist()[:2] == [102, 303] and pd.isna(train["trips"].iloc[2])
    shown = _json("data", "show", "train@1")
    assert shown["tags"]["loopml.feature_views"] == "driver_stats@2"
    assert shown["tags"]["loopml.feature_service"] == "ranker" and shown["num_rows"] == 3
    text = _invoke(
        "features",
        "historical",
        "--entities",
        str(tmp_path / "entities.csv"),
        "--feature",
        "driver_stats:conv_rate",
        "--full-feature-names",
    )
    assert text.exit_code == 0 and "driver_stats__conv_rate" in text.output


def test_skew_is_found_when_online_disagrees(tmp_path: Path, driver_rows: Any) -> None:
    from loopml.features import FeatureStore, skew_check

    repo = _repo(tmp_path / "repo", driver_rows)
    _json("features", "apply", str(repo))
    _json("features", "materialize", (NOW - pd.Timedelta(days=1)).isoformat(), NOW.isoformat())
    store = FeatureStore()
    wrong = pd.DataFrame(
        {"driver_id": [1002], "event_timestamp": [NOW], "conv_rate": [-1.0], "trips": [203]}
    )
    store.push("driver_stats", wrong, to="online")
    report = skew_check(store, "driver_stats")
    assert report.skewed == ["conv_rate"]
    assert report.features["conv_rate"]["mismatches"] == 1
    assert report.features["conv_rate"]["examples"] == [
        {"key": {"driver_id": 1002}, "online": -1.0, "offline": 23.0}
    ]
    store.close()


def test_bad_input_is_one_line_and_exit_1(
    tmp_path: Path, driver_rows: Any, loopml_cmd: list[str]
) -> None:
    repo = _repo(tmp_path / "repo", driver_rows)
    (repo / "broken.py").write_text("x = 1\nraise RuntimeError('nope')\n")
    cases = [
        (["features", "plan", str(repo)], "broken.py:2: RuntimeError: nope"),
        (["features", "plan", str(tmp_path / "absent")], "is not a folder"),
        (["features", "get", "--entity", "driver_id=1"], "--feature"),
        (["features", "get", "--feature", "driver_stats:trips", "--entity", "x"], "KEY=VALUE"),
        (["features", "materialize", "yesterday", "now"], "ISO 8601"),
        (["features", "describe", "nope"], "does not exist"),
        (
            ["features", "historical", "--entities", "e.parquet", "--service", "s"],
            "does not exist",
        ),
        (
            ["features", "historical", "--entities", "e.csv", "--service", "s", "--out", "t.txt"],
            ".parquet or .csv",
        ),
        (["features", "historical", "--entities", "e.csv"], "--feature"),
    ]
    for args, needle in cases:
        proc = subprocess.run([*loopml_cmd, *args], capture_output=True, text=True, cwd=tmp_path)
        assert proc.returncode == 1, (args, proc.stdout, proc.stderr)
        assert needle in proc.stderr and proc.stderr.count("\n") == 1, (args, proc.stderr)
        assert "Traceback" not in proc.stderr
