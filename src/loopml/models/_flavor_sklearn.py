"""The scikit-learn flavor: estimators and Pipelines, pickled; ONNX through skl2onnx."""

from __future__ import annotations

from functools import partial
from pathlib import Path
from typing import Any

from loopml.errors import InvalidInput, MissingDependency
from loopml.models._flavors import (
    Flavor,
    NativeModel,
    OnnxCandidate,
    ReadBytes,
    dump_pickle,
    estimator_model,
    library_versions,
    load_pickle,
    module_roots,
)

__all__ = ["SklearnFlavor", "column_input_kinds"]

MODEL_FILE = "model.pkl"


class SklearnFlavor(Flavor):
    """scikit-learn estimators, Pipelines, and estimators built on scikit-learn's base classes."""

    name = "sklearn"
    libraries = ("sklearn", "cloudpickle")

    def matches(self, model: Any) -> bool:
        return "sklearn" in module_roots(model) and callable(getattr(model, "predict", None))

    def save(
        self, model: Any, directory: Path, *, artifacts: dict[str, str] | None = None
    ) -> dict[str, Any]:
        dump_pickle(model, directory / MODEL_FILE)
        cls = type(model)
        return {
            "file": MODEL_FILE,
            "files": [MODEL_FILE],
            "serialization": "cloudpickle",
            "class": f"{cls.__module__}.{cls.__qualname__}",
        }

    def load(self, directory: Path, info: dict[str, Any], read: ReadBytes) -> Any:
        if info.get("serialization") == "skops":  # MLflow's default format for sklearn
            return _load_skops(read(info["file"]), info.get("trusted_types"))
        return load_pickle(info, read)

    def wrap(self, native: Any, directory: Path, info: dict[str, Any]) -> NativeModel:
        return estimator_model(native)

    def onnx_candidates(self, native: Any, example: Any) -> list[OnnxCandidate]:
        try:
            from skl2onnx import convert_sklearn
        except ImportError as exc:
            raise MissingDependency(
                "skl2onnx is not installed, so no ONNX copy was made; reinstall loopml"
            ) from exc
        from sklearn.base import is_classifier

        # Probabilities as a plain 2-D tensor rather than ZipMap's list of dicts.
        options = {"zipmap": False} if is_classifier(native) else None
        converter = f"skl2onnx {library_versions(['skl2onnx']).get('skl2onnx', '?')}"
        kinds = column_input_kinds(example)
        layouts = ["tensor"] if kinds is None or set(kinds) <= {"float", "int", "bool"} else []
        if kinds is not None:
            layouts.append("columns")
        out = []
        for layout in layouts:
            for precision in ("float", "double"):
                types = _initial_types(example, kinds, layout, precision)
                out.append(
                    OnnxCandidate(
                        layout,
                        precision,
                        converter,
                        partial(convert_sklearn, native, initial_types=types, options=options),
                        # one input per column only helps when a single tensor did not convert
                        fallback=layout == "columns" and layouts[0] == "tensor",
                    )
                )
        return out


def _load_skops(data: bytes, trusted: list[str] | None) -> Any:
    """A model in skops' format, allowing the types its MLmodel lists as trusted."""
    try:
        import skops.io
        from skops.io.exceptions import UntrustedTypesFoundException
    except ImportError as exc:
        raise MissingDependency(
            "skops is not installed, so this model saved in the skops format cannot be loaded; "
            "pip install skops"
        ) from exc
    try:
        return skops.io.loads(data, trusted=trusted)
    except UntrustedTypesFoundException as exc:
        raise InvalidInput(
            f"skops refused to load the model: {exc}; only the types its MLmodel lists in "
            "skops_trusted_types are loaded"
        ) from exc


def column_input_kinds(example: Any) -> list[str] | None:
    """Per column of a DataFrame example: float, int, bool, string or other; None for arrays."""
    import numpy as np
    import pandas as pd

    if not isinstance(example, pd.DataFrame):
        return None
    kinds = []
    for dtype in example.dtypes.tolist():
        if isinstance(dtype, pd.StringDtype) or dtype == np.dtype(object):
            kinds.append("string")
        elif isinstance(dtype, np.dtype) and dtype.kind in "fiub":
            kinds.append({"f": "float", "i": "int", "u": "int", "b": "bool"}[dtype.kind])
        else:
            kinds.append("other")
    return kinds


def _initial_types(
    example: Any, kinds: list[str] | None, layout: str, precision: str
) -> list[tuple[str, Any]]:
    from skl2onnx.common.data_types import (
        BooleanTensorType,
        DoubleTensorType,
        FloatTensorType,
        Int64TensorType,
        StringTensorType,
    )

    real = FloatTensorType if precision == "float" else DoubleTensorType
    if layout == "tensor":
        return [("input", real([None, *example.shape[1:]]))]
    by_kind = {
        "float": real,
        "int": Int64TensorType,
        "bool": BooleanTensorType,
        "string": StringTensorType,
    }
    return [
        (str(name), by_kind.get(kind, StringTensorType)([None, 1]))
        for name, kind in zip(example.columns, kinds or [], strict=True)
    ]
