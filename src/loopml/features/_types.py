"""Feature value types, named as in Feast (``Float32``, ``Int64``, ``String``...)."""

from __future__ import annotations

from dataclasses import dataclass

import pyarrow as pa

from loopml.errors import InvalidInput

__all__ = [
    "Bool",
    "Bytes",
    "Float32",
    "Float64",
    "Int32",
    "Int64",
    "String",
    "UnixTimestamp",
    "ValueType",
    "value_type",
]


@dataclass(frozen=True, slots=True)
class ValueType:
    """A feature's type: its name, its Arrow type and its DuckDB type."""

    name: str
    arrow: pa.DataType
    duckdb: str

    def __repr__(self) -> str:
        return self.name


Float32 = ValueType("Float32", pa.float32(), "FLOAT")
Float64 = ValueType("Float64", pa.float64(), "DOUBLE")
Int32 = ValueType("Int32", pa.int32(), "INTEGER")
Int64 = ValueType("Int64", pa.int64(), "BIGINT")
String = ValueType("String", pa.string(), "VARCHAR")
Bool = ValueType("Bool", pa.bool_(), "BOOLEAN")
Bytes = ValueType("Bytes", pa.binary(), "BLOB")
UnixTimestamp = ValueType("UnixTimestamp", pa.timestamp("us", tz="UTC"), "TIMESTAMPTZ")

_BY_NAME = {
    t.name: t for t in (Float32, Float64, Int32, Int64, String, Bool, Bytes, UnixTimestamp)
}
_ALIASES = {
    "float": Float64,
    "double": Float64,
    "float32": Float32,
    "float64": Float64,
    "int": Int64,
    "int32": Int32,
    "int64": Int64,
    "str": String,
    "string": String,
    "bool": Bool,
    "bytes": Bytes,
    "timestamp": UnixTimestamp,
}


def value_type(dtype: ValueType | str | type) -> ValueType:
    """The ``ValueType`` of a type, a type name (``"Float32"``, ``"int64"``) or a Python type."""
    if isinstance(dtype, ValueType):
        return dtype
    if isinstance(dtype, type):
        by_python = {float: Float64, int: Int64, str: String, bool: Bool, bytes: Bytes}
        if dtype in by_python:
            return by_python[dtype]
    if isinstance(dtype, str):
        found = _BY_NAME.get(dtype) or _ALIASES.get(dtype.lower())
        if found is not None:
            return found
    raise InvalidInput(f"unknown feature type {dtype!r}: use one of {', '.join(sorted(_BY_NAME))}")


def from_arrow(arrow: pa.DataType) -> ValueType | None:
    """The ``ValueType`` an Arrow column maps to, or None if it has none."""
    if pa.types.is_timestamp(arrow) or pa.types.is_date(arrow):
        return UnixTimestamp
    if pa.types.is_large_string(arrow) or pa.types.is_string(arrow):
        return String
    if pa.types.is_large_binary(arrow):
        return Bytes
    if pa.types.is_integer(arrow):
        return Int32 if arrow.bit_width <= 32 and pa.types.is_signed_integer(arrow) else Int64
    if pa.types.is_float16(arrow):
        return Float32
    for t in _BY_NAME.values():
        if t.arrow == arrow:
            return t
    return None
