"""``loopml data`` and ``loopml gc``: embedded and against a real server."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from click.testing import CliRunner

from loopml.cli import cli


def _invoke(*args: str) -> Any:
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


def _json(*args: str) -> Any:
    result = _invoke(*args, "--json")
    assert result.exit_code == 0, result.output
    return json.loads(result.output)


@pytest.fixture(params=["embedded", "server"])
def uri_args(request: pytest.FixtureRequest) -> list[str]:
    if request.param == "embedded":
        return []
    return ["--tracking-uri", request.getfixturevalue("server_factory")().url]


def test_add_versions_get_diff_alias_delete_gc(
    uri_args: list[str], tmp_path: Path, make_tree: Any, same_tree: Any
) -> None:
    src = make_tree(tmp_path / "src", 10)
    first = _json("data", "add", str(src), "--name", "raw", "--alias", "train-latest", *uri_args)
    assert first["created"] is True and first["version"] == 1 and first["num_files"] == 10
    again = _json("data", "add", str(src), "--name", "raw", *uri_args)
    assert again["created"] is False and again["uploaded_blobs"] == 0
    (src / "extra.bin").write_bytes(b"extra")
    second = _json("data", "add", str(src), "--name", "raw", "--tag", "k=v", *uri_args)
    assert (
        second["version"] == 2 and second["uploaded_blobs"] == 1 and second["tags"] == {"k": "v"}
    )

    versions = _json("data", "versions", "raw", *uri_args)
    assert [v["version"] for v in versions] == [2, 1]
    assert versions[1]["aliases"] == ["train-latest"]
    shown = _json("data", "show", "raw@train-latest", "--files", *uri_args)
    assert shown["version"] == 1 and len(shown["files"]) == 10

    out = tmp_path / "restored"
    got = _json("data", "get", "raw@1", "--out", str(out), *uri_args)
    assert got["num_files"] == 10
    assert same_tree(make_tree(tmp_path / "orig", 10), out)

    diff = _json("data", "diff", "raw", "1", "2", *uri_args)
    assert diff["files"]["added"] == ["extra.bin"] and diff["files"]["unchanged"] == 10
    text = _invoke("data", "diff", "raw", "1", "2", *uri_args)
    assert "+ extra.bin" in text.output

    assert _invoke("data", "alias", "raw", "gold", "2", *uri_args).exit_code == 0
    assert _json("data", "show", "raw@gold", *uri_args)["version"] == 2
    assert _invoke("data", "unalias", "raw", "gold", *uri_args).exit_code == 0
    assert _invoke("data", "update", "raw@2", "--description", "d", *uri_args).exit_code == 0
    assert _json("data", "show", "raw@2", *uri_args)["description"] == "d"

    assert _invoke("data", "delete", "raw@2", *uri_args).exit_code == 0
    assert _json("gc", "--grace", "0", "--dry-run", *uri_args)["deleted_blobs"] == 1
    report = _json("gc", "--grace", "0", *uri_args)
    assert report["deleted_blobs"] == 1 and report["kept_blobs"] == 10
    listed = _json("data", "list", *uri_args)
    assert [(d["name"], d["num_versions"]) for d in listed] == [("raw", 1)]
    refused = _invoke("data", "delete", "raw", *uri_args)
    assert refused.exit_code == 1 and "--yes" in refused.output
    assert _invoke("data", "delete", "raw", "--yes", *uri_args).exit_code == 0


def test_tabular_add_shows_schema_and_rows(tmp_path: Path) -> None:
    path = tmp_path / "t.csv"
    pd.DataFrame({"a": [1, 2, 3], "b": ["x", "y", "z"]}).to_csv(path, index=False)
    added = _json("data", "add", str(path), "--name", "t")
    assert added["num_rows"] == 3
    shown = _invoke("data", "show", "t")
    assert "schema" in shown.output and "rows: 3" in shown.output


def test_errors_are_one_line_with_exit_1(tmp_path: Path, loopml_cmd: list[str]) -> None:
    env = {**os.environ, "LOOPML_HOME": str(tmp_path / "home")}
    cases = [
        ["data", "add", str(tmp_path / "absent"), "--name", "x"],
        ["data", "add", str(tmp_path), "--name", "bad name"],
        ["data", "get", "nope@1", "--out", str(tmp_path / "o")],
        ["data", "diff", "nope", "1", "2"],
        ["data", "add", str(tmp_path), "--name", "x", "--tag", "novalue"],
        ["gc", "--grace", "soon"],
    ]
    for args in cases:
        proc = subprocess.run([*loopml_cmd, *args], env=env, capture_output=True, text=True)
        assert proc.returncode == 1, (args, proc.stdout, proc.stderr)
        lines = proc.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error: "), (args, proc.stderr)
