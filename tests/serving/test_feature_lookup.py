"""A model logged with a feature service is served by entity keys alone: the inference server
reads the online features before predicting (the training frame came from the same views)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

import httpx
import pandas as pd
import pytest
from sklearn.linear_model import LinearRegression

import loopml
from loopml.errors import InvalidInput
from loopml.features import FeatureService, FeatureStore
from loopml.serving import ModelRuntime, create_serving_app

NOW = pd.Timestamp.now(tz="UTC").floor("s")


def test_served_by_entity_keys(
    server_factory: Callable[..., Any], driver_repo: dict[str, Any], driver_rows: Any
) -> None:
    driver_rows(start=NOW - pd.Timedelta(hours=4)).to_parquet(driver_repo["path"])
    view = driver_repo["view"]
    view.ttl = dt.timedelta(days=1)
    service = FeatureService(name="model_inputs", features=[view[["conv_rate", "trips"]]])
    store = FeatureStore()
    store.apply([driver_repo["driver"], view, service])
    store.materialize(NOW - pd.Timedelta(days=1), NOW)
    entity = pd.DataFrame(
        {
            "driver_id": [1000, 1001, 1002, 1003],
            "event_timestamp": [NOW] * 4,
            "y": [1.0, 2.0, 3.0, 4.5],
        }
    )
    train = store.get_historical_features(entity, service).to_df()
    x = train[["conv_rate", "trips"]]
    model = LinearRegression().fit(x, train["y"])
    with loopml.start_run():
        info = loopml.log_model(
            model, "model", registered_model_name="eta", input_example=x.iloc[:2], features=service
        )
    runtime = ModelRuntime.load(f"models:/eta/{info.registered_model_version}")
    assert runtime.info["features"] == {"service": "model_inputs"}
    url = server_factory(app=create_serving_app(runtime)).url
    with httpx.Client(base_url=url) as http:
        one = http.post("/predict", json={"driver_id": 1002})
        assert one.status_code == 200, one.text
        assert one.json()["prediction"] == pytest.approx(float(model.predict(x.iloc[[2]])[0]))
        many = http.post("/predict", json=[{"driver_id": 1000}, {"driver_id": 1003}]).json()
        assert many["predictions"] == pytest.approx(model.predict(x.iloc[[0, 3]]).tolist())
        bad = http.post("/predict", json={"id": 1000})
        assert bad.status_code == 400 and "entity key 'driver_id'" in bad.json()["message"]
    store.close()


def test_bad_feature_references_are_refused() -> None:
    with pytest.raises(InvalidInput, match="features must be"):
        loopml.log_model(LinearRegression().fit([[0.0]], [0.0]), "model", features=[1, 2])
