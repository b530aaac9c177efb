"""The ONNX flavor under MLflow's per-flavor names.

``save_model``, ``log_model`` and ``load_model`` are ``loopml.models``'s with
``flavor="onnx"``; ``load_model`` returns the ``onnx.ModelProto``.
"""

from __future__ import annotations

import os
from typing import Any

from loopml.models._load import load_model as _load_model
from loopml.models._log import ModelInfo
from loopml.models._log import log_model as _log_model
from loopml.models._save import save_model as _save_model

__all__ = ["load_model", "log_model", "save_model"]


def save_model(model: Any, path: str | os.PathLike[str], **kwargs: Any) -> dict[str, Any]:
    """``loopml.models.save_model`` with ``flavor="onnx"``."""
    return _save_model(model, path, flavor="onnx", **kwargs)


def log_model(model: Any, name: str | None = None, **kwargs: Any) -> ModelInfo:
    """``loopml.models.log_model`` with ``flavor="onnx"``."""
    return _log_model(model, name, flavor="onnx", **kwargs)


def load_model(model_uri: str | os.PathLike[str], **kwargs: Any) -> Any:
    """Load the ``onnx.ModelProto`` itself (checked to be a onnx model)."""
    return _load_model(model_uri, flavor="onnx", **kwargs)
