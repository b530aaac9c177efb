"""Training sets equal a brute-force point-in-time join on random data (ties, late, expired)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from loopml.errors import InvalidInput, NotFound
from loopml.features import (
    Entity,
    FeatureService,
    FeatureView,
    Field,
    FileSource,
    Float32,
    Float64,
)

T0 = pd.Timestamp("2026-11-01", tz="UTC")


def brute_force(
    source: pd.DataFrame, entity: pd.DataFrame, ttl: pd.Timedelta | None, cols: list[str]
) -> pd.DataFrame:
    """For each entity row: the source row with the largest (ts, created) at or before its
    timestamp and within ttl (both ends inclusive), else NaN."""
    by_id = {k: g for k, g in source.groupby("eid")}
    out = {c: [] for c in cols}
    for eid, ts in zip(entity["eid"], entity["event_timestamp"], strict=True):
        g = by_id.get(eid)
        best = None
        if g is not None:
            ok = g[g["ts"] <= ts]
            if ttl is not None:
                ok = ok[ok["ts"] >= ts - ttl]
            if len(ok):
                best = ok.sort_values(["ts", "created"], kind="stable").iloc[-1]
        for c in cols:
            out[c].append(np.nan if best is None else best[c])
    return pd.DataFrame(out)


def _view(name: str, path: Path, ttl: Any, *, created: bool = True) -> tuple[Entity, FeatureView]:
    ent = Entity(name="thing", join_keys=["eid"])
    view = FeatureView(
        name=name,
        entities=[ent],
        schema=[Field(name="a", dtype=Float64), Field(name="b", dtype=Float32)],
        source=FileSource(
            path=str(path),
            timestamp_field="ts",
            created_timestamp_column="created" if created else "",
        ),
        ttl=ttl,
    )
    return ent, view


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_matches_brute_force_with_ties_late_and_expired_rows(
    seed: int, tmp_path: Path, make_store: Any, random_source: Any
) -> None:
    rng = np.random.default_rng(seed)
    source = random_source(rng, entities=40, rows=3000, span_s=5 * 86400)
    path = tmp_path / "src.parquet"
    source.to_parquet(path)
    ttl = pd.Timedelta(hours=6)
    ent, view = _view("v", path, dt.timedelta(hours=6))
    store = make_store()
    store.apply([ent, view])
    n = 2000
    entity = pd.DataFrame(
        {
            "eid": rng.integers(-2, 42, n),  # some ids never seen
            "event_timestamp": T0 + pd.to_timedelta(rng.integers(-3600, 6 * 86400, n), unit="s"),
            "label": rng.integers(0, 2, n),
        }
    )
    # Exact hits: entity times equal to source times, and exactly ttl after a source time.
    entity.loc[:99, "event_timestamp"] = source["ts"].iloc[:100].to_numpy()
    entity.loc[:99, "eid"] = source["eid"].iloc[:100].to_numpy()
    entity.loc[100:199, "event_timestamp"] = (source["ts"].iloc[100:200] + ttl).to_numpy()
    entity.loc[100:199, "eid"] = source["eid"].iloc[100:200].to_numpy()
    # Duplicated entity rows are kept, each once.
    entity = pd.concat([entity, entity.iloc[:50]], ignore_index=True)

    got = store.get_historical_features(entity, ["v:a", "v:b"]).to_df()
    want = brute_force(source, entity, ttl, ["a", "b"])
    assert len(got) == len(entity)
    assert got["eid"].tolist() == entity["eid"].tolist()  # entity order kept
    assert got["label"].tolist() == entity["label"].tolist()  # extra columns passed through
    np.testing.assert_array_equal(got["a"].to_numpy(), want["a"].to_numpy())
    np.testing.assert_array_equal(got["b"].to_numpy(), want["b"].to_numpy().astype("float32"))
    assert got["a"].isna().any() and got["a"].notna().any()


def test_without_ttl_any_older_row_qualifies(
    tmp_path: Path, make_store: Any, random_source: Any
) -> None:
    rng = np.random.default_rng(7)
    source = random_source(rng, entities=10, rows=500, span_s=86400)
    path = tmp_path / "src.parquet"
    source.to_parquet(path)
    ent, view = _view("v", path, None)
    store = make_store()
    store.apply([ent, view])
    entity = pd.DataFrame(
        {
            "eid": rng.integers(0, 10, 300),
            "event_timestamp": T0 + pd.to_timedelta(rng.integers(0, 10 * 86400, 300), unit="s"),
        }
    )
    got = store.get_historical_features(entity, ["v:a"]).to_df()
    want = brute_force(source, entity, None, ["a"])
    np.testing.assert_array_equal(got["a"].to_numpy(), want["a"].to_numpy())


def test_two_views_full_feature_names_and_collisions(
    tmp_path: Path, make_store: Any, random_source: Any
) -> None:
    rng = np.random.default_rng(11)
    s1 = random_source(rng, entities=20, rows=800, span_s=3 * 86400)
    s2 = random_source(rng, entities=20, rows=800, span_s=3 * 86400, ties=False)
    s1.to_parquet(tmp_path / "s1.parquet")
    s2.drop(columns=["created"]).to_parquet(tmp_path / "s2.parquet")
    ent, v1 = _view("v1", tmp_path / "s1.parquet", dt.timedelta(hours=12))
    _, v2 = _view("v2", tmp_path / "s2.parquet", dt.timedelta(days=1), created=False)
    store = make_store()
    store.apply([ent, v1, v2, FeatureService(name="both", features=[v1[["a"]], v2])])
    entity = pd.DataFrame(
        {
            "eid": rng.integers(0, 20, 500),
            "event_timestamp": T0 + pd.to_timedelta(rng.integers(0, 4 * 86400, 500), unit="s"),
        }
    )
    with pytest.raises(InvalidInput, match="full_feature_names"):
        store.get_historical_features(entity, ["v1:a", "v2:a"])
    job = store.get_historical_features(entity, "both", full_feature_names=True)
    got = job.to_df()
    assert list(got.columns) == ["eid", "event_timestamp", "v1__a", "v2__a", "v2__b"]
    assert job.feature_views == ["v1@1", "v2@1"]
    w1 = brute_force(s1, entity, pd.Timedelta(hours=12), ["a"])
    w2 = brute_force(s2.assign(created=s2["ts"]), entity, pd.Timedelta(days=1), ["a", "b"])
    np.testing.assert_array_equal(got["v1__a"].to_numpy(), w1["a"].to_numpy())
    np.testing.assert_array_equal(got["v2__a"].to_numpy(), w2["a"].to_numpy())
    arrow = store.get_historical_features(entity, ["v2:b", "v1:a"]).to_arrow()
    assert arrow.column_names == ["eid", "event_timestamp", "b", "a"]  # request order


def test_naive_entity_timestamps_are_utc_and_other_names_work(
    tmp_path: Path, make_store: Any, driver_repo: dict[str, Any]
) -> None:
    store = make_store()
    store.apply([driver_repo["driver"], driver_repo["view"]])
    naive = pd.DataFrame(
        {
            "driver_id": [1000, 1001],
            "ts": [pd.Timestamp("2026-11-01 01:30"), pd.Timestamp("2026-11-01 00:00")],
        }
    )
    got = store.get_historical_features(
        naive, ["driver_stats:conv_rate", "driver_stats:city"]
    ).to_df()
    assert got["conv_rate"].tolist() == [1.0, 10.0]
    assert got["city"].tolist() == ["c0", "c1"]
    parquet = tmp_path / "entities.parquet"
    naive.to_parquet(parquet)
    again = store.get_historical_features(str(parquet), ["driver_stats:trips"]).to_df()
    assert again["trips"].tolist() == [1, 100]


def test_bad_inputs_are_clear_errors(
    tmp_path: Path, make_store: Any, driver_repo: dict[str, Any]
) -> None:
    store = make_store()
    store.apply([driver_repo["driver"], driver_repo["view"]])
    ok = pd.DataFrame({"driver_id": [1000], "event_timestamp": [T0]})
    with pytest.raises(InvalidInput, match="unknown features: driver_stats:nope, other:x"):
        store.get_historical_features(ok, ["driver_stats:nope", "other:x"])
    with pytest.raises(InvalidInput, match="view:feature"):
        store.get_historical_features(ok, ["conv_rate"])
    with pytest.raises(InvalidInput, match="join key 'driver_id'"):
        store.get_historical_features(
            ok.rename(columns={"driver_id": "id"}), ["driver_stats:trips"]
        )
    with pytest.raises(InvalidInput, match="event_timestamp"):
        store.get_historical_features(pd.DataFrame({"driver_id": [1]}), ["driver_stats:trips"])
    with pytest.raises(InvalidInput, match="already has a column"):
        store.get_historical_features(ok.assign(trips=1), ["driver_stats:trips"])
    with pytest.raises(InvalidInput, match="join keys"):
        store.get_historical_features(ok.assign(driver_id=["x"]), ["driver_stats:trips"]).to_df()
    with pytest.raises(InvalidInput, match="entity_df"):
        store.get_historical_features(42, ["driver_stats:trips"])
    with pytest.raises(NotFound, match="feature service 'nope'"):
        store.get_historical_features(ok, "nope")
    with pytest.raises(InvalidInput, match="requested twice"):
        store.get_historical_features(ok, ["driver_stats:trips", "driver_stats:trips"])
