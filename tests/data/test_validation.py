"""Data validation: every rule passing and failing, YAML forms, bad declarations, results."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pandas as pd
import pyarrow
import pytest

from loopml.data._rules import Check, Column, Rules
from loopml.data._validate import RuleFailure, ValidationResult, validate
from loopml.errors import DataValidationFailed, InvalidInput

NOW = datetime(2024, 3, 10, 12, 0, tzinfo=UTC)


def only(result: ValidationResult) -> RuleFailure:
    """The single failure of ``result``."""
    assert len(result.failures) == 1, result.summary()
    return result.failures[0]


def rows(failure: RuleFailure) -> list[Any]:
    return [e["row"] for e in failure.examples]


def values(failure: RuleFailure) -> list[Any]:
    return [e["value"] for e in failure.examples]


def good_frame() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "user_id": [1, 1, 2, 3],
            "day": ["mon", "tue", "mon", "mon"],
            "age": [30, 0, 120, None],
            "country": ["DE", "FR", None, "US"],
            "email": ["a@x.io", "b@x.io", None, "c@x.io"],
            "event_time": pd.to_datetime(
                ["2024-03-10 10:00", "2024-03-09 13:00", "2024-03-01 00:00", None], utc=True
            ),
        }
    )


GOOD_YAML = """
min_rows: 2
max_rows: 10
strict: true
columns:
  user_id: {dtype: int64, nullable: false}
  day: {dtype: str, allowed: [mon, tue]}
  age: {dtype: float, min: 0, max: 120, max_null_share: 0.25}
  country: {allowed: [DE, FR, US], max_null_share: 0.25}
  email: {regex: '^[^@]+@[^@]+$', unique: true}
  event_time: {dtype: datetime, max_age: 24h, min: 2024-01-01}
unique_together: [[user_id, day]]
"""


# -- passing --------------------------------------------------------------------------------
def test_every_rule_kind_passes_on_good_data() -> None:
    result = validate(good_frame(), GOOD_YAML, now=NOW)
    assert result.ok, result.summary()
    assert result.failures == []
    assert result.num_rows == 4
    # row_count, strict, 6 x required, 4 x dtype, nullable, 2 x allowed, range x2, 2 x null_share,
    # regex, unique, freshness, unique_together
    assert result.checked == 1 + 1 + 6 + 4 + 1 + 2 + 2 + 2 + 1 + 1 + 1 + 1
    assert result.summary() == "OK: 23 rules passed on 4 rows"
    result.raise_for_failures()  # no error


def test_no_rules_checks_nothing() -> None:
    result = validate(pd.DataFrame({"a": [1]}), Rules())
    assert result.ok and result.checked == 0 and result.num_rows == 1


# -- each rule failing ------------------------------------------------------------------------
def test_dtype_failure_reports_the_actual_dtype() -> None:
    df = pd.DataFrame({"n": [1.5, 2.0]})
    failure = only(validate(df, Rules([Column("n", "int64", required=False)])))
    assert failure == RuleFailure(
        "dtype", "n", 1, [{"row": None, "value": "float64"}], "dtype is float64, expected int64"
    )


@pytest.mark.parametrize(
    ("declared", "series", "ok"),
    [
        ("int", pd.Series([1, 2], dtype="int32"), True),
        ("int", pd.Series([1, None], dtype="Int64"), True),
        ("int", pd.Series([1.0, 2.0]), False),
        ("int", pd.Series([True, False]), False),
        ("float", pd.Series([1.0], dtype="float32"), True),
        ("float", pd.Series([1], dtype="int64"), False),
        ("str", pd.Series(["a", None], dtype="str"), True),
        ("string", pd.Series(["a", None], dtype="string"), True),
        ("str", pd.Series(["a", None], dtype=object), True),
        ("str", pd.Series(["a", 1], dtype=object), False),
        ("datetime", pd.Series(pd.to_datetime(["2024-01-01"], utc=True)), True),
        ("datetime", pd.Series(["2024-01-01"]), False),
        ("int64", pd.Series([1, None], dtype="Int64"), True),
        ("Int64", pd.Series([1, 2], dtype="int64"), True),
        ("int64", pd.Series([1], dtype="int32"), False),
        ("bool", pd.Series([True, None], dtype="boolean"), True),
        ("float64", pd.Series([1.0]), True),
        ("datetime64[ns]", pd.Series(pd.to_datetime(["2024-01-01"]).as_unit("ns")), True),
        ("datetime64[ns]", pd.Series(pd.to_datetime(["2024-01-01"]).as_unit("us")), False),
        ("datetime64[us, UTC]", pd.Series(pd.to_datetime(["2024-01-01"], utc=True)), True),
        ("category", pd.Series(["a", "b"], dtype="category"), True),
        ("category", pd.Series(["a", "b"]), False),
        ("object", pd.Series([{"k": 1}]), True),
    ],
)
def test_dtype_names_and_families(declared: str, series: pd.Series, ok: bool) -> None:
    result = validate(pd.DataFrame({"c": series}), Rules([Column("c", declared)]))
    assert result.ok is ok, result.summary()
    assert result.checked == 2  # required, dtype


def test_missing_required_column_is_a_failure_and_skips_its_other_rules() -> None:
    rules = Rules(
        [
            Column("a", "int64", nullable=False, min=0),
            Column("b", "int64", required=False, min=0),
        ]
    )
    result = validate(pd.DataFrame({"x": [1]}), rules)
    assert result.failures == [RuleFailure("required", "a", 1, [], "column is missing")]
    assert result.checked == 1


def test_present_optional_column_is_still_checked() -> None:
    result = validate(pd.DataFrame({"b": [1, -1]}), Rules([Column("b", required=False, min=0)]))
    assert only(result).rule == "range"
    assert result.checked == 1  # range only: required=False is not a rule


def test_nullable_counts_every_kind_of_null() -> None:
    df = pd.DataFrame(
        {
            "f": [1.0, np.nan, 3.0, np.nan],
            "o": pd.Series(["a", None, "c", "d"], dtype=object),
            "i": pd.Series([1, pd.NA, 3, 4], dtype="Int64"),
            "t": pd.to_datetime(["2024-01-01", None, None, None]),
        }
    )
    rules = Rules([Column(c, nullable=False) for c in "foit"])
    result = validate(df, rules)
    assert [(f.column, f.failed_count, rows(f)) for f in result.failures] == [
        ("f", 2, [1, 3]),
        ("o", 1, [1]),
        ("i", 1, [1]),
        ("t", 3, [1, 2, 3]),
    ]
    assert all(values(f) == [None] * f.failed_count for f in result.failures)
    assert result.failures[0].message == "null in a non-nullable column (2 rows)"


def test_nulls_fail_only_nullable_in_a_non_nullable_column() -> None:
    df = pd.DataFrame({"n": [None, -1.0, 5.0, None], "s": [None, "x", "5", None]})
    rules = Rules(
        [
            Column("n", nullable=False, min=0, allowed=[5.0], unique=True),
            Column("s", nullable=False, regex="5", unique=True),
        ]
    )
    result = validate(df, rules)
    assert [(f.rule, f.column, rows(f)) for f in result.failures] == [
        ("nullable", "n", [0, 3]),
        ("range", "n", [1]),
        ("allowed", "n", [1]),
        ("nullable", "s", [0, 3]),
        ("regex", "s", [1]),
    ]


def test_unique_counts_every_repeated_row_and_ignores_nulls() -> None:
    df = pd.DataFrame({"k": ["a", "b", "a", None, None, "c", "a", "b"]})
    failure = only(validate(df, Rules([Column("k", unique=True)])))
    assert (failure.rule, failure.column, failure.failed_count) == ("unique", "k", 5)
    assert failure.examples == [
        {"row": 0, "value": "a"},
        {"row": 1, "value": "b"},
        {"row": 2, "value": "a"},
        {"row": 6, "value": "a"},
        {"row": 7, "value": "b"},
    ]


def test_unique_ignores_nan_in_float_columns() -> None:
    df = pd.DataFrame({"k": [1.0, np.nan, np.nan]})
    assert validate(df, Rules([Column("k", unique=True)])).ok


def test_range_inclusive_and_nulls() -> None:
    df = pd.DataFrame({"n": [0, 5, 10, None, -1, 11]})
    inclusive = only(validate(df, Rules([Column("n", min=0, max=10)])))
    assert (inclusive.failed_count, rows(inclusive), values(inclusive)) == (2, [4, 5], [-1, 11])
    assert inclusive.message == "value outside [0, 10] (2 rows)"
    exclusive = only(
        validate(df, Rules([Column("n", min=0, max=10, min_inclusive=False, max_inclusive=False)]))
    )
    assert (exclusive.failed_count, rows(exclusive)) == (4, [0, 2, 4, 5])
    assert exclusive.message == "value outside (0, 10) (4 rows)"


@pytest.mark.parametrize(
    ("kwargs", "failing", "text"),
    [
        ({"min": 5}, [0, 4], "value not >= 5"),
        ({"min": 5, "min_inclusive": False}, [0, 1, 4], "value not > 5"),
        ({"max": 5}, [2, 5], "value not <= 5"),
        ({"max": 5, "max_inclusive": False}, [1, 2, 5], "value not < 5"),
    ],
)
def test_one_sided_ranges(kwargs: dict[str, Any], failing: list[int], text: str) -> None:
    df = pd.DataFrame({"n": [0, 5, 10, None, -1, 11]})
    failure = only(validate(df, Rules([Column("n", **kwargs)])))
    assert rows(failure) == failing
    assert failure.message == f"{text} ({len(failing)} rows)"


def test_range_with_date_bounds_on_a_datetime_column() -> None:
    naive = pd.to_datetime(["2023-12-31", "2024-01-01", "2024-06-01", "2025-01-01"])
    aware = naive.tz_localize("Europe/Berlin")
    rules = Rules([Column("t", min="2024-01-01", max="2024-12-31T23:59:59Z")])
    failure = only(validate(pd.DataFrame({"t": naive}), rules))
    assert (rows(failure), values(failure)) == ([0, 3], [naive[0], naive[3]])
    # Text bounds without a zone are UTC: midnight in Berlin is 23:00 UTC the day before.
    failure = only(validate(pd.DataFrame({"t": aware}), rules))
    assert (rows(failure), values(failure)) == ([0, 1], [aware[0], aware[1]])


def test_range_on_incomparable_values_is_a_failure_not_a_crash() -> None:
    failure = only(validate(pd.DataFrame({"s": ["a", "b"]}), Rules([Column("s", min=0)])))
    assert (failure.rule, failure.failed_count, failure.examples) == ("range", 1, [])
    assert failure.message.startswith("check raised TypeError(")


def test_allowed_ignores_nulls() -> None:
    df = pd.DataFrame({"c": ["DE", "XX", None, "FR", "xx", "DE"]})
    failure = only(validate(df, Rules([Column("c", allowed=["DE", "FR"])])))
    assert failure.examples == [{"row": 1, "value": "XX"}, {"row": 4, "value": "xx"}]
    assert failure.message == "value not in ['DE', 'FR'] (2 rows)"


def test_allowed_on_numbers_and_categories() -> None:
    df = pd.DataFrame({"n": [1, 2, 3], "c": pd.Series(["a", "b", "z"], dtype="category")})
    rules = Rules([Column("n", allowed=[1, 2]), Column("c", allowed=["a", "b"])])
    result = validate(df, rules)
    assert [(f.column, rows(f), values(f)) for f in result.failures] == [
        ("n", [2], [3]),
        ("c", [2], ["z"]),
    ]


def test_regex_searches_anywhere_unless_anchored() -> None:
    df = pd.DataFrame({"s": ["a@b", "x a@b y", "nope", None, "ab@"]})
    loose = only(validate(df, Rules([Column("s", regex="@b")])))
    assert loose.examples == [{"row": 2, "value": "nope"}, {"row": 4, "value": "ab@"}]
    anchored = only(validate(df, Rules([Column("s", regex="^[^@ ]+@[^@ ]+$")])))
    assert rows(anchored) == [1, 2, 4]


def test_regex_with_groups_lookbehind_and_flags() -> None:
    df = pd.DataFrame({"s": ["AB-12", "ab-3", "zz"]})
    assert rows(only(validate(df, Rules([Column("s", regex=r"^(ab|cd)-\d+$")])))) == [0, 2]
    assert rows(only(validate(df, Rules([Column("s", regex=r"(?i)^(ab|cd)-\d+$")])))) == [2]
    assert rows(only(validate(df, Rules([Column("s", regex=r"(?<=-)\d")])))) == [2]


def test_regex_fails_non_text_values_and_columns() -> None:
    mixed = pd.DataFrame({"s": pd.Series(["x1", 12, None, "x2"], dtype=object)})
    assert rows(only(validate(mixed, Rules([Column("s", regex="^x")])))) == [1]
    numbers = only(validate(pd.DataFrame({"n": [1, 2]}), Rules([Column("n", regex="1")])))
    assert numbers.rule == "regex" and numbers.failed_count == 1
    assert numbers.message == 'check raised TypeError("regex needs a text column, not int64")'


def test_null_share() -> None:
    df = pd.DataFrame({"c": [None, "a", None, "b", "c", "d", None, "e", "f", "g"]})
    assert validate(df, Rules([Column("c", max_null_share=0.3)])).ok  # exactly at the limit
    failure = only(validate(df, Rules([Column("c", max_null_share=0.25)])))
    assert failure == RuleFailure(
        "null_share",
        "c",
        3,
        [{"row": 0, "value": None}, {"row": 2, "value": None}, {"row": 6, "value": None}],
        "null share 0.3 (3 of 10 rows) is above 0.25",
    )
    assert validate(df.iloc[:0], Rules([Column("c", max_null_share=0.0)])).ok


def test_freshness_with_a_fixed_now() -> None:
    df = pd.DataFrame(
        {"t": pd.to_datetime(["2024-03-09 13:00", None, "2024-03-01 00:00"], utc=True)}
    )
    rules = Rules([Column("t", max_age="24h")])
    assert validate(df, rules, now=NOW).ok  # newest is 23h old
    late = NOW + timedelta(hours=2)
    failure = only(validate(df, rules, now=late))
    assert failure == RuleFailure(
        "freshness",
        "t",
        1,
        [{"row": 0, "value": pd.Timestamp("2024-03-09 13:00", tz="UTC")}],
        "newest value 2024-03-09T13:00:00+00:00 is older than 1d (now 2024-03-10T14:00:00+00:00)",
    )


def test_freshness_reads_naive_times_as_utc() -> None:
    naive = pd.DataFrame({"t": pd.to_datetime(["2024-03-10 11:30"])})
    rules = Rules([Column("t", max_age="30m")])
    assert validate(naive, rules, now=NOW).ok
    assert validate(naive, rules, now=datetime(2024, 3, 10, 12, 0)).ok  # naive now: UTC too
    assert not validate(naive, rules, now=NOW + timedelta(minutes=1)).ok
    berlin = pd.DataFrame({"t": pd.to_datetime(["2024-03-10 12:30"]).tz_localize("Europe/Berlin")})
    assert validate(berlin, rules, now=NOW).ok  # 11:30 UTC


def test_freshness_without_timestamps_fails() -> None:
    rules = Rules([Column("t", max_age=timedelta(days=7))])
    empty = only(validate(pd.DataFrame({"t": pd.to_datetime([None, None])}), rules, now=NOW))
    assert (empty.failed_count, empty.message) == (1, "no timestamps, so nothing is newer than 7d")
    text = only(validate(pd.DataFrame({"t": ["2024-03-10"]}), rules, now=NOW))
    assert text.message == "max_age needs a datetime column; dtype is str"


def test_row_count() -> None:
    df = pd.DataFrame({"a": range(5)})
    assert validate(df, Rules(min_rows=5, max_rows=5)).ok
    assert only(validate(df, Rules(min_rows=6))) == RuleFailure(
        "row_count", None, 1, [], "5 rows; min_rows is 6"
    )
    assert only(validate(df, Rules(max_rows=4))).message == "5 rows; max_rows is 4"


def test_strict_lists_undeclared_columns() -> None:
    df = pd.DataFrame({"a": [1], "b": [2], "c": [3]})
    assert validate(df, Rules([Column(c) for c in "abc"], strict=True)).ok
    failure = only(validate(df, Rules([Column("a")], strict=True)))
    assert failure == RuleFailure(
        "strict",
        None,
        2,
        [{"row": None, "value": "b"}, {"row": None, "value": "c"}],
        "undeclared column(s): 'b', 'c'",
    )


def test_unique_together_counts_rows_and_skips_rows_with_nulls() -> None:
    df = pd.DataFrame(
        {
            "user": [1, 1, 2, 1, None, None, 2],
            "day": ["mon", "tue", "mon", "mon", "mon", "mon", "tue"],
            "other": [0, 1, 2, 3, 4, 5, 6],
        }
    )
    failure = only(validate(df, Rules(unique_together=[["user", "day"]])))
    assert failure == RuleFailure(
        "unique_together",
        None,
        2,
        [
            {"row": 0, "value": {"user": 1.0, "day": "mon"}},
            {"row": 3, "value": {"user": 1.0, "day": "mon"}},
        ],
        "(user, day) repeated on another row (2 rows)",
    )
    missing = only(validate(df, Rules(unique_together=[["user", "hour"]])))
    assert missing.message == "cannot check (user, hour): missing column(s) ['hour']"


# -- custom checks ----------------------------------------------------------------------------
def test_column_checks_vectorised_and_element_wise() -> None:
    df = pd.DataFrame({"n": [2, -1, None, -4, 6]})
    rules = Rules(
        [
            Column(
                "n",
                checks=[
                    Check(lambda s: s > 0, name="positive", description="no refunds"),
                    Check(lambda v: v % 4 == 0, name="by4", element_wise=True),
                ],
            )
        ]
    )
    result = validate(df, rules)
    assert [(f.rule, f.column, f.failed_count, rows(f)) for f in result.failures] == [
        ("check:positive", "n", 2, [1, 3]),
        ("check:by4", "n", 3, [0, 1, 4]),
    ]
    assert result.failures[0].message == "failed check 'positive': no refunds (2 rows)"
    assert result.checked == 3


def test_column_check_that_raises_or_misbehaves_is_a_failure() -> None:
    def boom(values: pd.Series) -> pd.Series:
        raise ValueError("no good")

    df = pd.DataFrame({"n": [1, 2, 3]})
    rules = Rules(
        [
            Column(
                "n",
                checks=[
                    Check(boom),
                    Check(lambda s: s * 2, name="double"),
                    Check(lambda s: s.mean() > 10, name="big_mean"),
                    Check(lambda v: 1 / 0, name="div", element_wise=True),
                ],
            )
        ]
    )
    result = validate(df, rules)
    assert [(f.rule, f.failed_count, f.examples, f.message) for f in result.failures] == [
        ("check:boom", 1, [], 'check raised ValueError("no good")'),
        (
            "check:double",
            1,
            [],
            'check raised TypeError("returned Series of int64; a check returns a bool or bools")',
        ),
        ("check:big_mean", 1, [], "check returned False"),
        ("check:div", 1, [], 'check raised ZeroDivisionError("division by zero")'),
    ]


def test_table_checks() -> None:
    df = pd.DataFrame(
        {"start": [1, 5, 3, 2], "end": [2, 4, 3, 1], "note": ["a", None, "c", "d"]},
        index=["w", "x", "y", "z"],
    )
    rules = Rules(
        checks=[
            Check(lambda d: d["end"] >= d["start"], name="ordered"),
            Check(lambda row: row["end"] != 3, name="not3", element_wise=True),
            Check(lambda d: d[["start", "end"]] > 1, name="both_big"),
            Check(lambda d: d.loc[d["start"] > 2, "end"] > 3, name="subset"),
            Check(lambda d: len(d) > 10, name="big"),
            Check(lambda d: d["nope"] > 0, name="typo"),
        ]
    )
    result = validate(df, rules)
    by_rule = {f.rule: f for f in result.failures}
    assert list(by_rule) == ["check:ordered", "check:not3", "check:both_big", "check:subset"] + [
        "check:big",
        "check:typo",
    ]
    ordered = by_rule["check:ordered"]
    assert ordered.column is None and ordered.failed_count == 2
    assert ordered.examples == [
        {"row": "x", "value": {"start": 5, "end": 4, "note": None}},
        {"row": "z", "value": {"start": 2, "end": 1, "note": "d"}},
    ]
    assert rows(by_rule["check:not3"]) == ["y"]
    assert rows(by_rule["check:both_big"]) == ["w", "z"]
    assert rows(by_rule["check:subset"]) == ["y"]  # rows the check left out are not judged
    assert by_rule["check:big"].message == "check returned False"
    assert by_rule["check:typo"].message == 'check raised KeyError("nope")'
    assert result.checked == 6


def test_table_check_with_bad_output_is_a_failure() -> None:
    df = pd.DataFrame({"a": [1, 2]})
    rules = Rules(
        checks=[
            Check(lambda d: d["a"] * 2, name="numbers"),
            Check(lambda d: pd.Series([True], index=[99]), name="misaligned"),
        ]
    )
    result = validate(df, rules)
    assert [f.message for f in result.failures] == [
        'check raised TypeError("returned Series of int64; a check returns a bool or bools")',
        'check raised TypeError("returned a Series whose index does not match the rows")',
    ]


def test_checks_cannot_mutate_the_data() -> None:
    df = pd.DataFrame({"a": [1, 2]})
    before = df.copy()

    def meddle(d: pd.DataFrame) -> bool:
        d["a"] = 0
        d["b"] = 1
        return True

    assert validate(df, Rules([Column("a", min=1)], checks=[Check(meddle)])).ok
    pd.testing.assert_frame_equal(df, before)


def test_check_names() -> None:
    def positive(s: pd.Series) -> pd.Series:
        return s > 0

    assert Check(positive).name == "positive"
    assert Check(lambda s: s > 0).name == "lambda"
    with pytest.raises(InvalidInput, match="several checks named lambda"):
        Column("a", checks=[Check(lambda s: s > 0), Check(lambda s: s < 9)])
    with pytest.raises(InvalidInput, match="needs a callable"):
        Check("not callable")  # type: ignore[arg-type]


# -- rows, examples and counts ----------------------------------------------------------------
def test_counts_are_exact_beyond_the_examples() -> None:
    rng = np.random.default_rng(7)
    n = rng.integers(-50, 200, size=20_000)
    s = np.where(rng.random(20_000) < 0.1, None, rng.choice(["a", "b", "c", "zz"], 20_000))
    df = pd.DataFrame({"n": n, "s": s})
    rules = Rules([Column("n", min=0, max=120), Column("s", allowed=["a", "b", "c"])])
    result = validate(df, rules, max_examples=3)
    out_of_range = np.flatnonzero((n < 0) | (n > 120))
    not_allowed = np.flatnonzero(s == "zz")
    range_failure, allowed_failure = result.failures
    assert range_failure.failed_count == len(out_of_range)
    assert rows(range_failure) == out_of_range[:3].tolist()
    assert values(range_failure) == n[out_of_range[:3]].tolist()
    assert allowed_failure.failed_count == len(not_allowed)
    assert rows(allowed_failure) == not_allowed[:3].tolist()


def test_max_examples_zero_keeps_counts() -> None:
    df = pd.DataFrame({"n": [-1, -2]})
    failure = only(validate(df, Rules([Column("n", min=0)]), max_examples=0))
    assert (failure.failed_count, failure.examples) == (2, [])


def test_examples_use_the_callers_index_even_when_labels_repeat() -> None:
    df = pd.DataFrame({"n": [1, -1, -2]}, index=["a", "a", "b"])
    failure = only(validate(df, Rules([Column("n", min=0)])))
    assert failure.examples == [{"row": "a", "value": -1}, {"row": "b", "value": -2}]
    stamps = pd.DataFrame({"n": [-1]}, index=pd.to_datetime(["2024-01-01"]))
    assert rows(only(validate(stamps, Rules([Column("n", min=0)])))) == [
        pd.Timestamp("2024-01-01")
    ]


# -- input forms ------------------------------------------------------------------------------
def test_pyarrow_table_input_keeps_integer_types() -> None:
    table = pyarrow.table(
        {
            "id": pyarrow.array([1, 2, None, 2], pyarrow.int32()),
            "name": ["a", "b", None, "dd"],
            "ok": pyarrow.array([True, None, False, True]),
            "at": pyarrow.array([1, 2, 3, 4], pyarrow.timestamp("us", tz="UTC")),
        }
    )
    rules = Rules(
        [
            Column("id", "int32", unique=True),
            Column("name", "str", regex="^[a-z]$"),
            Column("ok", "bool"),
            Column("at", "datetime64[us, UTC]", max="1970-01-01T00:00:00.000003Z"),
        ],
        min_rows=4,
    )
    result = validate(table, rules)
    assert [(f.rule, f.column, rows(f), values(f)) for f in result.failures] == [
        ("unique", "id", [1, 3], [2, 2]),
        ("regex", "name", [3], ["dd"]),
        ("range", "at", [3], [pd.Timestamp(4, unit="us", tz="UTC")]),
    ]
    batch = table.to_batches()[0]
    assert validate(batch, rules).failures == result.failures


def test_rules_as_dict_yaml_text_and_file(tmp_path: Path) -> None:
    df = pd.DataFrame({"a": [1, -1]})
    spec = {"columns": {"a": {"min": 0}}}
    path = tmp_path / "rules.yml"
    path.write_text("columns:\n  a: {min: 0}\n")
    for rules in (spec, "columns: {a: {min: 0}}", path, str(path)):
        assert rows(only(validate(df, rules))) == [1]  # type: ignore[arg-type]


def test_one_line_yaml_is_text_unless_it_looks_like_a_file() -> None:
    assert Rules.from_yaml("min_rows: 3  # as in rules.yaml") == Rules(min_rows=3)
    assert Rules.from_yaml("{columns: {a: {regex: 'x.yml'}}}") == Rules(
        [Column("a", regex="x.yml")]
    )
    with pytest.raises(InvalidInput, match="rules file 'other.yaml' does not exist"):
        Rules.from_yaml("other.yaml")
    with pytest.raises(InvalidInput, match=r"rules file 'C:\\\\r.yml' does not exist"):
        Rules.from_yaml("C:\\r.yml")
    with pytest.raises(InvalidInput, match="YAML rules must be a YAML mapping"):
        Rules.from_yaml("/etc/a:b.yaml")  # a colon: text, never a file


@pytest.mark.parametrize("data", [[{"a": 1}], {"a": [1]}, None, pd.Series([1]), np.ones(3)])
def test_validate_refuses_non_tables(data: Any) -> None:
    with pytest.raises(InvalidInput, match="needs a pandas DataFrame or a pyarrow Table"):
        validate(data, Rules())


def test_validate_refuses_bad_arguments() -> None:
    df = pd.DataFrame({"a": [1]})
    with pytest.raises(InvalidInput, match="rules must be Rules"):
        validate(df, 42)  # type: ignore[arg-type]
    with pytest.raises(InvalidInput, match="max_examples"):
        validate(df, Rules(), max_examples=-1)
    with pytest.raises(InvalidInput, match="now must be a datetime"):
        validate(df, Rules(), now="2024-01-01")  # type: ignore[arg-type]
    with pytest.raises(InvalidInput, match="duplicate column names: a"):
        validate(pd.DataFrame([[1, 2]], columns=["a", "a"]), Rules())


# -- YAML and dict forms ----------------------------------------------------------------------
LIST_YAML = """
min_rows: 2
max_rows: 10
strict: true
columns:
  - name: user_id
    dtype: int64
    nullable: false
  - {name: day, dtype: str, allowed: [mon, tue]}
  - {name: age, dtype: float, min: 0, max: 120, max_null_share: 0.25}
  - {name: country, allowed: [DE, FR, US], max_null_share: 0.25}
  - {name: email, regex: '^[^@]+@[^@]+$', unique: true}
  - {name: event_time, dtype: datetime, max_age: 24h, min: 2024-01-01}
unique_together: [[user_id, day]]
"""


def python_rules() -> Rules:
    return Rules(
        [
            Column("user_id", "int64", nullable=False),
            Column("day", "str", allowed=["mon", "tue"]),
            Column("age", "float", min=0, max=120, max_null_share=0.25),
            Column("country", allowed=("DE", "FR", "US"), max_null_share=0.25),
            Column("email", regex="^[^@]+@[^@]+$", unique=True),
            Column("event_time", "datetime", max_age=timedelta(hours=24), min="2024-01-01"),
        ],
        min_rows=2,
        max_rows=10,
        strict=True,
        unique_together=[("user_id", "day")],
    )


def test_yaml_mapping_and_list_forms_equal_python() -> None:
    assert Rules.from_yaml(GOOD_YAML) == python_rules()
    assert Rules.from_yaml(LIST_YAML) == python_rules()


def test_to_dict_round_trips() -> None:
    rules = python_rules()
    data = rules.to_dict()
    assert data == {
        "min_rows": 2,
        "max_rows": 10,
        "strict": True,
        "unique_together": [["user_id", "day"]],
        "columns": {
            "user_id": {"dtype": "int64", "nullable": False},
            "day": {"dtype": "str", "allowed": ["mon", "tue"]},
            "age": {"dtype": "float", "min": 0, "max": 120, "max_null_share": 0.25},
            "country": {"allowed": ["DE", "FR", "US"], "max_null_share": 0.25},
            "email": {"unique": True, "regex": "^[^@]+@[^@]+$"},
            "event_time": {"dtype": "datetime", "min": "2024-01-01", "max_age": "1d"},
        },
    }
    assert Rules.from_dict(data) == rules
    odd = Rules(
        [
            Column("x", required=False, min=0.5, min_inclusive=False, max_inclusive=False, max=2),
            Column("t", max_age="90m"),
            Column("u", max_age=timedelta(seconds=1.5)),
        ]
    )
    assert odd.to_dict()["columns"]["t"] == {"max_age": "90m"}
    assert odd.to_dict()["columns"]["u"] == {"max_age": "1.5s"}
    assert Rules.from_dict(odd.to_dict()) == odd
    assert Rules.from_yaml(json.dumps(odd.to_dict())) == odd  # JSON is YAML


def test_to_dict_refuses_custom_checks_and_names_them() -> None:
    rules = Rules(
        [Column("a", checks=[Check(lambda s: s > 0, name="positive")])],
        checks=[Check(lambda d: True, name="always")],
    )
    with pytest.raises(InvalidInput) as err:
        rules.to_dict()
    assert "table check 'always'" in str(err.value)
    assert "check 'positive' on column 'a'" in str(err.value)


def test_yaml_dates_and_empty_columns() -> None:
    rules = Rules.from_yaml("columns:\n  t: {min: 2024-01-01, max: 2024-12-31T00:00:00Z}\n  id:\n")
    assert rules.columns == (
        Column("t", min="2024-01-01", max="2024-12-31T00:00:00+00:00"),
        Column("id"),
    )


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("columns: {age: {maxx: 3}}", "'maxx' (did you mean 'max'?) in column 'age'"),
        ("columns: [{name: age, colour: red}]", "unknown key(s) 'colour' in column 'age'"),
        ("min_row: 3", "unknown key(s) 'min_row' (did you mean 'min_rows'?) in the rules"),
        ("columns: {a: {checks: [x]}}", "column 'a': custom checks cannot be declared in YAML"),
        ("checks: [x]", "the rules: custom checks cannot be declared in YAML"),
        ("columns: {a: {min: 5, max: 1}}", "column 'a': min 5 is greater than max 1"),
        ("columns: {a: {min: 2024-02-01, max: 2024-01-01}}", "min '2024-02-01' is greater"),
        ("columns: {a: {min: 1, max: 1, max_inclusive: false}}", "with an exclusive end"),
        ("columns: {a: {min: 1, max: z}}", "must both be numbers or both text"),
        ("columns: {a: {min: [1]}}", "column 'a': min must be a number"),
        ("columns: {a: {max_null_share: -0.1}}", "max_null_share must be a number from 0 to 1"),
        ("columns: {a: {max_null_share: 2}}", "max_null_share must be a number from 0 to 1"),
        ("columns: {a: {max_age: 3 days}}", "column 'a': max_age '3 days' is not a duration"),
        ("columns: {a: {max_age: 0h}}", "max_age must be positive"),
        ("columns: {a: {regex: '(unclosed'}}", "column 'a': invalid regex '(unclosed'"),
        ("columns: {a: {dtype: integer64}}", "column 'a': unknown dtype 'integer64'"),
        ("columns: {a: {dtype: datetime64}}", "has no unit"),
        ("columns: {a: {nullable: 'no'}}", "column 'a': nullable must be true or false"),
        ("columns: {a: {allowed: DE}}", "column 'a': allowed must be a list"),
        ("columns: {a: {allowed: []}}", "allowed is empty"),
        ("unique_together: [a, b]", "unique_together is a list of column lists"),
        ("unique_together: [[a, a]]", "each of distinct column names"),
        ("min_rows: -1", "min_rows must be a whole number >= 0"),
        ("min_rows: 5\nmax_rows: 2", "min_rows 5 is greater than max_rows 2"),
        ("strict: 1", "strict must be true or false"),
        ("columns: [{dtype: int64}]", "each item of a column list needs a 'name'"),
        ("columns: [{name: a}, {name: a}]", "declared more than once: a"),
        ("columns: {a: 3}", "column 'a': expected a mapping of rules"),
        ("columns: {1: {}}", "column name 1 must be a string"),
        ("columns: 3", "columns must be a mapping of name to rules, or a list"),
        ("columns: {a: {}, a: {min: 1}}", "duplicate key 'a'"),
        ("columns: {a: [", "invalid YAML"),
        ("- a\n- b", "must be a YAML mapping of rules"),
        ("", "must be a YAML mapping of rules"),
        ("rules.txt", "(a file path must end in .yaml or .yml)"),
    ],
)
def test_bad_yaml_raises_invalid_input(text: str, message: str) -> None:
    with pytest.raises(InvalidInput) as err:
        Rules.from_yaml(text)
    assert message in str(err.value)


def test_missing_rules_file(tmp_path: Path) -> None:
    with pytest.raises(InvalidInput, match="does not exist"):
        Rules.from_yaml(tmp_path / "nope.yaml")
    with pytest.raises(InvalidInput, match="does not exist"):
        Rules.from_yaml(str(tmp_path / "nope.yml"))


def test_file_errors_name_the_file(tmp_path: Path) -> None:
    path = tmp_path / "rules.yaml"
    path.write_text("columns:\n  age: {maxx: 3}\n")
    with pytest.raises(InvalidInput, match=r"rules file '.*rules\.yaml': unknown key\(s\) 'maxx'"):
        Rules.from_yaml(path)


def test_python_declarations_are_checked_too() -> None:
    with pytest.raises(InvalidInput, match="column 'a': min 3 is greater than max 1"):
        Column("a", min=3, max=1)
    with pytest.raises(InvalidInput, match="column 'a': unknown dtype 'nope'"):
        Column("a", "nope")
    with pytest.raises(InvalidInput, match="a column name must be a non-empty string"):
        Column("")
    with pytest.raises(InvalidInput, match="columns must be Column objects"):
        Rules(["a"])  # type: ignore[list-item]
    with pytest.raises(InvalidInput, match="checks must be Check objects"):
        Rules(checks=[lambda d: True])  # type: ignore[list-item]
    with pytest.raises(InvalidInput, match="rules must be a mapping"):
        Rules.from_dict([])  # type: ignore[arg-type]


# -- results --------------------------------------------------------------------------------
def messy_result() -> ValidationResult:
    df = pd.DataFrame(
        {
            "x": [np.nan, 1.5, -np.inf, 4.0],
            "t": pd.to_datetime(["2024-01-01", None, "2023-01-01", "2024-02-01"], utc=True),
            "n": np.array([1, 2, 3, 4], dtype=np.int64),
        }
    )
    rules = Rules(
        [Column("x", nullable=False, min=0), Column("t", min="2024-01-01")],
        checks=[Check(lambda d: d["n"] < 3, name="small")],
    )
    return validate(df, rules)


def test_to_dict_is_json_safe() -> None:
    result = messy_result()
    data = result.to_dict()
    assert json.loads(json.dumps(data, allow_nan=False)) == data
    assert orjson.loads(orjson.dumps(data)) == data
    assert data["ok"] is False and data["num_rows"] == 4 and data["checked"] == 6
    failures = {(f["rule"], f["column"]): f for f in data["failures"]}
    assert failures[("nullable", "x")]["examples"] == [{"row": 0, "value": None}]
    assert failures[("range", "x")]["examples"] == [{"row": 2, "value": None}]  # -inf
    assert failures[("range", "t")]["examples"] == [
        {"row": 2, "value": "2023-01-01T00:00:00+00:00"}
    ]
    assert failures[("check:small", None)]["examples"] == [
        {"row": 2, "value": {"x": None, "t": "2023-01-01T00:00:00+00:00", "n": 3}},
        {"row": 3, "value": {"x": 4.0, "t": "2024-02-01T00:00:00+00:00", "n": 4}},
    ]
    assert type(failures[("check:small", None)]["examples"][0]["value"]["n"]) is int


def test_raise_for_failures_carries_the_result() -> None:
    result = messy_result()
    with pytest.raises(DataValidationFailed) as err:
        result.raise_for_failures()
    assert err.value.result is result
    assert err.value.http_status == 422
    assert str(err.value) == (
        "data failed 4 of 6 validation rules: nullable on 'x' (1), range on 'x' (1),"
        " range on 't' (1), check:small (2); see the error's result for examples"
    )


def test_summary() -> None:
    assert messy_result().summary().splitlines() == [
        "FAILED: 4 of 6 rules on 4 rows",
        "  nullable on 'x': null in a non-nullable column (1 row); e.g. rows 0",
        "  range on 'x': value not >= 0 (1 row); e.g. rows 2",
        "  range on 't': value not >= 2024-01-01 (1 row); e.g. rows 2",
        "  check:small: failed check 'small' (2 rows); e.g. rows 2, 3",
    ]


def test_result_records_are_frozen() -> None:
    failure = only(validate(pd.DataFrame({"n": [-1]}), Rules([Column("n", min=0)])))
    with pytest.raises(AttributeError):
        failure.failed_count = 0  # type: ignore[misc]
    with pytest.raises(AttributeError):
        Column("a").min = 3  # type: ignore[misc]
