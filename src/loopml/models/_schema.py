"""Model signatures: named, typed columns (MLflow's column types) or one tensor spec.

``infer_signature`` reads DataFrames, dicts of columns, lists of records, one record, and numpy
arrays; the same normalisation (``as_frame_or_array``) feeds enforcement at predict time.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from loopml.errors import InvalidInput

__all__ = [
    "COLUMN_TYPES",
    "ColSpec",
    "Signature",
    "TensorSpec",
    "as_frame_or_array",
    "infer_schema",
    "infer_signature",
]

# MLflow's column types, and the numpy dtype each is held in.
COLUMN_TYPES = ("double", "float", "long", "integer", "boolean", "string", "binary", "datetime")
_TENSOR_DTYPES = frozenset(
    "bool int8 int16 int32 int64 uint8 uint16 uint32 uint64 float16 float32 float64 str".split()
)


@dataclass(frozen=True, slots=True)
class ColSpec:
    """One named input or output column and its type (one of ``COLUMN_TYPES``)."""

    name: str
    type: str

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name:
            raise InvalidInput(f"column name must be a non-empty string, got {self.name!r}")
        if self.type not in COLUMN_TYPES:
            raise InvalidInput(
                f"column {self.name!r}: type {self.type!r} is not one of {', '.join(COLUMN_TYPES)}"
            )

    def to_dict(self) -> dict[str, Any]:
        """The JSON form."""
        return {"name": self.name, "type": self.type}


@dataclass(frozen=True, slots=True)
class TensorSpec:
    """A numpy array input or output: its dtype and shape, ``-1`` for a variable dimension."""

    dtype: str
    shape: tuple[int, ...]
    name: str | None = None

    def __post_init__(self) -> None:
        dtype = "str" if self.dtype in ("object", "string") else str(self.dtype)
        if dtype not in _TENSOR_DTYPES:
            raise InvalidInput(
                f"tensor dtype {self.dtype!r} is not supported; use one of "
                + ", ".join(sorted(_TENSOR_DTYPES))
            )
        shape = tuple(int(d) for d in self.shape)
        if any(d < -1 for d in shape):
            raise InvalidInput(f"tensor shape {shape} has a dimension below -1")
        object.__setattr__(self, "dtype", dtype)
        object.__setattr__(self, "shape", shape)

    def to_dict(self) -> dict[str, Any]:
        """The JSON form."""
        out: dict[str, Any] = {"type": "tensor", "dtype": self.dtype, "shape": list(self.shape)}
        if self.name is not None:
            out["name"] = self.name
        return out


Spec = ColSpec | TensorSpec


def _spec_from_dict(data: Mapping[str, Any]) -> Spec:
    if not isinstance(data, Mapping) or "type" not in data:
        raise InvalidInput(f"signature entry {data!r} is not a column or tensor spec")
    if data["type"] == "tensor":
        return TensorSpec(data.get("dtype", ""), tuple(data.get("shape", ())), data.get("name"))
    return ColSpec(data.get("name", ""), data["type"])


def _check_specs(specs: Sequence[Spec], side: str) -> tuple[Spec, ...]:
    out = tuple(specs)
    if not out:
        raise InvalidInput(f"signature {side} must hold at least one spec")
    if not all(isinstance(s, ColSpec | TensorSpec) for s in out):
        raise InvalidInput(f"signature {side} must be ColSpec or TensorSpec objects")
    if all(isinstance(s, ColSpec) for s in out):
        names = [s.name for s in out if isinstance(s, ColSpec)]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise InvalidInput(f"signature {side} name column {dupes[0]!r} more than once")
    elif len(out) != 1:
        raise InvalidInput(f"signature {side} must be columns, or exactly one tensor spec")
    return out


@dataclass(frozen=True, slots=True, init=False)
class Signature:
    """What a model takes and returns: columns (``ColSpec``) or one ``TensorSpec`` per side."""

    inputs: tuple[Spec, ...]
    outputs: tuple[Spec, ...] | None

    def __init__(self, inputs: Sequence[Spec], outputs: Sequence[Spec] | None = None) -> None:
        object.__setattr__(self, "inputs", _check_specs(inputs, "inputs"))
        object.__setattr__(
            self, "outputs", None if outputs is None else _check_specs(outputs, "outputs")
        )

    @property
    def is_tensor(self) -> bool:
        """Whether the inputs are one tensor rather than named columns."""
        return isinstance(self.inputs[0], TensorSpec)

    @property
    def input_names(self) -> list[str]:
        """The input column names, in order (empty for a tensor signature)."""
        return [s.name for s in self.inputs if isinstance(s, ColSpec)]

    def to_dict(self) -> dict[str, Any]:
        """The JSON form stored in the manifest."""
        return {
            "inputs": [s.to_dict() for s in self.inputs],
            "outputs": None if self.outputs is None else [s.to_dict() for s in self.outputs],
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Signature:
        """Rebuild from the JSON form."""
        if not isinstance(data, Mapping) or not isinstance(data.get("inputs"), list):
            raise InvalidInput("a signature needs an 'inputs' list")
        outputs = data.get("outputs")
        return cls(
            [_spec_from_dict(s) for s in data["inputs"]],
            None if outputs is None else [_spec_from_dict(s) for s in outputs],
        )


# -- normalisation and inference ---------------------------------------------------------------
def _is_scalar(value: Any) -> bool:
    import numpy as np

    return not isinstance(value, list | tuple | dict | set | np.ndarray) and not hasattr(
        value, "__array__"
    )


def as_frame_or_array(data: Any) -> Any:
    """A DataFrame for tabular input (frame, dict of columns, records, one record), else a
    numpy array; anything else is ``InvalidInput``."""
    import numpy as np
    import pandas as pd

    if isinstance(data, pd.DataFrame | np.ndarray):
        return data
    if isinstance(data, pd.Series):
        return data.to_frame()
    if isinstance(data, Mapping):
        if not data:
            raise InvalidInput("input is an empty dict; pass columns or one record")
        if all(_is_scalar(v) for v in data.values()):
            return pd.DataFrame({str(k): [v] for k, v in data.items()})
        try:
            return pd.DataFrame({str(k): v for k, v in data.items()})
        except ValueError as exc:
            raise InvalidInput(f"input dict cannot be read as columns: {exc}") from exc
    if isinstance(data, list | tuple):
        if not data:
            raise InvalidInput("input is an empty list; pass at least one row")
        if all(isinstance(r, Mapping) for r in data):
            return pd.DataFrame.from_records(list(data))
        try:
            return np.asarray(data)
        except ValueError as exc:
            raise InvalidInput(f"input list cannot be read as an array: {exc}") from exc
    raise InvalidInput(
        f"input of type {type(data).__name__} is not supported; pass a DataFrame, a dict of "
        "columns, a list of records, one record (dict), or a numpy array"
    )


def column_type(dtype: Any, values: Any, name: str) -> str:
    """The column type holding a pandas column of this dtype (object columns by their values)."""
    import numpy as np
    import pandas as pd

    if isinstance(dtype, pd.CategoricalDtype):
        return column_type(dtype.categories.dtype, dtype.categories, name)
    if isinstance(dtype, pd.StringDtype):
        return "string"
    if isinstance(dtype, pd.DatetimeTZDtype):
        return "datetime"
    if isinstance(dtype, pd.api.extensions.ExtensionDtype) and not isinstance(dtype, np.dtype):
        numpy_type = getattr(dtype, "numpy_dtype", None)
        if numpy_type is None:
            raise InvalidInput(f"column {name!r}: dtype {dtype} has no column type")
        dtype = numpy_type
    dtype = np.dtype(dtype)
    kind = dtype.kind
    if kind == "b":
        return "boolean"
    if kind == "f":
        return "double" if dtype.itemsize == 8 else "float"
    if kind in "iu":
        return (
            "long" if dtype.itemsize == 8 or (kind == "u" and dtype.itemsize == 4) else "integer"
        )
    if kind == "M":
        return "datetime"
    if kind in "US":
        return "string" if kind == "U" else "binary"
    if kind == "O":
        inferred = pd.api.types.infer_dtype(values, skipna=True)
        found = {
            "string": "string",
            "empty": "string",
            "bytes": "binary",
            "integer": "long",
            "floating": "double",
            "mixed-integer-float": "double",
            "boolean": "boolean",
            "datetime": "datetime",
            "datetime64": "datetime",
            "date": "datetime",
        }.get(inferred)
        if found is not None:
            return found
        raise InvalidInput(f"column {name!r} holds mixed values ({inferred}); give it one type")
    raise InvalidInput(f"column {name!r}: dtype {dtype} has no column type")


def _tensor_dtype(dtype: Any) -> str:
    import numpy as np

    dtype = np.dtype(dtype)
    if dtype.kind in "OUS":
        return "str"
    if dtype.name not in _TENSOR_DTYPES:
        raise InvalidInput(f"arrays of dtype {dtype} are not supported in a signature")
    return dtype.name


def infer_schema(data: Any) -> tuple[Spec, ...]:
    """Column specs for tabular data, or one tensor spec for an array (variable first dim)."""
    import numpy as np
    import pandas as pd

    data = as_frame_or_array(data)
    if isinstance(data, pd.DataFrame):
        return tuple(
            ColSpec(str(name), column_type(data[name].dtype, data[name], str(name)))
            for name in data.columns
        )
    arr = np.asarray(data)
    if arr.ndim == 0:
        raise InvalidInput("a scalar has no schema; pass an array or a table")
    return (TensorSpec(_tensor_dtype(arr.dtype), (-1, *arr.shape[1:])),)


def infer_signature(model_input: Any, model_output: Any = None) -> Signature:
    """The signature of a model from an example input (and, optionally, its output).

    Args:
        model_input: a DataFrame, dict of columns, list of records, one record, or numpy array.
        model_output: what the model returned for it (array, Series, DataFrame or list).

    Returns:
        A ``Signature`` with column specs for tabular data, a tensor spec for arrays.

    Raises:
        InvalidInput: the data is of an unsupported kind or a column mixes types.
    """
    outputs = None
    if model_output is not None:
        outputs = infer_output_schema(model_output)
    return Signature(infer_schema(model_input), outputs)


def infer_output_schema(output: Any) -> tuple[Spec, ...]:
    """The schema of a model's prediction (1-D arrays and Series become a tensor spec)."""
    import numpy as np
    import pandas as pd

    if isinstance(output, pd.DataFrame):
        return infer_schema(output)
    if isinstance(output, pd.Series):
        output = output.to_numpy()
    if isinstance(output, list | tuple) and output and isinstance(output[0], Mapping):
        return infer_schema(output)
    return infer_schema(np.asarray(output))
