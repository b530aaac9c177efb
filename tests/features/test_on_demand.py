"""On-demand feature views: one function, the same values in training sets and online."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pandas as pd
import pytest

from loopml.errors import InvalidInput
from loopml.features import (
    FeatureService,
    Field,
    Float64,
    RequestSource,
    on_demand_feature_view,
)

NOW = pd.Timestamp.now(tz="UTC").floor("s")


@pytest.mark.parametrize("mode", ["pandas", "python"])
def test_same_values_offline_and_online(
    mode: str, make_store: Any, driver_repo: dict[str, Any], driver_rows: Any
) -> None:
    driver_rows(start=NOW - pd.Timedelta(hours=4)).to_parquet(driver_repo["path"])
    view = driver_repo["view"]
    view.ttl = dt.timedelta(days=1)
    request = RequestSource(name="req", schema=[Field(name="bonus", dtype=Float64)])

    if mode == "pandas":

        @on_demand_feature_view(
            sources=[view[["conv_rate", "trips"]], request],
            schema=[Field(name="score", dtype=Float64)],
        )
        def scored(inputs: pd.DataFrame) -> pd.DataFrame:
            return pd.DataFrame(
                {"score": inputs["conv_rate"] * 2 + inputs["trips"] + inputs["bonus"]}
            )

    else:

        @on_demand_feature_view(
            sources=[view[["conv_rate", "trips"]], request],
            schema=[Field(name="score", dtype=Float64)],
            mode="python",
        )
        def scored(inputs: dict[str, list[Any]]) -> dict[str, list[Any]]:
            return {
                "score": [
                    None if c is None else c * 2 + t + b
                    for c, t, b in zip(
                        inputs["conv_rate"], inputs["trips"], inputs["bonus"], strict=True
                    )
                ]
            }

    service = FeatureService(name="svc", features=[scored, view[["city"]]])
    store = make_store()
    store.apply([driver_repo["driver"], view, scored, service])
    assert store.registry.get_spec("on_demand_feature_view", "scored")["udf_source"].startswith(
        "def scored"
    )
    store.materialize(NOW - pd.Timedelta(days=1), NOW)
    entity = pd.DataFrame(
        {
            "driver_id": [1000, 1003, 4242],
            "event_timestamp": [NOW, NOW, NOW],
            "bonus": [0.5, 1.0, 2.0],
        }
    )
    offline = store.get_historical_features(entity, "svc").to_df()
    online = store.get_online_features(
        "svc",
        [
            {"driver_id": d, "bonus": b}
            for d, b in zip(entity.driver_id, entity.bonus, strict=True)
        ],
    ).to_dict()
    assert offline["score"].tolist()[:2] == [3 * 2 + 3 + 0.5, 33 * 2 + 303 + 1.0]
    assert online["score"][:2] == offline["score"].tolist()[:2]
    assert online["score"][2] is None and pd.isna(offline["score"].iloc[2])
    assert online["city"] == ["c0", "c1", None]
    with pytest.raises(InvalidInput, match="lacks 'bonus'"):
        store.get_online_features("svc", [{"driver_id": 1000}])
    with pytest.raises(InvalidInput, match="request field 'bonus'"):
        store.get_historical_features(entity.drop(columns=["bonus"]), "svc")


def test_a_failing_function_is_a_clear_error(make_store: Any, driver_repo: dict[str, Any]) -> None:
    view = driver_repo["view"]

    @on_demand_feature_view(sources=[view[["trips"]]], schema=[Field(name="bad", dtype=Float64)])
    def broken(inputs: pd.DataFrame) -> pd.DataFrame:
        raise ZeroDivisionError("boom")

    store = make_store()
    store.apply([driver_repo["driver"], view, broken])
    entity = pd.DataFrame(
        {"driver_id": [1000], "event_timestamp": [pd.Timestamp("2026-11-02", tz="UTC")]}
    )
    with pytest.raises(InvalidInput, match="'broken' failed: ZeroDivisionError: boom"):
        store.get_historical_features(entity, ["broken:bad"]).to_df()
