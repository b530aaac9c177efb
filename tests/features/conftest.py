"""Feature stores on a test's own home, with the SQLite or the Redis online store."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from loopml.features import FeatureStore

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


@pytest.fixture(name="random_source")
def random_source_fixture() -> Callable[..., pd.DataFrame]:
    """The ``random_source`` builder."""
    return random_source
