"""Awkward inputs and races: null keys, concurrent applies, stale caches, key types, typed
values online, statistics, removal, partial applies, changed functions."""

from __future__ import annotations

import subprocess
import textwrap
import threading
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from loopml.errors import InvalidInput
from loopml.features import (
    Bool,
    Entity,
    FeatureService,
    FeatureStore,
    FeatureView,
    Field,
    FileSource,
    Float64,
    Int64,
    RequestSource,
    String,
    UnixTimestamp,
    on_demand_feature_view,
)

NOW = pd.Timestamp.now(tz="UTC").floor("s")
WEEK = (NOW - pd.Timedelta(days=7), NOW)


def _source(path: Path, frame: pd.DataFrame) -> FileSource:
    frame.to_parquet(path)
    return FileSource(path=str(path), timestamp_field="ts")


def test_rows_without_a_key_are_skipped_and_pushes_refused(
    tmp_path: Path, online_uri: str, make_store: Any
) -> None:
    frame = pd.DataFrame(
        {"eid": pd.array([1, None, 3], dtype="Int64"), "ts": [NOW] * 3, "x": [1.0, 2.0, 3.0]}
    )
    ent = Entity(name="e", join_keys=["eid"])
    view = FeatureView(name="v", entities=[ent], source=_source(tmp_path / "s.parquet", frame))
    store = make_store(online_uri)
    store.apply([ent, view])
    [res] = store.materialize(*WEEK)
    assert res.rows == 2
    bad = pd.DataFrame({"eid": pd.array([None], dtype="Int64"), "ts": [NOW], "x": [9.0]})
    with pytest.raises(InvalidInput, match="empty 'eid'"):
        store.push("v", bad)
    assert not list((store.home / "features" / "pushed").rglob("*.parquet"))  # nothing written
    with pytest.raises(InvalidInput, match="do not fit"):
        store.push("v", pd.DataFrame({"eid": [1, "a"], "ts": [NOW, NOW], "x": [1.0, 2.0]}))
    assert store.materialize(*WEEK)[0].rows == 2


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
def test_concurrent_applies_and_materializations(
    backend: str, tmp_path: Path, request: pytest.FixtureRequest, make_store: Any
) -> None:
    db = request.getfixturevalue("pg_uri") if backend == "postgres" else None
    ent = Entity(name="e", join_keys=["eid"])
    views = []
    for i in range(4):
        frame = pd.DataFrame({"eid": range(50), "ts": [NOW] * 50, "x": np.arange(50.0) + i})
        views.append(
            FeatureView(
                name=f"v{i}", entities=[ent], source=_source(tmp_path / f"s{i}.parquet", frame)
            )
        )
    errors: list[BaseException] = []

    def run(i: int) -> None:
        try:
            store = FeatureStore(database_uri=db, registry_ttl_seconds=0)
            store.apply([ent, views[i]])
            store.materialize(*WEEK, [f"v{i}"])
            store.close()
        except BaseException as exc:  # noqa: BLE001 - collected and reported below
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    store = make_store(database_uri=db)
    assert sorted(v.name for v in store.list_feature_views()) == ["v0", "v1", "v2", "v3"]
    assert store.get_online_features(["v3:x"], [{"eid": 7}]).to_dict()["x"] == [10.0]


def test_a_reader_sees_a_table_made_after_it_first_looked(tmp_path: Path, make_store: Any) -> None:
    frame = pd.DataFrame({"eid": [1], "ts": [NOW], "x": [1.5]})
    ent = Entity(name="e", join_keys=["eid"])
    view = FeatureView(name="v", entities=[ent], source=_source(tmp_path / "s.parquet", frame))
    online = f"sqlite:///{tmp_path / 'shared-online.db'}"
    writer = make_store(online)
    writer.registry.apply([ent, view])  # registered, no online table yet
    reader = make_store(online)
    assert reader.get_online_features(["v:x"], [{"eid": 1}]).to_dict()["x"] == [None]
    writer.apply([ent, view])
    writer.materialize(*WEEK)
    assert reader.get_online_features(["v:x"], [{"eid": 1}]).to_dict()["x"] == [1.5]


def test_entity_key_types(tmp_path: Path, online_uri: str, make_store: Any) -> None:
    frame = pd.DataFrame(
        {
            "region": ["eu", "eu", "us"],
            "shop": [1, 2, 1],
            "ts": [NOW] * 3,
            "sales": [10.0, 20.0, 30.0],
            "code": ["7", "8", "9"],
        }
    )
    shop = Entity(name="shop", join_keys=["shop"])
    region = Entity(name="region", join_keys=["region"])
    view = FeatureView(
        name="v", entities=[shop, region], source=_source(tmp_path / "s.parquet", frame)
    )
    store = make_store(online_uri)
    store.apply([shop, region, view])
    store.materialize(*WEEK)
    got = store.get_online_features(
        ["v:sales"], {"region": np.array(["us", "eu", "eu"]), "shop": pd.Series([1, 2, 5])}
    ).to_dict()
    assert got == {"shop": [1, 2, 5], "region": ["us", "eu", "eu"], "sales": [30.0, 20.0, None]}
    assert store.get_online_features(
        ["v:sales"], [{"shop": np.int64(2), "region": "eu"}]
    ).to_dict()["sales"] == [20.0]
    # Entities in the other order: a new version, the same stored keys.
    store.apply([FeatureView(name="v", entities=[region, shop], source=view.source)])
    assert store.get_online_features(["v:sales"], [{"shop": 1, "region": "us"}]).to_dict()[
        "sales"
    ] == [30.0]
    with pytest.raises(InvalidInput, match="out of the Int64 range"):
        store.get_online_features(["v:sales"], [{"shop": 2**63, "region": "eu"}])
    entity_df = pd.DataFrame({"shop": [1.5], "region": ["eu"], "event_timestamp": [NOW]})
    with pytest.raises(InvalidInput, match="fractional"):
        store.get_historical_features(entity_df, ["v:sales"])
    floaty = Entity(name="f", join_keys=["sales"])
    with pytest.raises(InvalidInput, match="join keys must be Int32, Int64 or String"):
        store.apply([floaty, FeatureView(name="w", entities=[floaty], source=view.source)])


def test_typed_values_online(tmp_path: Path, online_uri: str, make_store: Any) -> None:
    when = pd.Timestamp("2026-10-29 12:00", tz="UTC")
    frame = pd.DataFrame(
        {"eid": [1], "ts": [NOW], "flag": [True], "seen": [when], "name": ["x"], "n": [3]}
    )
    ent = Entity(name="e", join_keys=["eid"])
    view = FeatureView(
        name="v",
        entities=[ent],
        schema=[
            Field(name="flag", dtype=Bool),
            Field(name="seen", dtype=UnixTimestamp),
            Field(name="name", dtype=String),
            Field(name="n", dtype=Int64),
        ],
        source=_source(tmp_path / "s.parquet", frame),
    )
    store = make_store(online_uri)
    store.apply([ent, view])
    store.materialize(*WEEK)
    got = store.get_online_features(["v:flag", "v:seen", "v:name", "v:n"], [{"eid": 1}]).to_dict()
    assert got == {
        "eid": [1],
        "flag": [True],
        "seen": [when.to_pydatetime()],
        "name": ["x"],
        "n": [3],
    }
    assert type(got["flag"][0]) is bool


def test_statistics_are_exact_and_survive_a_resume(
    tmp_path: Path, make_store: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    import loopml.features._materialize as mat

    base = 1_700_000_000_000
    frame = pd.DataFrame({"eid": range(1000), "ts": [NOW] * 1000, "big": base + np.arange(1000)})
    ent = Entity(name="e", join_keys=["eid"])
    view = FeatureView(name="v", entities=[ent], source=_source(tmp_path / "s.parquet", frame))
    monkeypatch.setattr(mat, "BATCH_ROWS", 300)
    store = make_store()
    store.apply([ent, view])
    calls: list[int] = []

    def stop_once(_: str, done: int) -> None:
        calls.append(done)
        if len(calls) == 2:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        store.materialize(*WEEK, progress=stop_once)
    [res] = store.materialize(*WEEK)
    stats = res.stats["big"]
    assert stats["count"] == 1000 and res.rows == 400
    assert stats["std"] == pytest.approx(np.arange(1000).std(), rel=1e-9)
    assert stats["mean"] == pytest.approx(base + 499.5)
    assert (stats["min"], stats["max"]) == (base, base + 999)
    assert store.registry.state("v")["stats"]["rows"] == 1000


def test_removed_view_leaves_nothing_online_and_plans_show_field_changes(
    tmp_path: Path, make_store: Any
) -> None:
    frame = pd.DataFrame({"eid": [1], "ts": [NOW], "x": [1.0]})
    ent = Entity(name="e", join_keys=["eid"])
    source = _source(tmp_path / "s.parquet", frame)
    view = FeatureView(
        name="v", entities=[ent], schema=[Field(name="x", dtype=Float64)], source=source
    )
    store = make_store()
    store.apply([ent, view])
    store.materialize(*WEEK)
    changed = FeatureView(
        name="v",
        entities=[ent],
        schema=[Field(name="x", dtype=Float64, description="new")],
        source=source,
        description="also new",
    )
    [item] = store.plan([changed]).changed
    assert item.changes == ["~ description", "~ schema (order, descriptions or tags)"]
    store.apply([ent], partial=False)
    assert store.online.count("default__v") == 0
    store.apply([ent, view])
    assert store.registry.state("v")["watermark"] is None
    assert store.get_online_features(["v:x"], [{"eid": 1}]).to_dict()["x"] == [None]


def test_partial_applies_keep_dependents_consistent(tmp_path: Path, make_store: Any) -> None:
    frame = pd.DataFrame({"eid": [1], "other": [2], "ts": [NOW], "x": [1.0], "y": [2.0]})
    ent = Entity(name="e", join_keys=["eid"])
    source = _source(tmp_path / "s.parquet", frame)
    view = FeatureView(
        name="v",
        entities=[ent],
        source=source,
        schema=[Field(name="x", dtype=Float64), Field(name="y", dtype=Float64)],
    )
    service = FeatureService(name="s", features=[view[["y"]]])
    store = make_store()
    store.apply([ent, view, service])
    with pytest.raises(InvalidInput, match="apply the view together with its entities"):
        store.apply([Entity(name="e", join_keys=["other"])])
    slim = FeatureView(
        name="v", entities=[ent], source=source, schema=[Field(name="x", dtype=Float64)]
    )
    with pytest.raises(InvalidInput, match="uses v:y, which the new definition of 'v' drops"):
        store.apply([slim])


def test_changed_function_values_make_a_new_version(tmp_path: Path, make_store: Any) -> None:
    frame = pd.DataFrame({"eid": [1], "ts": [NOW], "x": [1.0]})
    ent = Entity(name="e", join_keys=["eid"])
    view = FeatureView(name="v", entities=[ent], source=_source(tmp_path / "s.parquet", frame))
    factor = [2.0]

    def make() -> Any:
        scale = factor[0]

        @on_demand_feature_view(sources=[view], schema=[Field(name="y", dtype=Float64)])
        def scaled(inputs: pd.DataFrame) -> pd.DataFrame:
            return pd.DataFrame({"y": inputs["x"] * scale})

        return scaled

    store = make_store()
    store.apply([ent, view, make()])
    assert not store.plan([make()]).has_changes
    factor[0] = 3.0
    assert [i.name for i in store.plan([make()]).changed] == ["scaled"]
    store.apply([make()])
    store.materialize(*WEEK)
    assert store.get_online_features(["scaled:y"], [{"eid": 1}]).to_dict()["y"] == [3.0]


def test_request_only_view_and_input_name_clash(tmp_path: Path, make_store: Any) -> None:
    req = RequestSource(name="r", schema=[Field(name="a", dtype=Float64)])

    @on_demand_feature_view(sources=[req], schema=[Field(name="b", dtype=Float64)], mode="python")
    def doubled(inputs: dict[str, list[Any]]) -> dict[str, list[Any]]:
        return {"b": [v * 2 for v in inputs["a"]]}

    store = make_store()
    store.apply([doubled])
    resp = store.get_online_features(["doubled:b"], [{"a": 1.0}, {"a": 2.5}])
    assert resp.to_dict(include_event_timestamps=True)["b"] == [2.0, 5.0]
    assert len(resp.to_dict(include_event_timestamps=True)["b__ts"]) == 2
    frame = pd.DataFrame({"eid": [1], "ts": [NOW], "a": [1.0]})
    ent = Entity(name="e", join_keys=["eid"])
    view = FeatureView(name="v", entities=[ent], source=_source(tmp_path / "s.parquet", frame))

    @on_demand_feature_view(sources=[view, req], schema=[Field(name="c", dtype=Float64)])
    def clash(inputs: pd.DataFrame) -> pd.DataFrame:
        return inputs[["a"]].rename(columns={"a": "c"})

    with pytest.raises(InvalidInput, match="two of its inputs are named 'a'"):
        store.apply([ent, view, clash])


def test_deleted_source_is_a_clear_error(tmp_path: Path, make_store: Any) -> None:
    frame = pd.DataFrame({"eid": [1], "ts": [NOW], "x": [1.0]})
    ent = Entity(name="e", join_keys=["eid"])
    path = tmp_path / "s.parquet"
    view = FeatureView(name="v", entities=[ent], source=_source(path, frame))
    store = make_store()
    store.apply([ent, view])
    path.unlink()
    from loopml.features import skew_check

    with pytest.raises(InvalidInput, match="cannot read the source of feature view 'v'"):
        store.materialize(*WEEK)
    with pytest.raises(InvalidInput, match="cannot read"):
        store.get_historical_features(
            pd.DataFrame({"eid": [1], "event_timestamp": [NOW]}), ["v:x"]
        ).to_df()
    with pytest.raises(InvalidInput, match="cannot read the source"):
        skew_check(store, "v")


def test_repo_helpers_are_packed_by_value(tmp_path: Path, loopml_cmd: list[str]) -> None:
    repo = tmp_path / "repo"
    repo.mkdir()
    pd.DataFrame({"eid": [1], "ts": [NOW], "x": [2.0]}).to_parquet(repo / "s.parquet")
    (repo / "helpers.py").write_text("def triple(v):\n    return v * 3\n")
    (repo / "defs.py").write_text(
        textwrap.dedent(
            """
            import pandas as pd
            from helpers import triple
            from loopml.features import (
                Entity, FeatureView, Field, FileSource, Float64, on_demand_feature_view
            )

            e = Entity(name="e", join_keys=["eid"])
            source = FileSource(path="s.parquet", timestamp_field="ts")
            v = FeatureView(name="v", entities=[e], source=source)

            @on_demand_feature_view(sources=[v], schema=[Field(name="y", dtype=Float64)])
            def tripled(inputs):
                return pd.DataFrame({"y": triple(inputs["x"])})
            """
        )
    )
    run = [*loopml_cmd, "features"]
    assert (
        subprocess.run([*run, "apply", str(repo)], capture_output=True, cwd=tmp_path).returncode
        == 0
    )
    subprocess.run(
        [*run, "materialize", str(WEEK[0]), str(WEEK[1])],
        check=True,
        capture_output=True,
        cwd=tmp_path,
    )
    proc = subprocess.run(
        [*run, "get", "--feature", "tripled:y", "--entity", "eid=1", "--json"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stderr
    assert '"y": [\n      6.0' in proc.stdout
