"""The public surface of loopml.models is pinned; importing it stays light."""

from __future__ import annotations

import subprocess
import sys

import pytest

import loopml.models
import loopml.models.lightgbm
import loopml.models.onnx
import loopml.models.pyfunc
import loopml.models.sklearn
import loopml.models.xgboost


def test_models_surface_is_pinned() -> None:
    """Adding or removing a public name is a decision: update this list with it."""
    assert loopml.models.__all__ == [
        "ColSpec",
        "LoadedModel",
        "ModelInfo",
        "PythonModel",
        "PythonModelContext",
        "Signature",
        "TensorSpec",
        "infer_signature",
        "load_model",
        "log_model",
        "manifest_digest",
        "pin_model_uri",
        "register_model",
        "save_model",
    ]


@pytest.mark.parametrize(
    "module",
    [
        loopml.models,
        loopml.models.lightgbm,
        loopml.models.onnx,
        loopml.models.pyfunc,
        loopml.models.sklearn,
        loopml.models.xgboost,
    ],
)
def test_all_is_sorted_and_complete(module: object) -> None:
    names = module.__all__  # type: ignore[attr-defined]
    assert list(names) == sorted(names)
    for name in names:
        assert hasattr(module, name), name


def test_import_does_not_load_ml_libraries() -> None:
    code = (
        "import sys, loopml.models, loopml.models.sklearn, loopml.models.pyfunc; "
        "heavy = {'pandas', 'sklearn', 'xgboost', 'lightgbm', 'onnx', 'onnxruntime', "
        "'skl2onnx', 'cloudpickle'}; print(sorted(heavy & set(sys.modules)))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
