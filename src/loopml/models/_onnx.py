"""ONNX copies: convert at save time, keep only what matches the native model, run with ONNX
Runtime.

A copy is kept when, on the input example, its labels equal the native model's and its
probabilities or values are within ``TOLERANCE`` (absolute). Float32 input is tried first, then
double; the manifest records which one passed, or why each failed.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import numpy as np

from loopml.errors import MissingDependency
from loopml.models._flavors import Flavor, NativeModel, library_versions

__all__ = ["ONNX_FILE", "TOLERANCE", "OnnxRunner", "build_onnx_copy", "default_outputs"]

ONNX_FILE = "model.onnx"
TOLERANCE = 1e-5
_TYPES: dict[str, np.dtype[Any]] = {
    "tensor(float)": np.dtype("float32"),
    "tensor(double)": np.dtype("float64"),
    "tensor(float16)": np.dtype("float16"),
    "tensor(int64)": np.dtype("int64"),
    "tensor(int32)": np.dtype("int32"),
    "tensor(int16)": np.dtype("int16"),
    "tensor(int8)": np.dtype("int8"),
    "tensor(uint8)": np.dtype("uint8"),
    "tensor(bool)": np.dtype("bool"),
    "tensor(string)": np.dtype(object),
}


def _ort() -> Any:
    try:
        import onnxruntime
    except ImportError as exc:
        raise MissingDependency(
            "onnxruntime is not installed; reinstall loopml to run ONNX models"
        ) from exc
    return onnxruntime


class OnnxRunner:
    """An ONNX Runtime session tuned for small batches, fed from frames, arrays or dicts.

    One intra-op thread by default (``LOOPML_ONNX_THREADS``): on small inputs it has the lowest
    latency and, in a server running several models or workers, it does not oversubscribe the
    cores; large batch jobs may want more (0 lets ONNX Runtime use one per core).
    """

    def __init__(self, model: bytes | str) -> None:
        import pandas as pd

        from loopml.config import get_settings

        ort = _ort()
        options = ort.SessionOptions()
        options.intra_op_num_threads = get_settings().onnx_threads
        options.inter_op_num_threads = 1
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        options.log_severity_level = 3  # no shape warnings on stderr for every call
        self.session = ort.InferenceSession(model, options, providers=["CPUExecutionProvider"])
        # Unknown element types get no cast: the input goes to ONNX Runtime as given.
        self.inputs: list[tuple[str, Any]] = [
            (i.name, _TYPES.get(i.type)) for i in self.session.get_inputs()
        ]
        self.outputs = self.session.get_outputs()
        self.output_names = [o.name for o in self.outputs]
        frame_type = pd.DataFrame
        if len(self.inputs) == 1:
            name, dtype = self.inputs[0]

            def feed(x: Any) -> dict[str, Any]:
                if isinstance(x, np.ndarray):
                    return {name: x if dtype is None or x.dtype == dtype else x.astype(dtype)}
                if isinstance(x, frame_type):
                    return {name: x.to_numpy(dtype=dtype)}
                if isinstance(x, dict) and name in x:
                    return {name: np.asarray(x[name], dtype=dtype)}
                return {name: np.asarray(x, dtype=dtype)}

        else:
            inputs = self.inputs

            def feed(x: Any) -> dict[str, Any]:
                if isinstance(x, frame_type):
                    return {n: x[n].to_numpy(dtype=d).reshape(-1, 1) for n, d in inputs}
                if isinstance(x, dict):
                    return {n: np.asarray(x[n], dtype=d) for n, d in inputs}
                arr = np.asarray(x)
                return {n: arr[:, i : i + 1].astype(d) for i, (n, d) in enumerate(inputs)}

        self.feed = feed

    def run_all(self, x: Any) -> list[Any]:
        """Every output of the graph for input ``x``."""
        return list(self.session.run(None, self.feed(x)))

    def function(self, spec: dict[str, Any]) -> Any:
        """A predict call returning one output, shaped and typed as the native model's."""
        names = [spec["output"]]
        column = spec.get("column")
        dtype = np.dtype(spec["dtype"]) if spec.get("dtype") else None
        tail = tuple(spec["shape"][1:]) if spec.get("shape") is not None else None
        run = self.session.run
        feed = self.feed

        def call(x: Any) -> Any:
            out = run(names, feed(x))[0]
            if column is not None:
                out = out[:, column]
            if tail is not None and out.shape[1:] != tail:
                out = out.reshape(-1, *tail)
            if dtype is not None and out.dtype != dtype:
                out = out.astype(dtype)
            return out

        return call


def default_outputs(runner: OnnxRunner) -> dict[str, Any]:
    """Output mapping for a model that is ONNX already: first output, probabilities if any."""
    out: dict[str, Any] = {"predict": {"output": runner.output_names[0]}}
    tensors = [o for o in runner.outputs[1:] if o.type.startswith("tensor(")]
    named = [o for o in tensors if "prob" in o.name.lower()]
    proba = named[0] if named else (tensors[0] if len(runner.outputs) == 2 and tensors else None)
    if proba is not None:
        out["predict_proba"] = {"output": proba.name}
    return out


# -- conversion and validation ---------------------------------------------------------------
def _unavailable(reason: str) -> dict[str, Any]:
    return {"available": False, "reason": reason}


def _short(exc: BaseException) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text if len(text) <= 300 else text[:297] + "..."


def _compare(native: np.ndarray, got: Any) -> tuple[float, str] | None:
    """(difference, description) of an ONNX output against the native one; None if their
    shapes cannot be the same output. Labels must be equal: their difference is 0 or inf."""
    if not isinstance(got, np.ndarray) or got.shape[:1] != native.shape[:1]:
        return None
    if got.shape != native.shape:
        if got.size != native.size:
            return None
        got = got.reshape(native.shape)
    if (native.dtype.kind == "f") != (got.dtype.kind == "f"):
        return None  # never compare labels with probabilities
    if native.dtype.kind == "f":
        a, b = native.astype(np.float64), got.astype(np.float64)
        diff = np.abs(a - b)
        diff[np.isnan(a) & np.isnan(b)] = 0.0
        worst = float(np.nan_to_num(diff, nan=np.inf).max(initial=0.0))
        return worst, f"values differ by up to {worst:.3g}"
    try:
        cast = got.astype(native.dtype)
    except (TypeError, ValueError):
        return None
    wrong = int((cast != native).sum())
    return (0.0 if wrong == 0 else float("inf")), f"{wrong} of {len(native)} labels differ"


def _spec(native: np.ndarray, output: str, column: int | None) -> dict[str, Any]:
    return {
        "output": output,
        "column": column,
        "dtype": native.dtype.str if native.dtype.kind != "O" else "object",
        "shape": [-1, *native.shape[1:]],
    }


def _match(
    native: np.ndarray, outputs: list[Any], names: list[str], skip: set[str]
) -> tuple[dict[str, Any] | None, float, str]:
    """The first output (or column 1 of a two-column one) within tolerance of ``native``."""
    best = (float("inf"), "no output has the native model's shape")
    for name, got in zip(names, outputs, strict=True):
        if name in skip:
            continue
        views: list[tuple[Any, int | None]] = [(got, None)]
        if (
            isinstance(got, np.ndarray)
            and got.ndim == 2
            and got.shape[1] == 2
            and native.ndim == 1
        ):
            views.append((got[:, 1], 1))  # a Booster's binary output is P(class 1)
        for view, column in views:
            found = _compare(native, view)
            if found is None:
                continue
            if found[0] <= TOLERANCE:
                return _spec(native, name, column), found[0], found[1]
            if found[0] < best[0] or best[0] == float("inf"):
                best = found
    return None, best[0], best[1]


def build_onnx_copy(
    flavor: Flavor, native: Any, model: NativeModel, example: Any, directory: Path
) -> dict[str, Any]:
    """Convert, validate on the example, and write ``model.onnx``; returns the manifest's
    ``onnx`` section (``available`` with details, or the reason there is no copy)."""
    if example is None:
        return _unavailable(
            "no input example was given, so an ONNX copy could not be checked against the "
            "model; pass input_example= to get one"
        )
    try:
        _ort()
        with warnings.catch_warnings():  # converters warn on import about their dependencies
            warnings.simplefilter("ignore")
            candidates = flavor.onnx_candidates(native, example)
    except MissingDependency as exc:
        return _unavailable(str(exc))
    except Exception as exc:  # noqa: BLE001 - converters fail in many ways; the reason is kept
        return _unavailable(f"conversion failed: {_short(exc)}")
    if not candidates:
        return _unavailable(f"there is no ONNX converter for {flavor.name} models")
    expected = np.asarray(model.predict(example))
    proba = None if model.predict_proba is None else np.asarray(model.predict_proba(example))
    reasons: list[tuple[str, str]] = []
    converted_any = False
    for candidate in candidates:
        if candidate.fallback and converted_any:
            continue
        label = f"{candidate.layout} input, tensor({candidate.precision})"
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                proto = candidate.convert()
            data = proto.SerializeToString()
        except Exception as exc:  # noqa: BLE001 - as above
            reasons.append((label, f"conversion failed: {_short(exc)}"))
            continue
        converted_any = True
        try:
            runner = OnnxRunner(data)
            outputs = runner.run_all(example)
        except Exception as exc:  # noqa: BLE001 - a converted graph ONNX Runtime cannot run
            reasons.append((label, f"ONNX Runtime cannot run the converted model: {_short(exc)}"))
            continue
        predict, diff, why = _match(expected, outputs, runner.output_names, set())
        if predict is None:
            reasons.append((label, f"predictions differ from the native model ({why})"))
            continue
        mapping = {"predict": predict}
        if proba is not None:
            spec, proba_diff, why = _match(
                proba, outputs, runner.output_names, {predict["output"]}
            )
            if spec is None:
                reasons.append((label, f"probabilities differ from the native model ({why})"))
                continue
            mapping["predict_proba"] = spec
            diff = max(diff, proba_diff)
        (directory / ONNX_FILE).write_bytes(data)
        return {
            "available": True,
            "file": ONNX_FILE,
            "input_layout": candidate.layout,
            "input_type": f"tensor({candidate.precision})",
            "converter": candidate.converter,
            "max_abs_diff": diff,
            "tolerance": TOLERANCE,
            "validated_rows": int(len(expected)),
            "outputs": mapping,
            "opsets": {d.domain or "ai.onnx": int(d.version) for d in proto.opset_import},
            "rejected": _summary(reasons) or None,
        }
    return _unavailable(_summary(reasons))


def _summary(reasons: list[tuple[str, str]]) -> str:
    """One clause per distinct reason, naming every attempt that failed that way."""
    by_text: dict[str, list[str]] = {}
    for label, text in reasons:
        by_text.setdefault(text, []).append(label)
    return "; ".join(f"{' and '.join(labels)}: {text}" for text, labels in by_text.items())


def onnx_versions() -> dict[str, str]:
    """Versions of the ONNX libraries, recorded when a copy is kept."""
    return library_versions(["onnx", "onnxruntime"])
