"""A deployed model's prediction log: drift against its training data from lineage, prediction
drift, live quality once outcomes arrive, baselines, and alerts that fire and resolve."""

from __future__ import annotations

import http.server
import threading
import time
from collections.abc import Iterator
from typing import Any

import numpy as np
import orjson
import pandas as pd
import pytest
from prometheus_client import generate_latest
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import accuracy_score, f1_score

import loopml
import loopml.data as ld
from loopml.errors import InvalidInput, NotFound
from loopml.monitoring import (
    AlertEngine,
    AlertRule,
    Monitor,
    PredictionLog,
    check,
    log_outcome,
    log_outcomes,
    quality,
)
from loopml.registry import verify_signature

SECRET = "s3cret"
NOW = time.time()


def _data(n: int, seed: int, shift: float = 0.0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    x1 = rng.normal(shift, 1, n)
    x2 = rng.normal(0, 1, n)
    city = rng.choice(["a", "b", "c"], n, p=[0.5, 0.3, 0.2])
    noise = rng.normal(0, 0.5, n)
    return pd.DataFrame({"x1": x1, "x2": x2, "city": city, "y": (x1 + x2 + noise > 0).astype(int)})


@pytest.fixture
def deployed() -> tuple[LogisticRegression, pd.DataFrame]:
    """Model version clf/1 trained on dataset train@1, with its test accuracy as a metric."""
    train, test = _data(2000, 0), _data(500, 1)
    with loopml.start_run() as run:
        ld.log_dataset(train, "train", context="training")
        model = LogisticRegression().fit(train[["x1", "x2"]], train["y"])
        loopml.log_metric(
            "test_accuracy", accuracy_score(test["y"], model.predict(test[["x1", "x2"]]))
        )
        loopml.sklearn.log_model(model, "model")
    loopml.register_model(f"runs:/{run.info.run_id}/model", "clf")
    return model, train


def _log(
    model: LogisticRegression, frame: pd.DataFrame, *, start: float, variant: str = "main"
) -> list[str]:
    ids = []
    with PredictionLog() as log:
        predictions = model.predict(frame[["x1", "x2"]])
        for i, (row, pred) in enumerate(zip(frame.to_dict("records"), predictions, strict=True)):
            inputs = {k: row[k] for k in ("x1", "x2")}
            ids.append(
                log.append(
                    deployment="fraud",
                    variant=variant,
                    model_name="clf",
                    model_version="1",
                    inputs=inputs,
                    outputs=[int(pred)],
                    latency_ms=2.0,
                    unit_id=f"u{int(start)}-{i}",
                    time=start + i * 0.5,
                )
            )
    return ids


def test_drift_of_a_deployment_against_its_training_data(deployed: Any) -> None:
    model, train = deployed
    _log(model, _data(600, 2, shift=1.0), start=NOW - 1800)
    report = check("fraud", "1h", now=NOW)
    assert report.subject["model"] == "clf" and report.subject["version"] == "1"
    assert report.subject["reference"] == "train@1"
    assert report.drifted_columns == ["x1"]  # x2 unchanged; y and city were never inputs
    assert set(report.columns) == {"x1", "x2"}
    assert report.prediction is not None and report.prediction.kind == "categorical"
    assert report.prediction.drifted  # the shifted input moves the predicted classes
    ref_share = model.predict(train[["x1", "x2"]]).mean()
    assert report.prediction.distribution["categories"]  # the outputs on the reference
    assert 0.3 < ref_share < 0.7
    monitor = loopml.monitoring.get_monitor()
    stored = monitor.store.get_profile("models:/clf/1")
    assert stored is not None and stored.source == "train@1" and stored.n_rows == len(train)
    # The second check reuses the stored profile: the training data is not read again.
    ld.delete_dataset("train")
    again = check("fraud", "1h", now=NOW)
    assert again.to_dict()["columns"] == report.to_dict()["columns"]


def test_quality_joins_late_outcomes_and_flags_degradation(deployed: Any) -> None:
    model, _ = deployed
    frame = _data(400, 3)
    ids = _log(model, frame, start=NOW - 1800)
    empty = quality("fraud", "1h", now=NOW)
    assert empty.variants["main"]["n_labelled"] == 0 and empty.variants["main"]["accuracy"] is None
    # Ground truth arrives later: half by prediction id, half by unit id, in bulk.
    truth = frame["y"].to_numpy().copy()
    truth[:120] = 1 - truth[:120]  # the world changed: 30% of labels disagree more than before
    records = [
        {"prediction_id": pid, "value": int(v)}
        for pid, v in zip(ids[:200], truth[:200], strict=True)
    ]
    records += [
        {"unit_id": f"u{int(NOW - 1800)}-{i}", "value": int(truth[i])} for i in range(200, 400)
    ]
    assert log_outcomes(records) == 400
    log_outcome(ids[0], int(truth[0]))  # a repeat: the latest value wins
    q = quality("fraud", "1h", now=NOW, bucket="1m")  # 400 rows over 200 s
    main = q.variants["main"]
    predicted = model.predict(frame[["x1", "x2"]])
    assert main["n_labelled"] == 400
    assert main["accuracy"] == pytest.approx(accuracy_score(truth, predicted))
    assert main["f1"] == pytest.approx(f1_score(truth, predicted))
    assert main["roc_auc"] is None  # the log holds labels, not scores
    assert q.baselines["main"]["accuracy"] > main["accuracy"] * 1.05
    assert "accuracy" in q.degraded["main"]
    assert sum(b["n_labelled"] for b in q.buckets) == 400 and len(q.buckets) >= 2


class _Receiver(http.server.BaseHTTPRequestHandler):
    seen: list[tuple[dict[str, str], bytes]] = []
    fail_first = 0

    def do_POST(self) -> None:  # noqa: N802 - the stdlib's name
        body = self.rfile.read(int(self.headers["Content-Length"]))
        if _Receiver.fail_first > 0:
            _Receiver.fail_first -= 1
            self.send_response(503)
        else:
            _Receiver.seen.append(({k.lower(): v for k, v in self.headers.items()}, body))
            self.send_response(204)
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def receiver() -> Iterator[str]:
    _Receiver.seen, _Receiver.fail_first = [], 1
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Receiver)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/hook"
    server.shutdown()
    server.server_close()


def test_alerts_fire_notify_and_resolve(deployed: Any, receiver: str) -> None:
    model, _ = deployed
    _log(model, _data(300, 4, shift=1.5), start=NOW - 1800)  # drifted traffic
    _log(model, _data(300, 5), start=NOW + 3600)  # an hour later: like the training data
    engine = AlertEngine(Monitor(), backoff_seconds=0.01)
    store = engine.store
    store.put_rule(
        AlertRule(
            name="fraud-drift",
            deployment="fraud",
            metric="drift_share",
            op=">=",
            threshold=0.3,
            window="1h",
            min_samples=100,
            notifiers=[{"type": "webhook", "url": receiver, "secret": SECRET}, {"type": "log"}],
        )
    )
    store.put_rule(
        AlertRule(
            name="busy",
            deployment="fraud",
            metric="requests",
            op=">",
            threshold=1e6,
            window="1h",
            min_samples=10_000,
        )
    )
    first = {s.rule: s for s in engine.run_once(now=NOW)}
    assert first["fraud-drift"].state == "firing" and first["fraud-drift"].event is not None
    assert first["busy"].state == "insufficient"  # 300 requests < min_samples
    fired = first["fraud-drift"].event
    assert fired.state == "fired" and "x1" in fired.evidence["drifted_columns"]
    assert fired.deliveries[0] == {"type": "webhook", "ok": True, "status": 204, "attempts": 2}
    headers, body = _Receiver.seen[0]
    assert verify_signature(SECRET, body, headers["x-loopml-signature"])
    payload = orjson.loads(body)
    assert payload["event"] == "alert.fired" and payload["alert"]["rule"] == "fraud-drift"
    assert SECRET not in body.decode()  # the rule is sent without its notifiers' secrets
    gauges = generate_latest(engine.metrics_registry).decode()
    assert 'loopml_alert_firing{deployment="fraud",rule="fraud-drift"} 1.0' in gauges
    assert 'loopml_drift_score{column="x1",deployment="fraud"}' in gauges

    assert engine.run_once(now=NOW + 60)[1].event is None  # still firing: no second alert
    later = {s.rule: s for s in engine.run_once(now=NOW + 3600 + 1800)}
    assert later["fraud-drift"].state == "ok" and later["fraud-drift"].event.state == "resolved"
    assert [e.state for e in store.events(rule="fraud-drift")] == ["resolved", "fired"]
    assert orjson.loads(_Receiver.seen[-1][1])["event"] == "alert.resolved"
    assert (
        'loopml_alert_firing{deployment="fraud",rule="fraud-drift"} 0.0'
        in generate_latest(engine.metrics_registry).decode()
    )


def test_cooldown_holds_back_a_second_alert(deployed: Any) -> None:
    model, _ = deployed
    _log(model, _data(300, 6, shift=1.5), start=NOW - 1800)
    _log(model, _data(300, 7), start=NOW + 1800)
    _log(model, _data(300, 8, shift=1.5), start=NOW + 5400)
    engine = AlertEngine(Monitor())
    engine.store.put_rule(
        AlertRule(
            name="d",
            deployment="fraud",
            metric="drift:x1",
            op=">",
            threshold=0.3,
            window="1h",
            cooldown="6h",
        )
    )
    assert engine.run_once(now=NOW)[0].event.state == "fired"
    assert engine.run_once(now=NOW + 3600)[0].event.state == "resolved"
    held = engine.run_once(now=NOW + 7200)[0]
    assert held.event is None and held.state == "cooldown"  # bad again, too soon to re-alert


def test_bad_inputs(deployed: Any) -> None:
    with pytest.raises(InvalidInput, match="no successful predictions"):
        check("nowhere", "1h", now=NOW)
    with pytest.raises(InvalidInput, match="not a duration"):
        check("fraud", "soon")
    with pytest.raises(InvalidInput, match="exactly one"):
        log_outcome(None, 1)
    with pytest.raises(InvalidInput, match=r"outcomes\[1\]\.value"):
        log_outcomes([{"prediction_id": "a", "value": 1}, {"prediction_id": "b", "value": [1]}])
    with pytest.raises(InvalidInput, match="timestamp"):
        log_outcome("a", 1, timestamp="yesterday")
    assert loopml.monitoring.get_monitor().store.count_outcomes() == 0  # nothing half-written
    with pytest.raises(InvalidInput, match="unknown metric"):
        AlertRule(name="r", deployment="d", metric="accuracy", op=">", threshold=1)
    with pytest.raises(InvalidInput, match="op must be"):
        AlertRule(name="r", deployment="d", metric="error_rate", op="=>", threshold=1)
    with pytest.raises(InvalidInput, match="url"):
        AlertRule(
            name="r",
            deployment="d",
            metric="error_rate",
            op=">",
            threshold=1,
            notifiers=[{"type": "webhook", "url": "ftp://x"}],
        )
    with pytest.raises(NotFound):
        loopml.monitoring.get_monitor().store.get_rule("nope")


def test_a_version_without_lineage_needs_a_reference() -> None:
    train = _data(300, 11)
    with loopml.start_run() as run:
        model = LogisticRegression().fit(train[["x1", "x2"]], train["y"])
        loopml.sklearn.log_model(model, "model")
    loopml.register_model(f"runs:/{run.info.run_id}/model", "clf")
    _log(model, _data(200, 12), start=NOW - 600)
    with pytest.raises(InvalidInput, match="no training dataset in its lineage; pass reference="):
        check("fraud", "1h", now=NOW)
    report = check("fraud", "1h", now=NOW, reference=train)
    assert report.drifted_columns == [] and report.prediction is not None


def test_http_routes_and_the_cli(
    deployed: Any, server_factory: Any, loopml_cmd: list[str], tmp_path: Any
) -> None:
    import subprocess

    import httpx

    from loopml.config import get_settings

    model, _ = deployed
    frame = _data(300, 13, shift=1.0)
    ids = _log(model, frame, start=time.time() - 1200)
    settings = get_settings()
    server = server_factory(settings.resolved_database_uri, settings.resolved_artifact_uri)
    with httpx.Client(base_url=server.url + "/api/v1", timeout=60) as http:
        one = http.post("/outcomes", json={"prediction_id": ids[0], "value": int(frame.y[0])})
        assert one.status_code == 200 and one.json() == {"stored": 1}
        bulk = [{"prediction_id": p, "value": int(v)} for p, v in zip(ids, frame.y, strict=True)]
        assert http.post("/outcomes", json={"outcomes": bulk}).json() == {"stored": 300}
        bad = http.post("/outcomes", json={"outcomes": [{"prediction_id": "x"}]})
        assert bad.status_code == 400 and "value" in bad.json()["message"]
        drift = http.get("/monitoring/deployments/fraud/drift", params={"window": "1h"})
        assert drift.status_code == 200 and drift.json()["drifted_columns"] == ["x1"]
        q = http.get("/monitoring/deployments/fraud/quality", params={"window": "1h"}).json()
        assert q["variants"]["main"]["n_labelled"] == 300
        assert q["variants"]["main"]["accuracy"] == pytest.approx(
            accuracy_score(frame.y, model.predict(frame[["x1", "x2"]]))
        )
        traffic = http.get("/monitoring/deployments/fraud/traffic", params={"window": "1h"})
        main = traffic.json()["variants"]["main"]
        assert main["requests"] == 300 and main["errors"] == 0 and main["p50_ms"] == 2.0
        assert main["requests_per_s"] == pytest.approx(300 / 3600)
        recent = http.get("/monitoring/deployments/fraud/traffic", params={"window": "5m"})
        assert recent.json()["variants"] == {}  # the requests are 20 minutes old
        bad = http.get("/monitoring/deployments/fraud/traffic", params={"window": "soon"})
        assert bad.status_code == 400 and "window" in bad.json()["message"]
        html = http.get("/monitoring/deployments/fraud/report", params={"window": "1h"})
        assert html.status_code == 200 and 'class="dist-plot"' in html.text
        rule = {
            "deployment": "fraud",
            "metric": "drift_share",
            "op": ">",
            "threshold": 0.2,
            "notifiers": [{"type": "webhook", "url": "http://127.0.0.1:9/x", "secret": "k"}],
        }
        put = http.put("/monitoring/rules/r1", json=rule)
        assert put.status_code == 200 and "secret" not in put.text
        listed = http.get("/monitoring/rules").json()["rules"]
        assert [r["name"] for r in listed] == ["r1"]
        edited = {**listed[0], "threshold": 0.25}  # read, edit, write back without the secret
        assert http.put("/monitoring/rules/r1", json=edited).status_code == 200
        kept = loopml.monitoring.get_monitor().store.get_rule("r1")
        assert kept.threshold == 0.25 and kept.notifiers[0]["secret"] == "k"
        wrong = http.put("/monitoring/rules/r2", json={**rule, "metric": "nope"})
        assert wrong.status_code == 400 and "metric" in wrong.json()["message"]
        window = http.get("/monitoring/deployments/fraud/drift", params={"window": "soon"})
        assert window.status_code == 400
        missing = http.get("/monitoring/deployments/none/drift")
        assert missing.status_code == 400 and "no successful predictions" in missing.text
        assert http.delete("/monitoring/rules/r1").status_code == 200
        assert http.delete("/monitoring/rules/r1").status_code == 404

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([*loopml_cmd, "monitor", *args], capture_output=True, text=True)

    checked = run("check", "fraud", "--window", "1h", "--json")
    assert checked.returncode == 0, checked.stderr
    assert orjson.loads(checked.stdout)["drifted_columns"] == ["x1"]
    out = tmp_path / "report.html"
    made = run("report", "fraud", "--window", "1h", "--out", str(out))
    assert made.returncode == 0, made.stderr
    assert out.read_text().count('class="dist-plot"') == 2
    added = run(
        "rules",
        "add",
        "--name",
        "q",
        "--deployment",
        "fraud",
        "--metric",
        "quality:accuracy",
        "--op",
        "<",
        "--threshold",
        "0.99",
        "--window",
        "1h",
        "--min-samples",
        "50",
        "--log",
    )
    assert added.returncode == 0, added.stderr
    ran = run("run", "--json")
    assert ran.returncode == 0, ran.stderr
    assert orjson.loads(ran.stdout)[0]["state"] == "firing"
    alerts = run("alerts", "--json")
    assert [a["state"] for a in orjson.loads(alerts.stdout)] == ["fired"]
    for args, needle in [
        (("check", "fraud", "--window", "soon"), "not a duration"),
        (
            (
                "rules",
                "add",
                "--name",
                "x",
                "--deployment",
                "d",
                "--metric",
                "m",
                "--op",
                ">",
                "--threshold",
                "1",
            ),
            "unknown metric",
        ),
        (("rules", "delete", "nope"), "does not exist"),
        (("report", "fraud"), "--out"),
    ]:
        proc = run(*args)
        assert proc.returncode == 1, (args, proc.stdout, proc.stderr)
        assert needle in proc.stderr and "Traceback" not in proc.stderr


def test_a_model_version_is_checked_across_deployments_and_actions_run(deployed: Any) -> None:
    from loopml.monitoring import register_action

    model, _ = deployed
    _log(model, _data(300, 14, shift=1.0), start=NOW - 1800)
    with PredictionLog() as log:  # another deployment of the same version
        log.append(
            deployment="fraud-eu",
            variant="main",
            model_name="clf",
            model_version="1",
            inputs={"x1": 3.0, "x2": 0.0},
            outputs=[1],
            latency_ms=1.0,
            time=NOW - 60,
        )
    loopml.MlflowClient().set_registered_model_alias("clf", "prod", "1")
    for target in ("models:/clf/1", "models:/clf@prod"):
        report = check(target, "1h", now=NOW)
        assert report.subject["n_predictions"] == 301 and report.drifted_columns == ["x1"]
    with pytest.raises(InvalidInput, match="models:/<name>/<version>"):
        check("models:/clf/latest-ish", "1h", now=NOW)

    calls: list[tuple[str, str]] = []
    register_action("retrain", lambda event, rule: calls.append((rule.name, event.state)))
    engine = AlertEngine(Monitor())
    engine.store.put_rule(
        AlertRule(
            name="retrain-on-drift",
            deployment="fraud",
            metric="drift_share",
            op=">=",
            threshold=0.3,
            window="1h",
            notifiers=[
                {"type": "action", "name": "retrain"},
                {"type": "action", "name": "nobody"},
            ],
        )
    )
    event = engine.run_once(now=NOW)[0].event
    assert calls == [("retrain-on-drift", "fired")]
    assert event.deliveries[0] == {"type": "action", "name": "retrain", "ok": True}
    assert event.deliveries[1]["ok"] is False and "nobody" in event.deliveries[1]["error"]


def _log_rows(rows: list[dict[str, Any]]) -> list[str]:
    with PredictionLog() as log:
        return [
            log.append(
                **{
                    "deployment": "fraud",
                    "variant": "main",
                    "model_name": "m",
                    "model_version": "1",
                    "latency_ms": 1.0,
                    **r,
                }
            )
            for r in rows
        ]


def test_outcome_joins_by_id_and_by_unit_episode() -> None:
    # By prediction id, an outcome stamped before the window still joins (clock skew).
    ids = _log_rows(
        [{"inputs": {"x": i}, "outputs": [1], "time": NOW - 1800 + i} for i in range(30)]
    )
    log_outcomes([{"prediction_id": p, "value": True, "timestamp": NOW - 4000} for p in ids])
    q = quality("fraud", "1h", now=NOW)
    assert q.variants["main"]["n_labelled"] == 30
    assert q.variants["main"]["accuracy"] == 1.0  # True outcomes against 1 predictions
    # By unit id, a prediction takes its unit's first outcome at or after it.
    _log_rows(
        [
            {"inputs": {"x": 0}, "outputs": [1], "unit_id": "u", "time": NOW - 1000},
            {"inputs": {"x": 0}, "outputs": [0], "unit_id": "u", "time": NOW - 500},
        ]
    )
    log_outcome(unit_id="u", value=1, timestamp=NOW - 700)
    log_outcome(unit_id="u", value=0, timestamp=NOW - 100)
    q = quality("fraud", "1h", now=NOW)
    assert q.variants["main"]["n_labelled"] == 32 and q.variants["main"]["accuracy"] == 1.0


def test_probability_outputs_are_scores_and_estimates_need_a_calibration_period() -> None:
    rng = np.random.default_rng(3)
    p = rng.random(200)
    ids = _log_rows(
        [
            {"inputs": {"x": float(v)}, "outputs": [float(v)], "time": NOW - 1800 + i}
            for i, v in enumerate(p)
        ]
    )
    y = (rng.random(200) < p).astype(int)
    log_outcomes([{"prediction_id": i, "value": int(v)} for i, v in zip(ids, y, strict=True)])
    q = quality("fraud", "1h", now=NOW)  # nothing was logged in the 7 days before
    main = q.variants["main"]
    assert main["accuracy"] == pytest.approx(accuracy_score(y, (p >= 0.5).astype(int)))
    assert main["roc_auc"] is not None and q.estimated == {}


def test_a_variant_that_changed_version_is_checked_against_the_current_one(deployed: Any) -> None:
    model, _ = deployed
    _log(model, _data(200, 15), start=NOW - 3000)  # clf v1, like its training data
    frame = _data(300, 16, shift=3.0)
    with PredictionLog() as log:  # later, version 2 serves shifted traffic
        for i, row in enumerate(frame.to_dict("records")):
            log.append(
                deployment="fraud",
                variant="main",
                model_name="clf",
                model_version="2",
                inputs={"x1": row["x1"], "x2": row["x2"]},
                outputs=[1],
                latency_ms=1.0,
                time=NOW - 1500 + i,
            )
    report = check("fraud", "1h", now=NOW, reference=frame)  # v2's own data as reference
    assert report.subject["version"] == "2" and report.subject["n_predictions"] == 300
    assert report.drifted_columns == []


def test_transitions_are_recorded_once_and_times_are_utc() -> None:
    store = loopml.monitoring.get_monitor().store
    store.put_rule(
        AlertRule(name="r", deployment="d", metric="requests", op=">", threshold=1, window=600)
    )
    assert store.get_rule("r").window == "600s"
    assert store.add_event("r", "fired", 2.0, {}, transition=True) is not None
    assert store.add_event("r", "fired", 2.0, {}, transition=True) is None  # a racing twin
    assert store.add_event("r", "resolved", 0.0, {}, transition=True) is not None
    assert store.add_event("r", "resolved", 0.0, {}, transition=True) is None
    from datetime import datetime

    log_outcome("p-naive", 1, timestamp=datetime(2024, 7, 15, 12))
    log_outcome("p-text", 1, timestamp="2024-07-15T12:00:00")
    got = store.outcomes(prediction_ids=["p-naive", "p-text"])
    assert set(got["time"]) == {1721044800000}  # 12:00 UTC, whatever the local zone


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: check("fraud", "20000w"), "at most 3650d"),
        (lambda: log_outcome("a", 2**70), "out of range"),
        (
            lambda: AlertRule(
                name="r", deployment="d", metric="requests", op=">", threshold=10**400
            ),
            "finite",
        ),
        (
            lambda: AlertRule(
                name="r", deployment="d", metric="requests", op=">", threshold=1, variant=["a"]
            ),
            "variant",
        ),
        (
            lambda: AlertRule(
                name="r", deployment="d" * 300, metric="requests", op=">", threshold=1
            ),
            "deployment",
        ),
        (lambda: log_outcome("x" * 300, 1), "prediction_id"),
    ],
)
def test_more_bad_inputs(call: Any, message: str) -> None:
    with pytest.raises(InvalidInput, match=message):
        call()
