"""KServe's Open Inference Protocol (v2) REST routes, as Triton's ``tritonclient`` speaks them.

``GET /v2/health/live``, ``/v2/health/ready``, ``/v2`` (server metadata),
``/v2/models/{name}[/versions/{v}]`` (model metadata) and ``.../ready``; ``POST
/v2/models/{name}[/versions/{v}]/infer``.

Input tensors map to the model's signature columns in one of two ways: one tensor per column
(named as the column, shape ``[N]`` or ``[N, 1]``), or one ``[N, F]`` tensor of any name whose F
columns are the signature's inputs in order (a model with a ``[-1, F]`` tensor signature takes
only this form). Each row becomes a record for the service, so every protocol shares routing,
batching and the prediction log. A model's prediction is the output ``predict``; a model that
returns a table per row gives one output per column.

The binary tensor data extension (Triton's, which ``tritonclient`` uses by default) is supported
both ways: the body is a JSON header of ``Inference-Header-Content-Length`` bytes followed by the
raw little-endian data of each tensor that has ``parameters.binary_data_size``, in order (BYTES:
each element a 4-byte little-endian length, then its bytes). A gzip or deflate request body
(``Content-Encoding``) is decompressed, no larger than the body limit. Errors answer
``{"error": message}``: 400 for a bad request (naming the tensor or field), 404 for another model
or version, 413 for a body over the limit, 503 with ``Retry-After`` when overloaded.
"""

from __future__ import annotations

import math
import struct
import zlib
from collections.abc import Iterable
from typing import Any

import numpy as np
import orjson
from fastapi import APIRouter, Request, Response

import loopml
from loopml.errors import InvalidInput, LoopmlError, NotFound, Overloaded
from loopml.models import ColSpec, Signature, TensorSpec
from loopml.serving._http import MAX_BODY_BYTES, BodyTooLarge, json_response, read_body
from loopml.serving._service import InferenceService, Variant

__all__ = ["kserve_router"]

_json = json_response
_HEADER_LENGTH = "inference-header-content-length"
OUTPUT = "predict"

# v2 datatypes and their little-endian numpy dtypes (BYTES has its own framing).
_NUMPY = {
    "BOOL": np.dtype("?"),
    "INT8": np.dtype("<i1"),
    "INT16": np.dtype("<i2"),
    "INT32": np.dtype("<i4"),
    "INT64": np.dtype("<i8"),
    "UINT8": np.dtype("<u1"),
    "UINT16": np.dtype("<u2"),
    "UINT32": np.dtype("<u4"),
    "UINT64": np.dtype("<u8"),
    "FP16": np.dtype("<f2"),
    "FP32": np.dtype("<f4"),
    "FP64": np.dtype("<f8"),
}
DATATYPES = (*_NUMPY, "BYTES")
_FLOATS = frozenset(("FP16", "FP32", "FP64"))
_INT_RANGE = {
    name: (-(2 ** (dt.itemsize * 8 - 1)), 2 ** (dt.itemsize * 8 - 1) - 1)
    if dt.kind == "i"
    else (0, 2 ** (dt.itemsize * 8) - 1)
    for name, dt in _NUMPY.items()
    if dt.kind in "iu"
}
_NUMERIC = _FLOATS | frozenset(_INT_RANGE)
# The Python types a JSON tensor of each datatype may hold.
_JSON_TYPES: dict[str, frozenset[type]] = {
    **{name: frozenset((int,)) for name in _INT_RANGE},
    **{name: frozenset((int, float)) for name in _FLOATS},
    "BOOL": frozenset((bool,)),
    "BYTES": frozenset((str,)),
}
# A signature's column types and tensor dtypes as v2 datatypes.
_COLUMN_DATATYPE = {
    "double": "FP64",
    "float": "FP32",
    "long": "INT64",
    "integer": "INT32",
    "boolean": "BOOL",
    "string": "BYTES",
    "binary": "BYTES",
    "datetime": "BYTES",
}
_TENSOR_DATATYPE = {dt.name: name for name, dt in _NUMPY.items()} | {"str": "BYTES"}


def _accepts(kind: str) -> frozenset[str]:
    """The tensor datatypes a column of this column type (or tensor dtype) can be sent as."""
    if kind in ("double", "float", "long", "integer") or _TENSOR_DATATYPE.get(kind) in _NUMERIC:
        return _NUMERIC
    if kind in ("boolean", "bool"):
        return frozenset(("BOOL",)) | frozenset(_INT_RANGE)
    return frozenset(("BYTES",))


class _Plan:
    """What a model's signature says about its v2 tensors, worked out once per model."""

    def __init__(self, signature: Signature | None) -> None:
        self.signature = signature
        self.columns: list[str] = []
        self.column_set: frozenset[str] = frozenset()
        self.accepts: dict[str, frozenset[str]] = {}
        self.binary_columns: frozenset[str] = frozenset()
        self.width: int | None = None  # F of a [-1, F] tensor signature (None: any)
        self.tensor_error: str | None = None
        self.kind = "none" if signature is None else "tensor" if signature.is_tensor else "columns"
        self.outputs: dict[str, str] = {}  # declared output name → datatype
        if signature is None:
            return
        if signature.is_tensor:
            spec: TensorSpec = signature.inputs[0]  # type: ignore[assignment]
            if len(spec.shape) != 2:
                self.tensor_error = (
                    f"the model takes a tensor of shape {list(spec.shape)}; the v2 protocol "
                    "serves models with named columns or a [-1, F] tensor signature"
                )
            else:
                self.width = None if spec.shape[1] == -1 else spec.shape[1]
            self.accepts[""] = _accepts(spec.dtype)
        else:
            specs = [s for s in signature.inputs if isinstance(s, ColSpec)]
            self.columns = [s.name for s in specs]
            self.column_set = frozenset(self.columns)
            self.accepts = {s.name: _accepts(s.type) for s in specs}
            self.binary_columns = frozenset(s.name for s in specs if s.type == "binary")
        for out in signature.outputs or ():
            if isinstance(out, ColSpec):
                self.outputs[out.name] = _COLUMN_DATATYPE[out.type]
            else:
                self.outputs[OUTPUT] = _TENSOR_DATATYPE.get(out.dtype, "BYTES")

    def input_metadata(self) -> list[dict[str, Any]]:
        sig = self.signature
        if sig is None:
            return []
        if sig.is_tensor:
            spec: TensorSpec = sig.inputs[0]  # type: ignore[assignment]
            datatype = _TENSOR_DATATYPE.get(spec.dtype, "BYTES")
            return [{"name": spec.name or "input-0", "datatype": datatype, "shape": [*spec.shape]}]
        return [
            {"name": s.name, "datatype": _COLUMN_DATATYPE[s.type], "shape": [-1]}
            for s in sig.inputs
            if isinstance(s, ColSpec)
        ]

    def output_metadata(self) -> list[dict[str, Any]]:
        out = []
        for spec in (self.signature and self.signature.outputs) or ():
            if isinstance(spec, ColSpec):
                out.append({"name": spec.name, "datatype": self.outputs[spec.name], "shape": [-1]})
            else:
                shape = [*spec.shape]
                out.append({"name": OUTPUT, "datatype": self.outputs[OUTPUT], "shape": shape})
        return out


class _Tensor:
    __slots__ = ("datatype", "name", "shape", "values")

    def __init__(self, name: str, shape: list[int], datatype: str, values: list[Any]) -> None:
        self.name = name
        self.shape = shape
        self.datatype = datatype
        self.values = values


# -- reading a request ---------------------------------------------------------------------------
def _decompress(raw: bytes, encoding: str, limit: int) -> bytes:
    """The decompressed body, refused (413) once it passes ``limit``: no zip bomb gets through."""
    wbits = 16 + zlib.MAX_WBITS if encoding == "gzip" else zlib.MAX_WBITS
    out: list[bytes] = []
    size = 0
    data = raw
    while data:  # a gzip body may hold several members
        inflater = zlib.decompressobj(wbits)
        try:
            chunk = inflater.decompress(data, limit + 1 - size)
        except zlib.error as exc:
            raise InvalidInput(
                f"the {encoding} request body cannot be decompressed: {exc}"
            ) from exc
        size += len(chunk)
        if size > limit:
            raise BodyTooLarge()
        if not inflater.eof:
            raise InvalidInput(f"the {encoding} request body is truncated")
        out.append(chunk)
        data = inflater.unused_data if encoding == "gzip" else b""
    return b"".join(out)


def _split(raw: bytes, header: str | None) -> tuple[dict[str, Any], memoryview]:
    """The JSON inference request and the binary tensor data after it."""
    if header is None:
        head, rest = raw, memoryview(b"")
    else:
        n = int(header) if header.isascii() and header.isdigit() and len(header) < 20 else -1
        if not 0 <= n <= len(raw):
            raise InvalidInput(
                f"the Inference-Header-Content-Length header must be the byte length of the JSON "
                f"part of the {len(raw)}-byte body; got {header!r}"
            )
        head, rest = raw[:n], memoryview(raw)[n:]
    try:
        body = orjson.loads(head)
    except orjson.JSONDecodeError as exc:
        where = (
            ""
            if header is None
            else f" (its first {header} bytes, per Inference-Header-Content-Length)"
        )
        raise InvalidInput(f"the request body{where} is not valid JSON: {exc}") from exc
    if not isinstance(body, dict):
        raise InvalidInput("the inference request must be a JSON object with 'inputs'")
    return body, rest


def _shape(name: str, shape: Any) -> list[int]:
    if not isinstance(shape, list) or not all(type(d) is int and d >= 0 for d in shape):
        raise InvalidInput(
            f"input tensor {name!r}: 'shape' must be a list of non-negative integers, "
            f"got {shape!r}"
        )
    return shape


def _inputs(body: dict[str, Any], binary: memoryview) -> list[_Tensor]:
    """The request's input tensors, their data read and checked against shape and datatype."""
    inputs = body.get("inputs")
    if not isinstance(inputs, list) or not inputs:
        raise InvalidInput("'inputs' must be a non-empty list of tensors")
    tensors: list[_Tensor] = []
    seen: set[str] = set()
    offset = 0
    for i, t in enumerate(inputs):
        if not isinstance(t, dict):
            raise InvalidInput(f"inputs[{i}] must be a tensor object")
        name = t.get("name")
        if not isinstance(name, str) or not name:
            raise InvalidInput(f"inputs[{i}] needs a 'name'")
        if name in seen:
            raise InvalidInput(f"input tensor {name!r} appears more than once")
        seen.add(name)
        shape = _shape(name, t.get("shape"))
        datatype = t.get("datatype")
        if datatype not in _JSON_TYPES:
            raise InvalidInput(
                f"input tensor {name!r}: datatype {datatype!r} is not one of "
                + ", ".join(DATATYPES)
            )
        params = t.get("parameters") or {}
        if not isinstance(params, dict):
            raise InvalidInput(f"input tensor {name!r}: 'parameters' must be an object")
        if "shared_memory_region" in params:
            raise InvalidInput(
                f"input tensor {name!r}: shared memory is not supported; send the data in the body"
            )
        count = math.prod(shape)
        size = params.get("binary_data_size")
        if size is None:
            if "data" not in t:
                raise InvalidInput(f"input tensor {name!r} has no 'data' (nor binary_data_size)")
            values = _from_json(name, shape, datatype, t["data"], count)
        else:
            if "data" in t:
                raise InvalidInput(f"input tensor {name!r} has both 'data' and binary_data_size")
            if type(size) is not int or size < 0:
                raise InvalidInput(
                    f"input tensor {name!r}: binary_data_size must be a byte count, got {size!r}"
                )
            if offset + size > len(binary):
                raise InvalidInput(
                    f"input tensor {name!r}: binary_data_size {size} runs past the end of the "
                    f"body ({len(binary) - offset} bytes left; check Inference-Header-Content-"
                    "Length)"
                )
            chunk = binary[offset : offset + size]
            offset += size
            values = _from_binary(name, shape, datatype, chunk, count)
        tensors.append(_Tensor(name, shape, datatype, values))
    if offset != len(binary):
        raise InvalidInput(
            f"the body has {len(binary) - offset} bytes after the JSON header that no input's "
            "binary_data_size accounts for; check Inference-Header-Content-Length"
        )
    return tensors


def _flatten(name: str, data: list[Any]) -> list[Any]:
    """Nested data made flat, a level at a time (no recursion, however deep the JSON)."""
    flat = data
    while flat and isinstance(flat[0], list):
        out: list[Any] = []
        for item in flat:
            if not isinstance(item, list):
                raise InvalidInput(f"input tensor {name!r}: 'data' mixes values and nested lists")
            out.extend(item)
        flat = out
    return flat


def _from_json(name: str, shape: list[int], datatype: str, data: Any, count: int) -> list[Any]:
    if not isinstance(data, list):
        raise InvalidInput(f"input tensor {name!r}: 'data' must be a list (flat or nested)")
    flat = _flatten(name, data)
    if len(flat) != count:
        raise InvalidInput(
            f"input tensor {name!r}: shape {shape} holds {count} values but 'data' has {len(flat)}"
        )
    allowed = _JSON_TYPES[datatype]
    bad = set(map(type, flat)) - allowed
    if bad:
        value = next(v for v in flat if type(v) in bad)
        raise InvalidInput(
            f"input tensor {name!r} is {datatype} but holds {value!r} ({type(value).__name__})"
        )
    bounds = _INT_RANGE.get(datatype)
    if bounds is not None and flat:
        low, high = min(flat), max(flat)
        if low < bounds[0] or high > bounds[1]:
            value = low if low < bounds[0] else high
            raise InvalidInput(f"input tensor {name!r}: {value} is out of range for {datatype}")
    return flat


def _from_binary(
    name: str, shape: list[int], datatype: str, chunk: memoryview, count: int
) -> list[Any]:
    if datatype == "BYTES":
        return _unpack_bytes(name, chunk, count)
    dtype = _NUMPY[datatype]
    if len(chunk) != count * dtype.itemsize:
        raise InvalidInput(
            f"input tensor {name!r}: binary_data_size is {len(chunk)} bytes; shape {shape} of "
            f"{datatype} takes {count * dtype.itemsize}"
        )
    if datatype == "BOOL" and count and np.frombuffer(chunk, np.uint8).max() > 1:
        raise InvalidInput(f"input tensor {name!r}: BOOL bytes must be 0 or 1")
    values: list[Any] = np.frombuffer(chunk, dtype).tolist()
    return values


def _unpack_bytes(name: str, chunk: memoryview, count: int) -> list[bytes]:
    out: list[bytes] = []
    pos, end = 0, len(chunk)
    while pos < end:
        if pos + 4 > end:
            raise InvalidInput(f"input tensor {name!r}: BYTES data ends inside a length prefix")
        (n,) = struct.unpack_from("<I", chunk, pos)
        pos += 4
        if pos + n > end:
            raise InvalidInput(f"input tensor {name!r}: a BYTES element runs past its data")
        out.append(bytes(chunk[pos : pos + n]))
        pos += n
    if len(out) != count:
        raise InvalidInput(
            f"input tensor {name!r}: its shape holds {count} elements but the BYTES data "
            f"has {len(out)}"
        )
    return out


# -- tensors to records --------------------------------------------------------------------------
def _text(name: str, values: list[Any], want_bytes: bool) -> list[Any]:
    """BYTES values as the column wants them: str (decoded UTF-8), or bytes for binary columns."""
    if want_bytes:
        return [v.encode() if isinstance(v, str) else v for v in values]
    try:
        return [v.decode() if isinstance(v, bytes) else v for v in values]
    except UnicodeDecodeError as exc:
        raise InvalidInput(f"input tensor {name!r}: BYTES data is not UTF-8 text: {exc}") from exc


def _check_datatype(t: _Tensor, accepts: frozenset[str], what: str) -> None:
    if t.datatype not in accepts:
        if accepts == _NUMERIC:
            wanted = "numbers (FP64, FP32, FP16 or an integer type)"
        elif "BOOL" in accepts:
            wanted = "BOOL (or integers 0 and 1)"
        else:
            wanted = "BYTES (text)"
        raise InvalidInput(f"input tensor {t.name!r} is {t.datatype}; {what} takes {wanted}")


def _records(plan: _Plan, tensors: list[_Tensor]) -> list[dict[str, Any]]:
    """One record (column → value) per row of the input tensors."""
    if plan.tensor_error is not None:
        raise InvalidInput(plan.tensor_error)
    if plan.kind == "tensor":
        if len(tensors) != 1:
            raise InvalidInput(
                f"the model takes one [N, F] tensor; got {len(tensors)} "
                f"({', '.join(t.name for t in tensors)})"
            )
        return _matrix(plan, tensors[0])
    if len(tensors) == 1 and plan.kind == "columns" and tensors[0].name not in plan.column_set:
        return _matrix(plan, tensors[0])
    if plan.kind == "none" and any(len(t.shape) == 2 and t.shape[1] != 1 for t in tensors):
        raise InvalidInput(
            "the model has no signature to name the columns of a [N, F] tensor; send one "
            "tensor per column, named as the column"
        )
    names: list[str] = []
    columns: list[list[Any]] = []
    rows = -1
    for t in tensors:
        if plan.kind == "columns" and t.name not in plan.column_set:
            raise InvalidInput(
                f"input tensor {t.name!r} is not a column of the model; it takes "
                f"{', '.join(plan.columns)} (one tensor per column, or one "
                f"[N, {len(plan.columns)}] tensor)"
            )
        shape = t.shape
        if not (len(shape) == 1 or (len(shape) == 2 and shape[1] == 1)):
            raise InvalidInput(
                f"input tensor {t.name!r} has shape {shape}; a column's tensor is [N] or [N, 1]"
            )
        if rows == -1:
            rows = shape[0]
        elif shape[0] != rows:
            raise InvalidInput(
                f"input tensor {t.name!r} has {shape[0]} rows but {names[0]!r} has {rows}"
            )
        accepts = plan.accepts.get(t.name)
        if accepts is not None:
            _check_datatype(t, accepts, f"column {t.name!r}")
        values = t.values
        if t.datatype == "BYTES":
            values = _text(t.name, values, t.name in plan.binary_columns)
        names.append(t.name)
        columns.append(values)
    missing = [c for c in plan.columns if c not in names]
    if missing:
        raise InvalidInput(
            f"no input tensor for column {missing[0]!r}; the model takes {', '.join(plan.columns)}"
        )
    if rows == 0:
        raise InvalidInput("the input tensors have no rows")
    if len(names) == 1:
        only = names[0]
        return [{only: v} for v in columns[0]]
    return [dict(zip(names, row, strict=True)) for row in zip(*columns, strict=True)]


def _matrix(plan: _Plan, t: _Tensor) -> list[dict[str, Any]]:
    """Records from one [N, F] tensor whose columns are the signature's inputs in order."""
    if plan.kind == "columns":
        keys = plan.columns
        want = len(keys)
        what = f"the model's {want} columns ({', '.join(keys)}) in order"
    else:
        want = plan.width if plan.width is not None else (t.shape[1] if len(t.shape) == 2 else 0)
        keys = [str(i) for i in range(want)]
        what = f"the model's {want} features"
    if len(t.shape) != 2:
        raise InvalidInput(
            f"input tensor {t.name!r} has shape {t.shape}; it must be [N, {want}], {what}"
        )
    n, f = t.shape
    if f != want:
        raise InvalidInput(f"input tensor {t.name!r} has {f} columns; it must have {want}, {what}")
    if n == 0:
        raise InvalidInput(f"input tensor {t.name!r} has no rows")
    for key in keys if plan.kind == "columns" else ("",):
        _check_datatype(t, plan.accepts[key], f"column {key!r}" if key else "the model")
    values = t.values
    if t.datatype == "BYTES":
        values = _text(t.name, values, False)
    if f == 1:
        only = keys[0]
        return [{only: v} for v in values]
    return [dict(zip(keys, values[i : i + f], strict=True)) for i in range(0, n * f, f)]


# -- outputs -------------------------------------------------------------------------------------
def _output_tensors(
    outputs: list[Any], declared: dict[str, str]
) -> dict[str, tuple[str, list[int], list[Any]]]:
    """The prediction as named tensors: name → (datatype, shape, flat data)."""
    first = outputs[0] if outputs else None
    if isinstance(first, dict):
        keys = list(first)
        return {
            str(k): _tensor(
                [r.get(k) if isinstance(r, dict) else None for r in outputs], declared.get(str(k))
            )
            for k in keys
        }
    return {OUTPUT: _tensor(outputs, declared.get(OUTPUT))}


def _tensor(values: list[Any], declared: str | None) -> tuple[str, list[int], list[Any]]:
    shape = [len(values)]
    flat = values
    while flat and isinstance(flat[0], list):
        k = len(flat[0])
        if any(not isinstance(v, list) or len(v) != k for v in flat):
            # Ragged: one JSON document per row, so nothing the model returns is lost.
            return "BYTES", [len(values)], [_dumps(v) for v in values]
        flat = [x for v in flat for x in v]
        shape.append(k)
    kinds = set(map(type, flat))
    if declared is not None and _fits(kinds, declared):
        return declared, shape, flat
    if kinds <= {bool}:
        return ("BOOL" if kinds else declared or "FP64"), shape, flat
    if kinds <= {int}:
        return ("UINT64" if max(flat) > _INT_RANGE["INT64"][1] else "INT64"), shape, flat
    if kinds <= {int, float, type(None)}:
        return "FP64", shape, flat
    if kinds <= {str, bytes}:
        return "BYTES", shape, flat
    return "BYTES", shape, [v if isinstance(v, str | bytes) else _dumps(v) for v in flat]


def _dumps(value: Any) -> str:
    return orjson.dumps(value, default=str, option=orjson.OPT_SERIALIZE_NUMPY).decode()


def _fits(kinds: set[type], datatype: str) -> bool:
    if datatype in _FLOATS:
        return kinds <= {int, float, type(None)}
    if datatype == "BYTES":
        return kinds <= {str, bytes}
    return kinds <= _JSON_TYPES[datatype]


def _to_bytes(datatype: str, flat: list[Any]) -> bytes:
    if datatype != "BYTES":
        return np.array(flat, dtype=_NUMPY[datatype]).tobytes()
    parts = []
    for v in flat:
        b = v if isinstance(v, bytes) else str(v).encode()
        parts.append(struct.pack("<I", len(b)))
        parts.append(b)
    return b"".join(parts)


def _requested(body: dict[str, Any]) -> tuple[list[tuple[str, bool]] | None, bool]:
    """The requested outputs (name, binary?) or None for all, and the default binary choice."""
    params = body.get("parameters") or {}
    if not isinstance(params, dict):
        raise InvalidInput("'parameters' must be an object")
    default = params.get("binary_data_output") is True
    requested = body.get("outputs")
    if requested is None:
        return None, default
    if not isinstance(requested, list):
        raise InvalidInput("'outputs' must be a list of {'name': ...} objects")
    out = []
    for i, r in enumerate(requested):
        if not isinstance(r, dict) or not isinstance(r.get("name"), str):
            raise InvalidInput(f"outputs[{i}] must be an object with a 'name'")
        p = r.get("parameters") or {}
        if not isinstance(p, dict):
            raise InvalidInput(f"output {r['name']!r}: 'parameters' must be an object")
        if "shared_memory_region" in p:
            raise InvalidInput(f"output {r['name']!r}: shared memory is not supported")
        if p.get("classification"):
            raise InvalidInput(
                f"output {r['name']!r}: the classification extension is not supported"
            )
        binary = p.get("binary_data", default)
        out.append((r["name"], binary is True))
    return out, default


def _check_names(requested: Iterable[tuple[str, bool]], produced: Iterable[str]) -> None:
    names = list(produced)
    for name, _ in requested:
        if name not in names:
            raise InvalidInput(
                f"requested output {name!r} is not an output of the model; it has "
                + ", ".join(names)
            )


def _platform(variant: Variant) -> str:
    info = variant.runtime.info
    if info.get("runtime") == "onnx":
        return "onnxruntime"
    return f"loopml-{info.get('flavor') or 'model'}"


def kserve_router(service: InferenceService) -> APIRouter:
    """The Open Inference Protocol (v2) routes for ``service``."""
    router = APIRouter(tags=["kserve-v2"])
    plans: dict[int, tuple[Signature | None, _Plan]] = {}

    def plan_of(variant: Variant) -> _Plan:
        signature = variant.runtime.model.signature
        hit = plans.get(id(signature))
        if hit is not None and hit[0] is signature:
            return hit[1]
        plan = _Plan(signature)
        if len(plans) > 32:
            plans.clear()
        plans[id(signature)] = (signature, plan)
        return plan

    def variant_of(name: str, version: str | None) -> Variant:
        if not service.serves(name):
            raise NotFound(
                f"model {name!r} is not served here; this server serves {service.name!r}"
            )
        if version is None:
            return service.primary
        try:
            return service.table.by_version(version)
        except NotFound as exc:
            served = ", ".join(sorted({v.model_version for v in service.table.live}))
            raise NotFound(
                f"model {name!r} has no version {version!r} served here; it serves version "
                f"{served}"
            ) from exc

    def error(exc: LoopmlError) -> Response:
        if isinstance(exc, Overloaded):
            return _json({"error": str(exc)}, 503, {"Retry-After": "1"})
        return _json({"error": str(exc)}, exc.http_status)

    @router.get("/v2/health/live")
    def live() -> Response:
        """Liveness."""
        return _json({"live": True})

    @router.get("/v2/health/ready")
    def ready() -> Response:
        """Readiness: the app exists only once its models are loaded and warm."""
        return _json({"ready": True})

    @router.get("/v2")
    def server_metadata() -> Response:
        """The server's name, version and protocol extensions."""
        return _json(
            {"name": "loopml", "version": loopml.__version__, "extensions": ["binary_tensor_data"]}
        )

    def metadata(name: str, version: str | None) -> Response:
        try:
            variant = variant_of(name, version)
        except NotFound as exc:
            return error(exc)
        plan = plan_of(variant)
        versions = (
            sorted({v.model_version for v in service.table.live}) if version is None else [version]
        )
        return _json(
            {
                "name": name,
                "versions": versions,
                "platform": _platform(variant),
                "inputs": plan.input_metadata(),
                "outputs": plan.output_metadata(),
            }
        )

    @router.get("/v2/models/{name}")
    def model_metadata(name: str) -> Response:
        """The served model's inputs, outputs, platform and versions."""
        return metadata(name, None)

    @router.get("/v2/models/{name}/versions/{version}")
    def version_metadata(name: str, version: str) -> Response:
        """One served version's metadata."""
        return metadata(name, version)

    def model_ready(name: str, version: str | None) -> Response:
        try:
            variant_of(name, version)
        except NotFound as exc:
            return error(exc)
        return _json({"name": name, "ready": True})

    @router.get("/v2/models/{name}/ready")
    def is_model_ready(name: str) -> Response:
        """Whether the model is served (and so loaded and warm)."""
        return model_ready(name, None)

    @router.get("/v2/models/{name}/versions/{version}/ready")
    def is_version_ready(name: str, version: str) -> Response:
        """Whether this version is served."""
        return model_ready(name, version)

    async def infer(request: Request, name: str, version: str | None) -> Response:
        limit: int = getattr(request.app.state, "max_body_bytes", MAX_BODY_BYTES)
        try:
            variant = variant_of(name, version)
            encoding = request.headers.get("content-encoding", "identity").strip().lower()
            if encoding not in ("identity", "gzip", "deflate"):
                message = f"Content-Encoding {encoding!r} is not supported; use gzip or deflate"
                return _json({"error": message}, 415)
            raw = await read_body(request)
            if encoding != "identity":
                raw = _decompress(raw, encoding, limit)
            body, binary = _split(raw, request.headers.get(_HEADER_LENGTH))
            request_id = body.get("id")
            if request_id is not None and not isinstance(request_id, str):
                raise InvalidInput("'id' must be a string")
            requested, default_binary = _requested(body)
            inputs = _inputs(body, binary)
            # the variant first: its signature names the tensors' columns
            route = (variant, service.unit_of(None, request.headers))
            if version is None:
                route = service.choose(headers=request.headers)
            records = _records(plan_of(route[0]), inputs)
            if version is None and route[1] is None and service.unit_key is not None:
                routed = service.choose(headers=request.headers, first=records[0])
                if routed[0] is not route[0]:  # the unit was a tensor: read it again
                    records = _records(plan_of(routed[0]), inputs)
                route = routed
            plan = plan_of(route[0])
            if requested is not None and plan.outputs:
                _check_names(requested, plan.outputs)
            pred = await service.predict(records, protocol="v2", route=route)
            tensors = _output_tensors(pred.outputs, plan_of(pred.variant).outputs)
            if requested is None:
                requested = [(n, default_binary) for n in tensors]
            else:
                _check_names(requested, tensors)
        except BodyTooLarge:
            return _json({"error": f"the request body exceeds {limit} bytes"}, 413)
        except LoopmlError as exc:
            return error(exc)
        answer: dict[str, Any] = {"model_name": name, "model_version": pred.variant.model_version}
        if request_id is not None:
            answer["id"] = request_id
        answer["parameters"] = {
            "variant": pred.variant.spec.name,
            "prediction_id": pred.prediction_id,
        }
        outputs: list[dict[str, Any]] = []
        chunks: list[bytes] = []
        for out_name, binary_out in requested:
            datatype, shape, flat = tensors[out_name]
            tensor: dict[str, Any] = {"name": out_name, "datatype": datatype, "shape": shape}
            if binary_out:
                data = _to_bytes(datatype, flat)
                tensor["parameters"] = {"binary_data_size": len(data)}
                chunks.append(data)
            elif datatype == "BYTES":  # JSON holds text: bytes as UTF-8 (escaped if not)
                tensor["data"] = [
                    v.decode(errors="backslashreplace") if isinstance(v, bytes) else v
                    for v in flat
                ]
            else:
                tensor["data"] = flat
            outputs.append(tensor)
        answer["outputs"] = outputs
        headers = pred.headers
        if not any(binary_out for _, binary_out in requested):
            return _json(answer, headers=headers)
        head = orjson.dumps(answer, option=orjson.OPT_SERIALIZE_NUMPY)
        headers["Inference-Header-Content-Length"] = str(len(head))
        return Response(
            b"".join((head, *chunks)), media_type="application/octet-stream", headers=headers
        )

    @router.post("/v2/models/{name}/infer")
    async def infer_latest(name: str, request: Request) -> Response:
        """Predict with the served model (routed as the service routes)."""
        return await infer(request, name, None)

    @router.post("/v2/models/{name}/versions/{version}/infer")
    async def infer_version(name: str, version: str, request: Request) -> Response:
        """Predict with a named served version."""
        return await infer(request, name, version)

    router.infer = infer  # type: ignore[attr-defined]  # the serving fast path calls it directly
    return router
