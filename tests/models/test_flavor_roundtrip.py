"""Every flavor round-trips: save → load → the same predictions as the original object, through
the native runtime and, where a copy was kept, through ONNX Runtime."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

import loopml.models.pyfunc
import loopml.models.sklearn
from loopml.errors import AlreadyExists, InvalidInput, InvalidState
from loopml.models import (
    ColSpec,
    PythonModel,
    PythonModelContext,
    Signature,
    TensorSpec,
    load_model,
    manifest_digest,
    save_model,
)

PROBA_TOL = 1e-5


def _both(path: Path) -> tuple[Any, Any]:
    return load_model(path, trusted=True, runtime="native"), load_model(path, trusted=True)


def _check_same(original: Any, path: Path, x: Any, *, proba: bool, onnx: bool) -> None:
    """Native and ONNX runtimes give the original's labels exactly, probabilities within 1e-5."""
    native, auto = _both(path)
    assert native.runtime == "native"
    assert auto.runtime == ("onnx" if onnx else "native")
    expected = original.predict(x)
    for model in (native, auto):
        got = model.predict(x)
        assert got.dtype == expected.dtype and got.shape == expected.shape
        if expected.dtype.kind == "f":
            np.testing.assert_allclose(got, expected, atol=PROBA_TOL, rtol=0)
        else:
            np.testing.assert_array_equal(got, expected)
        if proba:
            p = model.predict_proba(x)
            assert p.ndim == 2 and p.dtype.kind == "f"
            np.testing.assert_allclose(p, original.predict_proba(x), atol=PROBA_TOL, rtol=0)
    if onnx:
        assert type(auto.native) is type(original)  # .native is the original even on ONNX


# -- scikit-learn ------------------------------------------------------------------------------
def test_sklearn_forest_round_trips_with_onnx(
    tmp_path: Path, forest: Any, frame: pd.DataFrame
) -> None:
    manifest = save_model(forest, tmp_path / "m", input_example=frame.head(20))
    assert manifest["flavor"] == "sklearn"
    assert manifest["onnx"]["available"], manifest["onnx"]
    assert manifest["onnx"]["input_type"] == "tensor(float)"
    _check_same(forest, tmp_path / "m", frame, proba=True, onnx=True)


def test_sklearn_pipeline_with_string_columns_and_labels(tmp_path: Path) -> None:
    from sklearn.compose import ColumnTransformer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    rng = np.random.default_rng(3)
    x = pd.DataFrame(
        {
            "amount": rng.normal(size=80),
            "visits": rng.integers(0, 9, size=80),
            "plan": rng.choice(["basic", "pro", "team"], size=80),
        }
    )
    y = np.where((x["amount"] > 0) & (x["plan"] != "basic"), "churn", "stay")
    pipe = Pipeline(
        [
            (
                "prep",
                ColumnTransformer(
                    [
                        ("num", StandardScaler(), ["amount", "visits"]),
                        ("cat", OneHotEncoder(), ["plan"]),
                    ]
                ),
            ),
            ("clf", LogisticRegression()),
        ]
    ).fit(x, y)
    manifest = save_model(pipe, tmp_path / "p", input_example=x.head(30))
    assert manifest["onnx"]["available"], manifest["onnx"]
    assert manifest["onnx"]["input_layout"] == "columns"
    assert [c["type"] for c in manifest["signature"]["inputs"]] == ["double", "long", "string"]
    _check_same(pipe, tmp_path / "p", x, proba=True, onnx=True)
    # records (as a JSON request would bring them) give the same labels
    loaded = load_model(tmp_path / "p", trusted=True)
    assert (
        loaded.predict(x.head(5).to_dict("records")).tolist() == pipe.predict(x.head(5)).tolist()
    )


def test_sklearn_regressor_on_numpy_has_a_tensor_signature(
    tmp_path: Path, frame: pd.DataFrame, target: np.ndarray
) -> None:
    from sklearn.linear_model import Ridge

    x = frame.to_numpy()
    model = Ridge().fit(x, target)
    manifest = save_model(model, tmp_path / "r", input_example=x[:10])
    assert manifest["signature"]["inputs"] == [
        {"type": "tensor", "dtype": "float64", "shape": [-1, 4]}
    ]
    assert manifest["onnx"]["available"], manifest["onnx"]
    _check_same(model, tmp_path / "r", x, proba=False, onnx=True)
    with pytest.raises(InvalidState, match="sklearn.*Ridge has no predict_proba"):
        load_model(tmp_path / "r", trusted=True).predict_proba(x)


def test_load_native_and_per_flavor_modules_give_the_original_object(
    tmp_path: Path, forest: Any, frame: pd.DataFrame
) -> None:
    loopml.models.sklearn.save_model(forest, tmp_path / "m", input_example=frame.head(5))
    for obj in (
        load_model(tmp_path / "m", flavor="native", trusted=True),
        loopml.models.sklearn.load_model(tmp_path / "m", trusted=True),
    ):
        assert type(obj) is type(forest)
        np.testing.assert_array_equal(obj.predict(frame), forest.predict(frame))
    wrapped = loopml.models.pyfunc.load_model(tmp_path / "m", trusted=True)
    assert wrapped.flavor == "sklearn"
    with pytest.raises(InvalidInput, match="is a sklearn model, not xgboost"):
        load_model(tmp_path / "m", flavor="xgboost", trusted=True)


# -- XGBoost -----------------------------------------------------------------------------------
def test_xgboost_classifier_is_saved_natively_and_converts(
    tmp_path: Path, frame: pd.DataFrame, labels: np.ndarray
) -> None:
    import xgboost

    y3 = labels + (frame["c"].to_numpy() > 0.5)
    model = xgboost.XGBClassifier(n_estimators=10, max_depth=3).fit(frame, y3)
    manifest = save_model(model, tmp_path / "x", input_example=frame.head(20))
    assert manifest["flavor"] == "xgboost"
    assert manifest["model"]["serialization"] == "xgboost-ubj"
    assert sorted(manifest["files"]) == [
        "MLmodel",
        "input_example.json",
        "model.onnx",
        "model.ubj",
        "requirements.txt",
    ]
    assert "xgboost" in manifest["versions"]
    _check_same(model, tmp_path / "x", frame, proba=True, onnx=True)


def test_xgboost_regressor_and_booster(
    tmp_path: Path, frame: pd.DataFrame, target: np.ndarray, labels: np.ndarray
) -> None:
    import xgboost

    x = frame.to_numpy()
    reg = xgboost.XGBRegressor(n_estimators=10, max_depth=3).fit(x, target)
    save_model(reg, tmp_path / "reg", input_example=x[:20])
    _check_same(reg, tmp_path / "reg", x, proba=False, onnx=True)

    booster = xgboost.train(
        {"objective": "binary:logistic", "max_depth": 3},
        xgboost.DMatrix(frame, label=labels),
        num_boost_round=10,
    )
    manifest = save_model(booster, tmp_path / "b", input_example=frame.head(20))
    assert manifest["onnx"]["available"], manifest["onnx"]
    # the Booster predicts P(class 1): ONNX's probabilities column 1 reproduces it
    assert manifest["onnx"]["outputs"]["predict"]["column"] == 1
    for model in _both(tmp_path / "b"):
        np.testing.assert_allclose(
            model.predict(frame), booster.inplace_predict(frame), atol=PROBA_TOL, rtol=0
        )
        with pytest.raises(InvalidState, match="xgboost model: an xgboost Booster has no"):
            model.predict_proba(frame)


# -- LightGBM ----------------------------------------------------------------------------------
def test_lightgbm_classifier_with_string_classes(
    tmp_path: Path, frame: pd.DataFrame, classes3: np.ndarray
) -> None:
    import lightgbm

    model = lightgbm.LGBMClassifier(n_estimators=10, verbose=-1).fit(frame, classes3)
    manifest = save_model(model, tmp_path / "l", input_example=frame.head(30))
    assert manifest["flavor"] == "lightgbm"
    assert manifest["onnx"]["available"], manifest["onnx"]
    _check_same(model, tmp_path / "l", frame, proba=True, onnx=True)


def test_lightgbm_booster_is_saved_as_text(
    tmp_path: Path, frame: pd.DataFrame, target: np.ndarray
) -> None:
    import lightgbm

    booster = lightgbm.train(
        {"objective": "regression", "verbose": -1}, lightgbm.Dataset(frame, label=target), 10
    )
    manifest = save_model(booster, tmp_path / "b", input_example=frame.head(20))
    assert manifest["model"]["file"] == "model.txt"
    assert manifest["onnx"]["available"], manifest["onnx"]
    for model in _both(tmp_path / "b"):
        np.testing.assert_allclose(
            model.predict(frame), booster.predict(frame), atol=PROBA_TOL, rtol=0
        )


# -- ONNX --------------------------------------------------------------------------------------
def _onnx_logistic(frame: pd.DataFrame, labels: np.ndarray) -> tuple[Any, Any]:
    from skl2onnx import to_onnx
    from sklearn.linear_model import LogisticRegression

    x = frame.to_numpy(dtype=np.float32)
    clf = LogisticRegression().fit(x, labels)
    return clf, to_onnx(clf, x[:1], options={"zipmap": False})


def test_onnx_model_proto_and_file(
    tmp_path: Path, frame: pd.DataFrame, labels: np.ndarray
) -> None:
    clf, proto = _onnx_logistic(frame, labels)
    x64 = frame.to_numpy()
    manifest = save_model(proto, tmp_path / "o")
    assert manifest["flavor"] == "onnx"
    assert manifest["onnx"] == {"available": True, "file": "model.onnx", "source": "flavor"}
    # no example and no signature: the graph's input gives a tensor signature
    assert manifest["signature"]["inputs"] == [
        {"type": "tensor", "dtype": "float32", "shape": [-1, 4], "name": "X"}
    ]
    loaded = load_model(tmp_path / "o", trusted=True)
    assert loaded.runtime == "onnx"
    assert type(loaded.native).__name__ == "ModelProto"
    np.testing.assert_array_equal(loaded.predict(x64), clf.predict(x64.astype(np.float32)))
    np.testing.assert_allclose(
        loaded.predict_proba(x64), clf.predict_proba(x64.astype(np.float32)), atol=PROBA_TOL
    )

    (tmp_path / "file.onnx").write_bytes(proto.SerializeToString())
    save_model(str(tmp_path / "file.onnx"), tmp_path / "from-file")
    assert manifest_digest(tmp_path / "from-file") != manifest_digest(tmp_path / "o")  # times
    again = load_model(tmp_path / "from-file", trusted=True)
    np.testing.assert_array_equal(again.predict(x64), clf.predict(x64.astype(np.float32)))


def test_invalid_onnx_file_is_refused(tmp_path: Path) -> None:
    import onnx

    bad = onnx.ModelProto()
    with pytest.raises(InvalidInput, match="not valid"):
        save_model(bad, tmp_path / "bad")
    with pytest.raises(InvalidInput, match="does not exist"):
        save_model(str(tmp_path / "missing.onnx"), tmp_path / "bad2")


# -- python models -----------------------------------------------------------------------------
class Scaled(PythonModel):
    """Multiplies column x by a factor read from a packaged file; returns two columns."""

    def load_context(self, context: PythonModelContext) -> None:
        self.factor = float(Path(context.artifacts["factor"]).read_text())

    def predict(self, context: PythonModelContext, model_input: pd.DataFrame) -> pd.DataFrame:
        scaled = model_input["x"] * self.factor
        return pd.DataFrame({"scaled": scaled, "positive": scaled > 0})


class PlainModel:
    """Not a PythonModel: any object with predict (and predict_proba) is a pyfunc model."""

    def predict(self, x: np.ndarray) -> list[int]:
        return [int(v > 0) for v in x[:, 0]]

    def predict_proba(self, x: np.ndarray) -> np.ndarray:
        p = 1 / (1 + np.exp(-x[:, 0]))
        return np.column_stack([1 - p, p])


def test_python_model_with_artifacts(tmp_path: Path) -> None:
    factor = tmp_path / "factor.txt"
    factor.write_text("2.5")
    example = pd.DataFrame({"x": [1.0, -2.0]})
    manifest = save_model(
        Scaled(), tmp_path / "py", artifacts={"factor": str(factor)}, input_example=example
    )
    assert manifest["flavor"] == "pyfunc"
    assert manifest["model"]["artifacts"] == {"factor": "artifacts/factor/factor.txt"}
    assert "artifacts/factor/factor.txt" in manifest["files"]
    assert manifest["signature"]["outputs"] == [
        {"name": "scaled", "type": "double"},
        {"name": "positive", "type": "boolean"},
    ]
    assert manifest["onnx"] == {
        "available": False,
        "reason": "there is no ONNX converter for pyfunc models",
    }
    factor.write_text("100")  # the packaged copy is what gets used
    loaded = load_model(tmp_path / "py", trusted=True)
    out = loaded.predict({"x": [2.0, -1.0]})
    assert isinstance(out, pd.DataFrame)
    assert out["scaled"].tolist() == [5.0, -2.5]
    assert out["positive"].tolist() == [True, False]
    with pytest.raises(InvalidState, match="pyfunc model: Scaled has no predict_proba"):
        loaded.predict_proba({"x": [1.0]})
    pd.testing.assert_frame_equal(loaded.input_example, example)


def test_plain_object_with_predict(tmp_path: Path) -> None:
    x = np.array([[0.5, 1.0], [-1.0, 2.0]])
    save_model(PlainModel(), tmp_path / "plain", input_example=x)
    loaded = load_model(tmp_path / "plain", trusted=True)
    assert loaded.flavor == "pyfunc"
    np.testing.assert_array_equal(loaded.predict(x), [1, 0])
    np.testing.assert_allclose(loaded.predict_proba(x), PlainModel().predict_proba(x))
    assert loaded.signature == Signature(
        [TensorSpec("float64", (-1, 2))], [TensorSpec("int64", (-1,))]
    )


def test_sklearn_estimator_can_be_forced_to_pyfunc(
    tmp_path: Path, forest: Any, frame: pd.DataFrame
) -> None:
    manifest = save_model(forest, tmp_path / "f", flavor="python_function", onnx=False)
    assert manifest["flavor"] == "pyfunc"
    loaded = load_model(tmp_path / "f", trusted=True)
    np.testing.assert_array_equal(loaded.predict(frame), forest.predict(frame))


# -- manifest and bad inputs -------------------------------------------------------------------
def test_manifest_records_files_versions_example_and_requirements(
    tmp_path: Path, forest: Any, frame: pd.DataFrame
) -> None:
    import hashlib

    manifest = save_model(
        forest, tmp_path / "m", input_example=frame.head(3), pip_requirements=["scikit-learn"]
    )
    folder = tmp_path / "m"
    on_disk = json.loads((folder / "loopml-model.json").read_text())
    assert on_disk == json.loads(json.dumps(manifest))
    assert on_disk["format_version"] == 1
    assert on_disk["created_at"].endswith("+00:00")
    assert set(on_disk["versions"]) >= {"python", "sklearn", "onnx", "onnxruntime"}
    for rel, digest in on_disk["files"].items():
        assert hashlib.sha256((folder / rel).read_bytes()).hexdigest() == digest
    assert (folder / "requirements.txt").read_text() == "scikit-learn\n"
    assert on_disk["requirements"] == ["scikit-learn"]
    assert on_disk["input_example"]["columns"] == ["a", "b", "c", "d"]
    assert (
        json.loads((folder / "input_example.json").read_text())["data"]
        == on_disk["input_example"]["data"]
    )
    raw = (folder / "loopml-model.json").read_bytes()
    assert manifest_digest(folder) == hashlib.sha256(raw).hexdigest()
    assert manifest_digest(folder / "loopml-model.json") == manifest_digest(folder)


def test_default_requirements_pin_the_libraries(tmp_path: Path, forest: Any) -> None:
    manifest = save_model(forest, tmp_path / "m")
    pins = dict(r.split("==") for r in manifest["requirements"])
    assert pins["scikit-learn"] == manifest["versions"]["sklearn"]
    assert "cloudpickle" in pins and "numpy" in pins


@pytest.mark.parametrize(
    ("model", "kwargs", "message"),
    [
        (object(), {}, "has no predict method"),
        ("model.pkl", {}, "has no predict method"),
        (PlainModel(), {"flavor": "tensorflow"}, "'tensorflow' is not one of"),
        (PlainModel(), {"flavor": "xgboost"}, "cannot be saved with flavor 'xgboost'"),
        (PlainModel(), {"onnx": "yes"}, "onnx must be"),
        (PlainModel(), {"signature": "x:double"}, "Signature"),
        (PlainModel(), {"pip_requirements": 3}, "pip_requirements"),
    ],
)
def test_bad_save_arguments_are_invalid_input(
    tmp_path: Path, model: Any, kwargs: dict[str, Any], message: str
) -> None:
    with pytest.raises(InvalidInput, match=message):
        save_model(model, tmp_path / "m", **kwargs)
    assert not (tmp_path / "m").exists() or not any((tmp_path / "m").iterdir())


def test_artifacts_only_for_pyfunc(tmp_path: Path, forest: Any) -> None:
    with pytest.raises(InvalidInput, match="only with pyfunc"):
        save_model(forest, tmp_path / "m", artifacts={"a": str(tmp_path)})


def test_example_that_breaks_the_signature_or_the_model(tmp_path: Path, forest: Any) -> None:
    sig = Signature([ColSpec("a", "double"), ColSpec("z", "double")])
    with pytest.raises(InvalidInput, match="missing column 'z'"):
        save_model(forest, tmp_path / "m", signature=sig, input_example={"a": [1.0], "b": [2.0]})
    with pytest.raises(InvalidInput, match="failed to predict its input_example"):
        save_model(forest, tmp_path / "m", input_example={"q": [1.0]})
    assert list(tmp_path.iterdir()) == []  # nothing half-written is left behind


def test_saving_over_a_model_is_refused(tmp_path: Path, forest: Any) -> None:
    save_model(forest, tmp_path / "m", onnx=False)
    with pytest.raises(AlreadyExists, match="not an empty folder"):
        save_model(forest, tmp_path / "m", onnx=False)
    (tmp_path / "empty").mkdir()
    save_model(forest, tmp_path / "empty", onnx=False)  # an empty folder is fine
