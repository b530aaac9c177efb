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
