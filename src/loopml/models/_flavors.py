"""Flavors: how each kind of model is recognised, written, read back and called.

A flavor module only imports its library when a model of that kind is saved or loaded, so
``import loopml.models`` stays light. The table below is the one place flavors are named.
"""

from __future__ import annotations

import abc
import importlib
import importlib.metadata
import pickle
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

from loopml.errors import InvalidInput

__all__ = [
    "FLAVORS",
    "Flavor",
    "NativeModel",
    "OnnxCandidate",
    "ReadBytes",
    "detect_flavor",
    "estimator_model",
    "get_flavor",
    "library_versions",
    "module_roots",
    "resolve_flavor",
]

ReadBytes = Callable[[str], bytes]

# name → "module:class", in detection order (the generic python-function flavor comes last).
FLAVORS = {
    "onnx": "loopml.models._flavor_onnx:OnnxFlavor",
    "xgboost": "loopml.models._flavor_xgboost:XGBoostFlavor",
    "lightgbm": "loopml.models._flavor_lightgbm:LightGBMFlavor",
    "sklearn": "loopml.models._flavor_sklearn:SklearnFlavor",
    "pyfunc": "loopml.models._pyfunc:PyfuncFlavor",
}
_ALIASES = {"python_function": "pyfunc", "scikit-learn": "sklearn"}
# import name → distribution name, for versions and requirements
DISTRIBUTIONS = {
    "sklearn": "scikit-learn",
    "xgboost": "xgboost",
    "lightgbm": "lightgbm",
    "onnx": "onnx",
    "onnxruntime": "onnxruntime",
    "skl2onnx": "skl2onnx",
    "onnxmltools": "onnxmltools",
    "cloudpickle": "cloudpickle",
    "numpy": "numpy",
    "pandas": "pandas",
    "loopml": "loopml",
}


@dataclass(slots=True)
class NativeModel:
    """The calls a loaded model makes on its native object: input is already enforced."""

    predict: Callable[[Any], Any]
    predict_proba: Callable[[Any], Any] | None
    no_proba_reason: str = ""


@dataclass(frozen=True, slots=True)
class OnnxCandidate:
    """One way to convert a model to ONNX: input layout (one ``tensor``, or one input per
    ``columns``), float precision, and the converter to call. A ``fallback`` is tried only
    when no earlier candidate converted at all."""

    layout: str
    precision: str
    converter: str
    convert: Callable[[], Any]
    fallback: bool = False


class Flavor(abc.ABC):
    """One kind of model: detection, files, loading, the predict calls, ONNX converters."""

    name: ClassVar[str]
    libraries: ClassVar[tuple[str, ...]] = ()

    @abc.abstractmethod
    def matches(self, model: Any) -> bool:
        """Whether ``model`` is of this flavor (without importing libraries it cannot be)."""

    @abc.abstractmethod
    def save(
        self, model: Any, directory: Path, *, artifacts: dict[str, str] | None = None
    ) -> dict[str, Any]:
        """Write the model's files; returns the manifest's ``model`` section (with ``files``)."""

    @abc.abstractmethod
    def load(self, directory: Path, info: dict[str, Any], read: ReadBytes) -> Any:
        """The native object, from files already checked against the manifest; ``read`` gives
        a file's verified bytes (pickles are loaded only through it)."""

    @abc.abstractmethod
    def wrap(self, native: Any, directory: Path, info: dict[str, Any]) -> NativeModel:
        """The predict calls on the native object."""

    def onnx_candidates(self, native: Any, example: Any) -> list[OnnxCandidate]:
        """Conversions to try, best first; empty when the flavor has no ONNX converter."""
        return []

    def default_signature(self, model: Any) -> Any:
        """A signature read from the model itself (ONNX graphs), else None."""
        return None

    def keeps_files(self, info: dict[str, Any]) -> bool:
        """Whether the loaded model reads its directory after loading (pyfunc artifacts)."""
        return False


def module_roots(model: Any) -> set[str]:
    """Top-level package names of the classes ``model`` is an instance of."""
    return {(getattr(c, "__module__", "") or "").partition(".")[0] for c in type(model).__mro__}


def get_flavor(name: str) -> Flavor:
    """The flavor registered under ``name`` (or an alias such as ``python_function``)."""
    key = _ALIASES.get(name, name) if isinstance(name, str) else name
    target = FLAVORS.get(key)
    if target is None:
        raise InvalidInput(f"flavor {name!r} is not one of {', '.join(FLAVORS)}")
    module, _, cls = target.partition(":")
    return getattr(importlib.import_module(module), cls)()


def detect_flavor(model: Any) -> Flavor:
    """The flavor of ``model``; a ``PythonModel`` is always pyfunc."""
    from loopml.models._pyfunc import PythonModel

    if isinstance(model, PythonModel):
        return get_flavor("pyfunc")
    for name in FLAVORS:
        flavor = get_flavor(name)
        if flavor.matches(model):
            return flavor
    raise InvalidInput(
        f"cannot package a {type(model).__name__}: it is not a scikit-learn, XGBoost, LightGBM "
        "or ONNX model and has no predict method; wrap it in a loopml.models.PythonModel"
    )


def resolve_flavor(model: Any, flavor: str | None) -> Flavor:
    """The forced flavor (checked against the model) or the detected one."""
    if flavor is None:
        return detect_flavor(model)
    found = get_flavor(flavor)
    if not found.matches(model):
        raise InvalidInput(f"a {type(model).__name__} cannot be saved with flavor {flavor!r}")
    return found


def library_versions(names: tuple[str, ...] | list[str]) -> dict[str, str]:
    """Installed versions of these import names (those installed)."""
    out = {}
    for name in names:
        try:
            out[name] = importlib.metadata.version(DISTRIBUTIONS.get(name, name))
        except importlib.metadata.PackageNotFoundError:
            continue
    return out


def dump_pickle(model: Any, path: Path) -> None:
    """Serialise with cloudpickle (lambdas and classes defined in ``__main__`` survive)."""
    import cloudpickle

    path.write_bytes(cloudpickle.dumps(model, protocol=pickle.HIGHEST_PROTOCOL))


def load_pickle(info: dict[str, Any], read: ReadBytes) -> Any:
    """Unpickle the model file named in ``info`` from its verified bytes."""
    return pickle.loads(read(info["file"]))  # noqa: S301 - bytes checked against the manifest


def estimator_model(est: Any) -> NativeModel:
    """Predict calls for scikit-learn-style estimators, fed the way they were fitted: a
    DataFrame when they know feature names, else an array (so no feature-name warnings)."""
    import numpy as np
    import pandas as pd

    names = getattr(est, "feature_names_in_", None)
    if names is None:

        def fix(x: Any) -> Any:
            return x.to_numpy() if isinstance(x, pd.DataFrame) else x

    else:
        columns = pd.Index(list(names))

        def fix(x: Any) -> Any:
            if isinstance(x, np.ndarray) and x.ndim == 2 and x.shape[1] == len(columns):
                return pd.DataFrame(x, columns=columns)
            return x

    predict = est.predict
    proba = getattr(est, "predict_proba", None)
    return NativeModel(
        predict=lambda x: predict(fix(x)),
        predict_proba=None if proba is None else (lambda x: proba(fix(x))),
        no_proba_reason=f"{type(est).__name__} has no predict_proba",
    )
