"""``/api/v1/datasets`` and ``/api/v1/dataset-blobs`` over real HTTP: answers and bad input."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from loopml.data import encode_blobs
from loopml.data._source import hash_bytes


@pytest.fixture
def api(server_factory: Any) -> httpx.Client:
    with httpx.Client(base_url=server_factory().url + "/api/v1", timeout=30) as client:
        yield client


def _upload(api: httpx.Client, payloads: list[bytes]) -> list[str]:
    blobs = [(hash_bytes(p), p) for p in payloads]
    assert api.post("/dataset-blobs", content=encode_blobs(blobs)).status_code == 204
    return [d for d, _ in blobs]


def test_version_lifecycle_over_http(api: httpx.Client) -> None:
    digests = _upload(api, [b"one", b"two"])
    missing = api.post("/dataset-blobs/missing", json={"digests": [*digests, "f" * 64]})
    assert missing.json() == {"missing": ["f" * 64]}
    files = [
        {"path": "a.txt", "size": 3, "digest": digests[0]},
        {"path": "dir/b.txt", "size": 3, "digest": digests[1]},
    ]
    created = api.post("/datasets/web/versions", json={"files": files, "chunk_size": 1024})
    assert created.status_code == 200 and created.json()["created"] is True
    assert created.json()["version"]["ref"] == "web@1"
    again = api.post("/datasets/web/versions", json={"files": files, "chunk_size": 1024})
    assert again.json()["created"] is False
    assert api.put("/datasets/web/aliases/prod", json={"version": 1}).status_code == 200
    got = api.get("/datasets/web/versions/prod").json()["version"]
    assert got["version"] == 1 and got["aliases"] == ["prod"]
    listed = api.get("/datasets/web/versions/1/files").json()["files"]
    assert [f["path"] for f in listed] == ["a.txt", "dir/b.txt"]
    fetched = api.post("/dataset-blobs/fetch", json={"digests": digests})
    from loopml.data import decode_blobs

    assert decode_blobs(fetched.content) == [(digests[0], b"one"), (digests[1], b"two")]
    diff = api.get("/datasets/web/diff", params={"a": "1", "b": "latest"}).json()["diff"]
    assert diff["same_content"] is True
    assert api.get("/datasets").json()["datasets"][0]["name"] == "web"
    assert api.delete("/datasets/web/versions/1").status_code == 200
    report = api.post("/dataset-blobs/gc", json={"grace_seconds": 0}).json()["report"]
    assert report["deleted_blobs"] == 2


@pytest.mark.parametrize(
    ("method", "path", "body", "status", "needle"),
    [
        ("GET", "/datasets/bad%20name", None, 400, "dataset name"),
        ("GET", "/datasets/nope", None, 404, "does not exist"),
        ("POST", "/datasets/x/versions", {"files": [], "chunk_size": 1}, 400, "files"),
        ("POST", "/datasets/x/versions", {"files": [{"path": "a"}], "chunk_size": 1}, 400, "size"),
        (
            "POST",
            "/datasets/x/versions",
            {"files": [{"path": "a", "size": 1, "digest": "zz"}], "chunk_size": 1},
            400,
            "digest",
        ),
        (
            "POST",
            "/datasets/x/versions",
            {"files": [{"path": "a", "size": 1, "digest": "a" * 64}], "chunk_size": 10},
            409,
            "not stored",
        ),
        (
            "POST",
            "/datasets/x/versions",
            {"files": [{"path": "/etc/passwd", "size": 1, "digest": "a" * 64}], "chunk_size": 9},
            400,
            "relative",
        ),
        ("POST", "/datasets/x/versions", {"files": [], "chunk_size": 1, "what": 1}, 400, "what"),
        ("POST", "/dataset-blobs/missing", {"digests": ["nothex"]}, 400, "digest"),
        ("POST", "/dataset-blobs/missing", {"digests": "a"}, 400, "digests"),
        ("POST", "/dataset-blobs/fetch", {"digests": ["b" * 64]}, 409, "missing"),
        ("POST", "/dataset-blobs/gc", {"grace_seconds": -1}, 400, "grace"),
        ("PUT", "/datasets/x/aliases/1", {"version": 1}, 400, "alias"),
        ("GET", "/datasets/x/versions/0", None, 400, "version"),
    ],
)
def test_bad_requests_get_4xx_naming_the_problem(
    api: httpx.Client, method: str, path: str, body: Any, status: int, needle: str
) -> None:
    if path.startswith("/datasets/x/versions/0") or path.startswith("/datasets/x/aliases"):
        digest = _upload(api, [b"x"])[0]
        files = [{"path": "x", "size": 1, "digest": digest}]
        api.post("/datasets/x/versions", json={"files": files, "chunk_size": 8})
    resp = api.request(method, path, json=body)
    assert resp.status_code == status, resp.text
    assert needle in resp.json()["message"].lower()


def test_blob_batches_are_verified(api: httpx.Client) -> None:
    good = hash_bytes(b"payload")
    lying = encode_blobs([(good, b"other payload")])
    resp = api.post("/dataset-blobs", content=lying)
    assert resp.status_code == 409 and "does not match" in resp.json()["message"]
    truncated = encode_blobs([(good, b"payload")])[:-3]
    resp = api.post("/dataset-blobs", content=truncated)
    assert resp.status_code == 400 and "truncated" in resp.json()["message"]
    assert api.post("/dataset-blobs/missing", json={"digests": [good]}).json()["missing"] == [good]
