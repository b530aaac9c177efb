"""MLflow's model format, both ways, against the real mlflow package: a loopml folder's
``MLmodel`` lets MLflow's loaders read loopml's model file, and ``load_model`` reads sklearn
models the mlflow client saved (cloudpickle, pickle, skops), only with ``trusted=True``."""

from __future__ import annotations

import json
import sys
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import yaml

import loopml
import loopml.tracking._fluent as fluent
from loopml.config import reset_settings
from loopml.errors import IntegrityError, InvalidInput, MissingDependency
from loopml.models import ColSpec, Signature, TensorSpec, load_model, log_model, save_model
from loopml.models._mlmodel import signature_from_mlflow, signature_to_mlflow
from loopml.registry import get_registry

pytest.importorskip("mlflow")
pytest.importorskip("skops")
with warnings.catch_warnings():
    # mlflow.pyfunc warns, as it is imported, about type hints of its own.
    warnings.filterwarnings("ignore", ".*Any type hint is inferred as AnyType", UserWarning)
    import mlflow.pyfunc
    import mlflow.sklearn

# Only the types a forest adds to skops' defaults (what mlflow 3.17 needs to save one).
FOREST_TYPES = ["sklearn.tree._tree.Tree"]


@pytest.fixture(scope="module")
def pipeline(frame: pd.DataFrame, labels: np.ndarray) -> Any:
    """Scaling then a logistic regression, fitted on the DataFrame."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    return make_pipeline(StandardScaler(), LogisticRegression()).fit(frame, labels)


def _mlmodel(folder: Path) -> dict[str, Any]:
    return yaml.safe_load((folder / "MLmodel").read_text())


def _mlflow_save(model: Any, path: Path, **kwargs: Any) -> Path:
    """Save with the mlflow client; pinned requirements skip its slow import-graph inference."""
    mlflow.sklearn.save_model(model, str(path), pip_requirements=["scikit-learn"], **kwargs)
    return path


# -- loopml → MLflow ---------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["forest", "pipeline"])
def test_mlflow_loads_a_model_loopml_saved(
    tmp_path: Path, frame: pd.DataFrame, request: pytest.FixtureRequest, name: str
) -> None:
    model = request.getfixturevalue(name)
    manifest = save_model(model, tmp_path / "m", input_example=frame.head(5), onnx=False)
    expected = model.predict(frame)

    wrapped = mlflow.pyfunc.load_model(str(tmp_path / "m"))
    np.testing.assert_array_equal(wrapped.predict(frame), expected)
    native = mlflow.sklearn.load_model(str(tmp_path / "m"))
    assert type(native) is type(model)
    np.testing.assert_array_equal(native.predict(frame), expected)
    np.testing.assert_allclose(native.predict_proba(frame), model.predict_proba(frame))

    # The MLmodel names loopml's own pickle, and the manifest pins the MLmodel.
    doc = _mlmodel(tmp_path / "m")
    assert doc["flavors"]["sklearn"]["pickled_model"] == manifest["model"]["file"] == "model.pkl"
    assert doc["flavors"]["sklearn"]["serialization_format"] == "cloudpickle"
    assert doc["flavors"]["python_function"]["loader_module"] == "mlflow.sklearn"
    assert "MLmodel" in manifest["files"]
    assert not {"model_uuid", "utc_time_created", "mlflow_version"} & set(doc)
    assert "saved_input_example_info" not in doc


def test_loopml_signature_reads_as_mlflow_infers_it(
    tmp_path: Path, forest: Any, frame: pd.DataFrame, labels: np.ndarray
) -> None:
    from mlflow.models import Model, infer_signature
    from sklearn.linear_model import LogisticRegression

    save_model(forest, tmp_path / "m", input_example=frame.head(5), onnx=False)
    # MLflow's own inference on the same data is the independent reference.
    assert Model.load(str(tmp_path / "m")).signature == infer_signature(
        frame.head(5), forest.predict(frame.head(5))
    )
    arrays = frame.to_numpy()
    plain = LogisticRegression().fit(arrays, labels)  # fitted without feature names
    save_model(plain, tmp_path / "t", input_example=arrays[:5], onnx=False)
    assert Model.load(str(tmp_path / "t")).signature == infer_signature(
        arrays[:5], plain.predict(arrays[:5])
    )
    wrapped = mlflow.pyfunc.load_model(str(tmp_path / "t"))
    np.testing.assert_array_equal(wrapped.predict(arrays), plain.predict(arrays))


def test_tampered_mlmodel_is_refused_by_loopml(tmp_path: Path, forest: Any) -> None:
    save_model(forest, tmp_path / "m", onnx=False)
    mlmodel = tmp_path / "m" / "MLmodel"
    mlmodel.write_text(mlmodel.read_text().replace("model.pkl", "other.pkl"))
    with pytest.raises(IntegrityError, match="'MLmodel' does not match"):
        load_model(tmp_path / "m", trusted=True)


def test_mlflow_loads_a_model_loopml_logged_from_the_run_artifacts(
    forest: Any, frame: pd.DataFrame
) -> None:
    with loopml.start_run() as run:
        info = log_model(forest, "model", onnx=False)
    artifacts = loopml.get_run(run.info.run_id).info.artifact_uri
    wrapped = mlflow.pyfunc.load_model(f"{artifacts}/model")
    np.testing.assert_array_equal(wrapped.predict(frame), forest.predict(frame))
    assert load_model(info.model_uri).digest == info.digest  # still verified by loopml


def test_xgboost_and_lightgbm_models_load_in_mlflow(
    tmp_path: Path, frame: pd.DataFrame, labels: np.ndarray
) -> None:
    import lightgbm
    import mlflow.lightgbm
    import mlflow.xgboost
    import xgboost

    xgb = xgboost.XGBClassifier(n_estimators=3, max_depth=2).fit(frame, labels)
    lgb = lightgbm.LGBMClassifier(n_estimators=3, verbose=-1).fit(frame, labels)
    for name, model, module in [
        ("x", xgb, mlflow.xgboost),
        ("l", lgb, mlflow.lightgbm),
        ("b", lgb.booster_, mlflow.lightgbm),
    ]:
        save_model(model, tmp_path / name, onnx=False)
        wrapped = mlflow.pyfunc.load_model(str(tmp_path / name))
        np.testing.assert_allclose(wrapped.predict(frame), model.predict(frame))
        assert type(module.load_model(str(tmp_path / name))) is type(model)


def test_no_mlmodel_for_flavors_mlflow_cannot_read_from_loopml_files(tmp_path: Path) -> None:
    class Doubler(loopml.models.PythonModel):
        def predict(self, context: Any, model_input: Any) -> Any:
            return model_input * 2

    manifest = save_model(Doubler(), tmp_path / "p")
    assert "MLmodel" not in manifest["files"]
    assert not (tmp_path / "p" / "MLmodel").exists()


# -- MLflow → loopml ---------------------------------------------------------------------------
@pytest.mark.parametrize(
    "kwargs",
    [
        {"serialization_format": "cloudpickle"},
        {"serialization_format": "pickle"},
        {"skops_trusted_types": FOREST_TYPES},  # mlflow's default format
    ],
    ids=["cloudpickle", "pickle", "skops"],
)
def test_loopml_loads_a_forest_mlflow_saved(
    tmp_path: Path, forest: Any, frame: pd.DataFrame, kwargs: dict[str, Any]
) -> None:
    path = _mlflow_save(forest, tmp_path / "m", **kwargs)
    with pytest.raises(
        InvalidInput, match="this model was not saved by loopml; pass trusted=True"
    ):
        load_model(path)

    loaded = load_model(path, trusted=True)
    assert (loaded.flavor, loaded.runtime, loaded.signature) == ("sklearn", "native", None)
    np.testing.assert_array_equal(loaded.predict(frame), forest.predict(frame))
    np.testing.assert_allclose(loaded.predict_proba(frame), forest.predict_proba(frame))
    assert loaded.manifest["format"] == "mlflow"
    assert loaded.manifest["mlmodel"]["flavors"]["sklearn"]["pickled_model"].startswith("model.")
    native = load_model(path, trusted=True, flavor="native")
    assert type(native) is type(forest)


def test_loopml_loads_a_pipeline_mlflow_saved_with_skops(
    tmp_path: Path, pipeline: Any, frame: pd.DataFrame
) -> None:
    path = _mlflow_save(pipeline, tmp_path / "m")  # skops; its default types suffice
    np.testing.assert_array_equal(
        load_model(path, trusted=True).predict(frame), pipeline.predict(frame)
    )


def test_mlflow_signature_is_read_and_enforced(
    tmp_path: Path, forest: Any, frame: pd.DataFrame
) -> None:
    from mlflow.models import infer_signature

    signature = infer_signature(frame, forest.predict_proba(frame))
    path = _mlflow_save(
        forest, tmp_path / "m", serialization_format="cloudpickle", signature=signature
    )
    loaded = load_model(path, trusted=True)
    assert loaded.signature == Signature(
        [ColSpec(c, "double") for c in "abcd"], [TensorSpec("float64", (-1, 2))]
    )
    with pytest.raises(InvalidInput, match="missing column 'd'"):
        loaded.predict(frame[["a", "b", "c"]])


def test_skops_types_outside_the_mlmodel_list_are_refused(tmp_path: Path, forest: Any) -> None:
    path = _mlflow_save(forest, tmp_path / "m", skops_trusted_types=FOREST_TYPES)
    doc = _mlmodel(path)
    doc["flavors"]["sklearn"]["skops_trusted_types"] = None
    (path / "MLmodel").write_text(yaml.safe_dump(doc))
    with pytest.raises(InvalidInput, match="skops refused.*sklearn.tree._tree.Tree"):
        load_model(path, trusted=True)


def test_skops_not_installed_is_a_missing_dependency(
    tmp_path: Path, forest: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = _mlflow_save(forest, tmp_path / "m", skops_trusted_types=FOREST_TYPES)
    for module in [m for m in sys.modules if m == "skops" or m.startswith("skops.")]:
        monkeypatch.delitem(sys.modules, module)
    monkeypatch.setitem(sys.modules, "skops", None)  # as if it were not installed
    with pytest.raises(MissingDependency, match="skops is not installed"):
        load_model(path, trusted=True)


def test_other_mlflow_flavors_are_refused(
    tmp_path: Path, frame: pd.DataFrame, labels: np.ndarray
) -> None:
    import mlflow.xgboost
    import xgboost

    model = xgboost.XGBClassifier(n_estimators=2).fit(frame, labels)
    mlflow.xgboost.save_model(model, str(tmp_path / "x"), pip_requirements=["xgboost"])
    with pytest.raises(
        InvalidInput, match=r"flavors python_function, xgboost.*sklearn flavor only"
    ):
        load_model(tmp_path / "x", trusted=True)


def test_unknown_serialization_or_outside_path_in_mlmodel(tmp_path: Path, forest: Any) -> None:
    path = _mlflow_save(forest, tmp_path / "m", serialization_format="cloudpickle")
    doc = _mlmodel(path)
    doc["flavors"]["sklearn"]["serialization_format"] = "joblib"
    (path / "MLmodel").write_text(yaml.safe_dump(doc))
    with pytest.raises(InvalidInput, match="serialized as 'joblib'"):
        load_model(path, trusted=True)
    doc["flavors"]["sklearn"].update(serialization_format="pickle", pickled_model="../x.pkl")
    (path / "MLmodel").write_text(yaml.safe_dump(doc))
    with pytest.raises(IntegrityError, match="outside the model"):
        load_model(path, trusted=True)


def test_mlflow_model_in_a_run_or_the_registry_needs_trusted(
    tmp_path: Path, forest: Any, frame: pd.DataFrame
) -> None:
    path = _mlflow_save(forest, tmp_path / "m", serialization_format="cloudpickle")
    with loopml.start_run() as run:
        loopml.log_artifacts(str(path), "model")
    uri = f"runs:/{run.info.run_id}/model"
    with pytest.raises(
        InvalidInput, match="this model was not saved by loopml; pass trusted=True"
    ):
        load_model(uri)
    np.testing.assert_array_equal(
        load_model(uri, trusted=True).predict(frame), forest.predict(frame)
    )

    registry = get_registry()
    registry.create_registered_model("foreign")
    registry.create_model_version("foreign", uri, run_id=run.info.run_id)  # no manifest digest
    with pytest.raises(
        InvalidInput, match="this model was not saved by loopml; pass trusted=True"
    ):
        load_model("models:/foreign/1")
    loaded = load_model("models:/foreign/1", trusted=True)
    np.testing.assert_array_equal(loaded.predict(frame), forest.predict(frame))


def test_logged_model_replaced_by_an_mlflow_model_is_refused(tmp_path: Path, forest: Any) -> None:
    with loopml.start_run() as run:
        info = log_model(forest, "model", onnx=False)
    store = loopml.get_store()
    store.delete_artifact(run.info.run_id, "model/loopml-model.json")
    _mlflow_save(forest, tmp_path / "m", serialization_format="cloudpickle")
    for rel in ["MLmodel", "model.pkl"]:  # the run's digest tag still names the old manifest
        store.upload_artifact(run.info.run_id, tmp_path / "m" / rel, f"model/{rel}")
    for trusted in (False, True):
        with pytest.raises(IntegrityError, match="holds no loopml-model.json.*store recorded"):
            load_model(info.model_uri, trusted=trusted)


# -- signatures in MLflow's form ---------------------------------------------------------------
def test_signature_round_trips_through_mlflow_form() -> None:
    columns = Signature(
        [ColSpec("x", "double"), ColSpec("k", "long"), ColSpec("s", "string")],
        [ColSpec("score", "float")],
    )
    tensor = Signature([TensorSpec("float32", (-1, 3), "pixels")], [TensorSpec("str", (-1,))])
    for sig in (columns, tensor, Signature([ColSpec("when", "datetime")])):
        assert signature_from_mlflow(signature_to_mlflow(sig)) == sig


@pytest.mark.parametrize(
    ("inputs", "outputs", "expected"),
    [
        ([{"type": "double"}], None, None),  # unnamed column
        ([{"type": "double", "name": "a", "required": False}], None, None),  # optional
        ([{"type": {"type": "array", "items": {"type": "double"}}, "name": "a"}], None, None),
        ([{"type": "tensor", "tensor-spec": {"dtype": "object", "shape": [-1]}}], None, None),
        (
            [{"type": "double", "name": "a"}],
            [{"type": "tensor", "tensor-spec": {"dtype": "object", "shape": [-1]}}],
            Signature([ColSpec("a", "double")]),  # outputs without a loopml form are dropped
        ),
    ],
)
def test_mlflow_signatures_without_a_faithful_loopml_form(
    inputs: list[Any], outputs: list[Any] | None, expected: Signature | None
) -> None:
    raw = {
        "inputs": json.dumps(inputs),
        "outputs": None if outputs is None else json.dumps(outputs),
    }
    assert signature_from_mlflow(raw) == expected


# -- both ways through a loopml server ---------------------------------------------------------
@pytest.fixture
def server_url(
    server_factory: Callable[..., Any], monkeypatch: pytest.MonkeyPatch
) -> Iterator[str]:
    """A real loopml server that both loopml's SDK and the mlflow client talk to."""
    url = str(server_factory().url)
    monkeypatch.setenv("LOOPML_TRACKING_URI", url)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", url)
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    monkeypatch.setenv("MLFLOW_DISABLE_TELEMETRY", "true")
    reset_settings()
    fluent.reset()
    mlflow.set_tracking_uri(url)
    yield url
    while mlflow.active_run() is not None:
        mlflow.end_run()
    mlflow.set_tracking_uri(None)
    mlflow.tracking.fluent._active_experiment_id = None  # the next server has other ids


def test_runs_and_registry_uris_work_across_both_clients(
    server_url: str, forest: Any, frame: pd.DataFrame
) -> None:
    # loopml logs, the mlflow client loads the run's model by its runs:/ URI.
    with loopml.start_run():
        info = log_model(forest, "model", onnx=False)
    wrapped = mlflow.pyfunc.load_model(info.model_uri)
    np.testing.assert_array_equal(wrapped.predict(frame), forest.predict(frame))

    # The mlflow client logs and registers; loopml loads the version, only when trusted.
    with mlflow.start_run():
        mlflow.sklearn.log_model(
            forest,
            name="model",
            serialization_format="cloudpickle",
            pip_requirements=["scikit-learn"],
            registered_model_name="foreign",
        )
    with pytest.raises(
        InvalidInput, match="this model was not saved by loopml; pass trusted=True"
    ):
        load_model("models:/foreign/1")
    loaded = load_model("models:/foreign/1", trusted=True)
    assert loaded.manifest["format"] == "mlflow"
    np.testing.assert_array_equal(loaded.predict(frame), forest.predict(frame))
