"""The ONNX flavor: an ``onnx.ModelProto`` or a ``.onnx`` file, run with ONNX Runtime."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from loopml.errors import InvalidInput
from loopml.models._flavors import Flavor, NativeModel, ReadBytes, module_roots
from loopml.models._onnx import ONNX_FILE, OnnxRunner, default_outputs

__all__ = ["OnnxFlavor"]

# ONNX element types that a tensor signature can name.
_ELEM_TYPES = {
    1: "float32",
    2: "uint8",
    3: "int8",
    5: "int16",
    6: "int32",
    7: "int64",
    8: "str",
    9: "bool",
    10: "float16",
    11: "float64",
}


def _is_onnx_path(model: Any) -> bool:
    return isinstance(model, str | os.PathLike) and str(model).lower().endswith(".onnx")


class OnnxFlavor(Flavor):
    """Models that are ONNX already; the native runtime is ONNX Runtime."""

    name = "onnx"
    libraries = ("onnx", "onnxruntime")

    def matches(self, model: Any) -> bool:
        if _is_onnx_path(model):
            return True
        return "onnx" in module_roots(model) and type(model).__name__ == "ModelProto"

    def _proto(self, model: Any) -> Any:
        import onnx

        if _is_onnx_path(model):
            if not Path(model).is_file():
                raise InvalidInput(f"ONNX file {str(model)!r} does not exist")
            return onnx.load(str(model))
        return model

    def save(
        self, model: Any, directory: Path, *, artifacts: dict[str, str] | None = None
    ) -> dict[str, Any]:
        import onnx

        proto = self._proto(model)
        try:
            onnx.checker.check_model(proto)
        except onnx.checker.ValidationError as exc:
            raise InvalidInput(f"the ONNX model is not valid: {exc}") from exc
        (directory / ONNX_FILE).write_bytes(proto.SerializeToString())
        return {
            "file": ONNX_FILE,
            "files": [ONNX_FILE],
            "serialization": "onnx",
            "class": "onnx.ModelProto",
        }

    def load(self, directory: Path, info: dict[str, Any], read: ReadBytes) -> Any:
        import onnx

        return onnx.load_model_from_string(read(info["file"]))

    def wrap(self, native: Any, directory: Path, info: dict[str, Any]) -> NativeModel:
        runner = OnnxRunner(self._proto(native).SerializeToString())
        outputs = default_outputs(runner)
        proba = outputs.get("predict_proba")
        return NativeModel(
            predict=runner.function(outputs["predict"]),
            predict_proba=None if proba is None else runner.function(proba),
            no_proba_reason="this ONNX model has no probabilities output",
        )

    def default_signature(self, model: Any) -> Any:
        """A tensor signature from the graph's input, when it has exactly one."""
        from loopml.models._schema import Signature, TensorSpec

        graph = self._proto(model).graph
        initializers = {i.name for i in graph.initializer}
        inputs = [i for i in graph.input if i.name not in initializers]
        if len(inputs) != 1 or not inputs[0].type.HasField("tensor_type"):
            return None
        tensor = inputs[0].type.tensor_type
        dtype = _ELEM_TYPES.get(tensor.elem_type)
        if dtype is None or not tensor.HasField("shape"):
            return None
        shape = tuple(d.dim_value if d.HasField("dim_value") else -1 for d in tensor.shape.dim)
        return Signature([TensorSpec(dtype, shape, inputs[0].name)])
