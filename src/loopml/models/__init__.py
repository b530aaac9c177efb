"""Model packaging: save, log, register and load models of every flavor, MLflow-style.

A saved model is a folder with ``loopml-model.json`` (flavor, files and their SHA-256, library
versions, signature, input example, requirements, ONNX copy status). The manifest's own SHA-256
is the model's digest: ``log_model`` records it on the run, the registry on the version, and
``load_model`` refuses a model whose files no longer match it.

Flavors: ``sklearn``, ``xgboost``, ``lightgbm``, ``onnx`` and ``pyfunc`` (python function);
``loopml.models.sklearn`` etc. are thin per-flavor aliases, as in MLflow. The first three also
get an MLflow ``MLmodel``, and ``load_model`` reads sklearn models MLflow saved (trusted only).
"""

from __future__ import annotations

from loopml.models._load import load_model, pin_model_uri
from loopml.models._loaded import LoadedModel
from loopml.models._log import ModelInfo, log_model, register_model
from loopml.models._manifest import manifest_digest
from loopml.models._pyfunc import PythonModel, PythonModelContext
from loopml.models._save import save_model
from loopml.models._schema import ColSpec, Signature, TensorSpec, infer_signature

__all__ = [
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
