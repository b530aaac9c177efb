"""The /api/v1 HTTP API: shapes, OpenAPI, and bad requests answered with 4xx JSON."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from httpx import Client as HttpClient

from loopml.errors import ERRORS_BY_CODE, LoopmlError
from loopml.server import create_app


@pytest.fixture
def client(server_factory: Callable[..., Any]) -> Iterator[HttpClient]:
    """An HTTP client on a real loopml server on a loopback port."""
    with HttpClient(base_url=server_factory().url) as c:
        yield c


def _run(client: HttpClient) -> str:
    eid = client.post("/api/v1/experiments", json={"name": f"e-{uuid.uuid4().hex[:6]}"}).json()
    resp = client.post("/api/v1/runs", json={"experiment_id": eid["experiment_id"]})
    return str(resp.json()["run"]["info"]["run_id"])


def test_health_and_openapi(client: HttpClient) -> None:
    assert client.get("/health").json()["status"] == "ok"
    schema = client.get("/openapi.json").json()
    assert "/api/v1/runs/search" in schema["paths"]
    assert "/api/v1/experiments" in schema["paths"]


def test_round_trip(client: HttpClient) -> None:
    run_id = _run(client)
    body = {
        "batches": [
            {
                "run_id": run_id,
                "metrics": {"keys": ["m"], "values": ["NaN"], "timestamps": [1], "steps": [0]},
                "params": [{"key": "p", "value": "1"}],
                "tags": [{"key": "t", "value": "x"}],
            }
        ]
    }
    assert client.post("/api/v1/runs/batches", json=body).status_code == 200
    run = client.get(f"/api/v1/runs/{run_id}").json()["run"]
    assert run["data"]["metrics"] == {"m": "NaN"}
    assert run["data"]["params"] == {"p": "1"}
    hist = client.get(f"/api/v1/runs/{run_id}/metric-history", params={"key": "m"}).json()
    assert hist == {"key": "m", "values": ["NaN"], "timestamps": [1], "steps": [0]}


def _assert_error(resp: object, status: int, code: str, *words: str) -> None:
    assert resp.status_code == status, resp.text  # type: ignore[attr-defined]
    body = resp.json()  # type: ignore[attr-defined]
    assert set(body) == {"error_code", "message"}
    assert body["error_code"] == code
    for word in words:
        assert word in body["message"]


def test_missing_field_names_the_field(client: HttpClient) -> None:
    _assert_error(
        client.post("/api/v1/experiments", json={}), 400, "INVALID_PARAMETER_VALUE", "name"
    )


def test_wrong_type_names_the_field(client: HttpClient) -> None:
    resp = client.post(
        "/api/v1/runs/search", json={"experiment_ids": ["0"], "max_results": "many"}
    )
    _assert_error(resp, 400, "INVALID_PARAMETER_VALUE", "max_results")


def test_unknown_field_is_rejected(client: HttpClient) -> None:
    resp = client.post("/api/v1/experiments", json={"name": "x", "colour": "red"})
    _assert_error(resp, 400, "INVALID_PARAMETER_VALUE", "colour")


def test_malformed_json(client: HttpClient) -> None:
    resp = client.post(
        "/api/v1/experiments", content=b"{nope", headers={"content-type": "application/json"}
    )
    _assert_error(resp, 400, "INVALID_PARAMETER_VALUE")


def test_bad_metric_value(client: HttpClient) -> None:
    run_id = _run(client)
    body = {
        "batches": [
            {
                "run_id": run_id,
                "metrics": {"keys": ["m"], "values": ["lots"], "timestamps": [1], "steps": [0]},
            }
        ]
    }
    _assert_error(client.post("/api/v1/runs/batches", json=body), 400, "INVALID_PARAMETER_VALUE")


def test_metric_columns_must_line_up(client: HttpClient) -> None:
    run_id = _run(client)
    cols = {"keys": ["a", "b"], "values": [1.0], "timestamps": [1, 2], "steps": [0, 0]}
    resp = client.post(
        "/api/v1/runs/batches", json={"batches": [{"run_id": run_id, "metrics": cols}]}
    )
    _assert_error(resp, 400, "INVALID_PARAMETER_VALUE", "batches.0.metrics")


def test_bad_filter_names_position(client: HttpClient) -> None:
    resp = client.post(
        "/api/v1/runs/search", json={"experiment_ids": ["0"], "filter": "metrics.a >"}
    )
    _assert_error(resp, 400, "INVALID_PARAMETER_VALUE", "position")


def test_not_found_and_conflict(client: HttpClient) -> None:
    _assert_error(client.get(f"/api/v1/runs/{uuid.uuid4().hex}"), 404, "RUN_DOES_NOT_EXIST")
    _assert_error(client.get("/api/v1/experiments/424242"), 404, "EXPERIMENT_DOES_NOT_EXIST")
    client.post("/api/v1/experiments", json={"name": "twice"})
    _assert_error(
        client.post("/api/v1/experiments", json={"name": "twice"}), 409, "RESOURCE_ALREADY_EXISTS"
    )
    _assert_error(client.get("/api/v1/nothing"), 404, "ENDPOINT_NOT_FOUND")
    _assert_error(client.put("/health"), 405, "METHOD_NOT_ALLOWED")


def test_invalid_state(client: HttpClient) -> None:
    run_id = _run(client)
    client.patch(f"/api/v1/runs/{run_id}", json={"status": "FINISHED"})
    cols = {"keys": ["m"], "values": [1], "timestamps": [1], "steps": [0]}
    body = {"batches": [{"run_id": run_id, "metrics": cols}]}
    _assert_error(client.post("/api/v1/runs/batches", json=body), 409, "INVALID_STATE", "FINISHED")


def test_unknown_workspace(client: HttpClient) -> None:
    resp = client.post(
        "/api/v1/experiments", json={"name": "x"}, headers={"X-Loopml-Workspace": "ghost"}
    )
    _assert_error(resp, 404, "RESOURCE_DOES_NOT_EXIST", "ghost")


def test_artifact_upload_download(client: HttpClient) -> None:
    run_id = _run(client)
    payload = b"x" * 3_000_000
    url = f"/api/v1/runs/{run_id}/artifacts/big/file.bin"
    assert client.put(url, content=payload).status_code == 204
    assert client.get(url).content == payload
    listing = client.get(f"/api/v1/runs/{run_id}/artifacts", params={"path": "big"}).json()
    assert listing["files"][0]["file_size"] == len(payload)
    _assert_error(
        client.get(f"/api/v1/runs/{run_id}/artifacts/none.txt"), 404, "ARTIFACT_DOES_NOT_EXIST"
    )
    _assert_error(
        client.put(f"/api/v1/runs/{run_id}/artifacts/..%2F..%2Fx", content=b"1"),
        400,
        "INVALID_PARAMETER_VALUE",
    )


@pytest.mark.parametrize("cls", sorted(set(ERRORS_BY_CODE.values()), key=lambda c: c.__name__))
def test_every_error_survives_the_wire(
    tmp_path: Path, cls: type[LoopmlError], server_factory: Callable[..., Any]
) -> None:
    app = create_app(database_uri=f"sqlite:///{tmp_path / 'e.db'}", artifact_uri=str(tmp_path))

    @app.get("/boom")
    def boom() -> None:
        raise cls("it broke on purpose")

    from loopml.tracking import RestTrackingStore

    with HttpClient(base_url=server_factory(app=app).url) as c:
        resp = c.get("/boom")
        assert resp.status_code == cls.http_status
        rebuilt = RestTrackingStore(str(c.base_url), _client=c)._error(resp)
        assert type(rebuilt) is cls
        assert str(rebuilt) == "it broke on purpose"
