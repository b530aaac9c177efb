"""Seed 004's ``ABTestRouter`` (hash the user id, route to model A or B, count requests) and seed
001's ``CanaryDeployment`` (traffic split, ``gradual_rollout``, rollback), as a loopml deployment.

A deployment names model versions with weights and roles; the inference server routes each
request by a sticky hash of its ``user_id``, logs every prediction, and drives a gradual rollout
step by step, rolling it back by itself if the canary breaks a guardrail.
"""

from __future__ import annotations

import time

import httpx
from _util import FEATURES, churn_frame, serve_in_background
from sklearn.ensemble import RandomForestClassifier
from sklearn.linear_model import LogisticRegression

import loopml
from loopml.abtest import assign
from loopml.monitoring import summarize
from loopml.serving import Guardrails, ServeOptions, VariantSpec, build_app, get_deployment_store

# Two versions of one model: 1 is in production, 2 is the challenger.
frame = churn_frame(1_500, seed=6)
for estimator in (LogisticRegression(max_iter=500), RandomForestClassifier(n_estimators=30)):
    with loopml.start_run(run_name=type(estimator).__name__):
        estimator.fit(frame[FEATURES], frame["churned"])
        loopml.log_model(
            estimator,
            "model",
            registered_model_name="churn-model",
            input_example=frame[FEATURES][:5],
        )

store = get_deployment_store()
store.create_deployment(
    "churn",
    [
        VariantSpec("model_a", "models:/churn-model/1", 50, "primary"),
        VariantSpec("model_b", "models:/churn-model/2", 50, "canary"),
    ],
    unit_key="user_id",
)
requests = frame[FEATURES].to_dict("records")


def send(http: httpx.Client, users: range) -> dict[str, str]:
    """One prediction per user; returns which variant answered each."""
    served = {}
    for i in users:
        body = {"user_id": f"user-{i}", **requests[i % len(requests)]}
        served[body["user_id"]] = http.post("/predict", json=body).json()["variant"]
    return served


# `loopml serve churn` follows the deployment; here the same app runs in this process.
with serve_in_background(build_app(ServeOptions("churn", follow_interval=0.2))) as url:
    with httpx.Client(base_url=url) as http:
        # The A/B router: a user always lands on the same model, in every server process.
        first, second = send(http, range(200)), send(http, range(200))
        print(f"sticky routing: {first == second}")
        weights = [("model_a", 50), ("model_b", 50)]
        print(
            f"router agrees with loopml.abtest.assign: "
            f"{all(assign('churn', u, weights) == v for u, v in first.items())}"
        )

        # Gradual rollout of version 2 from a deployment serving version 1 alone.
        store.update_deployment(
            "churn", variants=[VariantSpec("model_a", "models:/churn-model/1", 100, "primary")]
        )
        store.start_rollout(
            "churn",
            "models:/churn-model/2",
            steps=(10, 50, 100),
            interval_seconds=0.5,  # minutes or hours in production
            guardrails=Guardrails(max_error_rate=0.01, min_requests=10),
        )
        deadline, users = time.monotonic() + 20, iter(range(10_000, 1_000_000, 50))
        while store.get_deployment("churn").rollout.status == "running":
            if time.monotonic() > deadline:
                raise SystemExit("the rollout did not finish in time")
            start = next(users)
            send(http, range(start, start + 50))

stats = summarize(deployment="churn")
print("requests per variant:", {name: s["requests"] for name, s in sorted(stats.items())})
for event in store.list_events("churn"):
    if event.kind.startswith("rollout"):
        canary = event.detail.get("stats") or {}  # what the decision was taken on
        seen = f" after {canary['requests']} canary requests" if canary else ""
        print(f"  {event.kind:<18} -> {event.detail['percent']:.0f}%{seen}")
dep = store.get_deployment("churn")
print(f"rollout {dep.rollout.status}: primary is now {dep.primary.model_uri}")

# Seed 001's ModelRegistry.rollback: back to the variants before the last change.
dep = store.rollback("churn")
print(f"after rollback: primary is {dep.primary.model_uri}")
