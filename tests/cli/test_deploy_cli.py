"""``loopml deploy``: create, list, status, set-traffic, promote, rollback, rollout, delete, on
the embedded store and through a server; bad input is one line with exit code 1. And
``loopml serve DEPLOYMENT`` as a real process following its deployment."""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from click.testing import CliRunner

from loopml.cli import cli
from loopml.cli._deploy import parse_duration


def _invoke(*args: str, input: str | None = None) -> Any:
    return CliRunner().invoke(cli, list(args), input=input, catch_exceptions=False)


@pytest.fixture(params=["embedded", "server"])
def uri_args(request: pytest.FixtureRequest, server_factory: Callable[..., Any]) -> list[str]:
    """No URI (the embedded store), or --tracking-uri of a real server."""
    if request.param == "embedded":
        return []
    return ["--tracking-uri", server_factory().url]


def _json(*args: str) -> Any:
    result = _invoke(*args, "--json")
    assert result.exit_code == 0, result.output
    return json.loads(result.output)


def test_deploy_lifecycle(uri_args: list[str]) -> None:
    dep = _json(
        "deploy", "create", "churn", "--model", "models:/churn/1", "--unit-key", "user_id",
        *uri_args,
    )  # fmt: skip
    assert dep["revision"] == 1 and dep["unit_key"] == "user_id"
    assert dep["variants"] == [
        {"name": "primary", "model_uri": "models:/churn/1", "weight": 100.0, "role": "primary"}
    ]
    dep = _json(
        "deploy", "create", "ab",
        "--variant", "a=models:/churn/1:50",
        "--variant", "b=models:/churn/2:50:canary",
        "--variant", "s=models:/churn@shadow:0:shadow",
        *uri_args,
    )  # fmt: skip
    assert [(v["name"], v["weight"], v["role"]) for v in dep["variants"]] == [
        ("a", 50.0, "primary"),
        ("b", 50.0, "canary"),
        ("s", 0.0, "shadow"),
    ]
    assert dep["variants"][2]["model_uri"] == "models:/churn@shadow"
    assert [d["name"] for d in _json("deploy", "list", *uri_args)] == ["ab", "churn"]

    dep = _json("deploy", "set-traffic", "ab", "a=90", "b=10", *uri_args)
    assert [v["weight"] for v in dep["variants"]] == [90.0, 10.0, 0.0]
    dep = _json("deploy", "promote", "ab", "b", *uri_args)
    assert [(v["name"], v["model_uri"]) for v in dep["variants"]] == [
        ("a", "models:/churn/2"),
        ("s", "models:/churn@shadow"),
    ]
    dep = _json("deploy", "rollback", "ab", *uri_args)
    assert [v["weight"] for v in dep["variants"]] == [90.0, 10.0, 0.0]

    dep = _json(
        "deploy", "rollout", "churn", "--to", "models:/churn/2", "--steps", "10,50,100",
        "--interval", "5m", "--max-p99-ms", "250", "--rule", "p50_ms < 20", *uri_args,
    )  # fmt: skip
    rollout = dep["rollout"]
    assert rollout["status"] == "running" and rollout["steps"] == [10.0, 50.0, 100.0]
    assert rollout["interval_seconds"] == 300 and rollout["guardrails"]["max_p99_ms"] == 250
    assert [(v["name"], v["weight"]) for v in dep["variants"]] == [
        ("primary", 90.0),
        ("canary", 10.0),
    ]
    status = _invoke("deploy", "status", "churn", *uri_args)
    assert status.exit_code == 0 and "rollout of models:/churn/2: running" in status.output
    assert "rollout_started" in status.output
    full = _json("deploy", "status", "churn", *uri_args)
    assert [e["kind"] for e in full["events"]] == ["created", "rollout_started"]
    busy = _invoke("deploy", "set-traffic", "churn", "primary=50", *uri_args)
    assert busy.exit_code == 1 and "rollout in progress" in busy.output
    dep = _json("deploy", "rollback", "churn", *uri_args)
    assert dep["rollout"]["status"] == "rolled_back"
    assert [v["name"] for v in dep["variants"]] == ["primary"]

    assert _invoke("deploy", "delete", "ab", "--yes", *uri_args).exit_code == 0
    assert [d["name"] for d in _json("deploy", "list", *uri_args)] == ["churn"]


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["deploy", "create", "x"], "--model"),
        (["deploy", "create", "bad name!", "--model", "models:/m/1"], "deployment name"),
        (["deploy", "create", "x", "--variant", "nonsense"], "NAME=URI"),
        (["deploy", "create", "x", "--variant", "a=models:/m/1:50:canary"], "primary"),
        (["deploy", "status", "missing"], "does not exist"),
        (["deploy", "set-traffic", "missing", "a=oops"], "VARIANT=WEIGHT"),
        (["deploy", "rollout", "missing", "--to", "models:/m/2", "--interval", "soon"], "soon"),
        (["deploy", "rollout", "missing", "--to", "models:/m/2", "--steps", "5,x"], "--steps"),
    ],
)
def test_bad_input_is_one_line(args: list[str], words: str) -> None:
    result = _invoke(*args)
    assert result.exit_code == 1, result.output
    assert words in result.output and "Traceback" not in result.output
    assert result.output.strip().count("\n") == 0


def test_steps_must_end_at_100() -> None:
    _json("deploy", "create", "d", "--model", "models:/m/1")
    result = _invoke("deploy", "rollout", "d", "--to", "models:/m/2", "--steps", "5,50")
    assert result.exit_code == 1 and "100" in result.output


def test_parse_duration() -> None:
    assert [parse_duration(t) for t in ("90", "30s", "10m", "2h", "1d", "500ms")] == [
        90,
        30,
        600,
        7200,
        86400,
        0.5,
    ]


def test_serve_a_deployment_as_a_process(
    tmp_path: Path, free_tcp_port: int, loopml_cmd: list[str], loopml_process: Any
) -> None:
    """``loopml serve NAME`` loads the deployment's models and follows a traffic change."""
    import pandas as pd
    from sklearn.dummy import DummyClassifier

    import loopml

    x = pd.DataFrame({"a": [1.0, 2.0]})
    for k in (0, 1):
        model = DummyClassifier(strategy="constant", constant=k).fit(x, [0, 1])
        with loopml.start_run():
            loopml.log_model(model, "m", registered_model_name="const", input_example=x)
    _json(
        "deploy", "create", "web", "--variant", "old=models:/const/1:100",
        "--variant", "new=models:/const/2:0:canary",
    )  # fmt: skip
    port = free_tcp_port
    cmd = loopml_cmd
    log = tmp_path / "serve.log"
    url = f"http://127.0.0.1:{port}"
    args = ["serve", "web", "--port", str(port), "--follow-interval", "0.2"]
    with loopml_process(args, log=log, ready=url + "/ready") as server:
        assert httpx.post(f"{url}/predict", json={"a": 1.0}).json()["prediction"] == 0
        _json("deploy", "set-traffic", "web", "old=0", "new=100")
        _until(
            lambda: httpx.post(f"{url}/predict", json={"a": 1.0}).json()["prediction"] == 1,
            server.proc,
            log,
        )
        metrics = httpx.get(f"{url}/metrics").text
        assert "loopml_model_swaps_total 1.0" in metrics
    bad = subprocess.run(
        [*cmd, "serve", "nowhere", "--port", str(port)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert bad.returncode == 1 and "deployment 'nowhere' does not exist" in bad.stderr
    assert "Traceback" not in bad.stderr
    workers = subprocess.run(  # checked before the workers start, not restarted forever
        [*cmd, "serve", "nowhere", "--port", str(port), "--workers", "2"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert workers.returncode == 1 and "does not exist" in workers.stderr
    assert "Traceback" not in workers.stderr


def _until(cond: Callable[[], bool], proc: Any, log: Path, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        assert proc.poll() is None, log.read_text()
        assert time.monotonic() < deadline, log.read_text()
        time.sleep(0.1)
