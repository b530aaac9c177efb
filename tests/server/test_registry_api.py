"""The registry's /api/v1 routes: shapes, and bad requests answered with 4xx JSON naming the
field, never a 500."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from httpx import Client as HttpClient


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


def _model_with_versions(client: HttpClient, n: int = 2) -> tuple[str, str]:
    name = f"m-{uuid.uuid4().hex[:6]}"
    eid = client.post("/api/v1/experiments", json={"name": name}).json()["experiment_id"]
    run_id = client.post("/api/v1/runs", json={"experiment_id": eid}).json()["run"]["info"][
        "run_id"
    ]
    assert client.post("/api/v1/models", json={"name": name}).status_code == 200
    for _ in range(n):
        resp = client.post(
            f"/api/v1/models/{name}/versions",
            json={"source": f"runs:/{run_id}/model", "run_id": run_id},
        )
        assert resp.status_code == 200, resp.text
    return name, run_id


def test_alias_round_trip_and_openapi(client: HttpClient) -> None:
    name, _ = _model_with_versions(client)
    resp = client.put(
        f"/api/v1/models/{name}/aliases/production", json={"version": "2", "reason": "better"}
    )
    assert resp.json()["event"]["to_version"] == "2"
    got = client.get(f"/api/v1/models/{name}/aliases/production").json()["model_version"]
    assert got["version"] == "2" and got["aliases"] == ["production"]
    model = client.get(f"/api/v1/models/{name}").json()["registered_model"]
    assert model["aliases"] == {"production": "2"}
    history = client.get(f"/api/v1/models/{name}/history", params={"alias": "production"})
    assert [e["reason"] for e in history.json()["events"]] == ["better"]
    paths = client.get("/openapi.json").json()["paths"]
    assert "/api/v1/models/{name}/aliases/{alias}/rollback" in paths


def test_bad_bodies_name_the_field(client: HttpClient) -> None:
    _error(client.post("/api/v1/models", json={}), 400, "INVALID_PARAMETER_VALUE", "name")
    _error(
        client.post("/api/v1/models", json={"name": "x", "colour": "red"}),
        400,
        "INVALID_PARAMETER_VALUE",
        "colour",
    )
    _error(
        client.post("/api/v1/models", json={"name": "a@b"}), 400, "INVALID_PARAMETER_VALUE", "'@'"
    )
    _error(
        client.post("/api/v1/models/search", json={"max_results": "many"}),
        400,
        "INVALID_PARAMETER_VALUE",
        "max_results",
    )
    _error(
        client.post("/api/v1/models/search", json={"filter": "colour = 'red'"}),
        400,
        "INVALID_PARAMETER_VALUE",
        "colour",
    )
    _error(
        client.post("/api/v1/models/search", json={"page_token": "zz"}),
        400,
        "INVALID_PARAMETER_VALUE",
        "page_token",
    )


def test_missing_and_conflicting_objects(client: HttpClient) -> None:
    name, run_id = _model_with_versions(client, 1)
    _error(client.get("/api/v1/models/nope"), 404, "RESOURCE_DOES_NOT_EXIST", "nope")
    _error(client.post("/api/v1/models", json={"name": name}), 409, "RESOURCE_ALREADY_EXISTS")
    _error(client.get(f"/api/v1/models/{name}/versions/9"), 404, "RESOURCE_DOES_NOT_EXIST")
    _error(
        client.get(f"/api/v1/models/{name}/versions/abc"), 400, "INVALID_PARAMETER_VALUE", "abc"
    )
    _error(
        client.put(f"/api/v1/models/{name}/aliases/production", json={"version": "7"}),
        404,
        "RESOURCE_DOES_NOT_EXIST",
    )
    _error(
        client.put(f"/api/v1/models/{name}/aliases/latest", json={"version": "1"}),
        400,
        "INVALID_PARAMETER_VALUE",
        "reserved",
    )
    client.put(f"/api/v1/models/{name}/aliases/production", json={"version": "1"})
    _error(
        client.post(f"/api/v1/models/{name}/aliases/production/rollback", json={}),
        409,
        "INVALID_STATE",
        "no earlier version",
    )
    _error(
        client.get(f"/api/v1/models/{name}/aliases/production/at", params={"timestamp": "noon"}),
        400,
        "INVALID_PARAMETER_VALUE",
        "timestamp",
    )
    _error(
        client.post(
            f"/api/v1/models/{name}/versions/1/stage", json={"stage": "Prod", "user_id": "u"}
        ),
        400,
        "INVALID_PARAMETER_VALUE",
        "Prod",
    )
    _error(
        client.post(
            f"/api/v1/models/{name}/versions",
            json={"source": "runs:/0123456789abcdef0123456789abcdef/model"},
        ),
        404,
        "RESOURCE_DOES_NOT_EXIST",
    )
    _error(
        client.get(f"/api/v1/models/{name}/history", params={"kinds": "everything"}),
        400,
        "INVALID_PARAMETER_VALUE",
        "kinds",
    )


def test_server_confines_version_files(client: HttpClient, tmp_path: Any) -> None:
    name, _ = _model_with_versions(client, 1)
    secret = tmp_path / "secret.txt"
    secret.write_text("server-side file")
    # Nothing outside the server's runs and uploads: not a path, not a traversal out of the
    # artifact root (the server's root is tmp_path/server0/artifacts).
    for source in (str(tmp_path), f"{tmp_path}/server0/artifacts/../../../../etc", "s3://b/k"):
        _error(
            client.post(f"/api/v1/models/{name}/versions", json={"source": source}),
            400,
            "INVALID_PARAMETER_VALUE",
            "registers only",
        )
    _error(
        client.put(f"/api/v1/models/{name}/versions/1/artifacts/x.bin", content=b"x"),
        409,
        "INVALID_STATE",
        "takes no uploads",
    )
    pending = client.post(
        f"/api/v1/models/{name}/versions",
        json={"source": "registry:", "status": "PENDING_REGISTRATION"},
    ).json()["model_version"]["version"]
    resp = client.put(f"/api/v1/models/{name}/versions/{pending}/artifacts/a/b.bin", content=b"x")
    assert resp.status_code == 204, resp.text
    resp = client.get(f"/api/v1/models/{name}/versions/{pending}/artifacts/a/b.bin")
    assert resp.content == b"x"
    _error(
        client.get(f"/api/v1/models/{name}/versions/{pending}/artifacts/..%2F..%2Fsecret.txt"),
        400,
        "INVALID_PARAMETER_VALUE",
    )


def test_rename_with_a_bad_description_changes_nothing(client: HttpClient) -> None:
    name, _ = _model_with_versions(client, 1)
    resp = client.patch(
        f"/api/v1/models/{name}", json={"name": "renamed", "description": "x" * 70_000}
    )
    _error(resp, 400, "INVALID_PARAMETER_VALUE", "description")
    assert client.get(f"/api/v1/models/{name}").status_code == 200
    assert client.get("/api/v1/models/renamed").status_code == 404


def test_webhook_routes_reject_bad_input(client: HttpClient) -> None:
    _error(
        client.post("/api/v1/webhooks", json={"url": "http://[::1/", "secret": "s" * 16}),
        400,
        "INVALID_PARAMETER_VALUE",
        "url",
    )
    _error(
        client.post("/api/v1/webhooks", json={"url": "ftp://x", "secret": "s" * 16}),
        400,
        "INVALID_PARAMETER_VALUE",
        "url",
    )
    _error(
        client.post(
            "/api/v1/webhooks",
            json={"url": "http://127.0.0.1:9/x", "secret": "s" * 16, "events": ["bogus"]},
        ),
        400,
        "INVALID_PARAMETER_VALUE",
        "events",
    )
    _error(
        client.post("/api/v1/webhooks", json={"url": "http://127.0.0.1:9/x"}),
        400,
        "INVALID_PARAMETER_VALUE",
        "secret",
    )
    hook = client.post(
        "/api/v1/webhooks", json={"url": "http://127.0.0.1:9/x", "secret": "s" * 16}
    ).json()["webhook"]
    assert "secret" not in hook
    _error(client.delete("/api/v1/webhooks/nope"), 404, "RESOURCE_DOES_NOT_EXIST")
    assert client.delete(f"/api/v1/webhooks/{hook['id']}").status_code == 200
