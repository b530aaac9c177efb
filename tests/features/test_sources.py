"""Sources in CSV, in folders of Parquet files, with renamed columns, and on S3 (moto)."""

from __future__ import annotations

import datetime as dt
import io
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from loopml.config import reset_settings
from loopml.features import Entity, FeatureView, Field, FileSource, Float64, Int64

T = pd.Timestamp("2026-11-01", tz="UTC")


def _entity_df() -> pd.DataFrame:
    return pd.DataFrame(
        {"driver_id": [1000, 1001, 1004], "event_timestamp": [T + pd.Timedelta(hours=5)] * 3}
    )


def _view(source: FileSource) -> tuple[Entity, FeatureView]:
    driver = Entity(name="driver", join_keys=["driver_id"])
    view = FeatureView(
        name="stats",
        entities=[driver],
        schema=[Field(name="conv_rate", dtype=Float64), Field(name="trips", dtype=Int64)],
        source=source,
        ttl=dt.timedelta(days=1),
    )
    return driver, view


def test_csv_and_folder_sources_and_field_mapping(
    tmp_path: Path, make_store: Any, driver_rows: Any
) -> None:
    rows = driver_rows()
    csv = tmp_path / "stats.csv"
    rows.to_csv(csv, index=False)
    folder = tmp_path / "parts"
    folder.mkdir()
    rows.iloc[:10].rename(columns={"trips": "n_trips"}).to_parquet(folder / "a.parquet")
    rows.iloc[10:].rename(columns={"trips": "n_trips"}).to_parquet(folder / "b.parquet")
    want = [3.0, 13.0, 43.0]
    for source in (
        FileSource(
            path=str(csv), timestamp_field="event_timestamp", created_timestamp_column="created"
        ),
        FileSource(
            path=str(folder),
            timestamp_field="event_timestamp",
            field_mapping={"n_trips": "trips"},
        ),
    ):
        store = make_store()
        store.apply(list(_view(source)))
        got = store.get_historical_features(
            _entity_df(), ["stats:conv_rate", "stats:trips"]
        ).to_df()
        assert got["conv_rate"].tolist() == want
        assert got["trips"].tolist() == [3, 103, 403]
        [res] = store.materialize(T - pd.Timedelta(days=1), T + pd.Timedelta(days=1))
        assert res.rows == 5


@pytest.mark.s3
def test_s3_source(
    s3_bucket: tuple[Any, str],
    moto_endpoint: str,
    monkeypatch: pytest.MonkeyPatch,
    make_store: Any,
    driver_rows: Any,
) -> None:
    client, bucket = s3_bucket
    monkeypatch.setenv("LOOPML_S3_ENDPOINT_URL", moto_endpoint)
    reset_settings()
    buf = io.BytesIO()
    driver_rows().to_parquet(buf)
    client.put_object(Bucket=bucket, Key="features/stats.parquet", Body=buf.getvalue())
    source = FileSource(
        path=f"s3://{bucket}/features/stats.parquet",
        timestamp_field="event_timestamp",
        created_timestamp_column="created",
    )
    store = make_store()
    store.apply(list(_view(source)))
    got = store.get_historical_features(_entity_df(), ["stats:conv_rate"]).to_df()
    assert got["conv_rate"].tolist() == [3.0, 13.0, 43.0]
    [res] = store.materialize(T - pd.Timedelta(days=1), T + pd.Timedelta(days=1))
    assert res.rows == 5
