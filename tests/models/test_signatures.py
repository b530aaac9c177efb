"""Signatures: inference from every input kind, the JSON form, and malformed specs."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest

from loopml.errors import InvalidInput
from loopml.models import ColSpec, Signature, TensorSpec, infer_signature

EXPECTED_MIXED = [
    ColSpec("x", "double"),
    ColSpec("k", "long"),
    ColSpec("s", "string"),
    ColSpec("flag", "boolean"),
]


def test_infer_from_dataframe_with_every_column_type() -> None:
    frame = pd.DataFrame(
        {
            "f64": np.array([1.5, 2.5]),
            "f32": np.array([1.5, 2.5], dtype=np.float32),
            "i64": np.array([1, 2]),
            "i32": np.array([1, 2], dtype=np.int32),
            "i8": np.array([1, 2], dtype=np.int8),
            "b": [True, False],
            "s": ["u", "v"],
            "o": pd.Series(["u", "v"], dtype=object),
            "raw": [b"\x00", b"\x01"],
            "t": pd.to_datetime(["2024-01-01", "2024-01-02"]),
            "tz": pd.to_datetime(["2024-01-01", "2024-01-02"]).tz_localize("UTC"),
            "cat": pd.Categorical(["u", "v"]),
            "nullable": pd.array([1, None], dtype="Int64"),
        }
    )
    sig = infer_signature(frame)
    assert [(s.name, s.type) for s in sig.inputs] == [
        ("f64", "double"),
        ("f32", "float"),
        ("i64", "long"),
        ("i32", "integer"),
        ("i8", "integer"),
        ("b", "boolean"),
        ("s", "string"),
        ("o", "string"),
        ("raw", "binary"),
        ("t", "datetime"),
        ("tz", "datetime"),
        ("cat", "string"),
        ("nullable", "long"),
    ]
    assert sig.outputs is None
    assert not sig.is_tensor


@pytest.mark.parametrize(
    "data",
    [
        pd.DataFrame({"x": [0.5, 1.5], "k": [1, 2], "s": ["a", "b"], "flag": [True, False]}),
        {"x": [0.5, 1.5], "k": [1, 2], "s": ["a", "b"], "flag": [True, False]},
        [{"x": 0.5, "k": 1, "s": "a", "flag": True}, {"x": 1.5, "k": 2, "s": "b", "flag": False}],
        {"x": 0.5, "k": 1, "s": "a", "flag": True},
    ],
    ids=["dataframe", "dict-of-columns", "records", "one-record"],
)
def test_infer_from_tabular_kinds(data: object) -> None:
    assert list(infer_signature(data).inputs) == EXPECTED_MIXED


def test_infer_from_numpy_arrays_gives_a_tensor_with_a_variable_batch() -> None:
    sig = infer_signature(np.zeros((5, 3), dtype=np.float32), np.zeros(5, dtype=np.int64))
    assert sig.is_tensor
    assert sig.inputs == (TensorSpec("float32", (-1, 3)),)
    assert sig.outputs == (TensorSpec("int64", (-1,)),)
    images = infer_signature(np.zeros((2, 8, 8, 3), dtype=np.uint8))
    assert images.inputs == (TensorSpec("uint8", (-1, 8, 8, 3)),)


def test_infer_outputs_of_each_kind() -> None:
    frame = pd.DataFrame({"x": [1.0]})
    assert infer_signature(frame, pd.Series([1.0, 2.0])).outputs == (TensorSpec("float64", (-1,)),)
    assert infer_signature(frame, ["a", "b"]).outputs == (TensorSpec("str", (-1,)),)
    assert infer_signature(frame, pd.DataFrame({"p": [0.1], "label": ["u"]})).outputs == (
        ColSpec("p", "double"),
        ColSpec("label", "string"),
    )


def test_json_form_round_trips() -> None:
    sig = Signature(EXPECTED_MIXED, [TensorSpec("float64", (-1, 2))])
    data = sig.to_dict()
    assert data == {
        "inputs": [
            {"name": "x", "type": "double"},
            {"name": "k", "type": "long"},
            {"name": "s", "type": "string"},
            {"name": "flag", "type": "boolean"},
        ],
        "outputs": [{"type": "tensor", "dtype": "float64", "shape": [-1, 2]}],
    }
    assert Signature.from_dict(data) == sig


@pytest.mark.parametrize(
    ("build", "message"),
    [
        (lambda: ColSpec("x", "decimal"), "decimal"),
        (lambda: ColSpec("", "double"), "column name"),
        (lambda: TensorSpec("complex128", (-1,)), "complex128"),
        (lambda: TensorSpec("float32", (-2, 3)), "below -1"),
        (lambda: Signature([]), "at least one"),
        (lambda: Signature([ColSpec("x", "long"), ColSpec("x", "double")]), "'x'"),
        (lambda: Signature([TensorSpec("float32", (-1,)), TensorSpec("int64", (-1,))]), "one"),
        (lambda: Signature.from_dict({"outputs": []}), "inputs"),
    ],
)
def test_malformed_specs_are_invalid_input(build: object, message: str) -> None:
    with pytest.raises(InvalidInput, match=message):
        build()  # type: ignore[operator]


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (pd.DataFrame({"mixed": [1, "a"]}), "'mixed'"),
        (pd.DataFrame({"gap": pd.to_timedelta([1, 2], unit="s")}), "'gap'"),
        ("a string", "not supported"),
        ({}, "empty dict"),
        ([], "empty list"),
        (3.5, "not supported"),
    ],
)
def test_uninferable_data_is_invalid_input(data: object, message: str) -> None:
    with pytest.raises(InvalidInput, match=message):
        infer_signature(data)


def test_object_columns_are_typed_by_their_values() -> None:
    frame = pd.DataFrame(
        {
            "ints": pd.Series([1, 2], dtype=object),
            "floats": pd.Series([1.5, None], dtype=object),
            "when": pd.Series([dt.datetime(2024, 1, 1), None], dtype=object),
        }
    )
    assert [s.type for s in infer_signature(frame).inputs] == ["long", "double", "datetime"]
