"""log_model, register_model and load_model by URI against the real embedded stores: runs:/,
models:/<name>/<version>, @alias, /<stage>, /latest, and malformed or missing references."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

import loopml
from loopml.errors import IntegrityError, InvalidInput, InvalidState, NotFound, RunNotFound
from loopml.models import ModelInfo, load_model, log_model, register_model, save_model
from loopml.registry import ModelVersionStatus, get_registry


def _same(model: Any, original: Any, frame: pd.DataFrame) -> bool:
    return bool((model.predict(frame) == original.predict(frame)).all())


# -- runs:/ ------------------------------------------------------------------------------------
def test_log_model_to_the_active_run_and_load_it_back(forest: Any, frame: pd.DataFrame) -> None:
    with loopml.start_run() as run:
        info = log_model(forest, "model", input_example=frame.head(5))
    run_id = run.info.run_id
    assert isinstance(info, ModelInfo)
    assert info.model_uri == f"runs:/{run_id}/model"
    assert (info.run_id, info.artifact_path, info.name, info.flavor) == (
        run_id,
        "model",
        "model",
        "sklearn",
    )
    assert info.onnx_available and info.onnx_reason is None
    assert info.signature is not None and info.signature.input_names == ["a", "b", "c", "d"]
    assert info.registered_model_version is None
    tags = loopml.get_run(run_id).data.tags
    assert tags["loopml.model_digest.model"] == info.digest
    assert tags["loopml.model_flavor.model"] == "sklearn"
    listed = {f.path for f in loopml.Client().list_artifacts(run_id, "model")}
    assert {"model/loopml-model.json", "model/model.pkl", "model/model.onnx"} <= listed

    loaded = load_model(info.model_uri)
    assert loaded.digest == info.digest
    assert loaded.metadata["run_id"] == run_id and loaded.metadata["artifact_path"] == "model"
    assert loaded.runtime == "onnx" and _same(loaded, forest, frame)
    assert _same(load_model(info.model_uri, runtime="native"), forest, frame)


def test_log_model_without_active_run_starts_and_ends_one(forest: Any) -> None:
    assert loopml.active_run() is None
    info = log_model(forest, artifact_path="models/forest", onnx=False)
    assert loopml.active_run() is None
    run = loopml.get_run(info.run_id)
    assert run.info.status == "FINISHED"
    assert info.model_uri == f"runs:/{info.run_id}/models/forest"
    assert run.data.tags["loopml.model_digest.models/forest"] == info.digest
    assert load_model(info.model_uri).flavor == "sklearn"


def test_log_model_path_arguments(forest: Any) -> None:
    with loopml.start_run():
        with pytest.raises(InvalidInput, match="name= or artifact_path="):
            log_model(forest, "a", artifact_path="b")
        with pytest.raises(InvalidInput, match="invalid artifact path"):
            log_model(forest, "../escape")
        assert log_model(forest, onnx=False).artifact_path == "model"  # MLflow's default


def test_failed_save_leaves_no_tag_and_fails_the_started_run(forest: Any) -> None:
    with pytest.raises(InvalidInput, match="failed to predict"):
        log_model(forest, "m", input_example={"nope": [1.0]})
    run = loopml.last_active_run()
    assert run is not None and run.info.status == "FAILED"
    assert not any(k.startswith("loopml.model_digest") for k in run.data.tags)


def test_missing_run_and_missing_path(forest: Any) -> None:
    with pytest.raises(RunNotFound):
        load_model("runs:/0123456789abcdef0123456789abcdef/model")
    with loopml.start_run() as run:
        log_model(forest, "model", onnx=False)
    with pytest.raises(InvalidInput, match="no tag loopml.model_digest.other"):
        load_model(f"runs:/{run.info.run_id}/other")
    with pytest.raises(NotFound):
        load_model(f"runs:/{run.info.run_id}/other", trusted=True)


# -- the registry ------------------------------------------------------------------------------
def _two_versions(forest: Any, frame: pd.DataFrame) -> tuple[ModelInfo, ModelInfo, Any]:
    """Versions 1 (the forest) and 2 (a logistic regression) of registered model 'churn'."""
    from sklearn.linear_model import LogisticRegression

    other = LogisticRegression().fit(frame, forest.predict(frame) ^ (frame["d"] > 1))
    with loopml.start_run():
        first = log_model(
            forest, "model", registered_model_name="churn", input_example=frame.head(5)
        )
    with loopml.start_run():
        second = log_model(
            other, "model", registered_model_name="churn", input_example=frame.head(5)
        )
    return first, second, other


def test_log_model_registers_a_version_with_the_digest(forest: Any, frame: pd.DataFrame) -> None:
    first, second, _ = _two_versions(forest, frame)
    assert (first.registered_model_name, first.registered_model_version) == ("churn", "1")
    assert second.registered_model_version == "2"
    version = get_registry().get_model_version("churn", "1")
    assert version.manifest_digest == first.digest
    assert version.source == first.model_uri
    assert version.run_id == first.run_id
    assert version.status == ModelVersionStatus.READY


def test_load_by_version_alias_stage_and_latest(forest: Any, frame: pd.DataFrame) -> None:
    first, second, other = _two_versions(forest, frame)
    registry = get_registry()
    registry.set_registered_model_alias("churn", "champion", "1")
    registry.transition_model_version_stage("churn", "1", "Production")
    registry.transition_model_version_stage("churn", "2", "Staging")

    cases = {
        "models:/churn/1": (first, forest),
        "models:/churn/2": (second, other),
        "models:/churn@champion": (first, forest),
        "models:/churn/Production": (first, forest),
        "models:/churn/production": (first, forest),
        "models:/churn/Staging": (second, other),
        "models:/churn/latest": (second, other),
    }
    for uri, (info, original) in cases.items():
        loaded = load_model(uri)
        assert loaded.digest == info.digest, uri
        assert _same(loaded, original, frame), uri
        assert loaded.metadata["name"] == "churn" and loaded.metadata["model_uri"] == uri
    assert load_model("models:/churn@champion").metadata["aliases"] == ["champion"]
    native = load_model("models:/churn/2", flavor="native")
    assert type(native).__name__ == "LogisticRegression"


def test_missing_registry_references_are_not_found(forest: Any, frame: pd.DataFrame) -> None:
    with loopml.start_run():
        log_model(forest, "model", registered_model_name="solo", onnx=False)
    for uri in (
        "models:/nobody/1",
        "models:/solo/7",
        "models:/solo@ghost",
        "models:/solo/Archived",
        "models:/nobody/latest",
    ):
        with pytest.raises(NotFound):
            load_model(uri)


def test_registered_version_with_a_tampered_manifest(
    tmp_path: Path, forest: Any, frame: pd.DataFrame
) -> None:
    with loopml.start_run() as run:
        log_model(forest, "model", registered_model_name="guarded", onnx=False)
    store = loopml.get_store()
    folder = store.download_artifacts(run.info.run_id, "model", tmp_path / "copy")
    manifest = json.loads((folder / "loopml-model.json").read_text())
    manifest["requirements"] = ["evil==1.0"]
    (folder / "loopml-model.json").write_text(json.dumps(manifest))
    store.upload_artifact(run.info.run_id, folder / "loopml-model.json", "model/loopml-model.json")
    with pytest.raises(IntegrityError, match="the store recorded"):
        load_model("models:/guarded/1")


def test_version_not_ready_is_refused(forest: Any) -> None:
    with loopml.start_run() as run:
        info = log_model(forest, "model", onnx=False)
    registry = get_registry()
    registry.create_registered_model("pending")
    registry.create_model_version(
        "pending",
        info.model_uri,
        run_id=run.info.run_id,
        manifest_digest=info.digest,
        status=ModelVersionStatus.PENDING_REGISTRATION,
    )
    with pytest.raises(InvalidState, match="PENDING_REGISTRATION"):
        load_model("models:/pending/1")


# -- register_model ----------------------------------------------------------------------------
def test_register_a_logged_model(forest: Any, frame: pd.DataFrame) -> None:
    with loopml.start_run():
        info = log_model(forest, "model", input_example=frame.head(5))
    version = register_model(info.model_uri, "from-run", tags={"team": "risk"})
    assert version.version == "1" and version.manifest_digest == info.digest
    assert version.tags == {"team": "risk"}
    assert _same(load_model("models:/from-run/1"), forest, frame)
    with pytest.raises(InvalidInput, match="registered already"):
        register_model("models:/from-run/1", "again")


def test_register_a_local_folder_uploads_its_files(
    tmp_path: Path, forest: Any, frame: pd.DataFrame
) -> None:
    save_model(forest, tmp_path / "m", input_example=frame.head(5))
    version = register_model(tmp_path / "m", "from-folder")
    assert version.source == "registry:"
    assert version.status == ModelVersionStatus.READY
    assert version.manifest_digest == loopml.models.manifest_digest(tmp_path / "m")
    loaded = load_model("models:/from-folder/1")  # no trusted=True: the registry vouches
    assert _same(loaded, forest, frame)
    assert loaded.runtime == "onnx"


def test_register_a_tampered_folder_is_refused(tmp_path: Path, forest: Any) -> None:
    save_model(forest, tmp_path / "m", onnx=False)
    (tmp_path / "m" / "model.pkl").write_bytes(b"not the model")
    with pytest.raises(IntegrityError, match="'model.pkl'"):
        register_model(tmp_path / "m", "tampered")


def test_failed_upload_marks_the_version_failed(
    tmp_path: Path, forest: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    save_model(forest, tmp_path / "m", onnx=False)
    registry = get_registry()

    def broken(*args: Any, **kwargs: Any) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(registry, "upload_version_artifact", broken)
    with pytest.raises(OSError, match="disk full"):
        register_model(tmp_path / "m", "unlucky")
    version = registry.get_model_version("unlucky", "1")
    assert version.status == ModelVersionStatus.FAILED_REGISTRATION
    assert "disk full" in (version.status_message or "")
    with pytest.raises(InvalidState, match="FAILED_REGISTRATION.*disk full"):
        load_model("models:/unlucky/1")


def test_register_a_run_path_without_a_digest(tmp_path: Path, forest: Any) -> None:
    save_model(forest, tmp_path / "m", onnx=False)
    with loopml.start_run() as run:
        loopml.log_artifacts(str(tmp_path / "m"), "raw")
    with pytest.raises(InvalidInput, match="no tag loopml.model_digest.raw"):
        register_model(f"runs:/{run.info.run_id}/raw", "raw")


# -- malformed URIs ----------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("uri", "message"),
    [
        ("runs:/", r"expected runs:/<run_id>/<path>"),
        ("runs:/abc", r"expected runs:/<run_id>/<path>"),
        ("runs:abc/model", r"expected runs:/<run_id>/<path>"),
        ("models:/", r"expected models:/<name>/<version>"),
        ("models:/churn", r"expected models:/<name>/<version>"),
        ("models:/@prod", r"expected models:/<name>/<version>"),
        ("models:/churn/Prod", r"a version number, a stage .* or latest"),
        ("s3://bucket/model", "unsupported scheme"),
        ("no/such/folder", "no folder exists"),
        ("", "non-empty"),
    ],
)
def test_malformed_uri_names_the_expected_form(uri: str, message: str) -> None:
    with pytest.raises(InvalidInput, match=message):
        load_model(uri)


def test_runs_uri_cannot_escape_the_run(forest: Any) -> None:
    with pytest.raises(InvalidInput, match="invalid artifact path"):
        load_model("runs:/abc/../other/model")


def test_predictions_agree_with_numpy_input(forest: Any, frame: pd.DataFrame) -> None:
    with loopml.start_run():
        info = log_model(forest, "model", input_example=frame.head(5))
    loaded = load_model(info.model_uri)
    np.testing.assert_array_equal(loaded.predict(frame.to_numpy()), forest.predict(frame))


def test_log_register_and_load_against_a_server_too(
    tracking_mode: str, forest: Any, frame: pd.DataFrame
) -> None:
    """The same flow embedded and through a real ``loopml server`` (REST stores)."""
    with loopml.start_run():
        info = log_model(
            forest, "model", registered_model_name="remote", input_example=frame.head(5)
        )
    get_registry().set_registered_model_alias("remote", "production", "1")
    for uri in (info.model_uri, "models:/remote@production"):
        loaded = load_model(uri)
        assert loaded.digest == info.digest
        assert _same(loaded, forest, frame)


class ReadsLazily(loopml.models.PythonModel):
    """Reads its packaged file at predict time, so the download must outlive load_model."""

    def load_context(self, context: loopml.models.PythonModelContext) -> None:
        self.path = Path(context.artifacts["offset"])

    def predict(self, context: Any, model_input: pd.DataFrame) -> np.ndarray:
        return model_input["x"].to_numpy() + float(self.path.read_text())


def test_python_model_artifacts_live_as_long_as_the_loaded_model(tmp_path: Path) -> None:
    import gc

    (tmp_path / "offset.txt").write_text("10")
    with loopml.start_run():
        info = log_model(
            ReadsLazily(),
            "py",
            artifacts={"offset": str(tmp_path / "offset.txt")},
            input_example={"x": [1.0]},
        )
    loaded = load_model(info.model_uri)
    path = loaded.native.path
    assert path.is_file() and not path.is_relative_to(tmp_path)
    assert loaded.predict({"x": [1.0, 2.0]}).tolist() == [11.0, 12.0]
    del loaded
    gc.collect()
    assert not path.exists()


def test_downloads_are_removed_after_loading(
    tmp_path: Path, forest: Any, frame: pd.DataFrame, monkeypatch: pytest.MonkeyPatch
) -> None:
    import tempfile

    scratch = tmp_path / "scratch"
    scratch.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(scratch))
    with loopml.start_run():
        info = log_model(
            forest, "model", registered_model_name="tidy", input_example=frame.head(5)
        )
    load_model(info.model_uri)
    load_model("models:/tidy/1", flavor="native")
    with pytest.raises(InvalidInput, match="not xgboost"):  # fails after the download
        load_model("models:/tidy/1", flavor="xgboost")
    assert [p.name for p in scratch.iterdir() if p.name.startswith("loopml-model-")] == []
