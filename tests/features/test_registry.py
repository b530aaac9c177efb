"""The versioned registry: apply, plan, versions, removal, validation; on SQLite and PostgreSQL."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from loopml.errors import InvalidInput, NotFound
from loopml.features import (
    Entity,
    FeatureService,
    FeatureStore,
    FeatureView,
    Field,
    FileSource,
    Float32,
    Int64,
)


@pytest.fixture(params=["sqlite", "postgres"])
def store(request: pytest.FixtureRequest, make_store: Any, tmp_path: Path) -> FeatureStore:
    """A store whose registry is SQLite or PostgreSQL."""
    if request.param == "postgres":
        return make_store(
            f"sqlite:///{tmp_path / 'online.db'}", database_uri=request.getfixturevalue("pg_uri")
        )
    return make_store()


def test_apply_versions_and_plan(store: FeatureStore, driver_repo: dict[str, Any]) -> None:
    driver, view = driver_repo["driver"], driver_repo["view"]
    service = FeatureService(name="ranker", features=[view[["conv_rate"]]])
    plan = store.apply([driver, view, service])
    assert [(i.kind, i.name, i.action, i.version) for i in plan.items] == [
        ("entity", "driver", "add", 1),
        ("feature_view", "driver_stats", "add", 1),
        ("feature_service", "ranker", "add", 1),
    ]
    assert not store.plan([driver, view, service]).has_changes
    changed = FeatureView(
        name="driver_stats",
        entities=[driver],
        schema=[*view.schema[:2], Field(name="city", dtype="String", description="home city")],
        source=view.source,
        ttl=dt.timedelta(days=1),
    )
    plan = store.plan([changed])
    assert [(i.action, i.version) for i in plan.changed] == [("change", 2)]
    assert "~ ttl" in plan.changed[0].changes
    store.apply([changed])
    versions = store.registry.versions("feature_view", "driver_stats")
    assert [v["version"] for v in versions] == [1, 2]
    assert versions[0]["spec"]["ttl"] == 3650 * 86400.0  # the old version stays readable
    assert store.get_feature_view("driver_stats").ttl == dt.timedelta(days=1)
    assert store.get_feature_service("ranker").features[0].features == ["conv_rate"]
    # A full apply of a repo without the service removes it; its versions stay.
    plan = store.apply([driver, changed], partial=False)
    assert [(i.kind, i.name) for i in plan.removed] == [("feature_service", "ranker")]
    with pytest.raises(NotFound):
        store.get_feature_service("ranker")
    assert store.registry.get_spec("feature_service", "ranker")["name"] == "ranker"
    # Re-adding it makes version 2.
    plan = store.apply([service])
    assert [(i.action, i.version) for i in plan.added] == [("add", 2)]


def test_schema_is_inferred_and_keys_typed(
    store: FeatureStore, driver_repo: dict[str, Any]
) -> None:
    source = driver_repo["view"].source
    view = FeatureView(name="inferred", entities=["driver"], source=source)
    store.apply([driver_repo["driver"], view])
    got = store.get_feature_view("inferred")
    assert [(f.name, f.type.name) for f in got.features] == [
        ("conv_rate", "Float64"),
        ("trips", "Int64"),
        ("city", "String"),
    ]
    assert got.join_key_types == {"driver_id": Int64}  # type: ignore[attr-defined]


def test_invalid_definitions_are_refused(
    store: FeatureStore, driver_repo: dict[str, Any], tmp_path: Path
) -> None:
    driver, view = driver_repo["driver"], driver_repo["view"]
    with pytest.raises(InvalidInput, match="entity 'driver', which is not registered"):
        store.apply([view])
    bad_col = FeatureView(
        name="bad",
        entities=[driver],
        schema=[Field(name="nope", dtype=Float32)],
        source=view.source,
    )
    with pytest.raises(InvalidInput, match="has no column 'nope'"):
        store.apply([driver, bad_col])
    missing = FeatureView(
        name="missing",
        entities=[driver],
        source=FileSource(path=str(tmp_path / "absent.parquet"), timestamp_field="ts"),
    )
    with pytest.raises(InvalidInput, match="cannot read source"):
        store.apply([driver, missing])
    with pytest.raises(InvalidInput, match="defined twice, differently"):
        store.apply(
            [driver, view, FeatureView(name="driver_stats", entities=[driver], source=view.source)]
        )
    bad_ts = FeatureView(
        name="bad_ts",
        entities=[driver],
        source=FileSource(path=view.source.path, timestamp_field="city"),
    )
    with pytest.raises(InvalidInput, match="not a timestamp"):
        store.apply([driver, bad_ts])
    store.apply([driver, view])
    with pytest.raises(InvalidInput, match="has no feature 'nope'"):
        store.apply([FeatureService(name="s", features=[view[["nope"]]])])
    with pytest.raises(InvalidInput, match="uses entity 'driver', which is not registered"):
        store.apply([view], partial=False)
    with pytest.raises(InvalidInput, match="cannot apply a str"):
        store.apply(["driver"])
    assert store.registry.list_objects("feature_view")[0]["name"] == "driver_stats"


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda: Entity(name="bad name"), "entity name"),
        (lambda: Entity(name="e", join_keys=[]), "non-empty"),
        (lambda: Entity(name="e", join_keys=["a:b"]), "join key"),
        (lambda: Field(name="x", dtype="Complex"), "unknown feature type"),
        (lambda: FileSource(path=""), "non-empty"),
        (lambda: FileSource(path="x.parquet", file_format="orc"), "file_format"),
        (lambda: FeatureView(name="v", entities=["e"], source=None), "FileSource"),
        (
            lambda: FeatureView(name="v", entities=["e"], source=FileSource(path="x"), ttl=-1),
            "negative",
        ),
        (lambda: FeatureService(name="s", features=[]), "at least one"),
        (
            lambda: FeatureView(
                name="v",
                entities=["e"],
                source=FileSource(path="x"),
                schema=[Field(name="a", dtype=Float32), Field(name="a", dtype=Float32)],
            ),
            "twice",
        ),
    ],
)
def test_definition_validation(make: Any, message: str) -> None:
    with pytest.raises(InvalidInput, match=message):
        make()


def test_training_set_becomes_a_dataset_with_view_versions(
    make_store: Any, driver_repo: dict[str, Any]
) -> None:
    import loopml
    import loopml.data as ld
    from loopml import register_model

    store = make_store()
    store.apply([driver_repo["driver"], driver_repo["view"]])
    entity = pd.DataFrame(
        {
            "driver_id": [1000, 1001],
            "event_timestamp": pd.to_datetime(["2026-11-02"] * 2, utc=True),
        }
    )
    with loopml.start_run() as run:
        version = store.get_historical_features(entity, ["driver_stats:trips"]).to_dataset(
            "driver_train"
        )
        from sklearn.linear_model import LinearRegression

        from loopml.models import log_model

        log_model(LinearRegression().fit([[0.0], [1.0]], [0.0, 1.0]), "model", onnx=False)
    assert version.tags["loopml.feature_views"] == "driver_stats@1"
    assert [v.ref for v in ld.run_datasets(run.info.run_id)] == ["driver_train@1"]
    loaded = ld.load("driver_train@1")
    assert loaded["trips"].tolist() == [3, 103]
    mv = register_model(f"runs:/{run.info.run_id}/model", "driver_model")
    assert mv.feature_views == ["driver_stats@1"]
