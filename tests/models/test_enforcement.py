"""Signature enforcement at predict time: accepted input kinds, conversions, and errors that
name the column. Exercised through a saved pyfunc model that echoes what it was given, so the
test sees exactly what the model receives."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from loopml.errors import InvalidInput
from loopml.models import ColSpec, Signature, TensorSpec, load_model, save_model


class Echo:
    """Returns its input unchanged (and remembers it), so enforcement's output is visible."""

    def __init__(self) -> None:
        self.seen: Any = None

    def predict(self, model_input: Any) -> Any:
        self.seen = model_input
        return model_input


COLUMNS = Signature(
    [
        ColSpec("x", "double"),
        ColSpec("k", "long"),
        ColSpec("s", "string"),
        ColSpec("flag", "boolean"),
    ]
)
TENSOR = Signature([TensorSpec("float32", (-1, 3))])


def _echo(tmp_path: Path, signature: Signature, **load: Any) -> Any:
    path = tmp_path / f"echo-{len(list(tmp_path.iterdir()))}"
    save_model(Echo(), path, signature=signature, onnx=False)
    return load_model(path, trusted=True, **load)


@pytest.fixture
def columns_model(tmp_path: Path) -> Any:
    return _echo(tmp_path, COLUMNS)


def _good() -> pd.DataFrame:
    return pd.DataFrame({"x": [0.5, 1.5], "k": [1, 2], "s": ["a", "b"], "flag": [True, False]})


def test_matching_frame_is_passed_through_without_a_copy(columns_model: Any) -> None:
    frame = _good()
    assert columns_model.predict(frame) is frame


@pytest.mark.parametrize(
    "data",
    [
        {"x": [0.5, 1.5], "k": [1, 2], "s": ["a", "b"], "flag": [True, False]},
        [{"x": 0.5, "k": 1, "s": "a", "flag": True}, {"x": 1.5, "k": 2, "s": "b", "flag": False}],
        np.array([[0.5, 1, "a", True], [1.5, 2, "b", False]], dtype=object),
    ],
    ids=["dict-of-columns", "records", "positional-array"],
)
def test_every_tabular_kind_becomes_the_same_frame(columns_model: Any, data: Any) -> None:
    got = columns_model.predict(data)
    pd.testing.assert_frame_equal(got.reset_index(drop=True), _good(), check_dtype=False)
    assert [str(d) for d in got.dtypes][:2] == ["float64", "int64"]
    assert got["flag"].dtype == np.bool_


def test_one_record_is_one_row(columns_model: Any) -> None:
    got = columns_model.predict({"x": 2, "k": 3, "s": "z", "flag": False})
    assert got.shape == (1, 4)
    assert got["x"].dtype == np.float64 and got["x"].iloc[0] == 2.0


def test_reordered_columns_are_put_in_signature_order(columns_model: Any) -> None:
    frame = _good()[["flag", "s", "k", "x"]]
    assert list(columns_model.predict(frame).columns) == ["x", "k", "s", "flag"]


def test_safe_casts_are_made_and_only_where_needed(columns_model: Any) -> None:
    frame = pd.DataFrame(
        {
            "x": np.array([1, 2], dtype=np.int32),  # int into double
            "k": np.array([1.0, 2.0]),  # integral floats into long
            "s": pd.Categorical(["a", "b"]),
            "flag": np.array([1, 0]),  # 0/1 into boolean
        }
    )
    got = columns_model.predict(frame)
    assert got["x"].tolist() == [1.0, 2.0] and got["x"].dtype == np.float64
    assert got["k"].tolist() == [1, 2] and got["k"].dtype == np.int64
    assert got["flag"].tolist() == [True, False]


def test_missing_column_is_named(columns_model: Any) -> None:
    with pytest.raises(InvalidInput, match=r"missing column 'k'"):
        columns_model.predict(_good().drop(columns=["k"]))


def test_extra_column_is_named(columns_model: Any) -> None:
    with pytest.raises(InvalidInput, match=r"column 'extra'.*extra_columns='drop'"):
        columns_model.predict(_good().assign(extra=1))


def test_extra_columns_can_be_dropped(tmp_path: Path) -> None:
    model = _echo(tmp_path, COLUMNS, extra_columns="drop")
    got = model.predict(_good().assign(extra=1))
    assert list(got.columns) == ["x", "k", "s", "flag"]


@pytest.mark.parametrize(
    ("column", "values", "message"),
    [
        ("x", ["1.5", "abc"], r"column 'x'.*'1.5'.*double"),
        ("k", [1.5, 2.0], r"column 'k'.*1.5.*not an integer"),
        ("k", [1.0, np.nan], r"column 'k'.*missing value"),
        ("k", [1, None], r"column 'k'"),
        ("k", [True, False], r"column 'k'.*booleans"),
        ("s", [1, 2], r"column 's'.*string"),
        ("s", ["a", 3], r"column 's'.*3"),
        ("flag", [2, 0], r"column 'flag'.*2.*0 or 1"),
        ("flag", ["yes", "no"], r"column 'flag'"),
    ],
)
def test_uncastable_value_names_the_column(
    columns_model: Any, column: str, values: list[Any], message: str
) -> None:
    frame = _good()
    frame[column] = values
    with pytest.raises(InvalidInput, match=message):
        columns_model.predict(frame)


def test_out_of_range_integer_is_refused(tmp_path: Path) -> None:
    model = _echo(tmp_path, Signature([ColSpec("n", "integer")]))
    assert model.predict({"n": [1, 2]})["n"].dtype == np.int32
    with pytest.raises(InvalidInput, match=r"column 'n'.*out of range"):
        model.predict({"n": [1, 2**40]})


def test_datetime_strings_are_parsed_and_garbage_is_named(tmp_path: Path) -> None:
    model = _echo(tmp_path, Signature([ColSpec("when", "datetime")]))
    got = model.predict({"when": ["2024-01-02", "2024-03-04"]})
    assert got["when"].dt.year.tolist() == [2024, 2024]
    with pytest.raises(InvalidInput, match="column 'when'"):
        model.predict({"when": ["2024-01-02", "not a date"]})


def test_positional_array_of_the_wrong_width_is_refused(columns_model: Any) -> None:
    with pytest.raises(InvalidInput, match="4 columns"):
        columns_model.predict(np.zeros((2, 3)))


def test_unsupported_input_kind_is_refused(columns_model: Any) -> None:
    with pytest.raises(InvalidInput, match="not supported"):
        columns_model.predict("x=1")


# -- tensors -----------------------------------------------------------------------------------
def test_tensor_of_matching_dtype_is_passed_through(tmp_path: Path) -> None:
    model = _echo(tmp_path, TENSOR)
    arr = np.ones((4, 3), dtype=np.float32)
    assert model.predict(arr) is arr


def test_tensor_is_cast_and_lists_and_flat_rows_accepted(tmp_path: Path) -> None:
    model = _echo(tmp_path, TENSOR)
    got = model.predict(np.ones((2, 3)))
    assert got.dtype == np.float32 and got.shape == (2, 3)
    assert model.predict([[1, 2, 3]]).dtype == np.float32
    assert model.predict(np.array([1.0, 2.0, 3.0])).shape == (1, 3)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (np.ones((2, 4)), r"shape \(2, 4\).*\(-1, 3\)"),
        (np.ones((2, 3, 1)), r"shape \(2, 3, 1\)"),
        (np.array([["a", "b", "c"]]), "float32"),
    ],
)
def test_tensor_shape_and_dtype_errors(tmp_path: Path, data: Any, message: str) -> None:
    model = _echo(tmp_path, TENSOR)
    with pytest.raises(InvalidInput, match=message):
        model.predict(data)


def test_integer_tensor_refuses_fractions(tmp_path: Path) -> None:
    model = _echo(tmp_path, Signature([TensorSpec("int64", (-1,))]))
    assert model.predict(np.array([1.0, 2.0])).dtype == np.int64
    with pytest.raises(InvalidInput, match="non-integer"):
        model.predict(np.array([1.5]))


def test_no_signature_passes_tabular_input_as_a_frame(tmp_path: Path) -> None:
    save_model(Echo(), tmp_path / "bare", onnx=False)
    model = load_model(tmp_path / "bare", trusted=True)
    assert model.signature is None
    assert isinstance(model.predict([{"a": 1}]), pd.DataFrame)
    arr = np.zeros(3)
    assert model.predict(arr) is arr


def test_extra_columns_option_is_checked(tmp_path: Path) -> None:
    save_model(Echo(), tmp_path / "m", signature=COLUMNS, onnx=False)
    with pytest.raises(InvalidInput, match="extra_columns"):
        load_model(tmp_path / "m", trusted=True, extra_columns="ignore")  # type: ignore[arg-type]
