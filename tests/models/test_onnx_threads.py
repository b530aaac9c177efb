"""ONNX Runtime's intra-op threads follow ``LOOPML_ONNX_THREADS`` (default one)."""

from __future__ import annotations

import numpy as np
import pytest
from skl2onnx import to_onnx
from sklearn.linear_model import LinearRegression

from loopml.config import reset_settings
from loopml.models._onnx import OnnxRunner


def _threads() -> int:
    x = np.array([[0.0, 1.0], [1.0, 0.0], [2.0, 1.0]], dtype=np.float32)
    proto = to_onnx(LinearRegression().fit(x, [0.0, 1.0, 2.0]), x)
    runner = OnnxRunner(proto.SerializeToString())
    return int(runner.session.get_session_options().intra_op_num_threads)


def test_one_thread_by_default() -> None:
    assert _threads() == 1


def test_threads_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LOOPML_ONNX_THREADS", "2")
    reset_settings()
    assert _threads() == 2
