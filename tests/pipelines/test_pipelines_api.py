"""Pipelines over HTTP and from the CLI, and on PostgreSQL: history, queueing, schedules, logs;
bad requests are 4xx naming the field, CLI errors one line."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
import steps_for_tests as sft

import loopml
from loopml.config import get_settings
from loopml.pipelines import Scheduler, get_pipeline_store, list_runs

HERE = Path(__file__).parent


@pytest.fixture(autouse=True)
def counts(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COUNTS", str(tmp_path / "counts"))


def test_http_routes(server_factory: Any) -> None:
    settings = get_settings()
    ran = sft.training.run(n=120)
    server = server_factory(settings.resolved_database_uri, settings.resolved_artifact_uri)
    with httpx.Client(base_url=server.url, timeout=60) as http:
        listed = http.get("/api/v1/pipelines").json()["pipelines"]
        assert [p["name"] for p in listed] == ["training"]
        assert [s["name"] for s in listed[0]["dag"]["steps"]] == [
            "make_frame",
            "split",
            "fit",
            "score",
        ]
        assert listed[0]["last_run"]["run_id"] == ran.run_id
        run = http.get(f"/api/v1/pipeline-runs/{ran.run_id}").json()["run"]
        assert run["status"] == "SUCCEEDED" and run["params"] == {"n": 120, "c": 1.0}
        assert [s["status"] for s in run["steps"]] == ["SUCCEEDED"] * 4
        assert "logs" not in run["steps"][0] and run["steps"][2]["tracking_runs"]
        logs = http.get(f"/api/v1/pipeline-runs/{ran.run_id}/steps/make_frame/logs").json()
        assert "made 120 rows" in logs["logs"]
        # a run asked for over HTTP is queued; the scheduler starts it
        queued = http.post("/api/v1/pipelines/training/runs", json={"params": {"n": 80}})
        assert queued.status_code == 201 and queued.json()["run"]["status"] == "QUEUED"
        (done,) = Scheduler(get_pipeline_store()).start_queued()
        assert done.run_id == queued.json()["run"]["run_id"] and done.trigger == "api"
        runs = http.get("/api/v1/pipelines/training/runs").json()["runs"]
        assert [r["run_id"] for r in runs] == [done.run_id, ran.run_id]
        assert runs[0]["status"] == "SUCCEEDED"
        assert (
            len(http.get("/api/v1/pipeline-runs", params={"status": "FAILED"}).json()["runs"]) == 0
        )
        # schedules
        made = http.post("/api/v1/pipelines/training/schedules", json={"cron": "0 3 * * *"})
        assert made.status_code == 201
        sid = made.json()["schedule"]["schedule_id"]
        paused = http.patch(f"/api/v1/pipeline-schedules/{sid}", json={"enabled": False})
        assert paused.json()["schedule"]["enabled"] is False
        got = http.get("/api/v1/pipelines/training").json()
        assert [s["schedule_id"] for s in got["schedules"]] == [sid]
        assert http.delete(f"/api/v1/pipeline-schedules/{sid}").json() == {"deleted": sid}
        for method, path, body, status, needle in [
            ("post", "/api/v1/pipelines/training/runs", {"params": [1]}, 400, "params"),
            ("post", "/api/v1/pipelines/training/runs", {"parms": {}}, 400, "parms"),
            ("post", "/api/v1/pipelines/training/runs", [1], 400, "object"),
            ("post", "/api/v1/pipelines/ghost/runs", {}, 404, "ghost"),
            ("post", "/api/v1/pipelines/training/schedules", {"cron": "soon"}, 400, "cron"),
            ("post", "/api/v1/pipelines/training/schedules", {}, 400, "cron"),
            ("patch", f"/api/v1/pipeline-schedules/{sid}", {"enabled": False}, 404, "schedule"),
            ("patch", "/api/v1/pipeline-schedules/1", {"enabled": "no"}, 400, "enabled"),
            ("get", "/api/v1/pipeline-runs/nope", None, 404, "nope"),
            ("get", f"/api/v1/pipeline-runs/{ran.run_id}/steps/x/logs", None, 404, "'x'"),
            ("get", "/api/v1/pipeline-runs?status=DONE", None, 400, "status"),
            ("get", "/api/v1/pipeline-runs?limit=0", None, 400, "limit"),
            ("get", "/api/v1/pipelines/ghost", None, 404, "ghost"),
        ]:
            response = http.request(method, path, json=body)
            assert response.status_code == status, (path, body, response.text)
            assert needle in response.text, (path, response.text)


def test_pipelines_on_postgresql(pg_uri: str, tmp_path: Path) -> None:
    loopml.set_tracking_uri(pg_uri)
    first = sft.training.run(n=100)
    again = sft.training.run(n=100)
    assert again.cache_hits == ["make_frame", "split", "fit", "score"]
    assert {s.cached_from for s in again.steps.values()} == {first.run_id}
    assert [r.run_id for r in list_runs("training")] == [again.run_id, first.run_id]
    assert loopml.get_run(first.steps["fit"].tracking_runs[0]).data.params == {"c": "1.0"}


def test_cli(tmp_path: Path, loopml_cmd: list[str]) -> None:
    path = f"{HERE}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"
    env = {**os.environ, "PYTHONPATH": path, "COLUMNS": "250"}

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*loopml_cmd, *args], capture_output=True, text=True, env=env, timeout=300
        )

    done = run("pipelines", "run", "steps_for_tests:training", "-p", "n=120", "--json")
    assert done.returncode == 0, done.stderr
    ran = orjson.loads(done.stdout)
    assert ran["status"] == "SUCCEEDED" and ran["params"] == {"n": 120, "c": 1.0}
    cached = run("pipelines", "run", "training", "-p", "n=120")  # by name, from its target
    assert cached.returncode == 0 and cached.stdout.count("CACHED") == 4, cached.stdout
    listed = run("pipelines", "list")
    assert "training" in listed.stdout and "steps_for_tests:training" in listed.stdout
    runs = orjson.loads(run("pipelines", "runs", "training", "--json").stdout)
    assert len(runs) == 2 and runs[1]["run_id"] == ran["run_id"]
    shown = run("pipelines", "show", ran["run_id"])
    assert "make_frame" in shown.stdout and "tracked runs" in shown.stdout
    logs = run("pipelines", "show", ran["run_id"], "--logs", "make_frame")
    assert logs.stdout.strip() == "made 120 rows"
    failed = run("pipelines", "run", "steps_for_tests:retrying", "-p", "fail_times=9")
    assert failed.returncode == 1 and "step 'flaky' failed: RuntimeError" in failed.stderr
    assert "FAILED" in failed.stdout
    queued = run("pipelines", "run", "training", "-p", "n=60", "--queue", "--json")
    assert orjson.loads(queued.stdout)["status"] == "QUEUED"
    added = run("pipelines", "schedule", "add", "training", "--cron", "@hourly", "-p", "n=40")
    assert added.returncode == 0 and "schedule 1: training" in added.stdout
    assert "@hourly" in run("pipelines", "schedule", "list").stdout
    assert run("pipelines", "schedule", "pause", "1").returncode == 0
    assert (
        orjson.loads(run("pipelines", "schedule", "list", "--json").stdout)[0]["enabled"] is False
    )
    tick = run("scheduler", "--once")
    assert tick.returncode == 0 and "(cli): SUCCEEDED" in tick.stdout, tick.stdout + tick.stderr
    assert run("pipelines", "schedule", "delete", "1").returncode == 0
    for args, needle in [
        (("pipelines", "run", "ghost"), "pipeline 'ghost' does not exist"),
        (("pipelines", "run", "training", "-p", "novalue"), "KEY=VALUE"),
        (("pipelines", "run", "training", "-p", "rows=3"), "unexpected keyword"),
        (("pipelines", "run", "training", "--executor", "gpu"), "executor must be"),
        (("pipelines", "show", "nope"), "does not exist"),
        (("pipelines", "show", ran["run_id"], "--logs", "x"), "no step 'x'"),
        (("pipelines", "schedule", "add", "training", "--cron", "sometimes"), "not a cron"),
        (("pipelines", "schedule", "delete", "99"), "does not exist"),
        (("pipelines", "runs", "--status", "DONE"), "status must be"),
        (("scheduler", "--import", "missing.py", "--once"), "no such .py file"),
    ]:
        proc = run(*args)
        assert proc.returncode == 1, (args, proc.stdout, proc.stderr)
        assert needle in proc.stderr and "Traceback" not in proc.stderr, (args, proc.stderr)
