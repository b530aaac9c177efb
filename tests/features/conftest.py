"""Feature stores on a test's own home, with the SQLite or the Redis online store."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from loopml.features import (
    Entity,
    FeatureStore,
    FeatureView,
    Field,
    FileSource,
    Float64,
    Int64,
    String,
)

T0 = pd.Timestamp("2026-11-01", tz="UTC")


@pytest.fixture(params=["sqlite", "redis"])
def online_uri(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """Each online store backend."""
    if request.param == "redis":
        return str(request.getfixturevalue("redis_url"))
    return f"sqlite:///{tmp_path / 'online.db'}"


@pytest.fixture
def make_store(tmp_path: Path) -> Iterator[Callable[..., FeatureStore]]:
    """Builds FeatureStores on this test's home (SQLite metadata); closes them after."""
    made: list[FeatureStore] = []

    def make(online: str | None = None, **kwargs: Any) -> FeatureStore:
        store = FeatureStore(online_store=online, registry_ttl_seconds=0.0, **kwargs)
        made.append(store)
        return store

    yield make
    for s in made:
        s.close()


def driver_rows(n_drivers: int = 5, per: int = 4, *, start: pd.Timestamp = T0) -> pd.DataFrame:
    """A small driver-stats source: ``per`` hourly rows per driver."""
    rows = []
    for d in range(n_drivers):
        for h in range(per):
            rows.append(
                {
                    "driver_id": 1000 + d,
                    "event_timestamp": start + pd.Timedelta(hours=h),
                    "created": start + pd.Timedelta(hours=h, minutes=1),
                    "conv_rate": float(d * 10 + h),
                    "trips": d * 100 + h,
                    "city": f"c{d % 2}",
                }
            )
    return pd.DataFrame(rows)


@pytest.fixture
def driver_repo(tmp_path: Path) -> dict[str, Any]:
    """A driver entity, a Parquet source and a view over it (not yet applied)."""
    path = tmp_path / "driver_stats.parquet"
    driver_rows().to_parquet(path)
    driver = Entity(name="driver", join_keys=["driver_id"])
    view = FeatureView(
        name="driver_stats",
        entities=[driver],
        schema=[
            Field(name="conv_rate", dtype=Float64),
            Field(name="trips", dtype=Int64),
            Field(name="city", dtype=String),
        ],
        source=FileSource(
            path=str(path), timestamp_field="event_timestamp", created_timestamp_column="created"
        ),
        ttl=dt.timedelta(days=3650),
    )
    return {"driver": driver, "view": view, "path": path}


def random_source(
    rng: np.random.Generator, *, entities: int, rows: int, span_s: int, ties: bool = True
) -> pd.DataFrame:
    """Random feature rows with many equal event times (ties) and random created times; no two
    rows share key, event and created time (that tie has no right answer)."""
    ids = rng.integers(0, entities, rows)
    secs = rng.integers(0, span_s, rows)
    if ties:
        secs = secs - secs % 60  # minute resolution: plenty of equal event times
    created = secs + rng.integers(0, 5, rows) * 10  # some created ties as well
    frame = pd.DataFrame(
        {
            "eid": ids.astype("int64"),
            "ts": T0 + pd.to_timedelta(secs, unit="s"),
            "created": T0 + pd.to_timedelta(created, unit="s"),
            "a": rng.normal(size=rows),
            "b": rng.normal(size=rows).astype("float32"),
        }
    )
    return frame.drop_duplicates(["eid", "ts", "created"]).reset_index(drop=True)


@pytest.fixture(name="driver_rows")
def driver_rows_fixture() -> Callable[..., pd.DataFrame]:
    """The ``driver_rows`` builder."""
    return driver_rows


@pytest.fixture(name="random_source")
def random_source_fixture() -> Callable[..., pd.DataFrame]:
    """The ``random_source`` builder."""
    return random_source
