"""Small generated datasets and fitted models for the model-packaging tests."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest


@pytest.fixture(scope="session")
def frame() -> pd.DataFrame:
    """120 rows of four float64 features."""
    rng = np.random.default_rng(7)
    return pd.DataFrame(rng.normal(size=(120, 4)), columns=["a", "b", "c", "d"])


@pytest.fixture(scope="session")
def labels(frame: pd.DataFrame) -> np.ndarray:
    """Binary labels that depend on two of the features."""
    return (frame["a"] + 0.5 * frame["b"] > 0).to_numpy().astype(np.int64)


@pytest.fixture(scope="session")
def classes3(frame: pd.DataFrame) -> np.ndarray:
    """Three string classes."""
    return np.asarray(
        np.where(frame["a"] < -0.4, "low", np.where(frame["a"] > 0.4, "high", "mid"))
    )


@pytest.fixture(scope="session")
def target(frame: pd.DataFrame) -> np.ndarray:
    """A regression target of order 1."""
    return (frame.to_numpy() @ np.array([0.5, -0.25, 0.1, 0.0])).astype(np.float64)


@pytest.fixture(scope="session")
def forest(frame: pd.DataFrame, labels: np.ndarray) -> object:
    """A 10-tree random forest fitted on the DataFrame (it knows feature names)."""
    from sklearn.ensemble import RandomForestClassifier

    return RandomForestClassifier(n_estimators=10, random_state=0).fit(frame, labels)
