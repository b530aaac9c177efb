"""Materialization and online reads on SQLite and Redis: ttl at read, newer wins, resume, push."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from loopml.errors import InvalidInput
from loopml.features import FeatureView

NOW = pd.Timestamp.now(tz="UTC").floor("s")


def _recent_repo(
    driver_repo: dict[str, Any], driver_rows: Any, *, ttl: dt.timedelta
) -> FeatureView:
    """Rewrite the driver source to end an hour ago and give the view ``ttl``."""
    driver_rows(start=NOW - pd.Timedelta(hours=4)).to_parquet(driver_repo["path"])
    view: FeatureView = driver_repo["view"]
    view.ttl = ttl
    return view


def test_materialize_then_read(
    online_uri: str, make_store: Any, driver_repo: dict[str, Any], driver_rows: Any
) -> None:
    view = _recent_repo(driver_repo, driver_rows, ttl=dt.timedelta(days=1))
    store = make_store(online_uri)
    store.apply([driver_repo["driver"], view])
    [result] = store.materialize(NOW - pd.Timedelta(days=1), NOW)
    assert result.rows == 5
    assert result.stats["conv_rate"]["count"] == 5
    assert result.stats["conv_rate"]["max"] == 43.0
    assert result.stats["city"]["top"] == [["c0", 3], ["c1", 2]]
    resp = store.get_online_features(
        ["driver_stats:trips", "driver_stats:conv_rate", "driver_stats:city"],
        [{"driver_id": 1001}, {"driver_id": 9999}, {"driver_id": 1000}],
    )
    assert resp.to_dict() == {
        "driver_id": [1001, 9999, 1000],
        "trips": [103, None, 3],
        "conv_rate": [13.0, None, 3.0],
        "city": ["c1", None, "c0"],
    }
    assert resp.statuses["trips"] == ["PRESENT", "NOT_FOUND", "PRESENT"]
    with_ts = resp.to_dict(include_event_timestamps=True)
    expected = int((NOW - pd.Timedelta(hours=1)).timestamp())
    assert with_ts["trips__ts"] == [expected, 0, expected]
    assert list(resp.to_df().columns) == ["driver_id", "trips", "conv_rate", "city"]
    full = store.get_online_features(
        ["driver_stats:trips"], {"driver_id": [1002]}, full_feature_names=True
    ).to_dict()
    assert full == {"driver_id": [1002], "driver_stats__trips": [203]}
    body = resp.to_feast_json()
    assert body["metadata"]["feature_names"] == ["driver_id", "trips", "conv_rate", "city"]
    assert body["results"][1]["statuses"] == ["PRESENT", "NOT_FOUND", "PRESENT"]
    state = store.registry.state("driver_stats")
    assert state["watermark"] == result.end_us and state["checkpoint"] is None


def test_one_entity_row_is_answered_as_in_a_batch(
    online_uri: str, make_store: Any, driver_repo: dict[str, Any], driver_rows: Any
) -> None:
    """One plain entity row takes a shorter path; present, unknown and expired keys, as a
    list of rows or a dict of columns, answer exactly as the same row inside a batch."""
    view = _recent_repo(driver_repo, driver_rows, ttl=dt.timedelta(days=1))
    store = make_store(online_uri)
    store.apply([driver_repo["driver"], view])
    store.materialize(NOW - pd.Timedelta(days=1), NOW)
    refs = ["driver_stats:conv_rate", "driver_stats:trips", "driver_stats:city"]

    def same(key: Any) -> None:
        batch = store.get_online_features(refs, [{"driver_id": key}, {"driver_id": 1002}])
        first = {c: v[:1] for c, v in batch.to_dict(True).items()}
        for rows in ([{"driver_id": key}], {"driver_id": [key]}):
            one = store.get_online_features(refs, rows)
            assert one.to_dict(True) == first
            assert one.statuses == {c: v[:1] for c, v in batch.statuses.items()}
            feast = one.to_feast_json()
            assert [r["values"][0] for r in feast["results"]] == [
                r["values"][0] for r in batch.to_feast_json()["results"]
            ]

    same(1001)  # present
    same(42)  # unknown
    missing = store.get_online_features(refs, [{"driver_id": 42}]).to_dict()
    missing["trips"][0] = 1
    assert missing["conv_rate"] == [None]  # each feature its own list
    for column in (b"a", {5}, "5"):  # not a list: the general path's error
        with pytest.raises(InvalidInput, match="must be a list"):
            store.get_online_features(refs, {"driver_id": column})
    view.ttl = dt.timedelta(minutes=30)
    store.apply([view])
    same(1001)  # expired
    assert store.get_online_features(refs, [{"driver_id": 1001}]).statuses["trips"] == [
        "OUTSIDE_MAX_AGE"
    ]
    with pytest.raises(InvalidInput):
        store.get_online_features(refs, [{"driver_id": "1001x"}])  # the general path's error


def test_ttl_is_enforced_at_read(
    online_uri: str, make_store: Any, driver_repo: dict[str, Any], driver_rows: Any
) -> None:
    view = _recent_repo(driver_repo, driver_rows, ttl=dt.timedelta(minutes=30))
    store = make_store(online_uri)
    store.apply([driver_repo["driver"], view])
    store.materialize(NOW - pd.Timedelta(days=1), NOW)
    resp = store.get_online_features(["driver_stats:trips"], [{"driver_id": 1000}])
    assert resp.to_dict()["trips"] == [None]  # the newest row is an hour old; ttl is 30 min
    assert resp.statuses["trips"] == ["OUTSIDE_MAX_AGE"]
    view.ttl = dt.timedelta(hours=2)
    store.apply([view])  # a new version with a longer ttl: the value is served again
    assert store.get_online_features(["driver_stats:trips"], [{"driver_id": 1000}]).to_dict()[
        "trips"
    ] == [3]


def test_older_window_never_overwrites_newer_values(
    online_uri: str, make_store: Any, driver_repo: dict[str, Any], driver_rows: Any
) -> None:
    view = _recent_repo(driver_repo, driver_rows, ttl=dt.timedelta(days=1))
    store = make_store(online_uri)
    store.apply([driver_repo["driver"], view])
    store.materialize(NOW - pd.Timedelta(days=1), NOW)
    store.materialize(NOW - pd.Timedelta(days=1), NOW - pd.Timedelta(hours=3, minutes=30))
    got = store.get_online_features(["driver_stats:trips"], [{"driver_id": 1000}]).to_dict()
    assert got["trips"] == [3]  # Feast would now serve 0, the older row


def test_incremental_moves_only_newer_rows(
    online_uri: str, make_store: Any, driver_repo: dict[str, Any], driver_rows: Any
) -> None:
    view = _recent_repo(driver_repo, driver_rows, ttl=dt.timedelta(days=1))
    store = make_store(online_uri)
    store.apply([driver_repo["driver"], view])
    first = store.materialize_incremental(NOW - pd.Timedelta(hours=2, minutes=30))
    assert first[0].start_us == first[0].end_us - 86_400 * 1_000_000  # first run: end - ttl
    assert store.get_online_features(["driver_stats:trips"], [{"driver_id": 1000}]).to_dict()[
        "trips"
    ] == [1]
    second = store.materialize_incremental(NOW)
    assert second[0].start_us == first[0].end_us
    assert second[0].rows == 5
    assert store.get_online_features(["driver_stats:trips"], [{"driver_id": 1000}]).to_dict()[
        "trips"
    ] == [3]
    with pytest.raises(InvalidInput, match="watermark"):
        store.materialize_incremental(NOW - pd.Timedelta(days=2))


def test_interrupted_materialization_resumes_after_the_last_written_key(
    tmp_path: Path, make_store: Any, driver_repo: dict[str, Any], monkeypatch: Any
) -> None:
    import loopml.features._materialize as mat

    rows = []
    for d in range(250):
        rows.append(
            {
                "driver_id": d,
                "event_timestamp": NOW - pd.Timedelta(minutes=10),
                "created": NOW - pd.Timedelta(minutes=9),
                "conv_rate": float(d),
                "trips": d,
                "city": "x",
            }
        )
    pd.DataFrame(rows).to_parquet(driver_repo["path"])
    monkeypatch.setattr(mat, "BATCH_ROWS", 100)
    store = make_store()
    store.apply([driver_repo["driver"], driver_repo["view"]])
    calls: list[int] = []

    def stop_after_first(view: str, done: int) -> None:
        calls.append(done)
        if len(calls) == 1:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        store.materialize(NOW - pd.Timedelta(days=1), NOW, progress=stop_after_first)
    state = store.registry.state("driver_stats")
    assert state["checkpoint"]["last_key"] == [99] and state["watermark"] is None
    [again] = store.materialize(NOW - pd.Timedelta(days=1), NOW)
    assert again.resumed_from == [99] and again.rows == 150
    got = store.get_online_features(
        ["driver_stats:trips"], [{"driver_id": d} for d in (0, 99, 100, 249)]
    ).to_dict()
    assert got["trips"] == [0, 99, 100, 249]
    assert store.online.count("default__driver_stats") == 250
    # A different window starts afresh.
    [fresh] = store.materialize(NOW - pd.Timedelta(days=2), NOW)
    assert fresh.resumed_from is None and fresh.rows == 250


def test_push_writes_online_and_offline(
    online_uri: str, make_store: Any, driver_repo: dict[str, Any], driver_rows: Any
) -> None:
    view = _recent_repo(driver_repo, driver_rows, ttl=dt.timedelta(days=1))
    store = make_store(online_uri)
    store.apply([driver_repo["driver"], view])
    store.materialize(NOW - pd.Timedelta(days=1), NOW)
    fresh = pd.DataFrame(
        {
            "driver_id": [1000, 1234],
            "event_timestamp": [NOW, NOW],
            "conv_rate": [0.5, 0.7],
            "trips": [7, 8],
            "city": ["new", "new"],
        }
    )
    assert store.push("driver_stats", fresh) == 2
    got = store.get_online_features(
        ["driver_stats:trips"], [{"driver_id": 1000}, {"driver_id": 1234}]
    ).to_dict()
    assert got["trips"] == [7, 8]
    entity = pd.DataFrame({"driver_id": [1234, 1000], "event_timestamp": [NOW, NOW]})
    train = store.get_historical_features(entity, ["driver_stats:trips"]).to_df()
    assert train["trips"].tolist() == [8, 7]
    stale = fresh.assign(event_timestamp=NOW - pd.Timedelta(days=3), trips=[-1, -1])
    store.push("driver_stats", stale, to="online")
    assert store.get_online_features(["driver_stats:trips"], [{"driver_id": 1000}]).to_dict()[
        "trips"
    ] == [7]
    with pytest.raises(InvalidInput, match="lack column 'trips'"):
        store.push("driver_stats", fresh.drop(columns=["trips"]))
    with pytest.raises(InvalidInput, match="do not fit"):
        store.push("driver_stats", fresh.assign(trips=["a", "b"]))
    with pytest.raises(InvalidInput, match="to must be"):
        store.push("driver_stats", fresh, to="elsewhere")


def test_online_bad_inputs(
    online_uri: str, make_store: Any, driver_repo: dict[str, Any], driver_rows: Any
) -> None:
    view = _recent_repo(driver_repo, driver_rows, ttl=dt.timedelta(days=1))
    store = make_store(online_uri)
    store.apply([driver_repo["driver"], view])
    with pytest.raises(InvalidInput, match="unknown features: driver_stats:nope"):
        store.get_online_features(["driver_stats:nope"], [{"driver_id": 1}])
    with pytest.raises(InvalidInput, match="lacks 'driver_id'"):
        store.get_online_features(["driver_stats:trips"], [{"id": 1}])
    with pytest.raises(InvalidInput, match="must be Int64"):
        store.get_online_features(["driver_stats:trips"], [{"driver_id": "1"}])
    with pytest.raises(InvalidInput, match="must be a list"):
        store.get_online_features(["driver_stats:trips"], {"driver_id": 1})
    with pytest.raises(InvalidInput, match="list of objects"):
        store.get_online_features(["driver_stats:trips"], "driver_id=1")
    with pytest.raises(InvalidInput, match="must not be after"):
        store.materialize(NOW, NOW - pd.Timedelta(days=1))
    with pytest.raises(InvalidInput, match="ISO 8601"):
        store.materialize("yesterday", NOW)
    assert store.get_online_features(["driver_stats:trips"], []).to_dict() == {
        "driver_id": [],
        "trips": [],
    }
