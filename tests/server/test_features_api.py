"""``/api/v1/features`` on a real server: online values in Feast's shape, push, materialize,
the catalog, and bad bodies answered with 4xx JSON naming the field."""

from __future__ import annotations

import datetime as dt
from typing import Any

import httpx
import pandas as pd
import pytest

from loopml.features import FeatureStore

NOW = pd.Timestamp.now(tz="UTC").floor("s")


@pytest.fixture
def served(
    server_factory: Any, driver_repo: dict[str, Any], driver_rows: Any
) -> tuple[str, FeatureStore]:
    driver_rows(start=NOW - pd.Timedelta(hours=4)).to_parquet(driver_repo["path"])
    driver_repo["view"].ttl = dt.timedelta(days=1)
    server = server_factory()
    store = FeatureStore(database_uri=server.app_database_uri, registry_ttl_seconds=0)
    store.apply([driver_repo["driver"], driver_repo["view"]])
    yield server.url, store
    store.close()


def test_online_route_answers_like_feasts_server(served: tuple[str, FeatureStore]) -> None:
    url, store = served
    with httpx.Client(base_url=url) as http:
        r = http.post(
            "/api/v1/features/materialize",
            json={"start": (NOW - pd.Timedelta(days=1)).isoformat(), "end": NOW.isoformat()},
        )
        assert r.status_code == 200, r.text
        assert r.json()["results"][0]["rows"] == 5
        r = http.post(
            "/api/v1/features/online",
            json={
                "features": ["driver_stats:trips", "driver_stats:city"],
                "entities": {"driver_id": [1001, 7]},
            },
        )
        assert r.status_code == 200, r.text
        body = r.json()
        assert body["metadata"]["feature_names"] == ["driver_id", "trips", "city"]
        assert body["results"][0]["values"] == [1001, 7]
        assert body["results"][1] == {
            "values": [103, None],
            "statuses": ["PRESENT", "NOT_FOUND"],
            "event_timestamps": [
                (NOW - pd.Timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%SZ"),
                "1970-01-01T00:00:00Z",
            ],
        }
        r = http.post(
            "/api/v1/features/push",
            json={
                "feature_view": "driver_stats",
                "rows": {
                    "driver_id": [7],
                    "event_timestamp": [NOW.isoformat()],
                    "conv_rate": [1.5],
                    "trips": [70],
                    "city": ["x"],
                },
            },
        )
        assert r.status_code == 200 and r.json() == {"rows": 1}, r.text
        r = http.post(
            "/api/v1/features/online",
            json={
                "features": ["driver_stats:trips"],
                "entities": {"driver_id": [7]},
                "full_feature_names": True,
            },
        )
        assert r.json()["metadata"]["feature_names"] == ["driver_id", "driver_stats__trips"]
        assert r.json()["results"][1]["values"] == [70]
        views = http.get("/api/v1/features/views").json()["views"]
        assert [v["name"] for v in views] == ["driver_stats"]
        one = http.get("/api/v1/features/views/driver_stats").json()
        assert one["online_rows"] == 6 and one["stats"]["features"]["trips"]["max"] == 403
        assert [v["version"] for v in one["versions"]] == [1]
        assert http.get("/api/v1/features/entities").json()["entities"][0]["name"] == "driver"


@pytest.mark.parametrize(
    ("path", "body", "status", "needle"),
    [
        (
            "/api/v1/features/online",
            {"features": ["driver_stats:nope"], "entities": {"driver_id": [1]}},
            400,
            "driver_stats:nope",
        ),
        (
            "/api/v1/features/online",
            {"features": "driver_stats:trips", "entities": {"driver_id": [1]}},
            400,
            "'features'",
        ),
        ("/api/v1/features/online", {"features": ["driver_stats:trips"]}, 400, "'entities'"),
        (
            "/api/v1/features/online",
            {"features": ["driver_stats:trips"], "entities": {"id": [1]}},
            400,
            "'driver_id'",
        ),
        (
            "/api/v1/features/online",
            {"features": ["driver_stats:trips"], "entities": {"driver_id": ["a"]}},
            400,
            "Int64",
        ),
        (
            "/api/v1/features/online",
            {"feature_service": "nope", "entities": {"driver_id": [1]}},
            404,
            "nope",
        ),
        (
            "/api/v1/features/online",
            {"features": ["driver_stats:trips"], "entities": {"driver_id": [1]}, "extra": 1},
            400,
            "'extra'",
        ),
        ("/api/v1/features/online", [1, 2], 400, "JSON object"),
        (
            "/api/v1/features/push",
            {"feature_view": "driver_stats", "rows": {"driver_id": [1]}},
            400,
            "lack column",
        ),
        (
            "/api/v1/features/push",
            {"feature_view": "nope", "rows": {"driver_id": [1]}},
            404,
            "nope",
        ),
        (
            "/api/v1/features/push",
            {
                "feature_view": "driver_stats",
                "rows": {"driver_id": [1], "event_timestamp": ["soon"]},
            },
            400,
            "event_timestamp",
        ),
        ("/api/v1/features/materialize", {"start": "2026-01-01"}, 400, "'end'"),
        (
            "/api/v1/features/historical",
            {"features": ["driver_stats:trips"], "entities": {"driver_id": [1]}},
            400,
            "'entities.event_timestamp'",
        ),
        (
            "/api/v1/features/historical",
            {
                "features": ["driver_stats:trips"],
                "entities": {"driver_id": [1], "event_timestamp": ["later"]},
            },
            400,
            "ISO 8601",
        ),
        (
            "/api/v1/features/historical",
            {
                "features": ["driver_stats:trips"],
                "entities": {"driver_id": [1, 2], "event_timestamp": ["2026-01-01"]},
            },
            400,
            "same length",
        ),
        (
            "/api/v1/features/historical",
            {"entities": {"driver_id": [1], "event_timestamp": ["2026-01-01"]}},
            400,
            "'feature_service'",
        ),
        (
            "/api/v1/features/historical",
            {
                "features": ["driver_stats:nope"],
                "entities": {"driver_id": [1], "event_timestamp": ["2026-01-01"]},
            },
            400,
            "nope",
        ),
        (
            "/api/v1/features/historical",
            {
                "feature_service": "nope",
                "entities": {"driver_id": [1], "event_timestamp": ["2026-01-01"]},
            },
            404,
            "nope",
        ),
        (
            "/api/v1/features/historical",
            {"features": ["driver_stats:trips"], "entities": [], "x": 1},
            400,
            "'x'",
        ),
        ("/api/v1/features/apply", {"objects": {}}, 400, "'objects'"),
        (
            "/api/v1/features/apply",
            {"objects": [{"kind": "table", "spec": {}}]},
            400,
            "objects[0]",
        ),
        (
            "/api/v1/features/apply",
            {"objects": [{"kind": "entity", "spec": {}}]},
            400,
            "entity spec",
        ),
        ("/api/v1/features/plan", {"objects": [], "partial": "no"}, 400, "'partial'"),
        ("/api/v1/features/plan", {"objects": [1]}, 400, "'objects[0]'"),
        ("/api/v1/features/skew", {"feature_view": 3}, 400, "'feature_view'"),
        ("/api/v1/features/skew", {"feature_view": "driver_stats", "sample": 0}, 400, "sample"),
        (
            "/api/v1/features/skew",
            {"feature_view": "driver_stats", "tolerance": "x"},
            400,
            "tolerance",
        ),
        ("/api/v1/features/skew", {"feature_view": "nope"}, 404, "nope"),
        ("/api/v1/features/materialize", {"start": "x", "end": "2026-01-01"}, 400, "ISO 8601"),
    ],
)
def test_bad_bodies_are_4xx_json(
    served: tuple[str, FeatureStore], path: str, body: Any, status: int, needle: str
) -> None:
    url, _ = served
    r = httpx.post(url + path, json=body)
    assert r.status_code == status, r.text
    assert needle in r.json()["message"]


def test_not_json_and_unknown_view(served: tuple[str, FeatureStore]) -> None:
    url, _ = served
    r = httpx.post(
        url + "/api/v1/features/online",
        json={"features": ["driver_stats:trips"], "entities": {"driver_id": [1]}},
        headers={"X-Loopml-Workspace": "nope"},
    )
    assert r.status_code == 404 and "workspace 'nope'" in r.json()["message"]
    r = httpx.post(
        url + "/api/v1/features/online", content=b"{", headers={"content-type": "application/json"}
    )
    assert r.status_code == 400 and "JSON" in r.json()["message"]
    r = httpx.get(url + "/api/v1/features/views/nope")
    assert r.status_code == 404 and r.json()["error_code"] == "RESOURCE_DOES_NOT_EXIST"


def test_training_sets_over_http_as_json_and_arrow(served: tuple[str, FeatureStore]) -> None:
    import pyarrow as pa

    url, store = served
    entities = {
        "driver_id": [1001, 1002, 9],
        "event_timestamp": [
            (NOW - pd.Timedelta(hours=2)).isoformat(),
            NOW.isoformat(),
            NOW.isoformat(),
        ],
    }
    frame = pd.DataFrame(entities).assign(
        event_timestamp=lambda f: pd.to_datetime(f["event_timestamp"], utc=True)
    )
    want = store.get_historical_features(frame, ["driver_stats:trips", "driver_stats:city"])
    body = {"features": ["driver_stats:trips", "driver_stats:city"], "entities": entities}
    r = httpx.post(url + "/api/v1/features/historical", json=body)
    assert r.status_code == 200, r.text
    got = r.json()
    assert got["metadata"]["feature_views"] == ["driver_stats@1"]
    assert got["metadata"]["entity_rows"] == 3
    assert got["columns"]["trips"] == [102, 203, None]
    assert got["columns"]["city"] == ["c1", "c0", None]
    assert (
        pd.to_datetime(got["columns"]["event_timestamp"]).tolist()
        == frame["event_timestamp"].tolist()
    )

    def ipc(table: pa.Table) -> bytes:
        sink = pa.BufferOutputStream()
        with pa.ipc.new_stream(sink, table.schema) as w:
            w.write_table(table)
        return sink.getvalue().to_pybytes()

    r = httpx.post(
        url + "/api/v1/features/historical",
        params={"features": ["driver_stats:trips", "driver_stats:city"]},
        content=ipc(pa.Table.from_pandas(frame, preserve_index=False)),
        headers={"content-type": "application/vnd.apache.arrow.stream"},
    )
    assert (
        r.status_code == 200 and r.headers["content-type"] == "application/vnd.apache.arrow.stream"
    )
    table = pa.ipc.open_stream(r.content).read_all()
    assert b"loopml" in (table.schema.metadata or {})
    pd.testing.assert_frame_equal(table.to_pandas(), want.to_df())
    # the same Arrow body answered as JSON when asked
    r = httpx.post(
        url + "/api/v1/features/historical",
        params={"features": "driver_stats:trips"},
        content=ipc(pa.Table.from_pandas(frame, preserve_index=False)),
        headers={
            "content-type": "application/vnd.apache.arrow.stream",
            "accept": "application/json",
        },
    )
    assert r.json()["columns"]["trips"] == [102, 203, None]
    for params, content, needle in (
        ({"features": "driver_stats:trips"}, b"not arrow", "Arrow IPC"),
        ({"features": "driver_stats:trips", "x": "1"}, b"", "'x'"),
        ({"features": "driver_stats:trips", "full_feature_names": "maybe"}, b"", "full_feature"),
    ):
        r = httpx.post(
            url + "/api/v1/features/historical",
            params=params,
            content=content,
            headers={"content-type": "application/vnd.apache.arrow.stream"},
        )
        assert r.status_code == 400 and needle in r.json()["message"], r.text
    r = httpx.post(
        url + "/api/v1/features/push",
        content=b"junk",
        headers={"content-type": "application/vnd.apache.arrow.stream"},
    )
    assert r.status_code == 400 and "'feature_view'" in r.json()["message"]


def test_registry_route_and_its_stamp(served: tuple[str, FeatureStore]) -> None:
    url, store = served
    first = httpx.get(url + "/api/v1/features/registry").json()
    kinds = sorted((o["kind"], o["name"], o["version"]) for o in first["objects"])
    assert kinds == [("entity", "driver", 1), ("feature_view", "driver_stats", 1)]
    same = httpx.get(url + "/api/v1/features/registry", params={"stamp": first["stamp"]}).json()
    assert same == {"stamp": first["stamp"], "unchanged": True}
    view = store.get_feature_view("driver_stats")
    view.ttl = dt.timedelta(days=9)
    store.apply([view])
    store.catalog  # noqa: B018 - the server's copy is re-read within its ttl
    import time

    deadline = time.monotonic() + 10
    while True:
        now = httpx.get(url + "/api/v1/features/registry", params={"stamp": first["stamp"]}).json()
        if not now.get("unchanged") or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert now["stamp"] != first["stamp"]
    assert ("feature_view", "driver_stats", 2) in {
        (o["kind"], o["name"], o["version"]) for o in now["objects"]
    }
