"""Data-validation rules: declare them in Python or YAML; ``_validate`` checks data against them.

``Check``, ``Column`` and ``Rules`` hold the rules, each value checked when it is declared, and
read and write the dict and YAML forms (a YAML key given twice, or an unknown key, is refused).
"""

from __future__ import annotations

import difflib
import math
import os
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow
import yaml

from loopml.errors import InvalidInput

__all__ = ["Check", "Column", "Rules"]

_COLUMN_KEYS = (
    "dtype",
    "nullable",
    "required",
    "unique",
    "min",
    "max",
    "min_inclusive",
    "max_inclusive",
    "allowed",
    "regex",
    "max_null_share",
    "max_age",
)
_TOP_KEYS = ("min_rows", "max_rows", "strict", "unique_together", "columns")
_AGE_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
_AGE_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdw])\s*$")
_ISO_DATE_RE = re.compile(r"^\d{4}-\d{2}-\d{2}")
_DRIVE_RE = re.compile(r"^[A-Za-z]:[\\/]")


def _is_text(series: pd.Series) -> bool:
    dtype = series.dtype
    if isinstance(dtype, pd.StringDtype):
        return True
    if isinstance(dtype, pd.ArrowDtype):
        t = dtype.pyarrow_dtype
        return pyarrow.types.is_string(t) or pyarrow.types.is_large_string(t)
    # pandas < 3 stores text as object; accept it when every non-null value is a str.
    if not pd.api.types.is_object_dtype(dtype):
        return False
    return pd.api.types.infer_dtype(series, skipna=True) in ("string", "empty")


# dtype families: names that match any width or storage of a kind (documented in the guide).
_FAMILIES: dict[str, Callable[[pd.Series], bool]] = {
    "int": lambda s: pd.api.types.is_integer_dtype(s.dtype),
    "float": lambda s: pd.api.types.is_float_dtype(s.dtype),
    "str": _is_text,
    "string": _is_text,
    "datetime": lambda s: pd.api.types.is_datetime64_any_dtype(s.dtype),
}


# -- declarations ------------------------------------------------------------------------------
@dataclass(frozen=True, init=False)
class Check:
    """A custom rule in Python: ``fn`` returns True (or a boolean Series) where data passes.

    On a column, ``fn`` gets the column's non-null values as a Series (or, with
    ``element_wise=True``, one value at a time). At table level (``Rules(checks=...)``), ``fn``
    gets the whole DataFrame (or, element-wise, one row as a Series).
    """

    fn: Callable[[Any], Any]
    name: str
    element_wise: bool
    description: str

    def __init__(
        self,
        fn: Callable[[Any], Any],
        name: str | None = None,
        *,
        element_wise: bool = False,
        description: str = "",
    ) -> None:
        if not callable(fn):
            raise InvalidInput(f"Check needs a callable, got {type(fn).__name__}")
        if name is None:
            name = getattr(fn, "__name__", "check")
            name = "lambda" if name == "<lambda>" else name
        if not isinstance(name, str) or not name:
            raise InvalidInput(f"check name must be a non-empty string, got {name!r}")
        object.__setattr__(self, "fn", fn)
        object.__setattr__(self, "name", name)
        object.__setattr__(
            self, "element_wise", _bool(element_wise, f"check {name!r}: element_wise")
        )
        if not isinstance(description, str):
            raise InvalidInput(f"check {name!r}: description must be a string")
        object.__setattr__(self, "description", description)


@dataclass(frozen=True, init=False)
class Column:
    """The rules for one column; a rule left at its default is not checked.

    Args:
        name: the column.
        dtype: a pandas dtype name (``int64``, ``datetime64[ns]``, ...) or a family: ``int``,
            ``float``, ``str``/``string``, ``datetime``.
        nullable: False fails every null. required: False skips the column when it is absent.
        unique: no non-null value twice.
        min, max, min_inclusive, max_inclusive: bounds on non-null values (numbers, or text and
            ISO dates; dates and datetimes are stored as ISO text).
        allowed: the values non-null values must be among.
        regex: a Python regex each non-null value must contain a match of (``re.search``).
        max_null_share: the largest share of nulls, 0 to 1.
        max_age: freshness: the newest value is at most this old (``"24h"``, ``"7d"``, ``"30m"``
            or a timedelta; stored as a timedelta).
        checks: custom ``Check`` objects run on the column's non-null values.

    Raises:
        InvalidInput: a value is malformed or contradicts another (``min`` above ``max``).
    """

    name: str
    dtype: str | None
    nullable: bool
    required: bool
    unique: bool
    min: float | str | None
    max: float | str | None
    min_inclusive: bool
    max_inclusive: bool
    allowed: tuple[Any, ...] | None
    regex: str | None
    max_null_share: float | None
    max_age: timedelta | None
    checks: tuple[Check, ...]

    def __init__(
        self,
        name: str,
        dtype: str | None = None,
        *,
        nullable: bool = True,
        required: bool = True,
        unique: bool = False,
        min: float | str | None = None,
        max: float | str | None = None,
        min_inclusive: bool = True,
        max_inclusive: bool = True,
        allowed: Sequence[Any] | None = None,
        regex: str | None = None,
        max_null_share: float | None = None,
        max_age: str | timedelta | None = None,
        checks: Sequence[Check] = (),
    ) -> None:
        if not isinstance(name, str) or not name:
            raise InvalidInput(f"a column name must be a non-empty string, got {name!r}")
        where = f"column {name!r}"
        values: dict[str, Any] = {
            "name": name,
            "dtype": _dtype_name(dtype, where),
            "nullable": _bool(nullable, f"{where}: nullable"),
            "required": _bool(required, f"{where}: required"),
            "unique": _bool(unique, f"{where}: unique"),
            "min": _bound(min, f"{where}: min"),
            "max": _bound(max, f"{where}: max"),
            "min_inclusive": _bool(min_inclusive, f"{where}: min_inclusive"),
            "max_inclusive": _bool(max_inclusive, f"{where}: max_inclusive"),
            "allowed": _allowed(allowed, where),
            "regex": _regex(regex, where),
            "max_null_share": _share(max_null_share, where),
            "max_age": _age(max_age, where),
            "checks": _checks(checks, where),
        }
        _check_range(values, where)
        for key, value in values.items():
            object.__setattr__(self, key, value)

    def _spec(self) -> dict[str, Any]:
        """The non-default rules of this column, as plain YAML-able values."""
        spec: dict[str, Any] = {}
        defaults = {"nullable": True, "required": True, "unique": False}
        defaults |= {"min_inclusive": True, "max_inclusive": True}
        for key in _COLUMN_KEYS:
            value = getattr(self, key)
            if key in defaults and value == defaults[key]:
                continue
            if value is None:
                continue
            if key == "allowed":
                value = list(value)
            elif key == "max_age":
                value = _format_age(value)
            spec[key] = value
        return spec


@dataclass(frozen=True, init=False)
class Rules:
    """A set of rules for one table: column rules, row count, uniqueness and custom checks.

    Args:
        columns: one ``Column`` per column to check, each name once.
        min_rows, max_rows: bounds on the row count.
        unique_together: column groups whose combined values no two rows may share.
        strict: True fails columns that are not declared.
        checks: custom ``Check`` objects run on the whole DataFrame.

    Raises:
        InvalidInput: a value is malformed or contradicts another.
    """

    columns: tuple[Column, ...]
    min_rows: int | None
    max_rows: int | None
    unique_together: tuple[tuple[str, ...], ...]
    strict: bool
    checks: tuple[Check, ...]

    def __init__(
        self,
        columns: Sequence[Column] = (),
        *,
        min_rows: int | None = None,
        max_rows: int | None = None,
        unique_together: Sequence[Sequence[str]] = (),
        strict: bool = False,
        checks: Sequence[Check] = (),
    ) -> None:
        if isinstance(columns, str | bytes) or not isinstance(columns, Iterable):
            raise InvalidInput("columns must be a list of Column")
        cols = tuple(columns)
        for col in cols:
            if not isinstance(col, Column):
                raise InvalidInput(f"columns must be Column objects, got {type(col).__name__}")
        dupes = sorted({c.name for c in cols if sum(d.name == c.name for d in cols) > 1})
        if dupes:
            raise InvalidInput(f"column(s) declared more than once: {', '.join(dupes)}")
        lo = _count(min_rows, "min_rows")
        hi = _count(max_rows, "max_rows")
        if lo is not None and hi is not None and lo > hi:
            raise InvalidInput(f"min_rows {lo} is greater than max_rows {hi}")
        object.__setattr__(self, "columns", cols)
        object.__setattr__(self, "min_rows", lo)
        object.__setattr__(self, "max_rows", hi)
        object.__setattr__(self, "unique_together", _groups(unique_together))
        object.__setattr__(self, "strict", _bool(strict, "strict"))
        object.__setattr__(self, "checks", _checks(checks, "table checks"))

    @classmethod
    def from_yaml(cls, path_or_text: str | os.PathLike[str]) -> Rules:
        """Rules from a ``.yaml``/``.yml`` file path or from YAML text.

        Raises:
            InvalidInput: the file is missing, the YAML is malformed, or a key or value is wrong.
        """
        if isinstance(path_or_text, os.PathLike) or _looks_like_path(path_or_text):
            path = Path(path_or_text)
            source = f"rules file {str(path)!r}"
            try:
                text = path.read_text(encoding="utf-8")
            except FileNotFoundError:
                raise InvalidInput(f"{source} does not exist") from None
            except OSError as exc:
                raise InvalidInput(f"cannot read {source}: {exc}") from exc
        elif isinstance(path_or_text, str):
            source, text = "YAML rules", path_or_text
        else:
            raise InvalidInput(
                f"expected a YAML file path or YAML text, got {type(path_or_text).__name__}"
            )
        try:
            data = yaml.load(text, Loader=_UniqueKeyLoader)  # a SafeLoader
        except yaml.YAMLError as exc:
            raise InvalidInput(f"invalid YAML in {source}: {exc}") from exc
        if not isinstance(data, Mapping):
            hint = " (a file path must end in .yaml or .yml)" if isinstance(data, str) else ""
            raise InvalidInput(f"{source} must be a YAML mapping of rules{hint}")
        try:
            return cls.from_dict(data)
        except InvalidInput as exc:
            raise InvalidInput(f"{source}: {exc}") from exc

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Rules:
        """Rules from the dict form of the YAML format; unknown keys raise ``InvalidInput``."""
        if not isinstance(data, Mapping):
            raise InvalidInput(f"rules must be a mapping, got {type(data).__name__}")
        _reject_unknown(data, _TOP_KEYS, "the rules")
        spec = data.get("columns")
        columns: list[Column] = []
        if isinstance(spec, Mapping):
            for name, col in spec.items():
                if not isinstance(name, str):
                    raise InvalidInput(f"column name {name!r} must be a string; quote it in YAML")
                columns.append(_column_from_dict(name, col, listed=False))
        elif isinstance(spec, list):
            for item in spec:
                if not isinstance(item, Mapping) or not isinstance(item.get("name"), str):
                    raise InvalidInput(f"each item of a column list needs a 'name': {item!r}")
                columns.append(_column_from_dict(item["name"], item, listed=True))
        elif spec is not None:
            raise InvalidInput("columns must be a mapping of name to rules, or a list")
        return cls(
            columns,
            min_rows=data.get("min_rows"),
            max_rows=data.get("max_rows"),
            unique_together=data.get("unique_together") or (),
            strict=data.get("strict", False),
        )

    def to_dict(self) -> dict[str, Any]:
        """The dict (and YAML) form of these rules; ``from_dict`` reads it back.

        Raises:
            InvalidInput: the rules hold custom Python checks, which have no dict form.
        """
        custom = [f"table check {c.name!r}" for c in self.checks] + [
            f"check {c.name!r} on column {col.name!r}" for col in self.columns for c in col.checks
        ]
        if custom:
            raise InvalidInput(
                f"custom Python checks cannot be written as a dict or YAML: {', '.join(custom)};"
                " keep them in Python and serialise the other rules without them"
            )
        out: dict[str, Any] = {}
        if self.min_rows is not None:
            out["min_rows"] = self.min_rows
        if self.max_rows is not None:
            out["max_rows"] = self.max_rows
        if self.strict:
            out["strict"] = True
        if self.unique_together:
            out["unique_together"] = [list(g) for g in self.unique_together]
        out["columns"] = {col.name: col._spec() for col in self.columns}
        return out


def _looks_like_path(text: object) -> bool:
    """One line ending in .yaml/.yml with no ``{`` and no ``:`` but a Windows drive's."""
    if not isinstance(text, str) or "\n" in text or "{" in text:
        return False
    if ":" in _DRIVE_RE.sub("", text.strip(), count=1):
        return False
    return text.strip().lower().endswith((".yaml", ".yml"))


def _column_from_dict(name: str, spec: Any, *, listed: bool) -> Column:
    if spec is None:
        spec = {}
    if not isinstance(spec, Mapping):
        raise InvalidInput(f"column {name!r}: expected a mapping of rules, got {spec!r}")
    fields = {k: v for k, v in spec.items() if not (listed and k == "name")}
    _reject_unknown(fields, _COLUMN_KEYS, f"column {name!r}")
    return Column(name, **fields)


def _reject_unknown(data: Mapping[Any, Any], known: Sequence[str], where: str) -> None:
    unknown = [k for k in data if k not in known]
    if not unknown:
        return
    if "checks" in unknown:
        raise InvalidInput(
            f"{where}: custom checks cannot be declared in YAML or a dict;"
            " pass Check objects to Column(checks=...) or Rules(checks=...) in Python"
        )
    parts = []
    for key in unknown:
        close = difflib.get_close_matches(str(key), known, n=1)
        parts.append(f"{key!r}" + (f" (did you mean {close[0]!r}?)" if close else ""))
    raise InvalidInput(
        f"unknown key(s) {', '.join(parts)} in {where}; known keys: {', '.join(known)}"
    )


class _UniqueKeyLoader(yaml.SafeLoader):
    """A safe YAML loader that refuses a key given twice (YAML would keep the last silently)."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: set[Any] = set()
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                continue
            key = self.construct_object(key_node, deep=deep)
            if not isinstance(key, str | int | float | bool | date):
                continue  # unhashable keys are refused by the base loader
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    None, None, f"duplicate key {key!r}", key_node.start_mark
                )
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


# -- value checks for declarations ---------------------------------------------------------------
def _bool(value: Any, what: str) -> bool:
    if not isinstance(value, bool):
        raise InvalidInput(f"{what} must be true or false, got {value!r}")
    return value


def _count(value: Any, what: str) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < 0:
        raise InvalidInput(f"{what} must be a whole number >= 0, got {value!r}")
    return int(value)


def _dtype_name(dtype: Any, where: str) -> str | None:
    if dtype is None:
        return None
    if not isinstance(dtype, str) or not dtype:
        raise InvalidInput(f"{where}: dtype must be a dtype name such as 'int64', got {dtype!r}")
    if dtype in _FAMILIES:
        return dtype
    try:
        resolved = pd.api.types.pandas_dtype(dtype)
    except (TypeError, ValueError):
        raise InvalidInput(
            f"{where}: unknown dtype {dtype!r}; use a pandas dtype name (int64, float64, bool,"
            " object, category, datetime64[ns], Int64, ...) or a family: int, float, str, datetime"
        ) from None
    if isinstance(resolved, np.dtype) and resolved.kind in "mM":
        if np.datetime_data(resolved)[0] == "generic":
            raise InvalidInput(
                f"{where}: dtype {dtype!r} has no unit; write datetime64[ns] (or [us], ...)"
                " or use 'datetime' for any unit"
            )
    return dtype


def _bound(value: Any, what: str) -> float | str | None:
    if value is None:
        return None
    if isinstance(value, datetime | date):  # also pd.Timestamp; YAML reads 2024-01-01 as a date
        return value.isoformat()
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise InvalidInput(f"{what} must be a number, a date or a string, got {value!r}")
    if isinstance(value, float) and math.isnan(value):
        raise InvalidInput(f"{what} must not be NaN")
    return value


def _timestamp(text: str) -> pd.Timestamp | None:
    """``text`` as a UTC timestamp if it is an ISO date or date-time (naive means UTC)."""
    if not _ISO_DATE_RE.match(text):
        return None
    try:
        ts = pd.Timestamp(text)
    except (TypeError, ValueError):
        return None
    return ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")


def _check_range(values: dict[str, Any], where: str) -> None:
    lo, hi = values["min"], values["max"]
    if lo is None or hi is None:
        return
    if isinstance(lo, str) != isinstance(hi, str):
        raise InvalidInput(f"{where}: min {lo!r} and max {hi!r} must both be numbers or both text")
    a, b = lo, hi
    if isinstance(lo, str):
        ta, tb = _timestamp(lo), _timestamp(hi)
        if ta is not None and tb is not None:
            a, b = ta, tb
    if a > b:
        raise InvalidInput(f"{where}: min {lo!r} is greater than max {hi!r}")
    if a == b and not (values["min_inclusive"] and values["max_inclusive"]):
        raise InvalidInput(f"{where}: min and max are both {lo!r} with an exclusive end")


def _allowed(values: Any, where: str) -> tuple[Any, ...] | None:
    if values is None:
        return None
    if isinstance(values, str | bytes | Mapping) or not isinstance(values, Iterable):
        raise InvalidInput(f"{where}: allowed must be a list of values, got {values!r}")
    out = tuple(v.item() if isinstance(v, np.generic) else v for v in values)
    if not out:
        raise InvalidInput(f"{where}: allowed is empty, so no value could pass")
    return out


def _regex(pattern: Any, where: str) -> str | None:
    if pattern is None:
        return None
    if not isinstance(pattern, str):
        raise InvalidInput(f"{where}: regex must be a string, got {pattern!r}")
    try:
        re.compile(pattern)
    except re.error as exc:
        raise InvalidInput(f"{where}: invalid regex {pattern!r}: {exc}") from exc
    return pattern


def _share(value: Any, where: str) -> float | None:
    if value is None:
        return None
    ok = isinstance(value, int | float | np.number) and not isinstance(value, bool)
    if not ok or not 0 <= value <= 1:
        raise InvalidInput(f"{where}: max_null_share must be a number from 0 to 1, got {value!r}")
    return float(value)


def _age(value: Any, where: str) -> timedelta | None:
    if value is None:
        return None
    if isinstance(value, timedelta):
        age = value
    elif isinstance(value, str) and (m := _AGE_RE.match(value)):
        age = timedelta(seconds=float(m.group(1)) * _AGE_UNITS[m.group(2)])
    else:
        raise InvalidInput(
            f"{where}: max_age {value!r} is not a duration; write a number and a unit,"
            " s, m, h, d or w (e.g. '30m', '24h', '7d'), or pass a timedelta"
        )
    if age <= timedelta(0):
        raise InvalidInput(f"{where}: max_age must be positive, got {value!r}")
    return age


def _format_age(age: timedelta) -> str:
    seconds = age.total_seconds()
    for unit in ("d", "h", "m", "s"):
        if seconds % _AGE_UNITS[unit] == 0:
            return f"{int(seconds // _AGE_UNITS[unit])}{unit}"
    return f"{seconds:.6f}".rstrip("0") + "s"


def _checks(checks: Any, where: str) -> tuple[Check, ...]:
    if isinstance(checks, Check):
        checks = (checks,)
    if not isinstance(checks, Iterable):
        raise InvalidInput(f"{where}: checks must be a list of Check")
    out = tuple(checks)
    for c in out:
        if not isinstance(c, Check):
            raise InvalidInput(f"{where}: checks must be Check objects, got {type(c).__name__}")
    names = [c.name for c in out]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise InvalidInput(f"{where}: several checks named {', '.join(dupes)}; pass name=...")
    return out


def _groups(groups: Any) -> tuple[tuple[str, ...], ...]:
    hint = "unique_together is a list of column lists, e.g. [[user_id, day]]"
    if isinstance(groups, str) or not isinstance(groups, Iterable):
        raise InvalidInput(hint)
    out = []
    for group in groups:
        if isinstance(group, str) or not isinstance(group, Iterable):
            raise InvalidInput(f"{hint}; got {group!r}")
        cols = tuple(group)
        if not cols or not all(isinstance(c, str) for c in cols) or len(set(cols)) != len(cols):
            raise InvalidInput(f"{hint}, each of distinct column names; got {group!r}")
        out.append(cols)
    return tuple(out)
