"""Data validation: check a DataFrame or Arrow table against ``Rules`` and report what failed.

Per-column value rules (nullable, unique, range, allowed, regex, custom column checks) run on
pandera's check engine with lazy validation, so every failing row of every rule is collected in
one pass. The rest is plain vectorised pandas: dtype (to support dtype families), required and
strict (a set difference), null share, freshness and row count (pandera has no such rules), and
unique_together and table-level checks (pandera reports a failing table check once per *cell* of
each failing row, which explodes on wide tables). Failures are grouped per (rule, column) into
``RuleFailure`` records with an exact count and the first few offending rows.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from typing import Any

import numpy as np
import pandas as pd
import pandera.pandas as pa
import pyarrow
from pandera.errors import SchemaErrors

from loopml.data._rules import _FAMILIES, Check, Column, Rules, _format_age, _is_text, _timestamp
from loopml.errors import DataValidationFailed, InvalidInput

__all__ = ["RuleFailure", "ValidationResult", "validate"]

# Arrow integers and booleans with nulls would become float64/object in pandas; nullable pandas
# dtypes keep their kind so that dtype rules see what the table declares.
_ARROW_TO_PANDAS = {
    pyarrow.int8(): pd.Int8Dtype(),
    pyarrow.int16(): pd.Int16Dtype(),
    pyarrow.int32(): pd.Int32Dtype(),
    pyarrow.int64(): pd.Int64Dtype(),
    pyarrow.uint8(): pd.UInt8Dtype(),
    pyarrow.uint16(): pd.UInt16Dtype(),
    pyarrow.uint32(): pd.UInt32Dtype(),
    pyarrow.uint64(): pd.UInt64Dtype(),
    pyarrow.bool_(): pd.BooleanDtype(),
}


# -- results -------------------------------------------------------------------------------------
@dataclass(frozen=True)
class RuleFailure:
    """One failed rule on one column (or on the table when ``column`` is None)."""

    rule: str
    column: str | None
    failed_count: int
    examples: list[dict[str, Any]]
    message: str

    def to_dict(self) -> dict[str, Any]:
        """This failure as JSON-able values."""
        return {
            "rule": self.rule,
            "column": self.column,
            "failed_count": self.failed_count,
            "message": self.message,
            "examples": _json_safe(self.examples),
        }


@dataclass(frozen=True)
class ValidationResult:
    """What ``validate`` found: every failed rule, with counts and example rows."""

    num_rows: int
    checked: int
    failures: list[RuleFailure]

    @property
    def ok(self) -> bool:
        """True when no rule failed."""
        return not self.failures

    def to_dict(self) -> dict[str, Any]:
        """This result as JSON-able values (NaN as null, timestamps as ISO strings)."""
        return {
            "ok": self.ok,
            "num_rows": self.num_rows,
            "checked": self.checked,
            "failures": [f.to_dict() for f in self.failures],
        }

    def raise_for_failures(self) -> None:
        """Raise ``DataValidationFailed`` (carrying this result) if any rule failed."""
        if self.ok:
            return
        names = [f"{_where(f)} ({f.failed_count})" for f in self.failures[:10]]
        more = len(self.failures) - len(names)
        listing = ", ".join(names) + (f" and {more} more" if more else "")
        raise DataValidationFailed(
            f"data failed {len(self.failures)} of {self.checked} validation rules: {listing};"
            " see the error's result for examples",
            result=self,
        )

    def summary(self) -> str:
        """A few lines for a terminal."""
        if self.ok:
            return f"OK: {self.checked} rules passed on {self.num_rows} rows"
        lines = [f"FAILED: {len(self.failures)} of {self.checked} rules on {self.num_rows} rows"]
        for f in self.failures:
            rows = [str(e["row"]) for e in f.examples if e.get("row") is not None]
            tail = f"; e.g. rows {', '.join(rows)}" if rows else ""
            lines.append(f"  {_where(f)}: {f.message}{tail}")
        return "\n".join(lines)


def _where(failure: RuleFailure) -> str:
    return failure.rule if failure.column is None else f"{failure.rule} on {failure.column!r}"


def _py(value: Any) -> Any:
    """A plain Python value: numpy scalars unwrapped, every kind of missing value as None."""
    if isinstance(value, np.datetime64):
        value = pd.Timestamp(value)
    elif isinstance(value, np.timedelta64):
        value = pd.Timedelta(value)
    elif isinstance(value, np.generic):
        value = value.item()
    if pd.api.types.is_scalar(value) and pd.isna(value):
        return None
    return value


def _json_safe(value: Any) -> Any:
    value = _py(value)
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, datetime | date | time):
        return value.isoformat()
    if isinstance(value, timedelta):
        return pd.Timedelta(value).isoformat()
    if isinstance(value, Mapping):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset | np.ndarray):
        return [_json_safe(v) for v in value]
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    if isinstance(value, Decimal):
        return str(value)
    return str(value)


# -- validation ----------------------------------------------------------------------------------
def validate(
    data: pd.DataFrame | pyarrow.Table,
    rules: Rules | Mapping[str, Any] | str | os.PathLike[str],
    *,
    max_examples: int = 5,
    now: datetime | None = None,
) -> ValidationResult:
    """Check ``data`` against ``rules`` and report every failed rule with example rows.

    Args:
        data: a pandas DataFrame, or a pyarrow Table or RecordBatch.
        rules: ``Rules``, their dict form, a YAML file path or YAML text.
        max_examples: offending rows kept per failed rule (the count is always exact).
        now: the time freshness (``max_age``) is measured from; default the current time.
            A naive value is taken as UTC.

    Raises:
        InvalidInput: ``data`` is not a table, or the rules are malformed.
    """
    if not isinstance(rules, Rules):
        if isinstance(rules, Mapping):
            rules = Rules.from_dict(rules)
        elif isinstance(rules, str | os.PathLike):
            rules = Rules.from_yaml(rules)
        else:
            raise InvalidInput(f"rules must be Rules, a dict or YAML, got {type(rules).__name__}")
    if isinstance(max_examples, bool) or not isinstance(max_examples, int) or max_examples < 0:
        raise InvalidInput(f"max_examples must be a whole number >= 0, got {max_examples!r}")
    if now is None:
        now = datetime.now(UTC)
    elif not isinstance(now, datetime):
        raise InvalidInput(f"now must be a datetime, got {type(now).__name__}")
    when = pd.Timestamp(now)
    when = when.tz_localize("UTC") if when.tzinfo is None else when
    return _Validation(_as_frame(data), rules, max_examples, when).run()


def _as_frame(data: Any) -> pd.DataFrame:
    if isinstance(data, pyarrow.Table | pyarrow.RecordBatch):
        data = data.to_pandas(types_mapper=_ARROW_TO_PANDAS.get)
    if not isinstance(data, pd.DataFrame):
        raise InvalidInput(
            f"validate needs a pandas DataFrame or a pyarrow Table, got {type(data).__name__}"
        )
    if not data.columns.is_unique:
        dupes = sorted({str(c) for c in data.columns[data.columns.duplicated()]})
        raise InvalidInput(f"the data has duplicate column names: {', '.join(dupes)}")
    return data


@dataclass(frozen=True)
class _Slot:
    rule: str
    column: str | None
    detail: str  # what a failing row did, e.g. "value outside [0, 120]"


class _Validation:
    """One run of ``validate``: every evaluated rule gets a slot; failures are kept by slot."""

    def __init__(
        self, frame: pd.DataFrame, rules: Rules, max_examples: int, now: pd.Timestamp
    ) -> None:
        self.labels = frame.index
        # Positional rows: failure cases map back to rows even when the index repeats labels,
        # and pandera (which tags what it validates) never touches the caller's frame.
        self.work = frame.reset_index(drop=True)
        self.rules = rules
        self.k = max_examples
        self.now = now
        self.slots: list[_Slot] = []
        self.failures: dict[int, RuleFailure] = {}
        self.nullable_slots: dict[str, int] = {}
        self.check_slots: dict[str, list[int]] = {}

    def run(self) -> ValidationResult:
        self._row_count()
        self._strict()
        schema_columns: dict[str, pa.Column] = {}
        for col in self.rules.columns:
            if col.name not in self.work.columns:
                if col.required:
                    self._fail(self._slot("required", col.name), 1, [], "column is missing")
                continue
            series = self.work[col.name]
            if col.required:
                self._slot("required", col.name)
            if col.dtype is not None:
                self._dtype(col, series)
            schema_column = self._schema_column(col, series)
            if schema_column is not None:
                schema_columns[col.name] = schema_column
            if col.max_null_share is not None:
                self._null_share(col, series)
            if col.max_age is not None:
                self._freshness(col, series)
        self._run_pandera(schema_columns)
        for group in self.rules.unique_together:
            self._unique_together(group)
        for check in self.rules.checks:
            self._table_check(check)
        failures = [self.failures[i] for i in sorted(self.failures)]
        return ValidationResult(
            num_rows=len(self.work), checked=len(self.slots), failures=failures
        )

    # -- bookkeeping -------------------------------------------------------------------------
    def _slot(self, rule: str, column: str | None, detail: str = "") -> int:
        self.slots.append(_Slot(rule, column, detail))
        return len(self.slots) - 1

    def _fail(self, slot: int, count: int, examples: list[dict[str, Any]], message: str) -> None:
        s = self.slots[slot]
        self.failures[slot] = RuleFailure(s.rule, s.column, count, examples, message)

    def _fail_rows(
        self, slot: int, positions: np.ndarray, columns: Sequence[str] | str | None
    ) -> None:
        """Record the rows at ``positions`` (sorted) as failing; examples show ``columns``."""
        n = len(positions)
        message = f"{self.slots[slot].detail} ({n} row{'' if n == 1 else 's'})"
        self._fail(slot, n, self._examples(positions[: self.k], columns), message)

    def _examples(
        self, positions: np.ndarray, columns: Sequence[str] | str | None
    ) -> list[dict[str, Any]]:
        """``{"row": label, "value": ...}`` per position; the value is a dict for several
        columns (``None``: the whole row)."""
        labels = [_py(v) for v in self.labels[positions].tolist()]
        if isinstance(columns, str):
            values = [_py(v) for v in self.work[columns].iloc[positions].tolist()]
            return [{"row": r, "value": v} for r, v in zip(labels, values, strict=True)]
        part = self.work if columns is None else self.work[list(columns)]
        records = part.iloc[positions].to_dict(orient="records")
        return [
            {"row": r, "value": {str(k): _py(v) for k, v in rec.items()}}
            for r, rec in zip(labels, records, strict=True)
        ]

    # -- table rules -------------------------------------------------------------------------
    def _row_count(self) -> None:
        lo, hi = self.rules.min_rows, self.rules.max_rows
        if lo is None and hi is None:
            return
        slot = self._slot("row_count", None)
        n = len(self.work)
        if lo is not None and n < lo:
            self._fail(slot, 1, [], f"{n} rows; min_rows is {lo}")
        elif hi is not None and n > hi:
            self._fail(slot, 1, [], f"{n} rows; max_rows is {hi}")

    def _strict(self) -> None:
        if not self.rules.strict:
            return
        slot = self._slot("strict", None)
        declared = {c.name for c in self.rules.columns}
        extra = [c for c in self.work.columns if c not in declared]
        if extra:
            shown = ", ".join(repr(_py(c)) for c in extra[:20]) + (
                ", ..." if len(extra) > 20 else ""
            )
            examples = [{"row": None, "value": _py(c)} for c in extra[: self.k]]
            self._fail(slot, len(extra), examples, f"undeclared column(s): {shown}")

    def _unique_together(self, group: tuple[str, ...]) -> None:
        names = ", ".join(group)
        slot = self._slot("unique_together", None, f"({names}) repeated on another row")
        missing = [c for c in group if c not in self.work.columns]
        if missing:
            self._fail(slot, 1, [], f"cannot check ({names}): missing column(s) {missing}")
            return
        part = self.work[list(group)]
        try:
            # Like SQL UNIQUE, a row with a null in the group never counts as a duplicate.
            repeated = part.duplicated(keep=False) & part.notna().all(axis=1)
        except TypeError as exc:  # unhashable values such as lists
            self._fail(slot, 1, [], f"cannot check ({names}): {_describe(exc)}")
            return
        positions = np.flatnonzero(repeated.to_numpy())
        if len(positions):
            self._fail_rows(slot, positions, group)

    def _table_check(self, check: Check) -> None:
        desc = f": {check.description}" if check.description else ""
        slot = self._slot(f"check:{check.name}", None, f"failed check {check.name!r}{desc}")
        frame = self.work.copy(deep=False)  # copy-on-write: the check cannot change our data
        try:
            if check.element_wise:
                out: Any = frame.apply(check.fn, axis=1) if len(frame) else True
            else:
                out = check.fn(frame)
            passed = _table_output(out, frame.index)
        except Exception as exc:  # noqa: BLE001 - a failing user check is a result, not a crash
            self._fail(slot, 1, [], f"check raised {_describe(exc)}")
            return
        if isinstance(passed, bool):
            if not passed:
                self._fail(slot, 1, [], "check returned False")
            return
        positions = np.flatnonzero(~passed)
        if len(positions):
            self._fail_rows(slot, positions, None)

    # -- column rules outside pandera --------------------------------------------------------
    def _dtype(self, col: Column, series: pd.Series) -> None:
        slot = self._slot("dtype", col.name)
        assert col.dtype is not None
        if not _dtype_matches(col.dtype, series):
            actual = str(series.dtype)
            examples = [{"row": None, "value": actual}][: self.k]
            self._fail(slot, 1, examples, f"dtype is {actual}, expected {col.dtype}")

    def _null_share(self, col: Column, series: pd.Series) -> None:
        slot = self._slot("null_share", col.name)
        assert col.max_null_share is not None
        nulls = series.isna().to_numpy()
        n, total = int(nulls.sum()), len(series)
        share = n / total if total else 0.0
        if share > col.max_null_share:
            positions = np.flatnonzero(nulls)
            self._fail(
                slot,
                n,
                self._examples(positions[: self.k], col.name),
                f"null share {share:.4g} ({n} of {total} rows) is above {col.max_null_share:g}",
            )

    def _freshness(self, col: Column, series: pd.Series) -> None:
        slot = self._slot("freshness", col.name)
        assert col.max_age is not None
        age = _format_age(col.max_age)
        if not pd.api.types.is_datetime64_any_dtype(series.dtype):
            self._fail(slot, 1, [], f"max_age needs a datetime column; dtype is {series.dtype}")
            return
        newest = series.max()
        if pd.isna(newest):
            self._fail(slot, 1, [], f"no timestamps, so nothing is newer than {age}")
            return
        newest_utc = newest.tz_localize("UTC") if newest.tzinfo is None else newest
        cutoff = self.now - col.max_age
        if newest_utc < cutoff:
            position = np.array([int(series.idxmax())])  # work has a RangeIndex
            self._fail(
                slot,
                1,
                self._examples(position[: self.k], col.name),
                f"newest value {newest_utc.isoformat()} is older than {age}"
                f" (now {self.now.isoformat()})",
            )

    # -- column rules on pandera -------------------------------------------------------------
    def _schema_column(self, col: Column, series: pd.Series) -> pa.Column | None:
        checks: list[pa.Check] = []
        slots = self.check_slots.setdefault(col.name, [])

        def add(rule: str, check: pa.Check, detail: str) -> None:
            slots.append(self._slot(rule, col.name, detail))
            checks.append(check)

        if not col.nullable:
            self.nullable_slots[col.name] = self._slot(
                "nullable", col.name, "null in a non-nullable column"
            )
        if col.unique:
            add("unique", pa.Check(_not_repeated), "value repeated in a unique column")
        if col.min is not None or col.max is not None:
            check, text = _range_check(col, series)
            add("range", check, text)
        if col.allowed is not None:
            shown = ", ".join(repr(v) for v in col.allowed[:10])
            shown += ", ..." if len(col.allowed) > 10 else ""
            add("allowed", pa.Check.isin(list(col.allowed)), f"value not in [{shown}]")
        if col.regex is not None:
            add("regex", pa.Check(_matcher(col.regex)), f"value not matching {col.regex!r}")
        for c in col.checks:
            desc = f": {c.description}" if c.description else ""
            fn = _column_fn(c)
            add(
                f"check:{c.name}",
                pa.Check(fn, element_wise=c.element_wise),
                f"failed check {c.name!r}{desc}",
            )
        if not checks and col.nullable:
            return None
        return pa.Column(nullable=col.nullable, checks=checks)

    def _run_pandera(self, columns: dict[str, pa.Column]) -> None:
        if not columns:
            return
        try:
            pa.DataFrameSchema(columns).validate(self.work, lazy=True, inplace=True)
            return
        except SchemaErrors as exc:
            cases = exc.failure_cases
        keys = ["column", "check", "check_number"]
        for (column, check, number), group in cases.groupby(keys, dropna=False, sort=False):
            if check == "not_nullable":
                slot = self.nullable_slots[column]
            elif pd.notna(number) and column in self.check_slots:
                slot = self.check_slots[column][int(number)]
            else:  # not a check we declared; report it rather than drop it
                slot = self._slot(str(check), column, f"failed {check}")
            positions = pd.to_numeric(group["index"], errors="coerce").dropna().astype("int64")
            unique = np.unique(positions.to_numpy())
            if len(unique):
                self._fail_rows(slot, unique, column)
                continue
            case = group["failure_case"].iloc[0]
            if isinstance(case, bool | np.bool_):
                self._fail(slot, 1, [], "check returned False")
            else:  # pandera's text for an exception raised by the check
                self._fail(slot, 1, [], f"check raised {case}")


def _dtype_matches(declared: str, series: pd.Series) -> bool:
    family = _FAMILIES.get(declared)
    if family is not None:
        return family(series)
    expected = pd.api.types.pandas_dtype(declared)
    if isinstance(expected, pd.CategoricalDtype) and expected.categories is None:
        return isinstance(series.dtype, pd.CategoricalDtype)  # "category": any categories
    return _logical(series.dtype) == _logical(expected)


def _logical(dtype: Any) -> Any:
    """The NumPy dtype behind a nullable or Arrow number/bool dtype (Int64 -> int64)."""
    if isinstance(dtype, pd.api.extensions.ExtensionDtype) and dtype.kind in "iufb":
        numpy_dtype = getattr(dtype, "numpy_dtype", None)
        if numpy_dtype is not None:
            return numpy_dtype
    return dtype


def _range_check(col: Column, series: pd.Series) -> tuple[pa.Check, str]:
    lo, hi = _bound_for(col.min, series), _bound_for(col.max, series)
    if lo is not None and hi is not None:
        check = pa.Check.in_range(
            lo, hi, include_min=col.min_inclusive, include_max=col.max_inclusive
        )
        left, right = "[" if col.min_inclusive else "(", "]" if col.max_inclusive else ")"
        return check, f"value outside {left}{col.min}, {col.max}{right}"
    if lo is not None:
        check = pa.Check.ge(lo) if col.min_inclusive else pa.Check.gt(lo)
        return check, f"value not {'>=' if col.min_inclusive else '>'} {col.min}"
    check = pa.Check.le(hi) if col.max_inclusive else pa.Check.lt(hi)
    return check, f"value not {'<=' if col.max_inclusive else '<'} {col.max}"


def _bound_for(bound: float | str | None, series: pd.Series) -> Any:
    """A text bound as a timestamp in the column's time zone when the column holds datetimes."""
    if not isinstance(bound, str) or not pd.api.types.is_datetime64_any_dtype(series.dtype):
        return bound
    ts = _timestamp(bound)
    if ts is None:
        return bound  # the comparison fails and is reported as a failure of this rule
    tz = getattr(series.dtype, "tz", None)
    return ts.tz_convert(tz) if tz is not None else ts.tz_localize(None)


def _not_repeated(values: pd.Series) -> pd.Series:
    # pandera drops nulls before calling a check, so nulls never count as repeats.
    return ~values.duplicated(keep=False)


def _matcher(pattern: str) -> Callable[[pd.Series], pd.Series]:
    def matches(values: pd.Series) -> pd.Series:
        if not (_is_text(values) or isinstance(values.dtype, pd.CategoricalDtype)):
            if not pd.api.types.is_object_dtype(values.dtype):
                raise TypeError(f"regex needs a text column, not {values.dtype}")
        # str.count rather than str.contains: contains warns on patterns with groups; a pattern
        # matches somewhere exactly when it has at least one match. Non-text values fail.
        return values.str.count(pattern).fillna(0).gt(0).astype(bool)

    return matches


def _column_fn(check: Check) -> Callable[[Any], Any]:
    """``check.fn`` made strict about its result: a bool, or a boolean Series."""
    if check.element_wise:

        def element(value: Any) -> bool:
            out = check.fn(value)
            if isinstance(out, bool | np.bool_):
                return bool(out)
            raise TypeError(f"returned {type(out).__name__}; an element-wise check returns bool")

        return element

    def vectorised(values: pd.Series) -> Any:
        out = check.fn(values)
        if isinstance(out, bool | np.bool_):
            return bool(out)
        if isinstance(out, pd.Series) and pd.api.types.is_bool_dtype(out.dtype):
            return out
        kind = f" of {out.dtype}" if isinstance(out, pd.Series) else ""
        raise TypeError(f"returned {type(out).__name__}{kind}; a check returns a bool or bools")

    return vectorised


def _table_output(out: Any, index: pd.Index) -> bool | np.ndarray:
    """A table check's result as a bool, or one bool per row (a null result fails the row)."""
    if isinstance(out, bool | np.bool_):
        return bool(out)
    if isinstance(out, pd.DataFrame) and all(pd.api.types.is_bool_dtype(t) for t in out.dtypes):
        out = out.all(axis=1)
    if not isinstance(out, pd.Series) or not pd.api.types.is_bool_dtype(out.dtype):
        kind = f" of {out.dtype}" if isinstance(out, pd.Series) else ""
        raise TypeError(f"returned {type(out).__name__}{kind}; a check returns a bool or bools")
    if not out.index.equals(index):
        if not (out.index.is_unique and out.index.isin(index).all()):
            raise TypeError("returned a Series whose index does not match the rows")
        out = out.reindex(index, fill_value=True)  # rows the check left out are not judged
    return out.to_numpy(dtype=bool, na_value=False)


def _describe(exc: BaseException) -> str:
    """An exception as pandera words it, so column and table checks read alike."""
    return f'{type(exc).__name__}("{exc.args[0]}")' if exc.args else f"{type(exc).__name__}()"
