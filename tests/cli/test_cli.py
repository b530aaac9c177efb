"""The ``loopml`` command: tables, --json, one-line errors with non-zero exits."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

import loopml
from loopml.cli import cli
from loopml.store import HEAD_REVISION


def _invoke(*args: str) -> Any:
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


def _seed() -> str:
    loopml.set_experiment("cli-exp")
    for i in range(3):
        with loopml.start_run(run_name=f"r{i}") as run:
            loopml.log_param("i", i)
            loopml.log_metric("acc", i / 10)
    loopml.flush()
    return run.info.run_id


def test_experiments_and_runs(tmp_path: Path) -> None:
    last = _seed()
    out = _invoke("experiments", "list", "--json")
    assert out.exit_code == 0
    assert "cli-exp" in [e["name"] for e in json.loads(out.output)]
    assert "cli-exp" in _invoke("experiments", "list").output

    listed = json.loads(_invoke("runs", "list", "-e", "cli-exp", "--json").output)
    assert len(listed["runs"]) == 3
    found = json.loads(
        _invoke(
            "runs",
            "search",
            "-e",
            "cli-exp",
            "--filter",
            "metrics.acc > 0.05",
            "--order-by",
            "metrics.acc DESC",
            "--json",
        ).output
    )
    assert [r["data"]["params"]["i"] for r in found["runs"]] == ["2", "1"]
    shown = json.loads(_invoke("runs", "show", last, "--json").output)
    assert shown["info"]["run_id"] == last
    assert last in _invoke("runs", "show", last).output


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["runs", "search", "-e", "cli-exp", "--filter", "metrics.acc >"], "position 13"),
        (["runs", "show", "0" * 32], "does not exist"),
        (["runs", "show", "nope"], "hex id"),
        (["runs", "list", "-e", "no-such-experiment"], "does not exist"),
    ],
)
def test_errors_are_one_line(args: list[str], message: str) -> None:
    _seed()
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 1
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0]


def test_usage_error_exit_code() -> None:
    assert CliRunner().invoke(cli, ["runs", "list", "--max-results", "0"]).exit_code == 2


def test_runs_against_a_server(server_factory: Callable[..., Any]) -> None:
    server = server_factory()
    loopml.set_tracking_uri(server.url)
    _seed()
    out = _invoke("runs", "list", "-e", "cli-exp", "--tracking-uri", server.url, "--json")
    assert len(json.loads(out.output)["runs"]) == 3


def test_db_commands(tmp_path: Path) -> None:
    uri = f"sqlite:///{tmp_path / 'cli.db'}"
    assert _invoke("db", "current", "--database-uri", uri).output.strip() == "empty"
    assert f"-> {HEAD_REVISION}" in _invoke("db", "upgrade", "--database-uri", uri).output
    assert _invoke("db", "current", "--database-uri", uri).output.strip() == HEAD_REVISION


def test_bad_settings_are_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LOOPML_TRACKING_QUEUE_SIZE", "zero")
    from loopml.config import reset_settings

    reset_settings()
    result = CliRunner().invoke(cli, ["experiments", "list"])
    assert result.exit_code == 1
    assert "tracking_queue_size" in result.output
