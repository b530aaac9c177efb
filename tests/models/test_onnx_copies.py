"""ONNX copies: kept only when they match the native model on the example, otherwise the reason
is recorded; the runtime choice follows the manifest."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from sklearn.base import BaseEstimator, ClassifierMixin

from loopml.errors import InvalidInput, InvalidState
from loopml.models import load_model, save_model


class Threshold(ClassifierMixin, BaseEstimator):
    """A custom scikit-learn classifier: no ONNX converter knows it."""

    def fit(self, x: Any, y: Any) -> Threshold:
        self.classes_ = np.unique(y)
        return self

    def predict(self, x: Any) -> np.ndarray:
        return (np.asarray(x)[:, 0] > 0).astype(np.int64)


def test_kept_copy_records_how_it_was_checked(
    tmp_path: Path, forest: Any, frame: pd.DataFrame
) -> None:
    onnx = save_model(forest, tmp_path / "m", input_example=frame.head(25))["onnx"]
    assert onnx["available"] is True
    assert onnx["file"] == "model.onnx"
    assert onnx["tolerance"] == 1e-5
    assert 0 <= onnx["max_abs_diff"] <= 1e-5
    assert onnx["validated_rows"] == 25
    assert onnx["converter"].startswith("skl2onnx ")
    assert onnx["outputs"]["predict"]["output"] == "label"
    assert onnx["outputs"]["predict_proba"]["output"] == "probabilities"
    assert (tmp_path / "m" / "model.onnx").is_file()


def test_custom_estimator_records_the_conversion_error(
    tmp_path: Path, frame: pd.DataFrame, labels: np.ndarray
) -> None:
    model = Threshold().fit(frame.to_numpy(), labels)
    manifest = save_model(model, tmp_path / "t", input_example=frame.to_numpy()[:5])
    assert manifest["flavor"] == "sklearn"
    onnx = manifest["onnx"]
    assert onnx["available"] is False
    assert "conversion failed" in onnx["reason"]
    assert "Threshold" in onnx["reason"]  # skl2onnx names the class it has no converter for
    assert not (tmp_path / "t" / "model.onnx").exists()
    loaded = load_model(tmp_path / "t", trusted=True)
    assert loaded.runtime == "native"
    with pytest.raises(InvalidState, match="has no ONNX copy: .*conversion failed"):
        load_model(tmp_path / "t", trusted=True, runtime="onnx")


def test_no_input_example_records_why(tmp_path: Path, forest: Any) -> None:
    manifest = save_model(forest, tmp_path / "m")
    assert manifest["signature"] is None and manifest["input_example"] is None
    assert manifest["onnx"]["available"] is False
    assert "no input example" in manifest["onnx"]["reason"]
    with pytest.raises(InvalidState, match="no input example"):
        load_model(tmp_path / "m", trusted=True, runtime="onnx")


def test_regressor_outside_tolerance_is_rejected_with_the_difference(
    tmp_path: Path, frame: pd.DataFrame
) -> None:
    """A forest regressor on targets in the hundreds: ONNX's float32 tree sums are off by more
    than 1e-5, and skl2onnx's double graph does not run on ONNX Runtime; both are recorded."""
    from sklearn.ensemble import RandomForestRegressor

    target = frame["a"].to_numpy() * 400 + 1000
    model = RandomForestRegressor(n_estimators=10, random_state=0).fit(frame, target)
    onnx = save_model(model, tmp_path / "r", input_example=frame.head(40))["onnx"]
    assert onnx["available"] is False
    reason = onnx["reason"]
    assert "tensor(float): predictions differ from the native model (values differ by up to" in (
        reason
    )
    assert "tensor(double)" in reason
    loaded = load_model(tmp_path / "r", trusted=True)
    assert loaded.runtime == "native"
    np.testing.assert_array_equal(loaded.predict(frame), model.predict(frame))


def test_onnx_false_skips_and_true_requires(
    tmp_path: Path, forest: Any, frame: pd.DataFrame, labels: np.ndarray
) -> None:
    off = save_model(forest, tmp_path / "off", input_example=frame.head(5), onnx=False)
    assert off["onnx"] == {
        "available": False,
        "reason": "ONNX conversion was turned off (onnx=False)",
    }
    model = Threshold().fit(frame.to_numpy(), labels)
    with pytest.raises(InvalidInput, match="no ONNX copy of the model: .*conversion failed"):
        save_model(model, tmp_path / "req", input_example=frame.to_numpy()[:5], onnx=True)
    assert not (tmp_path / "req").exists()
    kept = save_model(forest, tmp_path / "ok", input_example=frame.head(5), onnx=True)
    assert kept["onnx"]["available"] is True


def test_runtime_is_validated(tmp_path: Path, forest: Any) -> None:
    save_model(forest, tmp_path / "m", onnx=False)
    with pytest.raises(InvalidInput, match="runtime must be one of"):
        load_model(tmp_path / "m", trusted=True, runtime="gpu")  # type: ignore[arg-type]


def test_onnx_runtime_labels_keep_the_native_dtype(tmp_path: Path, frame: pd.DataFrame) -> None:
    from sklearn.tree import DecisionTreeClassifier

    y = np.where(frame["a"] > 0, "up", "down")
    model = DecisionTreeClassifier(max_depth=3, random_state=0).fit(frame, y)
    save_model(model, tmp_path / "m", input_example=frame.head(30))
    loaded = load_model(tmp_path / "m", trusted=True, runtime="onnx")
    got = loaded.predict(frame)
    assert got.dtype == model.predict(frame).dtype
    assert got.tolist() == model.predict(frame).tolist()
    assert loaded.predict_proba(frame).shape == (len(frame), 2)


def test_sessions_use_one_thread_for_small_batch_latency(
    tmp_path: Path, forest: Any, frame: pd.DataFrame
) -> None:
    from loopml.models._onnx import OnnxRunner

    save_model(forest, tmp_path / "m", input_example=frame.head(5))
    runner = OnnxRunner((tmp_path / "m" / "model.onnx").read_bytes())
    options = runner.session.get_session_options()
    assert options.intra_op_num_threads == 1
    assert options.inter_op_num_threads == 1
