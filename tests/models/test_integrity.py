"""Integrity: recorded hashes are checked before anything is unpickled, a logged model is checked
against the digest its run recorded, and unverifiable models need ``trusted=True``."""

from __future__ import annotations

import json
import pickle
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

import loopml
from loopml import errors
from loopml.errors import IntegrityError, InvalidInput
from loopml.models import load_model, log_model, save_model

CANARY = "loopml-test-pickle-ran"


class _Boom:
    """Unpickling this sets a global: the test fails if a tampered pickle is ever loaded."""

    def __reduce__(self) -> Any:
        return (_ran, (CANARY,))


_RAN: list[str] = []


def _ran(marker: str) -> str:
    _RAN.append(marker)
    return marker


def test_integrity_error_is_a_409_with_its_own_code() -> None:
    assert issubclass(IntegrityError, errors.LoopmlError)
    assert IntegrityError.code == "INTEGRITY_ERROR" and IntegrityError.http_status == 409
    assert errors.error_from_code("INTEGRITY_ERROR", "m").__class__ is IntegrityError


def test_tampered_pickle_is_refused_before_unpickling(tmp_path: Path, forest: Any) -> None:
    save_model(forest, tmp_path / "m", onnx=False)
    (tmp_path / "m" / "model.pkl").write_bytes(pickle.dumps(_Boom()))
    _RAN.clear()
    with pytest.raises(IntegrityError, match=r"'model.pkl' does not match the SHA-256"):
        load_model(tmp_path / "m", trusted=True)
    assert _RAN == []


def test_tampered_onnx_copy_and_missing_file_are_refused(
    tmp_path: Path, forest: Any, frame: pd.DataFrame
) -> None:
    save_model(forest, tmp_path / "m", input_example=frame.head(5))
    onnx_file = tmp_path / "m" / "model.onnx"
    onnx_file.write_bytes(onnx_file.read_bytes() + b"\x00")
    with pytest.raises(IntegrityError, match="'model.onnx'"):
        load_model(tmp_path / "m", trusted=True, runtime="native")
    onnx_file.unlink()
    with pytest.raises(IntegrityError, match="'model.onnx' listed in the manifest is missing"):
        load_model(tmp_path / "m", trusted=True)


def test_local_path_needs_trusted(tmp_path: Path, forest: Any) -> None:
    save_model(forest, tmp_path / "m", onnx=False)
    with pytest.raises(InvalidInput, match="local path .*trusted=True"):
        load_model(tmp_path / "m")
    assert load_model(tmp_path / "m", trusted=True).flavor == "sklearn"
    assert load_model(f"file://{tmp_path / 'm'}", trusted=True).flavor == "sklearn"


def test_logged_model_with_tampered_manifest_is_refused(
    tmp_path: Path, forest: Any, frame: pd.DataFrame
) -> None:
    with loopml.start_run() as run:
        info = log_model(forest, "model", input_example=frame.head(5))
    assert (
        load_model(info.model_uri).predict(frame.head(3)).tolist()
        == forest.predict(frame.head(3)).tolist()
    )
    # Rewrite the stored manifest consistently (a new file hash list), as an attacker with
    # write access to the artifact store could: only the run's recorded digest catches it.
    store = loopml.get_store()
    folder = store.download_artifacts(run.info.run_id, "model", tmp_path / "copy")
    manifest = json.loads((folder / "loopml-model.json").read_text())
    manifest["created_at"] = "2000-01-01T00:00:00.000+00:00"
    (folder / "loopml-model.json").write_text(json.dumps(manifest))
    store.upload_artifact(run.info.run_id, folder / "loopml-model.json", "model/loopml-model.json")
    with pytest.raises(IntegrityError, match="the store recorded"):
        load_model(info.model_uri)
    with pytest.raises(IntegrityError, match="the store recorded"):
        load_model(info.model_uri, trusted=True)  # trusted never overrides a recorded digest


def test_run_without_digest_tag_needs_trusted(tmp_path: Path, forest: Any) -> None:
    save_model(forest, tmp_path / "m", onnx=False)
    with loopml.start_run() as run:
        loopml.log_artifacts(str(tmp_path / "m"), "copied")
    uri = f"runs:/{run.info.run_id}/copied"
    with pytest.raises(InvalidInput, match=r"no tag loopml.model_digest.copied.*trusted=True"):
        load_model(uri)
    assert load_model(uri, trusted=True).flavor == "sklearn"


@pytest.mark.parametrize(
    ("content", "error", "message"),
    [
        (b"{not json", IntegrityError, "corrupted"),
        (b"[1, 2]", IntegrityError, "not an object"),
        (b'{"format_version": 1}', IntegrityError, "needs 'flavor', 'model' and 'files'"),
        (b'{"flavor": "sklearn"}', IntegrityError, "no format_version"),
        (
            b'{"format_version": 99, "flavor": "x", "model": {}, "files": {}}',
            InvalidInput,
            "newer",
        ),
    ],
)
def test_corrupted_manifest(
    tmp_path: Path, forest: Any, content: bytes, error: type, message: str
) -> None:
    save_model(forest, tmp_path / "m", onnx=False)
    (tmp_path / "m" / "loopml-model.json").write_bytes(content)
    with pytest.raises(error, match=message):
        load_model(tmp_path / "m", trusted=True)


def test_manifest_cannot_name_files_outside_the_model(tmp_path: Path, forest: Any) -> None:
    save_model(forest, tmp_path / "m", onnx=False)
    path = tmp_path / "m" / "loopml-model.json"
    manifest = json.loads(path.read_text())
    manifest["files"]["../outside.pkl"] = manifest["files"]["model.pkl"]
    path.write_text(json.dumps(manifest))
    with pytest.raises(IntegrityError, match="outside the model"):
        load_model(tmp_path / "m", trusted=True)


def test_unknown_flavor_or_class_in_manifest(tmp_path: Path, forest: Any, frame: Any) -> None:
    save_model(forest, tmp_path / "m", onnx=False)
    path = tmp_path / "m" / "loopml-model.json"
    manifest = json.loads(path.read_text())
    path.write_text(json.dumps({**manifest, "flavor": "tensorflow"}))
    with pytest.raises(InvalidInput, match="'tensorflow' is not one of"):
        load_model(tmp_path / "m", trusted=True)

    import xgboost

    model = xgboost.XGBRegressor(n_estimators=2).fit(frame, frame["a"])
    save_model(model, tmp_path / "x", onnx=False)
    path = tmp_path / "x" / "loopml-model.json"
    manifest = json.loads(path.read_text())
    manifest["model"]["class"] = "os.system"
    path.write_text(json.dumps(manifest))
    with pytest.raises(IntegrityError, match="XGBoost class 'os.system'"):
        load_model(tmp_path / "x", trusted=True)


def test_folder_without_manifest(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    with pytest.raises(InvalidInput, match="holds no loopml-model.json"):
        load_model(tmp_path / "empty", trusted=True)


def test_logged_model_with_a_swapped_pickle_is_refused(tmp_path: Path, forest: Any) -> None:
    with loopml.start_run() as run:
        info = log_model(forest, "model", onnx=False)
    evil = tmp_path / "model.pkl"
    evil.write_bytes(pickle.dumps(_Boom()))
    loopml.get_store().upload_artifact(run.info.run_id, evil, "model/model.pkl")
    _RAN.clear()
    with pytest.raises(IntegrityError, match="'model.pkl' does not match"):
        load_model(info.model_uri)
    assert _RAN == []
