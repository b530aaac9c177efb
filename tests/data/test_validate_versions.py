"""Validation of dataset versions: SDK (embedded and server), HTTP route, CLI exit codes."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import pandas as pd
import pytest
from click.testing import CliRunner

import loopml.data as ld
from loopml.cli import cli
from loopml.errors import DataValidationFailed, InvalidInput

RULES = """
min_rows: 3
columns:
  age: {dtype: int, nullable: false, min: 0, max: 120}
  country: {allowed: [DE, FR, US]}
"""


def _frame() -> pd.DataFrame:
    return pd.DataFrame({"age": [30, 200, 41, -1], "country": ["DE", "FR", "XX", "US"]})


def test_validate_a_version_by_reference(tracking_mode: str, tmp_path: Path) -> None:
    ld.log_dataset(_frame(), "people")
    (tmp_path / "rules.yaml").write_text(RULES)
    result = ld.validate_dataset("people@1", str(tmp_path / "rules.yaml"))
    failures = {(f.rule, f.column): f.failed_count for f in result.failures}
    assert not result.ok and failures == {("range", "age"): 2, ("allowed", "country"): 1}
    with pytest.raises(DataValidationFailed):
        result.raise_for_failures()
    good = ld.validate_dataset(_frame().iloc[[0, 2, 3]].assign(country="DE", age=5), RULES)
    assert good.ok


def test_validate_route_takes_objects_and_yaml_text_never_paths(
    server_factory: Any, tmp_path: Path
) -> None:
    server = server_factory()
    store = ld.RestDatasetStore(server.url)
    try:
        _check_route(server.url, store, tmp_path)
    finally:
        store.close()


def _check_route(url: str, store: Any, tmp_path: Path) -> None:
    ld.log_dataset(_frame(), "people", store=store)
    api = f"{url}/api/v1/datasets/people/versions/1/validate"
    as_text = httpx.post(api, json={"rules": RULES}).json()["result"]
    as_object = httpx.post(api, json={"rules": {"columns": {"age": {"min": 0}}}}).json()["result"]
    assert as_text["ok"] is False and len(as_text["failures"]) == 2
    assert [f["failed_count"] for f in as_object["failures"]] == [1]
    (tmp_path / "server-file.yaml").write_text("min_rows: 1\n")
    refused = httpx.post(api, json={"rules": str(tmp_path / "server-file.yaml")})
    assert refused.status_code == 400 and "mapping" in refused.json()["message"]
    unknown = httpx.post(api, json={"rules": {"columns": {"age": {"minimum": 0}}}})
    assert unknown.status_code == 400 and "minimum" in unknown.json()["message"]
    not_tabular = tmp_path / "blob.bin"
    not_tabular.write_bytes(b"\x00\x01")
    ld.log_dataset(not_tabular, "binary", store=store)
    resp = httpx.post(
        f"{url}/api/v1/datasets/binary/versions/1/validate", json={"rules": {"min_rows": 1}}
    )
    assert resp.status_code == 400 and "not tabular" in resp.json()["message"]


def test_cli_validate_exits_1_on_failure(tmp_path: Path) -> None:
    ld.log_dataset(_frame(), "people")
    rules = tmp_path / "rules.yaml"
    rules.write_text(RULES)
    runner = CliRunner()
    failed = runner.invoke(cli, ["data", "validate", "people", "--rules", str(rules), "--json"])
    assert failed.exit_code == 1
    body = json.loads(failed.output)
    assert body["ok"] is False and {f["rule"] for f in body["failures"]} == {"range", "allowed"}
    rules.write_text("min_rows: 1\n")
    passed = runner.invoke(cli, ["data", "validate", "people", "--rules", str(rules)])
    assert passed.exit_code == 0, passed.output
    rules.write_text("columns: {age: {bogus: 1}}\n")
    bad = runner.invoke(cli, ["data", "validate", "people", "--rules", str(rules)])
    assert bad.exit_code == 1 and "bogus" in bad.output


def test_load_refuses_non_tabular_versions(tmp_path: Path) -> None:
    path = tmp_path / "x.bin"
    path.write_bytes(b"abc")
    ld.log_dataset(path, "bin")
    with pytest.raises(InvalidInput, match="not tabular"):
        ld.load("bin")
