"""The data gate: a table checked with ``loopml.data``'s validation rules, against a model's
signature (columns present, types it accepts), or, with no rules, for emptiness and columns
that hold no value at all."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from loopml.errors import InvalidInput
from loopml.gates._report import GateResult

__all__ = ["as_frame", "read_frame", "signature_rules", "validate_data"]

_PARQUET = (".parquet", ".pq")
_CSV = (".csv", ".csv.gz", ".tsv")
_NUMBERS = frozenset({"integer", "floating", "mixed-integer-float", "decimal", "boolean"})
_NOT_NULL = "not_all_null"
_SHOWN = 5  # failures named in the one-line detail


def read_frame(path: str | os.PathLike[str]) -> pd.DataFrame:
    """A Parquet (``.parquet``, ``.pq``) or CSV (``.csv``, ``.csv.gz``, ``.tsv``) file as a
    DataFrame.

    Raises:
        InvalidInput: the file is missing, of another kind, or cannot be read.
    """
    p = Path(path)
    name = p.name.lower()
    if not name.endswith(_PARQUET + _CSV):
        raise InvalidInput(f"{str(p)!r} is not a .parquet or .csv file")
    if not p.is_file():
        raise InvalidInput(f"{str(p)!r} does not exist")
    try:
        if name.endswith(_PARQUET):
            return pd.read_parquet(p)
        return pd.read_csv(p, sep="\t" if name.endswith(".tsv") else ",")
    except Exception as exc:  # noqa: BLE001 - any reader failure is bad input, said in one line
        raise InvalidInput(f"cannot read {str(p)!r}: {type(exc).__name__}: {exc}") from exc


def as_frame(data: Any, what: str = "data") -> pd.DataFrame:
    """A DataFrame from a DataFrame, an Arrow table, a dataset reference (``train@3``) or a
    Parquet/CSV path."""
    if isinstance(data, pd.DataFrame):
        return data
    if hasattr(data, "to_pandas"):
        return data.to_pandas()
    if isinstance(data, os.PathLike) or (
        isinstance(data, str) and data.lower().endswith(_PARQUET + _CSV)
    ):
        return read_frame(data)
    if isinstance(data, str):
        import loopml.data as ld

        return ld.load(data)
    raise InvalidInput(
        f"{what} must be a DataFrame, an Arrow table, a dataset reference such as 'train@3', "
        f"or a .parquet/.csv path; got {type(data).__name__}"
    )


def _load_rules(rules: Any) -> Any:
    """Rules as ``loopml.data.validate`` takes them; a ``.json`` file is read as their dict."""
    if isinstance(rules, str | os.PathLike) and str(rules).lower().endswith(".json"):
        path = Path(rules)
        try:
            return json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise InvalidInput(f"rules file {str(path)!r} does not exist") from None
        except (OSError, ValueError) as exc:
            raise InvalidInput(f"cannot read rules file {str(path)!r}: {exc}") from exc
    return rules


# -- the model's signature as rules --------------------------------------------------------------
def _whole(values: pd.Series) -> bool:
    numbers = pd.to_numeric(values, errors="coerce").to_numpy(dtype=float)
    return bool(np.isfinite(numbers).all() and (numbers == np.trunc(numbers)).all())


def _fits(kind: str) -> Callable[[pd.Series], bool]:
    """Whether a column's non-null values can be given to a model column of ``kind`` (the
    conversions the model's input checks make when it predicts)."""

    def fits(values: pd.Series) -> bool:
        if values.empty:
            return True
        inferred = pd.api.types.infer_dtype(values, skipna=True)
        if kind in ("double", "float"):
            return inferred in _NUMBERS
        if kind in ("long", "integer"):
            return inferred == "integer" or (
                inferred in ("floating", "mixed-integer-float") and _whole(values)
            )
        if kind == "boolean":
            return inferred == "boolean" or (
                inferred == "integer" and bool(values.isin((0, 1)).all())
            )
        if kind == "string":
            return inferred in ("string", "categorical")
        if kind == "binary":
            return inferred == "bytes"
        if pd.api.types.is_datetime64_any_dtype(values.dtype):
            return True
        if inferred not in ("string", "datetime", "date"):
            return False
        return bool(pd.to_datetime(values, errors="coerce", format="mixed").notna().all())

    return fits


def signature_rules(signature: Any) -> Any:
    """``loopml.data`` rules for a model signature: each input column present, holding values
    of a type the model accepts (and no missing value where its type cannot hold one)."""
    import loopml.data as ld

    if signature is None or signature.is_tensor:
        return ld.Rules()
    columns = []
    for spec in signature.inputs:
        check = ld.Check(
            _fits(spec.type),
            name=f"type:{spec.type}",
            description=f"values the model's {spec.type} input accepts",
        )
        holds_nulls = spec.type in ("double", "float", "string", "binary", "datetime")
        columns.append(ld.Column(spec.name, nullable=holds_nulls, checks=[check]))
    return ld.Rules(columns)


def _basic_rules(frame: pd.DataFrame) -> Any:
    """At least one row, and no column without a single value."""
    import loopml.data as ld

    def has_values(values: pd.Series) -> bool:
        return not values.empty  # validation passes only the non-null values

    check = ld.Check(has_values, name=_NOT_NULL, description="the column holds a value")
    return ld.Rules([ld.Column(str(c), checks=[check]) for c in frame.columns], min_rows=1)


# -- the gate ------------------------------------------------------------------------------------
def _say(failure: Any) -> str:
    """One failed rule in a few words."""
    col = failure.column
    if failure.rule == "required":
        return f"{col!r} missing"
    if failure.rule == f"check:{_NOT_NULL}":
        return f"{col!r} entirely null"
    if failure.rule.startswith("check:type:") and failure.message == "check returned False":
        return f"{col!r} holds values the model's {failure.rule[11:]} input does not accept"
    if failure.rule == "nullable" and failure.column is not None:
        return f"{col!r} has {failure.failed_count} missing value(s)"
    where = failure.rule if col is None else f"{failure.rule} on {col!r}"
    return f"{where}: {failure.message}"


def validate_data(
    data: Any,
    rules: Any = None,
    *,
    model_uri: str | None = None,
    max_examples: int = 5,
) -> GateResult:
    """Validate a table before training or release, with ``loopml.data``'s rules.

    Args:
        data: a DataFrame, an Arrow table, a dataset reference (``train@3``), or a Parquet or
            CSV path.
        rules: ``loopml.data.Rules``, their dict form, or a YAML or JSON file of them.
        model_uri: also check the columns against this model's signature: each input present,
            holding values of a type the model accepts.
        max_examples: offending rows kept per failed rule in the evidence.

    With no ``rules``, the data must also have a row and no column that is entirely null.

    Returns:
        A ``GateResult`` named ``data``: ``measured`` is the number of failed rules.

    Raises:
        InvalidInput: malformed data or rules. NotFound: an unknown model.
    """
    import loopml.data as ld

    frame = as_frame(data)
    checks: list[tuple[str, Any]] = []
    if rules is not None:
        checks.append(("rules", _load_rules(rules)))
    else:
        checks.append(("basic", _basic_rules(frame)))
    if model_uri is not None:
        from loopml.models import load_model

        signature = load_model(model_uri, extra_columns="drop").signature
        checks.append(("signature", signature_rules(signature)))
    failures: list[Any] = []
    checked = 0
    evidence: dict[str, Any] = {"rows": len(frame), "columns": len(frame.columns)}
    for source, these in checks:
        result = ld.validate(frame, these, max_examples=max_examples)
        checked += result.checked
        failures.extend(result.failures)
        evidence[source] = result.to_dict()
    if model_uri is not None:
        evidence["model_uri"] = model_uri
    n = len(failures)
    if not n:
        detail = f"{checked} rules passed on {len(frame)} rows"
    else:
        said = [_say(f) for f in failures[:_SHOWN]]
        more = f"; and {n - _SHOWN} more" if n > _SHOWN else ""
        detail = f"{n} of {checked} rules failed: {'; '.join(said)}{more}"
    return GateResult("data", not n, detail, n, 0, evidence)
