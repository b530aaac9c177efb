"""``FeatureStore()`` against a loopml server: the same calls answered over HTTP, with the same
answers as the store on the server's database."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from loopml.config import reset_settings
from loopml.errors import InvalidInput, NotFound, PermissionDenied
from loopml.features import (
    Entity,
    FeatureLookup,
    FeatureService,
    FeatureStore,
    FeatureView,
    Field,
    FileSource,
    Float64,
    RemoteFeatureStore,
    String,
)

NOW = pd.Timestamp.now(tz="UTC").floor("s")


@pytest.fixture
def stores(
    server_factory: Any,
    driver_repo: dict[str, Any],
    driver_rows: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[tuple[Any, FeatureStore, dict[str, Any]]]:
    """A remote store (the settings name the server) and the store on the server's database."""
    driver_rows(start=NOW - pd.Timedelta(hours=4)).to_parquet(driver_repo["path"])
    driver_repo["view"].ttl = dt.timedelta(days=1)
    server = server_factory()
    monkeypatch.setenv("LOOPML_TRACKING_URI", server.url)
    reset_settings()
    remote = FeatureStore(registry_ttl_seconds=0)
    local = FeatureStore(database_uri=server.app_database_uri, registry_ttl_seconds=0)
    yield remote, local, driver_repo
    remote.close()
    local.close()


def test_the_whole_flow_over_http_matches_the_database(
    stores: tuple[Any, FeatureStore, dict[str, Any]],
) -> None:
    remote, local, repo = stores
    assert isinstance(remote, RemoteFeatureStore)
    ranker = FeatureService(name="ranker", features=[repo["view"][["trips"]]])
    objects = [repo["driver"], repo["view"], ranker]
    assert [i.action for i in remote.plan(objects).items] == ["add", "add", "add"]
    assert remote.apply(objects).has_changes
    assert not remote.plan(objects).has_changes
    assert remote.get_feature_view("driver_stats").version == 1  # type: ignore[attr-defined]
    assert [s.name for s in remote.list_feature_services()] == ["ranker"]
    assert remote.entity_key_types("ranker") == {"driver_id": "Int64"}
    with pytest.raises(NotFound, match="'nope'"):
        remote.get_feature_view("nope")

    [done] = remote.materialize(NOW - pd.Timedelta(days=1), NOW)
    assert done.view == "driver_stats" and done.rows == 5

    features = ["driver_stats:trips", "driver_stats:city"]
    rows = [{"driver_id": 1001}, {"driver_id": 7}]
    got, want = (
        remote.get_online_features(features, rows),
        local.get_online_features(features, rows),
    )
    assert (
        got.to_dict()
        == want.to_dict()
        == {
            "driver_id": [1001, 7],
            "trips": [103, None],
            "city": ["c1", None],
        }
    )
    assert got.statuses == want.statuses
    assert got.to_dict(True) == want.to_dict(True)
    assert remote.get_online_features(ranker, {"driver_id": [1002]}).to_dict() == {
        "driver_id": [1002],
        "trips": [203],
    }

    entity_df = pd.DataFrame(
        {
            "driver_id": [1001, 1003, 1002, 7],
            "event_timestamp": [NOW - pd.Timedelta(hours=2), NOW, NOW - pd.Timedelta(days=3), NOW],
            "label": [1, 0, 1, 0],
        }
    )
    for asked in (features, "ranker", ranker):
        job = remote.get_historical_features(entity_df, asked, full_feature_names=True)
        pd.testing.assert_frame_equal(
            job.to_df(),
            local.get_historical_features(entity_df, asked, full_feature_names=True).to_df(),
        )
        assert job.feature_views == ["driver_stats@1"]
    train = remote.get_historical_features(entity_df, features).to_df()
    assert train["trips"].tolist()[:2] == [102, 303] and train["trips"].isna().tolist()[2:] == [
        True,
        True,
    ]
    version = remote.get_historical_features(entity_df, "ranker").to_dataset("train")
    assert version.tags["loopml.feature_views"] == "driver_stats@1"
    assert version.tags["loopml.feature_service"] == "ranker"

    fresh = pd.DataFrame(
        {
            "driver_id": [1009],
            "event_timestamp": [NOW],
            "created": [NOW],
            "conv_rate": [0.5],
            "trips": [9],
            "city": ["c9"],
        }
    )
    assert remote.push("driver_stats", fresh) == 1
    assert local.get_online_features(features, [{"driver_id": 1009}]).to_dict()["trips"] == [9]
    assert remote.skew("driver_stats").ok

    lookup = FeatureLookup("ranker", store=remote)  # what an inference server does per batch
    assert lookup.enrich([{"driver_id": 1002, "x": 1}]) == [
        {"driver_id": 1002, "x": 1, "trips": 203}
    ]

    described = remote.describe("driver_stats")
    assert described["version"] == 1 and described["stats"]["features"]["trips"]["count"] == 5
    assert [e["name"] for e in remote.list_objects("entity")] == ["driver"]

    # A changed view is a new version; the remote catalog sees it.
    repo["view"].ttl = dt.timedelta(days=2)
    [change] = [i for i in remote.apply(objects).items if i.action == "change"]
    assert (change.name, change.version) == ("driver_stats", 2)
    assert remote.get_feature_view("driver_stats").version == 2  # type: ignore[attr-defined]
    [inc] = remote.materialize_incremental(NOW)
    assert inc.start_us == done.end_us


def test_a_relative_source_path_is_sent_absolute(
    stores: tuple[Any, FeatureStore, dict[str, Any]], tmp_path: Path, driver_rows: Any
) -> None:
    remote, local, repo = stores
    (tmp_path / "data").mkdir()
    driver_rows().to_parquet(tmp_path / "data" / "rel.parquet")
    view = FeatureView(
        name="rel",
        entities=[repo["driver"]],
        schema=[Field(name="conv_rate", dtype=Float64)],
        source=FileSource(path="data/rel.parquet", timestamp_field="event_timestamp"),
    )
    remote.apply([repo["driver"], view])
    path = local.get_feature_view("rel").source.path  # type: ignore[union-attr]
    assert path == str((tmp_path / "data" / "rel.parquet").resolve())


def test_bad_calls_are_typed_errors(stores: tuple[Any, FeatureStore, dict[str, Any]]) -> None:
    remote, _, repo = stores
    remote.apply([repo["driver"], repo["view"]])
    with pytest.raises(InvalidInput, match="entity_df needs an 'event_timestamp'"):
        remote.get_historical_features(
            pd.DataFrame({"driver_id": [1]}), ["driver_stats:trips"]
        ).to_df()
    with pytest.raises(InvalidInput, match="unknown feature"):
        remote.get_historical_features(
            pd.DataFrame({"driver_id": [1], "event_timestamp": [NOW]}), ["driver_stats:nope"]
        ).to_df()
    with pytest.raises(InvalidInput, match="lack column 'conv_rate'"):
        remote.push("driver_stats", pd.DataFrame({"driver_id": [1], "event_timestamp": [NOW]}))
    with pytest.raises(InvalidInput, match="an entity row lacks 'driver_id'"):
        remote.get_online_features(["driver_stats:trips"], [{"driver_id": 1}, {"x": 2}])
    with pytest.raises(InvalidInput, match="cannot apply a str"):
        remote.apply(["driver"])
    with pytest.raises(InvalidInput, match="ISO 8601"):
        remote.materialize("yesterday", NOW)
    with pytest.raises(NotFound):
        remote.describe("nope")
    dangling = FeatureView(
        name="dangling",
        entities=[Entity(name="nobody", join_keys=["nobody_id"])],
        schema=[Field(name="x", dtype=Float64)],
        source=FileSource(path="/nowhere.parquet", timestamp_field="event_timestamp"),
    )
    with pytest.raises(InvalidInput, match="nobody"):
        remote.apply([dangling])
    assert "dangling" not in {v.name for v in remote.list_feature_views()}


def test_definitions_need_an_admin(server_factory: Any, driver_repo: dict[str, Any]) -> None:
    from loopml.config import get_settings
    from loopml.server._identity import SqlIdentityStore

    settings = get_settings()
    ids = SqlIdentityStore(settings.resolved_database_uri)
    ids.create_user("root", admin=True)
    ids.create_user("alice")
    ids.add_grant("alice", "default", "editor")
    root, alice = ids.create_token("root", "t").secret, ids.create_token("alice", "t").secret
    server = server_factory(settings.resolved_database_uri, settings.resolved_artifact_uri)
    objects = [driver_repo["driver"], driver_repo["view"]]
    editor = RemoteFeatureStore(server.url, token=alice)
    admin = RemoteFeatureStore(server.url, token=root)
    try:
        for call in (editor.plan, editor.apply):
            with pytest.raises(PermissionDenied):
                call(objects)
        assert editor.list_feature_views() == []
        admin.apply(objects)
        assert editor.list_feature_views() == []  # its copy is kept registry_ttl_seconds
        editor.refresh_registry()
        assert [v.name for v in editor.list_feature_views()] == ["driver_stats"]
        editor.materialize(NOW - pd.Timedelta(days=3650), NOW)  # editors run jobs
        job = editor.get_historical_features(
            pd.DataFrame({"driver_id": [1001], "event_timestamp": [NOW]}), ["driver_stats:trips"]
        )
        assert job.to_df()["trips"].tolist() == [103]
    finally:
        editor.close()
        admin.close()


def test_answers_stay_right_when_the_clients_registry_is_stale(
    stores: tuple[Any, FeatureStore, dict[str, Any]],
) -> None:
    remote, local, repo = stores
    remote.registry_ttl_seconds = 3600.0  # the remote copy is not re-read in this test
    service = FeatureService(name="svc", features=[repo["view"][["trips"]]])
    remote.apply([repo["driver"], repo["view"], service])
    remote.materialize(NOW - pd.Timedelta(days=1), NOW)
    lookup = FeatureLookup("svc", store=remote)
    other = RemoteFeatureStore(remote.base_url)  # another client of the same server
    for features in (
        [repo["view"][["trips", "city"]]],  # the service grows...
        [repo["view"][["city"]]],  # ... and shrinks, behind the remote's back
    ):
        other.apply([FeatureService(name="svc", features=features)])
        got = remote.get_online_features("svc", [{"driver_id": 1001}])
        want = local.get_online_features("svc", [{"driver_id": 1001}])
        assert got.to_dict(True) == want.to_dict(True) and got.statuses == want.statuses
        assert lookup.enrich([{"driver_id": 1001}]) == [
            {k: v[0] for k, v in want.to_dict().items()}
        ]
    other.close()


def test_typed_values_and_helpers_match_the_local_store(
    stores: tuple[Any, FeatureStore, dict[str, Any]], tmp_path: Path
) -> None:
    from loopml.features import (
        Bytes,
        RequestSource,
        UnixTimestamp,
        describe_view,
        on_demand_feature_view,
        skew_check,
    )

    remote, local, repo = stores
    path = tmp_path / "typed.parquet"
    pd.DataFrame(
        {
            "driver_id": [1, 2],
            "event_timestamp": [NOW - pd.Timedelta(hours=1)] * 2,
            "seen": [NOW - pd.Timedelta(days=2), NOW - pd.Timedelta(days=3)],
            "blob": [b"\x00\xff", b"ok"],
        }
    ).to_parquet(path)
    typed = FeatureView(
        name="typed",
        entities=[repo["driver"]],
        schema=[Field(name="seen", dtype=UnixTimestamp), Field(name="blob", dtype=Bytes)],
        source=FileSource(path=str(path), timestamp_field="event_timestamp"),
    )
    request = RequestSource(name="req", schema=[Field(name="at", dtype=UnixTimestamp)])

    @on_demand_feature_view(
        sources=[typed[["seen"]], request],
        schema=[Field(name="kinds", dtype=String)],
        mode="python",
    )
    def kinds(inputs: dict[str, list[Any]]) -> dict[str, list[Any]]:
        return {
            "kinds": [
                f"{type(a).__name__}/{a.tzinfo is not None}/{type(s).__name__}"
                for a, s in zip(inputs["at"], inputs["seen"], strict=True)
            ]
        }

    remote.apply([repo["driver"], typed, kinds])
    remote.materialize(NOW - pd.Timedelta(days=1), NOW)
    rows = [
        {"driver_id": 1, "at": NOW.to_pydatetime()},
        {"driver_id": 3, "at": NOW.tz_localize(None).to_pydatetime()},  # naive stays naive
    ]
    features = ["typed:seen", "typed:blob", "kinds:kinds"]
    got = remote.get_online_features(features, rows).to_dict()
    assert got == local.get_online_features(features, rows).to_dict()
    assert got["blob"] == [b"\x00\xff", None]
    assert got["kinds"] == ["datetime/True/datetime", "datetime/False/NoneType"]
    # the helpers that take a store take a remote one
    assert [v["version"] for v in remote.versions("feature_view", "typed")] == [1]
    assert describe_view(remote, "typed")["name"] == "typed"
    assert "versions" not in describe_view(remote, "typed")
    assert skew_check(remote, "typed", sample=5).view == "typed"
    # one "view:feature" string is a feature, not a service
    job = remote.get_historical_features(
        pd.DataFrame({"driver_id": [1], "event_timestamp": [NOW]}), "typed:seen"
    )
    assert job.feature_service is None and job.feature_views == ["typed@1"]
    other = remote.for_workspace("default")
    assert other.registry_ttl_seconds == remote.registry_ttl_seconds
    other.close()


def test_bad_frames_are_typed_errors_both_ways(
    stores: tuple[Any, FeatureStore, dict[str, Any]],
) -> None:
    remote, local, repo = stores
    remote.apply([repo["driver"], repo["view"]])
    twice = pd.DataFrame([[1, NOW, 2]], columns=["driver_id", "event_timestamp", "driver_id"])
    for store in (remote, local):
        with pytest.raises(InvalidInput, match="more than one column named 'driver_id'"):
            store.get_historical_features(twice, ["driver_stats:trips"]).to_df()
        with pytest.raises(InvalidInput, match="pushed rows has more than one column"):
            store.push("driver_stats", twice)
        with pytest.raises(InvalidInput, match="__loopml_row"):
            store.get_historical_features(
                pd.DataFrame({"driver_id": [1], "event_timestamp": [NOW], "__loopml_row": [0]}),
                ["driver_stats:trips"],
            ).to_df()
        with pytest.raises(InvalidInput, match="driver_id"):
            store.get_online_features(["driver_stats:trips"], {"driver_id": [1, pd.NA]})
    empty = pd.DataFrame({"driver_id": pd.Series([], dtype="int64"), "event_timestamp": []})
    empty["event_timestamp"] = pd.to_datetime(empty["event_timestamp"], utc=True)
    assert remote.get_historical_features(empty, ["driver_stats:trips"]).to_df().empty


def test_a_registry_change_is_seen_through_another_server_at_once(
    server_factory: Any, driver_repo: dict[str, Any]
) -> None:
    db = f"sqlite:///{Path.cwd() / 'shared.db'}"
    first, second = server_factory(db), server_factory(db)  # two workers on one database
    a = RemoteFeatureStore(first.url)
    b = RemoteFeatureStore(second.url, registry_ttl_seconds=0)
    try:
        a.apply([driver_repo["driver"], driver_repo["view"]])
        assert b.get_feature_view("driver_stats").version == 1  # type: ignore[attr-defined]
        driver_repo["view"].ttl = dt.timedelta(days=7)
        a.apply([driver_repo["view"]])
        assert b.get_feature_view("driver_stats").version == 2  # type: ignore[attr-defined]
    finally:
        a.close()
        b.close()


def test_the_server_names_keys_and_value_types(
    stores: tuple[Any, FeatureStore, dict[str, Any]], tmp_path: Path
) -> None:
    """A feature named like a join key, and a type changed behind a stale client's back: the
    server's answer says which columns are keys and how to read the values."""
    from loopml.features import Bytes, Int64

    remote, local, repo = stores
    remote.registry_ttl_seconds = 3600.0
    path = tmp_path / "orders.parquet"
    pd.DataFrame(
        {
            "order_id": [7],
            "event_timestamp": [NOW - pd.Timedelta(hours=1)],
            "driver_id": [1001],
            "note": ["AP8="],
        }
    ).to_parquet(path)
    order = Entity(name="order", join_keys=["order_id"])

    def orders(note_type: Any) -> FeatureView:
        return FeatureView(
            name="orders",
            entities=[order],
            schema=[Field(name="driver_id", dtype=Int64), Field(name="note", dtype=note_type)],
            source=FileSource(path=str(path), timestamp_field="event_timestamp"),
        )

    remote.apply([repo["driver"], repo["view"], order, orders(String)])
    remote.materialize(NOW - pd.Timedelta(days=1), NOW)
    rows = [{"order_id": 7, "driver_id": 1001}]
    refs = ["orders:driver_id", "driver_stats:trips"]
    got, want = remote.get_online_features(refs, rows), local.get_online_features(refs, rows)
    assert got.feature_names == want.feature_names == ["driver_id", "trips"]
    assert got.statuses == want.statuses and got.to_dict(True) == want.to_dict(True)
    other = RemoteFeatureStore(remote.base_url)  # changes the note to Bytes
    pd.DataFrame(
        {
            "order_id": [7],
            "event_timestamp": [NOW - pd.Timedelta(hours=1)],
            "driver_id": [1001],
            "note": [b"\x00\xff"],
        }
    ).to_parquet(path)
    other.apply([orders(Bytes)])
    other.materialize(NOW - pd.Timedelta(days=1), NOW, ["orders"])
    other.close()
    assert remote.get_online_features(["orders:note"], [{"order_id": 7}]).to_dict() == {
        "order_id": [7],
        "note": [b"\x00\xff"],
    }
