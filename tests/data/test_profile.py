"""Dataset version profiles: statistics checked against pandas and NumPy, drift by formula."""

from __future__ import annotations

import datetime as dt
import gzip
import json
import math
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import pytest

from loopml.data._profile import (
    PROFILE_FORMAT,
    PSI_EPSILON,
    QUANTILE_LEVELS,
    compare_profiles,
    profile_files,
    profile_table,
    tabular_format,
)
from loopml.errors import InvalidInput

EPS = PSI_EPSILON


def _random_table(n: int = 4000, seed: int = 7) -> pa.Table:
    rng = np.random.default_rng(seed)
    floats = rng.normal(10.0, 3.0, n)
    float_mask = rng.random(n) < 0.1
    ints = rng.integers(-1000, 1000, n)
    int_mask = rng.random(n) < 0.05
    return pa.table(
        {
            "f": pa.array(floats, mask=float_mask),
            "i": pa.array(ints, mask=int_mask),
            "s": pa.array(rng.choice(["red", "green", "blue", "grey"], n, p=[0.4, 0.3, 0.2, 0.1])),
            "b": pa.array(rng.random(n) < 0.3),
            "t": pa.array(
                (np.datetime64("2024-01-01T00:00:00") + rng.integers(0, 10**7, n)).astype(
                    "datetime64[us]"
                )
            ),
        }
    )


def _rank_error(values: np.ndarray, quantiles: list[float]) -> float:
    """Largest gap between a level and the share of values at or below its quantile."""
    ordered = np.sort(values)
    return max(
        abs(np.searchsorted(ordered, q, side="right") / len(ordered) - level)
        for level, q in zip(QUANTILE_LEVELS, quantiles, strict=True)
    )


def _is_strict_json(value: Any) -> bool:
    json.dumps(value, allow_nan=False)  # raises on NaN and infinities
    return orjson.loads(orjson.dumps(value)) == value


# -- numeric ------------------------------------------------------------------------------------
def test_numeric_stats_match_pandas() -> None:
    table = _random_table()
    prof = profile_table(table)
    df = table.to_pandas()
    assert prof["format"] == PROFILE_FORMAT == 1
    assert prof["num_rows"] == 4000
    for name in ("f", "i"):
        s, col = prof["columns"][name], df[name].dropna()
        assert s["kind"] == "numeric"
        assert s["count"] == len(col)
        assert s["nulls"] == 4000 - len(col) == int(df[name].isna().sum())
        assert s["null_share"] == s["nulls"] / 4000
        assert s["min"] == col.min() and s["max"] == col.max()
        assert s["mean"] == pytest.approx(col.mean(), rel=1e-12, abs=1e-9)
        assert s["std"] == pytest.approx(col.std(ddof=1), rel=1e-12, abs=1e-9)
        assert s["nan"] == 0 and s["infinite"] == 0
        assert len(s["quantiles"]) == 21
        assert s["quantiles"][0] == col.min() and s["quantiles"][-1] == col.max()
        assert s["quantiles"] == sorted(s["quantiles"])
        assert _rank_error(col.to_numpy(dtype=float), s["quantiles"]) < 0.01
        assert s["distinct"] == pytest.approx(col.nunique(), rel=0.05)
    assert isinstance(prof["columns"]["i"]["min"], int)
    assert prof["schema"][:2] == [
        {"name": "f", "type": "double", "nullable": True},
        {"name": "i", "type": "int64", "nullable": True},
    ]


def test_nan_counts_as_null_and_infinities_are_values_left_out_of_moments() -> None:
    values = [1.0, float("nan"), float("inf"), None, 3.0, float("-inf"), float("nan"), 2.0]
    prof = profile_table(pa.table({"x": pa.array(values, pa.float64())}))
    s = prof["columns"]["x"]
    assert (s["count"], s["nulls"], s["nan"], s["infinite"]) == (5, 3, 2, 2)
    assert s["null_share"] == 3 / 8
    assert (s["min"], s["max"], s["mean"], s["std"]) == (1.0, 3.0, 2.0, 1.0)
    assert s["quantiles"][0] == 1.0 and s["quantiles"][-1] == 3.0
    assert s["distinct"] == 5  # 1, 2, 3, inf, -inf
    assert _is_strict_json(prof)


def test_only_non_finite_values_give_no_moments() -> None:
    prof = profile_table(pa.table({"x": [float("inf"), float("nan")]}))
    s = prof["columns"]["x"]
    assert (s["count"], s["nulls"], s["nan"], s["infinite"]) == (1, 1, 1, 1)
    assert [s[k] for k in ("min", "max", "mean", "std", "quantiles")] == [None] * 5
    assert _is_strict_json(prof)


def test_constant_column() -> None:
    s = profile_table(pa.table({"c": [4.5] * 100}))["columns"]["c"]
    assert (s["min"], s["max"], s["mean"], s["std"], s["distinct"]) == (4.5, 4.5, 4.5, 0.0, 1)
    assert s["quantiles"] == [4.5] * 21


def test_half_float_and_decimal_are_numeric() -> None:
    from decimal import Decimal

    table = pa.table(
        {
            "h": pa.array(np.array([1.5, 2.5, 0.0], np.float16), mask=np.array([0, 0, 1], bool)),
            "d": pa.array([Decimal("1.25"), Decimal("-3.50"), None], pa.decimal128(6, 2)),
        }
    )
    cols = profile_table(table)["columns"]
    assert (cols["h"]["min"], cols["h"]["max"], cols["h"]["mean"]) == (1.5, 2.5, 2.0)
    assert (cols["d"]["min"], cols["d"]["max"], cols["d"]["count"]) == (-3.5, 1.25, 2)
    assert profile_table(table)["schema"][0]["type"] == "halffloat"


# -- categorical, temporal, other ---------------------------------------------------------------
def test_top_values_are_exact_counts_most_frequent_first_ties_by_value() -> None:
    # value v{k} occurs k + 1 times for k < 60; the top 50 are v59 .. v10
    values = [f"v{k:02d}" for k in range(60) for _ in range(k + 1)] + ["tie_b", "tie_a"] * 70
    values += [None] * 5
    prof = profile_table(pa.table({"s": values}))
    s = prof["columns"]["s"]
    assert s["kind"] == "categorical"
    assert s["count"] == 1830 + 140 and s["nulls"] == 5
    assert s["distinct"] == 62
    assert s["top"][:3] == [["tie_a", 70], ["tie_b", 70], ["v59", 60]]
    assert s["top"][-1] == ["v12", 13]
    assert len(s["top"]) == 50
    assert s["other"] == sum(range(1, 13))  # v00 .. v11


def test_top_values_match_pandas_value_counts() -> None:
    table = _random_table()
    df = table.to_pandas()
    prof = profile_table(table)
    expected = df["s"].value_counts()
    assert prof["columns"]["s"]["top"] == [[k, int(v)] for k, v in expected.items()]
    assert prof["columns"]["s"]["other"] == 0
    assert prof["columns"]["b"]["top"] == [[k, int(v)] for k, v in df["b"].value_counts().items()]
    assert all(isinstance(v, bool) for v, _ in prof["columns"]["b"]["top"])


def test_temporal_min_max_are_iso_strings() -> None:
    utc = dt.UTC
    table = pa.table(
        {
            "ts": pa.array([dt.datetime(2024, 3, 1, 12, 30), None, dt.datetime(2023, 1, 2)]),
            "tz": pa.array(
                [dt.datetime(2024, 1, 1, 10, tzinfo=utc), dt.datetime(2024, 1, 2, tzinfo=utc)],
                pa.timestamp("us", tz="UTC"),
            ).take([0, 1, 1]),
            "d": pa.array([dt.date(2020, 5, 1), dt.date(2019, 1, 1), None]),
        }
    )
    prof = profile_table(table)
    assert prof["columns"]["ts"] == {
        "kind": "temporal",
        "count": 2,
        "nulls": 1,
        "null_share": 1 / 3,
        "min": "2023-01-02T00:00:00",
        "max": "2024-03-01T12:30:00",
    }
    assert (prof["columns"]["tz"]["min"], prof["columns"]["tz"]["max"]) == (
        "2024-01-01T10:00:00+00:00",
        "2024-01-02T00:00:00+00:00",
    )
    assert (prof["columns"]["d"]["min"], prof["columns"]["d"]["max"]) == (
        "2019-01-01",
        "2020-05-01",
    )
    assert [f["type"] for f in prof["schema"]] == [
        "timestamp[us]",
        "timestamp[us, tz=UTC]",
        "date32[day]",
    ]


def test_lists_structs_binary_are_other() -> None:
    table = pa.table(
        {
            "l": pa.array([[1, 2], None, []]),
            "st": pa.array([{"a": 1}, {"a": None}, None]),
            "bin": pa.array([b"x", None, None], pa.binary()),
        }
    )
    cols = profile_table(table)["columns"]
    assert cols["l"] == {"kind": "other", "count": 2, "nulls": 1, "null_share": 1 / 3}
    assert cols["st"] == {"kind": "other", "count": 2, "nulls": 1, "null_share": 1 / 3}
    assert cols["bin"] == {"kind": "other", "count": 1, "nulls": 2, "null_share": 2 / 3}


def test_schema_records_logical_types_and_nullability() -> None:
    schema = pa.schema(
        [
            pa.field("req", pa.int32(), nullable=False),
            pa.field("big", pa.large_string()),
            pa.field("cat", pa.dictionary(pa.int8(), pa.string())),
        ]
    )
    table = pa.table(
        [
            pa.array([1, 2, 3], pa.int32()),
            pa.array(["x", "y", None], pa.large_string()),
            pa.DictionaryArray.from_arrays(pa.array([0, 0, 1], pa.int8()), pa.array(["a", "b"])),
        ],
        schema=schema,
    )
    prof = profile_table(table)
    assert prof["schema"] == [
        {"name": "req", "type": "int32", "nullable": False},
        {"name": "big", "type": "string", "nullable": True},
        {"name": "cat", "type": "string", "nullable": True},
    ]
    assert prof["columns"]["cat"]["top"] == [["a", 2], ["b", 1]]
    assert prof["columns"]["big"]["kind"] == "categorical"


def test_dictionary_and_run_end_encoded_columns_are_their_values() -> None:
    codes = pa.array([0, 1, 0, None], pa.int8())
    table = pa.table(
        {
            "d": pa.DictionaryArray.from_arrays(codes, pa.array([10.5, 20.0])),
            "r": pa.RunEndEncodedArray.from_arrays(
                pa.array([2, 4], pa.int32()), pa.array(["u", "v"])
            ),
        }
    )
    prof = profile_table(table)
    assert prof["schema"] == [
        {"name": "d", "type": "double", "nullable": True},
        {"name": "r", "type": "string", "nullable": True},
    ]
    d = prof["columns"]["d"]
    assert (d["kind"], d["count"], d["min"], d["max"]) == ("numeric", 3, 10.5, 20.0)
    assert d["mean"] == pytest.approx(41 / 3, rel=1e-12)
    assert prof["columns"]["r"]["top"] == [["u", 2], ["v", 2]]


def test_dataframe_input_drops_the_index() -> None:
    df = pd.DataFrame(
        {"n": pd.array([1, None, 3], dtype="Int64"), "c": pd.Categorical(["u", "v", "u"])},
        index=[10, 20, 30],
    )
    prof = profile_table(df)
    assert [f["name"] for f in prof["schema"]] == ["n", "c"]
    assert prof["columns"]["n"]["count"] == 2 and prof["columns"]["n"]["mean"] == 2.0
    assert prof["columns"]["c"]["top"] == [["u", 2], ["v", 1]]


# -- edge shapes --------------------------------------------------------------------------------
def test_empty_table() -> None:
    table = _random_table().slice(0, 0)
    prof = profile_table(table)
    assert prof["num_rows"] == 0
    f = prof["columns"]["f"]
    assert (f["count"], f["nulls"], f["null_share"]) == (0, 0, 0.0)
    assert [f[k] for k in ("min", "max", "mean", "std", "quantiles")] == [None] * 5
    assert f["distinct"] == 0
    s = prof["columns"]["s"]
    assert (s["count"], s["distinct"], s["top"], s["other"]) == (0, 0, [], 0)
    assert prof["columns"]["t"]["min"] is None
    assert _is_strict_json(prof)


def test_table_without_columns() -> None:
    prof = profile_table(pa.table({}))
    assert prof == {"format": 1, "num_rows": 0, "schema": [], "columns": {}}


def test_all_null_columns() -> None:
    table = pa.table(
        {
            "f": pa.array([None] * 4, pa.float64()),
            "s": pa.array([None] * 4, pa.string()),
            "n": pa.nulls(4),
        }
    )
    prof = profile_table(table)
    f, s, n = (prof["columns"][k] for k in "fsn")
    assert (f["count"], f["nulls"], f["null_share"], f["min"], f["quantiles"]) == (
        0,
        4,
        1.0,
        None,
        None,
    )
    assert (s["count"], s["nulls"], s["top"], s["other"], s["distinct"]) == (0, 4, [], 0, 0)
    assert n == {"kind": "other", "count": 0, "nulls": 4, "null_share": 1.0}
    assert prof["schema"][2]["type"] == "null"
    assert _is_strict_json(prof)


WEIRD_NAMES = [
    "with space",
    "it's",
    'say "hi"',
    "naïve ünïcode 名前",
    "",
    "A",
    "a",
    'x"); DROP TABLE src; --',
    "c0",
]


def test_weird_column_names() -> None:
    table = pa.table(
        {name: [float(i), float(i) + 1.0, None] for i, name in enumerate(WEIRD_NAMES)}
    )
    prof = profile_table(table)
    assert [f["name"] for f in prof["schema"]] == WEIRD_NAMES
    assert list(prof["columns"]) == WEIRD_NAMES
    for i, name in enumerate(WEIRD_NAMES):
        s = prof["columns"][name]
        assert (s["min"], s["max"], s["count"]) == (float(i), float(i) + 1.0, 2)


def test_five_hundred_columns() -> None:
    rng = np.random.default_rng(5)
    n = 300
    data: dict[str, pa.Array] = {}
    for j in range(500):
        if j % 3 == 0:
            data[f"num {j}"] = pa.array(rng.normal(j, 1.0, n))
        elif j % 3 == 1:
            data[f"cat {j}"] = pa.array(rng.choice([f"x{j}", f"y{j}"], n))
        else:
            data[f"int {j}"] = pa.array(np.full(n, j))
    table = pa.table(data)
    prof = profile_table(table)
    assert len(prof["schema"]) == len(prof["columns"]) == 500
    for j, name in enumerate(table.column_names):
        s = prof["columns"][name]
        assert s["count"] == n
        column = table.column(name).to_numpy()
        if j % 3 == 0:
            assert s["mean"] == pytest.approx(column.mean(), rel=1e-12)
        elif j % 3 == 1:
            assert sorted(v for v, _ in s["top"]) == [f"x{j}", f"y{j}"]
            assert sum(c for _, c in s["top"]) == n
        else:
            assert (s["min"], s["max"]) == (j, j)


def test_concurrent_calls_do_not_interfere() -> None:
    tables = [_random_table(seed=s) for s in range(6)]
    expected = [profile_table(t)["columns"]["s"]["top"] for t in tables]
    with ThreadPoolExecutor(max_workers=6) as pool:
        got = list(pool.map(lambda t: profile_table(t)["columns"]["s"]["top"], tables))
    assert got == expected


# -- files --------------------------------------------------------------------------------------
def _assert_same_profile(files: dict[str, Any], memory: dict[str, Any]) -> None:
    """Equal but for the parts that depend on scan order: quantile sketches, last float bits."""
    assert files["num_rows"] == memory["num_rows"]
    assert files["schema"] == memory["schema"]
    for name, m in memory["columns"].items():
        f = files["columns"][name]
        assert f.keys() == m.keys()
        for key in m:
            if key in ("mean", "std"):
                assert f[key] == pytest.approx(m[key], rel=1e-12)
            elif key == "quantiles":
                assert f[key][0] == m[key][0] and f[key][-1] == m[key][-1]
                assert np.allclose(f[key], m[key], atol=0.02 * (m["max"] - m["min"]))
            elif key == "distinct" and m["kind"] == "numeric":
                assert f[key] == pytest.approx(m[key], rel=0.05)
            else:
                assert f[key] == m[key], (name, key)


def test_parquet_files_profile_like_the_table(tmp_path: Path) -> None:
    table = _random_table()
    pq.write_table(table.slice(0, 1500), tmp_path / "part-1")  # no suffix needed
    pq.write_table(table.slice(1500), tmp_path / "part [2]*.parquet")  # glob characters
    prof = profile_files(
        [str(tmp_path / "part-1"), str(tmp_path / "part [2]*.parquet")], "parquet"
    )
    _assert_same_profile(prof, profile_table(table))


def test_parquet_files_are_read_by_column_name(tmp_path: Path) -> None:
    pq.write_table(pa.table({"a": [1, 2], "b": ["x", "y"]}), tmp_path / "one.parquet")
    pq.write_table(pa.table({"b": ["z"], "c": [1.5]}), tmp_path / "two.parquet")
    prof = profile_files([str(tmp_path / "one.parquet"), str(tmp_path / "two.parquet")], "parquet")
    assert [f["name"] for f in prof["schema"]] == ["a", "b", "c"]
    assert prof["num_rows"] == 3
    assert (prof["columns"]["a"]["nulls"], prof["columns"]["c"]["nulls"]) == (1, 2)
    assert prof["columns"]["b"]["top"] == [["x", 1], ["y", 1], ["z", 1]]


def test_hive_style_folders_add_no_columns(tmp_path: Path) -> None:
    folder = tmp_path / "year=2024"
    folder.mkdir()
    pq.write_table(pa.table({"a": [1]}), folder / "data.parquet")
    prof = profile_files([str(folder / "data.parquet")], "parquet")
    assert [f["name"] for f in prof["schema"]] == ["a"]


def test_csv_files_profile_like_the_table(tmp_path: Path) -> None:
    table = _random_table()
    pacsv.write_csv(table.slice(0, 2000), tmp_path / "a.csv")
    sink = pa.BufferOutputStream()
    pacsv.write_csv(table.slice(2000), sink)
    # gzip is found by the file's first bytes, not by its name
    (tmp_path / "b").write_bytes(gzip.compress(sink.getvalue().to_pybytes()))
    prof = profile_files([str(tmp_path / "a.csv"), str(tmp_path / "b")], "csv")
    _assert_same_profile(prof, profile_table(table))


def test_tsv_and_empty_csv(tmp_path: Path) -> None:
    (tmp_path / "x.tsv").write_text("k\tv\n1\tapple\n2\t\n")
    (tmp_path / "empty.csv").write_bytes(b"")
    prof = profile_files([str(tmp_path / "x.tsv"), str(tmp_path / "empty.csv")], "csv")
    assert prof["num_rows"] == 2
    assert prof["schema"] == [
        {"name": "k", "type": "int64", "nullable": True},
        {"name": "v", "type": "string", "nullable": True},
    ]
    assert prof["columns"]["v"]["top"] == [["apple", 1]]
    empty = profile_files([str(tmp_path / "empty.csv")], "csv")
    assert empty == {"format": 1, "num_rows": 0, "schema": [], "columns": {}}


def test_profile_files_bad_input(tmp_path: Path) -> None:
    good = tmp_path / "ok.parquet"
    pq.write_table(pa.table({"a": [1]}), good)
    with pytest.raises(InvalidInput, match=r"unknown profile format 'json'; use one of"):
        profile_files([str(good)], "json")
    with pytest.raises(InvalidInput, match=r"missing\.parquet: no such file"):
        profile_files([str(good), str(tmp_path / "missing.parquet")], "parquet")
    with pytest.raises(InvalidInput, match=r"no such file"):
        profile_files([str(tmp_path)], "parquet")
    with pytest.raises(InvalidInput, match=r"no files to profile"):
        profile_files([], "parquet")
    with pytest.raises(InvalidInput, match=r"paths must be a list of file paths"):
        profile_files([3], "parquet")  # type: ignore[list-item]
    (tmp_path / "text.parquet").write_text("not parquet at all")
    with pytest.raises(InvalidInput, match=r"cannot read .*text\.parquet as parquet"):
        profile_files([str(tmp_path / "text.parquet")], "parquet")


def test_profile_files_accepts_one_path(tmp_path: Path) -> None:
    pq.write_table(pa.table({"a": [1, 2]}), tmp_path / "ok.parquet")
    assert profile_files(str(tmp_path / "ok.parquet"), "parquet")["num_rows"] == 2  # type: ignore[arg-type]


def test_profile_table_bad_input() -> None:
    with pytest.raises(InvalidInput, match=r"cannot profile a list; pass a pyarrow\.Table"):
        profile_table([1, 2, 3])  # type: ignore[arg-type]
    with pytest.raises(InvalidInput, match=r"cannot profile a ndarray"):
        profile_table(np.zeros(3))  # type: ignore[arg-type]
    dup = pa.Table.from_arrays([pa.array([1]), pa.array([2])], names=["x", "x"])
    with pytest.raises(InvalidInput, match=r"duplicate column names \['x'\]"):
        profile_table(dup)
    with pytest.raises(InvalidInput, match=r"cannot convert the DataFrame to Arrow"):
        profile_table(pd.DataFrame({"m": [1, "two", 3.0]}))


@pytest.mark.parametrize(
    ("path", "fmt"),
    [
        ("d/x.parquet", "parquet"),
        ("X.PQ", "parquet"),
        ("a.csv", "csv"),
        ("a.tsv", "csv"),
        ("a.csv.gz", "csv"),
        ("a.tsv.zst", "csv"),
        ("a.json", None),
        ("a.parquet.gz", None),
        ("parquet", None),
        (".csv", None),
        ("model.pkl", None),
    ],
)
def test_tabular_format(path: str, fmt: str | None) -> None:
    assert tabular_format(path) == fmt


# -- compare ------------------------------------------------------------------------------------
def _normal(shift: float, n: int = 20000, seed: int = 1) -> pa.Table:
    rng = np.random.default_rng(seed)
    return pa.table({"x": rng.normal(shift, 1.0, n)})


def test_identical_profiles_do_not_drift() -> None:
    prof = profile_table(_random_table())
    diff = compare_profiles(prof, json.loads(json.dumps(prof)))
    assert diff["rows"] == {"a": 4000, "b": 4000, "delta": 0}
    assert diff["schema"] == {"added": [], "removed": [], "type_changed": []}
    assert list(diff["columns"]) == ["f", "i", "s", "b", "t"]
    for name, col in diff["columns"].items():
        assert col["drifted"] is False
        if col["kind"] in ("numeric", "categorical"):
            assert col["psi"] == 0.0, name
    assert diff["columns"]["f"]["mean_shift"] == 0.0
    assert diff["columns"]["t"] == {
        "kind": "temporal",
        "null_share_a": 0.0,
        "null_share_b": 0.0,
        "psi": None,
        "mean_shift": None,
        "drifted": False,
        "method": "null_share",
    }
    assert (diff["drifted_columns"], diff["drift_share"]) == ([], 0.0)
    assert (diff["psi_threshold"], diff["approximate"]) == (0.2, True)


@pytest.mark.parametrize("seed", [2, 3, 4, 5])
def test_same_distribution_new_sample_does_not_drift(seed: int) -> None:
    a, b = profile_table(_normal(0.0, seed=1)), profile_table(_normal(0.0, seed=seed))
    diff = compare_profiles(a, b)
    assert diff["columns"]["x"]["psi"] < 0.01
    assert diff["drifted_columns"] == []


def test_mean_shift_of_one_std_drifts() -> None:
    a, b = profile_table(_normal(0.0)), profile_table(_normal(1.0, seed=2))
    col = compare_profiles(a, b)["columns"]["x"]
    # Decile-binned PSI of N(0,1) against N(1,1) is 0.926; the sketch gets close to it.
    assert 0.85 < col["psi"] < 1.05
    assert col["mean_shift"] == pytest.approx(1.0, abs=0.05)
    assert col["drifted"] is True and col["method"] == "psi_quantile_sketch"
    diff = compare_profiles(a, b)
    assert (diff["drifted_columns"], diff["drift_share"]) == (["x"], 1.0)


def _numeric_profile(quantiles: list[float], *, nulls: int = 0, count: int = 100) -> dict:
    stats = {
        "kind": "numeric",
        "count": count,
        "nulls": nulls,
        "null_share": nulls / (count + nulls),
        "min": quantiles[0],
        "max": quantiles[-1],
        "mean": float(np.mean(quantiles)),
        "std": float(np.std(quantiles, ddof=1)),
        "quantiles": quantiles,
        "distinct": count,
    }
    return {
        "format": 1,
        "num_rows": count + nulls,
        "schema": [{"name": "x", "type": "double", "nullable": True}],
        "columns": {"x": stats},
    }


def test_numeric_psi_follows_the_formula() -> None:
    # a uniform on [0, 20], b uniform on [10, 30]. a's deciles make the bins (-inf, 2], (2, 4],
    # ..., (18, inf), 0.1 each for a; b puts 0 in the first five, 0.1 in the next four and 0.6 in
    # the last.
    a = _numeric_profile([float(v) for v in range(21)])
    b = _numeric_profile([float(v) + 10 for v in range(21)])
    expected = 5 * (EPS - 0.1) * math.log(EPS / 0.1) + 0.5 * math.log(6)
    assert compare_profiles(a, b)["columns"]["x"]["psi"] == pytest.approx(expected, rel=1e-12)


def test_numeric_psi_keeps_a_point_mass_in_its_own_bin() -> None:
    # a: half its values are exactly 0, the rest uniform on (0, 10]. b: the same shape with
    # only 10% zeros. Bins (-inf, 0], (0, 2], (2, 4], ..., (8, 10]: a 0.5 then 0.1 each;
    # b 0.1 then 0.18 each.
    a = _numeric_profile([0.0] * 11 + [float(v) for v in range(1, 11)])
    b = _numeric_profile([0.0] * 3 + [10 * (p - 0.1) / 0.9 for p in QUANTILE_LEVELS[3:]])
    b_share = [0.1] + [0.18] * 5
    a_share = [0.5] + [0.1] * 5
    expected = sum((pb - p) * math.log(pb / p) for p, pb in zip(a_share, b_share, strict=True))
    assert compare_profiles(a, b)["columns"]["x"]["psi"] == pytest.approx(expected, rel=1e-9)


def test_constant_column_psi() -> None:
    same = compare_profiles(_numeric_profile([5.0] * 21), _numeric_profile([5.0] * 21))
    assert same["columns"]["x"]["psi"] == 0.0 and not same["columns"]["x"]["drifted"]
    assert same["columns"]["x"]["mean_shift"] is None  # std of a is 0
    moved = (1 - EPS) * math.log(1 / EPS) * 2  # all mass leaves one bin for another
    for other in (7.0, 3.0):
        col = compare_profiles(_numeric_profile([5.0] * 21), _numeric_profile([other] * 21))
        assert col["columns"]["x"]["psi"] == pytest.approx(moved, rel=1e-12)
        assert col["columns"]["x"]["drifted"] is True


def test_constant_columns_from_data() -> None:
    a = profile_table(pa.table({"c": [2.0] * 50, "k": ["z"] * 50}))
    b = profile_table(pa.table({"c": [3.0] * 50, "k": ["y"] * 50}))
    diff = compare_profiles(a, b)
    assert diff["columns"]["c"]["psi"] == pytest.approx(2 * (1 - EPS) * math.log(1 / EPS))
    assert diff["columns"]["k"]["psi"] == pytest.approx(2 * (1 - EPS) * math.log(1 / EPS))
    assert compare_profiles(a, a)["columns"]["c"]["psi"] == 0.0


def test_category_mix_change_drifts_by_the_formula() -> None:
    a = profile_table(pa.table({"s": ["x"] * 70 + ["y"] * 20 + ["z"] * 10}))
    b = profile_table(pa.table({"s": ["x"] * 30 + ["y"] * 30 + ["z"] * 40}))
    col = compare_profiles(a, b)["columns"]["s"]
    expected = sum(
        (pb - pa_) * math.log(pb / pa_) for pa_, pb in [(0.7, 0.3), (0.2, 0.3), (0.1, 0.4)]
    )
    assert col["psi"] == pytest.approx(expected, rel=1e-12)
    assert col["drifted"] is True and col["method"] == "psi_top_values"


def test_categorical_psi_puts_values_outside_both_top_lists_in_one_bucket() -> None:
    # 60 rare values (count 1 each) fall out of the top 50 on both sides; "new" appears only in b.
    rare = [f"r{k:02d}" for k in range(60)]
    a = profile_table(pa.table({"s": ["common"] * 100 + rare}))
    b = profile_table(pa.table({"s": ["common"] * 60 + ["new"] * 40 + rare}))
    assert a["columns"]["s"]["other"] == 11 and b["columns"]["s"]["other"] == 12
    col = compare_profiles(a, b)["columns"]["s"]
    # Counts known on both sides: "common" and r00..r47 (in both top lists). "new" is not: a's
    # list is cut at 50 entries, so a's count of it is unknown. The rest: r48..r59 (+ new in b).
    expected = (60 / 160 - 100 / 160) * math.log(60 / 100) + (52 / 160 - 12 / 160) * math.log(
        52 / 12
    )
    assert col["psi"] == pytest.approx(expected, rel=1e-12)


def test_null_share_change_drifts_even_with_the_same_values() -> None:
    a = profile_table(pa.table({"x": pa.array([1.0, 2.0, 3.0, 4.0] * 25)}))
    b = profile_table(pa.table({"x": pa.array([1.0, 2.0, 3.0, 4.0] * 25 + [None] * 20)}))
    col = compare_profiles(a, b)["columns"]["x"]
    assert col["psi"] == 0.0
    assert (col["null_share_a"], col["null_share_b"]) == (0.0, 20 / 120)
    assert col["drifted"] is True
    relaxed = compare_profiles(a, b, null_share_threshold=0.5)["columns"]["x"]
    assert relaxed["drifted"] is False


def test_schema_changes() -> None:
    a = profile_table(pa.table({"keep": [1, 2], "gone": ["x", "y"], "retyped": [1, 2]}))
    b = profile_table(pa.table({"keep": [1, 2], "retyped": ["1", "2"], "new": [0.5, 1.5]}))
    diff = compare_profiles(a, b)
    assert diff["schema"] == {
        "added": ["new"],
        "removed": ["gone"],
        "type_changed": [{"name": "retyped", "a": "int64", "b": "string"}],
    }
    assert list(diff["columns"]) == ["keep"]  # retyped changed kind, so it is not compared
    assert diff["rows"] == {"a": 2, "b": 2, "delta": 0}


def test_same_kind_type_change_is_still_compared() -> None:
    a = profile_table(pa.table({"v": pa.array([1, 2, 3], pa.int32())}))
    b = profile_table(pa.table({"v": pa.array([1.0, 2.0, 3.0])}))
    diff = compare_profiles(a, b)
    assert diff["schema"]["type_changed"] == [{"name": "v", "a": "int32", "b": "double"}]
    assert diff["columns"]["v"]["psi"] == 0.0


def test_compare_empty_against_data() -> None:
    a = profile_table(_random_table().slice(0, 0))
    b = profile_table(_random_table())
    diff = compare_profiles(a, b)
    assert diff["rows"] == {"a": 0, "b": 4000, "delta": 4000}
    assert diff["columns"]["f"]["psi"] is None and diff["columns"]["s"]["psi"] is None
    assert diff["columns"]["i"]["null_share_b"] < 0.1
    assert diff["columns"]["i"]["drifted"] is False  # only a null share could move


def test_compare_bad_input() -> None:
    prof = profile_table(pa.table({"a": [1]}))
    with pytest.raises(InvalidInput, match=r"profile a is a list, not a profile dict"):
        compare_profiles([], prof)  # type: ignore[arg-type]
    with pytest.raises(InvalidInput, match=r"profile b has format 2; this loopml reads format 1"):
        compare_profiles(prof, {**prof, "format": 2})
    with pytest.raises(InvalidInput, match=r"profile b lacks num_rows, schema or columns"):
        compare_profiles(prof, {"format": 1})
    with pytest.raises(InvalidInput, match=r"psi_threshold must be a positive number"):
        compare_profiles(prof, prof, psi_threshold=0)


def test_profiles_and_diffs_are_strict_json() -> None:
    table = pa.table(
        {
            "f": [1.0, float("nan"), float("inf"), None],
            "t": pa.array([dt.datetime(2024, 1, 1)] * 4),
            "b": [True, False, None, True],
            "l": [[1], None, [], [2]],
        }
    )
    prof = profile_table(table)
    assert _is_strict_json(prof)
    assert _is_strict_json(compare_profiles(prof, profile_table(table.slice(0, 2))))
