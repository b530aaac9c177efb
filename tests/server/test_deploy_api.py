"""The deployments' /api/v1 routes: shapes, workspaces, and bad requests answered with 4xx JSON
naming the field, never a 500."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from httpx import Client as HttpClient

API = "/api/v1/deployments"
BODY = {
    "name": "recs",
    "variants": [
        {"name": "main", "model_uri": "models:/m/1", "weight": 90},
        {"name": "b", "model_uri": "models:/m/2", "weight": 10, "role": "canary"},
    ],
}


@pytest.fixture
def client(server_factory: Callable[..., Any]) -> Iterator[HttpClient]:
    """An HTTP client on a real loopml server on a loopback port."""
    with HttpClient(base_url=server_factory().url) as c:
        yield c


def _error(resp: Any, status: int, code: str, *words: str) -> None:
    assert resp.status_code == status, resp.text
    body = resp.json()
    assert set(body) == {"error_code", "message"}
    assert body["error_code"] == code
    for word in words:
        assert word in body["message"], body["message"]


def _bad(resp: Any, *words: str) -> None:
    _error(resp, 400, "INVALID_PARAMETER_VALUE", *words)


def test_round_trip_and_openapi(client: HttpClient) -> None:
    resp = client.post(API, json={**BODY, "unit_key": "user_id", "user_id": "alice"})
    assert resp.status_code == 200, resp.text
    dep = resp.json()["deployment"]
    assert dep["revision"] == 1 and dep["unit_key"] == "user_id"
    assert dep["variants"][1] == {
        "name": "b",
        "model_uri": "models:/m/2",
        "weight": 10.0,
        "role": "canary",
    }
    assert client.get(f"{API}/recs").json() == {"deployment": dep}
    assert client.get(API).json() == {"deployments": [dep]}

    dep = client.post(f"{API}/recs/traffic", json={"weights": {"b": 30}}).json()["deployment"]
    assert [v["weight"] for v in dep["variants"]] == [90.0, 30.0]
    dep = client.patch(f"{API}/recs", json={"description": "d"}).json()["deployment"]
    assert (dep["description"], dep["revision"]) == ("d", 3)
    dep = client.post(f"{API}/recs/rollback", json={}).json()["deployment"]
    assert [v["weight"] for v in dep["variants"]] == [90.0, 10.0]
    body = {"target_uri": "models:/m/3", "steps": [50, 100], "guardrails": {"min_requests": 1}}
    dep = client.post(f"{API}/recs/rollout", json=body).json()["deployment"]
    assert dep["rollout"]["status"] == "running"
    assert dep["rollout"]["guardrails"]["min_requests"] == 1
    assert dep["rollout"]["interval_seconds"] == 600.0  # the store's default
    decide = {"decision": "advance", "expected_revision": dep["revision"], "stats": {"p99": 3}}
    dep = client.post(f"{API}/recs/rollout/decide", json=decide).json()["deployment"]
    assert dep["rollout"]["status"] == "succeeded"
    assert dep["variants"] == [
        {"name": "main", "model_uri": "models:/m/3", "weight": 100.0, "role": "primary"}
    ]
    events = client.get(f"{API}/recs/events").json()["events"]
    assert [(e["revision"], e["kind"]) for e in events] == [
        (1, "created"),
        (2, "traffic"),
        (3, "updated"),
        (4, "rolled_back"),
        (5, "rollout_started"),
        (6, "rollout_succeeded"),
    ]
    assert events[0]["user_id"] == "alice"
    assert events[-1]["detail"]["stats"] == {"p99": 3}

    assert client.delete(f"{API}/recs").json() == {}
    _error(client.get(f"{API}/recs"), 404, "RESOURCE_DOES_NOT_EXIST", "recs")
    paths = client.get("/openapi.json").json()["paths"]
    assert "/api/v1/deployments/{name}/rollout/decide" in paths


def test_promote_and_conflicts(client: HttpClient) -> None:
    assert client.post(API, json=BODY).status_code == 200
    _error(client.post(API, json=BODY), 409, "RESOURCE_ALREADY_EXISTS", "recs")
    _error(client.post(f"{API}/recs/rollback", json={}), 409, "INVALID_STATE", "roll back")
    _error(
        client.post(f"{API}/recs/promote", json={"variant": "main"}),
        409,
        "INVALID_STATE",
        "primary",
    )
    dep = client.post(f"{API}/recs/promote", json={"variant": "b"}).json()["deployment"]
    assert [(v["name"], v["model_uri"]) for v in dep["variants"]] == [("main", "models:/m/2")]
    dep = client.post(f"{API}/recs/rollout", json={"target_uri": "models:/m/3"}).json()
    revision = dep["deployment"]["revision"]
    _error(
        client.post(f"{API}/recs/traffic", json={"weights": {"main": 50}}),
        409,
        "INVALID_STATE",
        "rollout",
    )
    stale = {"decision": "rollback", "expected_revision": revision - 1}
    _error(client.post(f"{API}/recs/rollout/decide", json=stale), 409, "INVALID_STATE", "revision")
    _error(client.get(f"{API}/nope/events"), 404, "RESOURCE_DOES_NOT_EXIST", "nope")


def test_workspace_header_scopes_requests(client: HttpClient) -> None:
    assert client.post(API, json=BODY).status_code == 200
    elsewhere = {"X-Loopml-Workspace": "elsewhere"}
    assert client.get(API, headers=elsewhere).json() == {"deployments": []}
    _error(client.get(f"{API}/recs", headers=elsewhere), 404, "RESOURCE_DOES_NOT_EXIST")
    _error(client.post(API, json=BODY, headers=elsewhere), 404, "RESOURCE_DOES_NOT_EXIST", "work")


def _variant(**changes: Any) -> dict[str, Any]:
    return {**BODY, "variants": [{"name": "main", "model_uri": "models:/m/1", **changes}]}


def test_bad_bodies_name_the_field(client: HttpClient) -> None:
    _bad(client.post(API, json={"name": "recs"}), "variants")
    _bad(client.post(API, json={"variants": BODY["variants"]}), "name")
    _bad(client.post(API, json={**BODY, "colour": "red"}), "colour")
    _bad(client.post(API, content=b"not json", headers={"Content-Type": "application/json"}))
    _bad(client.post(API, content=b"[1, 2]", headers={"Content-Type": "application/json"}))
    _bad(client.post(API, json={**BODY, "name": "a b"}), "deployment name")
    _bad(client.post(API, json={**BODY, "variants": "main"}), "variants")
    _bad(client.post(API, json={**BODY, "variants": []}), "primary")
    _bad(client.post(API, json=_variant(weight="ten")), "variants.0.weight")
    _bad(client.post(API, json=_variant(weight=True)), "variants.0.weight")
    _bad(client.post(API, json=_variant(weight=150)), "weight")
    _bad(client.post(API, json=_variant(role="boss")), "role")
    _bad(client.post(API, json=_variant(model_uri="")), "model_uri")
    _bad(client.post(API, json=_variant(extra=1)), "extra")
    _bad(client.post(API, json={**BODY, "batching": {"max_batch_size": 0}}), "max_batch_size")
    _bad(client.post(API, json={**BODY, "batching": {"max_batch_size": "8"}}), "max_batch_size")
    _bad(client.post(API, json={**BODY, "unit_key": ""}), "unit_key")
    dup = {**BODY, "variants": [BODY["variants"][0], BODY["variants"][0]]}  # type: ignore[index]
    _bad(client.post(API, json=dup), "unique")
    assert client.get(API).json() == {"deployments": []}

    assert client.post(API, json=BODY).status_code == 200
    _bad(client.patch(f"{API}/recs", json={"unit_key": 7}), "unit_key")
    _bad(client.patch(f"{API}/recs", json={"revision": 7}), "revision")
    _bad(client.post(f"{API}/recs/traffic", json={}), "weights")
    _bad(client.post(f"{API}/recs/traffic", json={"weights": {"b": True}}), "weights.b")
    _bad(client.post(f"{API}/recs/traffic", json={"weights": {"ghost": 5}}), "ghost")
    _bad(client.post(f"{API}/recs/traffic", json={"weights": [5]}), "weights")
    _bad(client.post(f"{API}/recs/promote", json={}), "variant")
    _bad(
        client.post(
            f"{API}/recs/rollback", content=b"{", headers={"Content-Type": "application/json"}
        )
    )
    rollout = f"{API}/recs/rollout"
    _bad(client.post(rollout, json={}), "target_uri")
    _bad(client.post(rollout, json={"target_uri": "m", "steps": "5,100"}), "steps")
    _bad(client.post(rollout, json={"target_uri": "m", "steps": [50, 25, 100]}), "increase")
    _bad(client.post(rollout, json={"target_uri": "m", "steps": [5, 50]}), "100")
    _bad(client.post(rollout, json={"target_uri": "m", "interval_seconds": "soon"}), "interval")
    for rails, word in [
        ({"max_error_rate": 2}, "max_error_rate"),
        ({"max_error_rate": "high"}, "max_error_rate"),
        ({"min_requests": 2.5}, "min_requests"),
        ({"rules": ["latency < 5"]}, "rule"),
        ({"rules": "p99_ms < 5"}, "rules"),
        ({"colour": "red"}, "colour"),
    ]:
        _bad(client.post(rollout, json={"target_uri": "m", "guardrails": rails}), word)
    decide = f"{API}/recs/rollout/decide"
    _bad(client.post(decide, json={"decision": "maybe", "expected_revision": 1}), "decision")
    _bad(client.post(decide, json={"decision": "advance"}), "expected_revision")
    _bad(
        client.post(decide, json={"decision": "advance", "expected_revision": "1"}),
        "expected_revision",
    )
    _bad(
        client.post(decide, json={"decision": "advance", "expected_revision": 1, "stats": []}),
        "stats",
    )
    dep = client.get(f"{API}/recs").json()["deployment"]
    assert dep["revision"] == 1 and dep["rollout"] is None
