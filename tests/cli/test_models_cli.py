"""``loopml models``: list, show, versions, alias, promote, rollback, compare, history; errors
are one line with exit code 1."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable
from typing import Any

import pytest
from click.testing import CliRunner

import loopml
from loopml.cli import cli


def _invoke(*args: str, input: str | None = None) -> Any:
    return CliRunner().invoke(cli, list(args), input=input, catch_exceptions=False)


def _seed(uri: str | None) -> None:
    client = loopml.Client(uri)
    eid = client.create_experiment("cli-models")
    client.create_registered_model("fraud", description="flags fraud")
    for depth in (3, 5):
        run = client.create_run(eid)
        client.log_param(run.info.run_id, "max_depth", depth)
        client.log_metric(run.info.run_id, "auc", depth / 10)
        client.create_model_version("fraud", f"runs:/{run.info.run_id}/model", run.info.run_id)


@pytest.fixture(params=["embedded", "server"])
def uri_args(request: pytest.FixtureRequest, server_factory: Callable[..., Any]) -> list[str]:
    """No URI (the embedded store), or --tracking-uri of a real server."""
    if request.param == "embedded":
        _seed(None)
        return []
    url = server_factory().url
    _seed(url)
    return ["--tracking-uri", url]


def test_promote_rollback_history(uri_args: list[str]) -> None:
    out = _invoke("models", "promote", "fraud", "1", "--yes", "--reason", "first", *uri_args)
    assert out.exit_code == 0 and "- -> 1" in out.output
    out = _invoke(
        "models", "promote", "fraud", "2", "--stage", "production", *uri_args, input="y\n"
    )
    assert out.exit_code == 0, out.output
    assert "1 -> 2" in out.output and "stage Production" in out.output
    shown = json.loads(_invoke("models", "show", "fraud", "--json", *uri_args).output)
    assert shown["aliases"] == {"production": "2"}

    out = _invoke("models", "rollback", "fraud", "--yes", "--reason", "auc fell", *uri_args)
    assert out.exit_code == 0 and "2 -> 1 (rollback)" in out.output
    alias = json.loads(
        _invoke("models", "alias", "fraud", "production", "--json", *uri_args).output
    )
    assert alias["version"] == "1"

    events = json.loads(
        _invoke("models", "history", "fraud", "--alias", "production", "--json", *uri_args).output
    )["events"]
    assert [(e["kind"], e["to_version"], e["reason"]) for e in events] == [
        ("rollback", "1", "auc fell"),
        ("alias", "2", ""),
        ("alias", "1", "first"),
    ]
    moment = events[1]["timestamp"]
    iso = dt.datetime.fromtimestamp(moment / 1000, tz=dt.UTC).isoformat(timespec="milliseconds")
    out = _invoke("models", "history", "fraud", "--alias", "production", "--at", iso, *uri_args)
    assert "version 2" in out.output, out.output
    table = _invoke("models", "history", "fraud", *uri_args).output
    assert "auc fell" in table and "version 2 created" in table


def test_list_versions_compare(uri_args: list[str]) -> None:
    listed = json.loads(_invoke("models", "list", "--json", *uri_args).output)
    assert [m["name"] for m in listed["registered_models"]] == ["fraud"]
    assert "fraud" in _invoke("models", "list", *uri_args).output
    versions = json.loads(_invoke("models", "versions", "fraud", "--json", *uri_args).output)
    assert [v["version"] for v in versions["model_versions"]] == ["2", "1"]
    cmp = json.loads(_invoke("models", "compare", "fraud", "1", "2", "--json", *uri_args).output)
    assert cmp["params"]["max_depth"] == ["3", "5"]
    assert "params.max_depth" in cmp["differences"] and "metrics.auc" in cmp["differences"]
    table = _invoke("models", "compare", "fraud", "1", "2", *uri_args).output
    assert "params.max_depth" in table


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["models", "show", "nope"], "registered model 'nope' does not exist"),
        (["models", "alias", "fraud", "v2", "1"], "reserved"),
        (["models", "promote", "fraud", "9", "--yes"], "no version 9"),
        (["models", "rollback", "fraud", "--yes"], "no alias 'production'"),
        (["models", "history", "fraud", "--alias", "production", "--at", "noon"], "ISO 8601"),
        (["models", "versions", "fraud", "--max-results", "0"], "0"),
    ],
)
def test_bad_input_is_one_line(uri_args: list[str], args: list[str], message: str) -> None:
    result = CliRunner().invoke(cli, [*args, *uri_args])
    assert result.exit_code != 0
    assert message in result.output
    assert "Traceback" not in result.output


def test_register_a_saved_folder_and_a_run(uri_args: list[str], tmp_path: Any) -> None:
    from sklearn.linear_model import LogisticRegression

    x = [[0.0, 1.0], [1.0, 0.0], [0.5, 0.2], [0.9, 0.8]]
    model = LogisticRegression().fit(x, [0, 1, 0, 1])
    loopml.save_model(model, tmp_path / "saved", input_example=x[:2])
    out = _invoke(
        "models",
        "register",
        str(tmp_path / "saved"),
        "fraud",
        "--tag",
        "src=disk",
        "--json",
        *uri_args,
    )
    assert out.exit_code == 0, out.output
    registered = json.loads(out.output)
    assert (registered["version"], registered["source"], registered["tags"]) == (
        "3",
        "registry:",
        {"src": "disk"},
    )
    if uri_args:
        loopml.set_tracking_uri(uri_args[1])
    loaded = loopml.load_model("models:/fraud/3")
    assert list(loaded.predict(x)) == list(model.predict(x))
    bad = CliRunner().invoke(cli, ["models", "register", str(tmp_path), "fraud", *uri_args])
    assert bad.exit_code == 1 and "Traceback" not in bad.output
    bad = CliRunner().invoke(cli, ["models", "register", "runs:/", "fraud", "--tag", "x"])
    assert bad.exit_code == 2 and "key=value" in bad.output
