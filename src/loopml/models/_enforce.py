"""Signature enforcement at predict time: input in, the frame or array the model expects out.

This is on the serving hot path. When the input already has the signature's columns in order and
their dtypes match, it is returned as it came (no copy, no cast); only columns that differ are
converted, with vectorised checks, and a value that cannot be converted is ``InvalidInput``
naming its column.
"""

from __future__ import annotations

from itertools import chain
from typing import Any

import numpy as np
import pandas as pd

from loopml.errors import InvalidInput
from loopml.models._schema import ColSpec, Signature, TensorSpec, as_frame_or_array

__all__ = ["EXTRA_COLUMNS", "InputAdapter"]

EXTRA_COLUMNS = ("error", "drop")
_NUMPY: dict[str, np.dtype[Any]] = {
    "double": np.dtype("float64"),
    "float": np.dtype("float32"),
    "long": np.dtype("int64"),
    "integer": np.dtype("int32"),
    "boolean": np.dtype("bool"),
}
_OBJECT = np.dtype(object)
_PLAIN_NUMBERS = frozenset({int, float})


class InputAdapter:
    """Callable that checks and converts predict input against a signature (or normalises it
    when there is none)."""

    def __init__(self, signature: Signature | None, *, extra_columns: str = "error") -> None:
        if extra_columns not in EXTRA_COLUMNS:
            raise InvalidInput(f"extra_columns must be 'error' or 'drop', got {extra_columns!r}")
        self._drop_extra = extra_columns == "drop"
        self._specs: list[ColSpec] = []
        self._row_dtype: np.dtype[Any] | None = None
        if signature is None:
            self._call = as_frame_or_array
        elif signature.is_tensor:
            spec: TensorSpec = signature.inputs[0]  # type: ignore[assignment]
            self._shape = spec.shape
            self._dtype = _OBJECT if spec.dtype == "str" else np.dtype(spec.dtype)
            self._fixed = [(i, d) for i, d in enumerate(spec.shape) if d != -1]
            self._call = self._as_tensor
        else:
            self._specs = list(signature.inputs)  # type: ignore[arg-type]
            self._names = [s.name for s in self._specs]
            self._name_set = frozenset(self._names)
            self._index = pd.Index(self._names)
            # Per column, the dtype that needs no work (None: check by kind, in the slow path).
            self._fast = [_NUMPY.get(s.type) for s in self._specs]
            self._seen: Any = self._index
            self._call = self._as_frame
            kinds = {s.type for s in self._specs}
            if len(kinds) == 1 and kinds <= {"double", "float"}:
                self._row_dtype = _NUMPY[kinds.pop()]

    def records(self, records: list[Any]) -> pd.DataFrame | None:
        """The frame for records (dicts of column → number) when every column is a float column
        and every record has exactly those keys with plain int or float values, built without
        pandas' per-record parsing; None when anything differs (use the general path, which
        names what is wrong)."""
        dtype = self._row_dtype
        if dtype is None:
            return None
        names, keys = self._names, self._name_set
        rows = []
        for r in records:
            if type(r) is not dict or r.keys() != keys:
                return None
            rows.append([r[n] for n in names])
        if not set(map(type, chain.from_iterable(rows))) <= _PLAIN_NUMBERS:
            return None
        return pd.DataFrame(np.array(rows, dtype=dtype), columns=self._index, copy=False)

    def __call__(self, data: Any) -> Any:
        return self._call(data)

    # -- tensors -------------------------------------------------------------------------------
    def _as_tensor(self, data: Any) -> np.ndarray:
        if isinstance(data, np.ndarray):
            arr = data
        else:
            norm = as_frame_or_array(data)
            arr = norm.to_numpy() if isinstance(norm, pd.DataFrame) else np.asarray(norm)
        shape = self._shape
        if arr.ndim != len(shape):
            if arr.ndim == 1 and len(shape) == 2 and shape[1] in (-1, arr.shape[0]):
                arr = arr.reshape(1, -1)  # one row given flat
            else:
                raise InvalidInput(
                    f"input tensor has shape {arr.shape}; the model expects {_shape(shape)}"
                )
        for axis, size in self._fixed:
            if arr.shape[axis] != size:
                raise InvalidInput(
                    f"input tensor has shape {arr.shape}; the model expects {_shape(shape)}"
                )
        if arr.dtype != self._dtype:
            arr = _cast_tensor(arr, self._dtype)
        return arr

    # -- columns -------------------------------------------------------------------------------
    def _as_frame(self, data: Any) -> pd.DataFrame:
        if not isinstance(data, pd.DataFrame):
            data = as_frame_or_array(data)
            if isinstance(data, np.ndarray):
                data = self._positional(data)
        columns = data.columns
        if columns is self._seen or columns.equals(self._index):
            self._seen = columns  # Index objects are immutable: an equal one stays equal
            dtypes = _column_dtypes(data)
            if dtypes == self._fast:
                return data  # the common case: nothing to check further, nothing to copy
            return self._conform(data, dtypes)
        self._check_columns(data)
        return self._conform(data, [data[n].dtype for n in self._names])

    def _positional(self, arr: np.ndarray) -> pd.DataFrame:
        if arr.ndim != 2 or arr.shape[1] != len(self._names):
            raise InvalidInput(
                f"an array of shape {arr.shape} cannot be matched to the model's "
                f"{len(self._names)} columns ({', '.join(self._names)}); pass a 2-D array with "
                f"{len(self._names)} columns in that order, or a DataFrame"
            )
        return pd.DataFrame(arr, columns=self._index)

    def _check_columns(self, frame: pd.DataFrame) -> None:
        columns = frame.columns
        if columns.has_duplicates:
            dupe = columns[columns.duplicated()][0]
            raise InvalidInput(f"input has column {dupe!r} more than once")
        present = set(columns)
        missing = [n for n in self._names if n not in present]
        if missing:
            more = f" (and {len(missing) - 1} more)" if len(missing) > 1 else ""
            raise InvalidInput(
                f"input is missing column {missing[0]!r}{more}; the model expects columns "
                + ", ".join(self._names)
            )
        extra = [c for c in columns if c not in self._name_set]
        if extra and not self._drop_extra:
            raise InvalidInput(
                f"input has column {extra[0]!r}, which is not in the model's signature; drop it, "
                "or load the model with extra_columns='drop'"
            )

    def _conform(self, frame: pd.DataFrame, dtypes: list[Any]) -> pd.DataFrame:
        converted: dict[str, Any] = {}
        for spec, dtype, fast in zip(self._specs, dtypes, self._fast, strict=True):
            if dtype == fast or _fits(dtype, spec.type):
                continue
            new = _convert(frame[spec.name], dtype, spec)
            if new is not None:
                converted[spec.name] = new
        if not converted and frame.columns.equals(self._index):
            return frame
        columns = {n: converted[n] if n in converted else frame[n].to_numpy() for n in self._names}
        return pd.DataFrame(columns, index=frame.index)


def _column_dtypes(frame: pd.DataFrame) -> list[Any]:
    """The frame's column dtypes, in order.

    ``DataFrame.dtypes`` builds a Series, about 20 µs for a few columns, which alone is several
    percent of a small model's predict; pandas' block manager holds the same dtypes as an array
    (under 1 µs). Use it when present, else the public API.
    """
    get = getattr(getattr(frame, "_mgr", None), "get_dtypes", None)
    if get is not None:
        dtypes = get()
        if len(dtypes) == frame.shape[1]:
            return dtypes.tolist()
    return frame.dtypes.tolist()


def _shape(shape: tuple[int, ...]) -> str:
    return str(tuple(shape))


def _cast_tensor(arr: np.ndarray, dtype: np.dtype) -> np.ndarray:
    if dtype == _OBJECT:
        if arr.dtype.kind in "OU":
            return arr.astype(object)
        raise InvalidInput(f"input tensor holds {arr.dtype} values; the model expects strings")
    if dtype.kind in "iu" and arr.dtype.kind == "f":
        if not np.isfinite(arr).all() or (arr != np.trunc(arr)).any():
            raise InvalidInput(f"input tensor holds non-integer values; the model expects {dtype}")
    if np.can_cast(arr.dtype, dtype, casting="same_kind"):
        return arr.astype(dtype)
    try:
        out = arr.astype(dtype)
    except (TypeError, ValueError) as exc:
        raise InvalidInput(f"input tensor cannot be converted to {dtype}: {exc}") from exc
    if arr.dtype.kind == "O" and dtype.kind in "iub" and (out != arr).any():
        raise InvalidInput(f"input tensor holds values that are not {dtype}")
    return out


def _fits(dtype: Any, column_type: str) -> bool:
    """Whether the dtype alone shows the column holds ``column_type`` values."""
    if column_type == "string":
        return isinstance(dtype, pd.StringDtype)
    if column_type == "datetime":
        return isinstance(dtype, pd.DatetimeTZDtype) or getattr(dtype, "kind", "") == "M"
    return False


def _bad(spec: ColSpec, what: str) -> InvalidInput:
    return InvalidInput(f"column {spec.name!r}: {what}; the model expects {spec.type} values")


def _first(values: np.ndarray, mask: np.ndarray) -> Any:
    return values[np.flatnonzero(mask)[0]]


def _convert(col: pd.Series, dtype: Any, spec: ColSpec) -> Any:
    """None when ``col`` already fits ``spec``, else the converted numpy values."""
    want = _NUMPY.get(spec.type)
    if want is not None:
        return None if dtype == want else _to_numeric(col, dtype, want, spec)
    if spec.type == "string":
        if isinstance(dtype, pd.StringDtype):
            return None
        if isinstance(dtype, pd.CategoricalDtype):
            return _convert(col.astype(dtype.categories.dtype), dtype.categories.dtype, spec)
        if dtype == _OBJECT and pd.api.types.infer_dtype(col, skipna=True) in ("string", "empty"):
            return None
        return _reject(col, spec, lambda v: isinstance(v, str))
    if spec.type == "binary":
        if dtype == _OBJECT and pd.api.types.infer_dtype(col, skipna=True) in ("bytes", "empty"):
            return None
        return _reject(col, spec, lambda v: isinstance(v, bytes))
    # datetime
    if isinstance(dtype, pd.DatetimeTZDtype) or getattr(dtype, "kind", "") == "M":
        return None
    if dtype == _OBJECT or isinstance(dtype, pd.StringDtype):
        try:
            return pd.to_datetime(col).to_numpy()
        except (TypeError, ValueError) as exc:
            raise _bad(spec, f"cannot read {exc}") from exc
    raise _bad(spec, f"it holds {dtype} values")


def _reject(col: pd.Series, spec: ColSpec, ok: Any) -> None:
    values = col.to_numpy(dtype=object)
    for v in values:
        if not (ok(v) or v is None or (isinstance(v, float) and v != v)):
            raise _bad(spec, f"value {v!r} has type {type(v).__name__}")
    raise _bad(spec, f"it holds {col.dtype} values")


def _to_numeric(col: pd.Series, dtype: Any, want: np.dtype, spec: ColSpec) -> np.ndarray:
    if not isinstance(dtype, np.dtype):  # nullable (Int64, Float64, boolean) or string columns
        if col.isna().any():
            if want.kind != "f":
                raise _bad(spec, f"it has missing values, which {spec.type} cannot hold")
            return col.to_numpy(dtype=want, na_value=np.nan)
        values = col.to_numpy(dtype=object if isinstance(dtype, pd.StringDtype) else None)
    else:
        values = col.to_numpy()
    kind = values.dtype.kind
    if want.kind == "f":
        if kind in "biuf":
            return values.astype(want)
    elif want.kind == "b":
        if kind in "iuf":
            bad = ~np.isin(values, (0, 1))
            if bad.any():
                raise _bad(spec, f"value {_first(values, bad)!r} is not 0 or 1")
            return values.astype(want)
    elif kind in "iu":
        out = values.astype(want)
        bad = out != values
        if bad.any():
            raise _bad(spec, f"value {_first(values, bad)!r} is out of range")
        return out
    elif kind == "f":
        bad = ~np.isfinite(values) | (values != np.trunc(values))
        if bad.any():
            value = _first(values, bad)
            what = "a missing value" if value != value else f"value {value!r} is not an integer"
            raise _bad(spec, what)
        return values.astype(want)
    elif kind == "b":
        raise _bad(spec, "it holds booleans")
    return _object_to(values, want, spec)


def _object_to(values: np.ndarray, want: np.dtype, spec: ColSpec) -> np.ndarray:
    """Convert object values (JSON numbers, bools); refuse strings, lossy casts, and missing
    values except in float columns, where None becomes NaN."""
    if want.kind == "f":
        values = np.array([np.nan if v is None else v for v in values], dtype=object)
    for v in values:
        if want.kind == "b":
            ok = isinstance(v, bool | np.bool_)
        else:
            ok = isinstance(v, int | float | np.number) and not isinstance(v, bool | np.bool_)
        if not ok:
            what = "a missing value" if v is None else f"value {v!r} has type {type(v).__name__}"
            raise _bad(spec, what)
        if want.kind in "iu" and isinstance(v, float | np.floating) and not float(v).is_integer():
            raise _bad(spec, "a missing value" if v != v else f"value {v!r} is not an integer")
    out = values.astype(want)
    bad = out != values
    if want.kind != "f" and bad.any():
        raise _bad(spec, f"value {_first(values, bad)!r} cannot be held exactly")
    return out
