"""Experiments over HTTP and from the CLI: create, assign, expose, log events, analyse, stop,
plan; bad requests are 4xx naming the field, CLI errors one line."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import orjson
import pandas as pd

import loopml.abtest as ab
from loopml.config import get_settings

A = "/api/v1/abtests"


def test_http_routes(server_factory: Any) -> None:
    settings = get_settings()
    server = server_factory(settings.resolved_database_uri, settings.resolved_artifact_uri)
    with httpx.Client(base_url=server.url, timeout=60) as http:
        spec = {"name": "button", "variants": {"control": 1, "green": 1}, "metrics": ["clicked"]}
        made = http.post(A, json=spec)
        assert made.status_code == 200 and made.json()["experiment"]["control"] == "control"
        assert http.post(A, json=spec).status_code == 409
        got = http.get(A + "/button/assign", params={"unit_id": "u-1"}).json()
        assert got["variant"] == ab.assign("button", "u-1", [("control", 1), ("green", 1)])
        units = [f"u-{i}" for i in range(4000)]
        exposed = http.post(
            A + "/button/exposures", json={"exposures": [{"unit_id": u} for u in units]}
        )
        assert exposed.json() == {"new": 4000}
        rng = np.random.default_rng(0)
        variant = {u: ab.assign("button", u, [("control", 1), ("green", 1)]) for u in units}
        clicks = [
            {"unit_id": u, "metric": "clicked"}
            for u in units
            if rng.random() < (0.3 if variant[u] == "green" else 0.2)
        ]
        assert http.post(A + "/button/events", json={"events": clicks}).json() == {
            "stored": len(clicks)
        }
        analysis = http.get(A + "/button/analysis", params={"method": "sequential"}).json()
        assert analysis["verdict"]["decision"] == "ship" and analysis["rows"][0]["test"] == "msprt"
        status = http.get(A + "/button").json()
        assert sum(status["exposed"].values()) == 4000
        for path, body, field in [
            ("", {"name": "x", "variants": {"a": 1}, "metrics": ["m"]}, "variants"),
            (
                "",
                {"name": "x", "variants": {"a": 1, "b": 1}, "metrics": ["m"], "colour": 1},
                "colour",
            ),
            ("", {"name": "x", "deployment": "nowhere", "metrics": ["m"]}, "nowhere"),
            ("/button/events", {"events": [{"unit_id": "u-1", "metric": "views"}]}, "metric"),
            ("/button/events", {"evnts": []}, "events"),
            (
                "/button/exposures",
                {"exposures": [{"unit_id": "u-1", "variant": "red"}]},
                "variant",
            ),
        ]:
            bad = http.post(A + path, json=body)
            assert 400 <= bad.status_code < 500 and field in bad.text, (path, bad.text)
        assert http.get(A + "/nope").status_code == 404
        assert http.post(A + "/button/stop", json={"reason": "done"}).status_code == 200
        again = http.post(A + "/button/events", json={"events": clicks[:1]})
        assert again.status_code == 409 and "stopped" in again.text


def test_cli(loopml_cmd: list[str], tmp_path: Path) -> None:
    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([*loopml_cmd, "abtest", *args], capture_output=True, text=True)

    made = run(
        "create",
        "promo",
        "--variant",
        "control=50",
        "--variant",
        "b=50",
        "--metric",
        "converted",
        "--metric",
        "revenue:continuous",
    )
    assert made.returncode == 0, made.stderr
    ab.log_exposures("promo", [{"unit_id": f"u{i}"} for i in range(2000)])
    ab.log_events(
        "promo", [{"unit_id": f"u{i}", "metric": "converted"} for i in range(0, 2000, 7)]
    )
    out = run("analyze", "promo", "--json")
    assert out.returncode == 0, out.stderr
    assert {r["metric"] for r in orjson.loads(out.stdout)["rows"]} == {"converted", "revenue"}
    status = run("status", "promo")
    assert status.returncode == 0 and "units exposed" in status.stdout
    rng = np.random.default_rng(0)
    path = tmp_path / "units.parquet"
    pd.DataFrame(
        {
            "variant": rng.choice(["control", "b"], 5000),
            "x": rng.normal(size=5000),
            "pre": rng.normal(size=5000),
        }
    ).to_parquet(path)
    data = run("analyze", "--data", str(path), "--metric", "x", "--covariate", "x=pre")
    assert data.returncode == 0, data.stderr
    assert "verdict" in data.stdout
    plan = run("plan", "--baseline", "0.1", "--mde", "0.1")
    assert plan.returncode == 0 and "14,749 units per variant" in plan.stdout
    assert run("stop", "promo", "--reason", "over").returncode == 0
    for args, needle in [
        (("create", "x", "--variant", "a=1", "--metric", "m"), "at least 2"),
        (("analyze",), "experiment NAME or --data"),
        (("analyze", "--data", str(path), "--metric", "nope"), "'nope' is not in the data"),
        (("stop", "promo"), "already stopped"),
        (("plan", "--baseline", "1.5", "--mde", "0.1"), "(0, 1)"),
        (("create", "y", "--variant", "a=x", "--metric", "m"), "NAME=WEIGHT"),
    ]:
        proc = run(*args)
        assert proc.returncode == 1, (args, proc.stdout, proc.stderr)
        assert needle in proc.stderr and "Traceback" not in proc.stderr, proc.stderr
