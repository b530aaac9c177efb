"""The python-function flavor: any object with ``predict``, or a ``PythonModel`` subclass whose
``load_context`` reads files packaged with it (``artifacts``). Pickled with cloudpickle."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

from loopml.errors import InvalidInput
from loopml.models._flavors import Flavor, NativeModel, ReadBytes, dump_pickle, load_pickle

__all__ = ["PyfuncFlavor", "PythonModel", "PythonModelContext"]

MODEL_FILE = "python_model.pkl"
ARTIFACTS = "artifacts"


class PythonModelContext:
    """What a ``PythonModel`` is given: ``artifacts`` maps each name passed at save time to the
    local path of its packaged copy."""

    __slots__ = ("artifacts",)

    def __init__(self, artifacts: dict[str, str]) -> None:
        self.artifacts = dict(artifacts)

    def __repr__(self) -> str:
        return f"PythonModelContext(artifacts={self.artifacts!r})"


class PythonModel:
    """Base class for custom models: override ``predict`` (and ``load_context`` to read files
    given with ``artifacts=`` at save time). Optionally define ``predict_proba(context, x)``."""

    def load_context(self, context: PythonModelContext) -> None:
        """Load what ``predict`` needs from ``context.artifacts``; called once after loading."""

    def predict(self, context: PythonModelContext, model_input: Any) -> Any:
        """Predictions for ``model_input`` (a DataFrame, or an array for tensor signatures)."""
        raise NotImplementedError(f"{type(self).__name__} must implement predict")


def _output(value: Any) -> Any:
    import numpy as np
    import pandas as pd

    if isinstance(value, np.ndarray | pd.DataFrame):
        return value
    if isinstance(value, pd.Series):
        return value.to_numpy()
    return np.asarray(value)


class PyfuncFlavor(Flavor):
    """Custom Python models."""

    name = "pyfunc"
    libraries = ("cloudpickle",)

    def matches(self, model: Any) -> bool:
        return isinstance(model, PythonModel) or callable(getattr(model, "predict", None))

    def save(
        self, model: Any, directory: Path, *, artifacts: dict[str, str] | None = None
    ) -> dict[str, Any]:
        dump_pickle(model, directory / MODEL_FILE)
        packaged = {}
        for key, source in (artifacts or {}).items():
            src = Path(source)
            if not isinstance(key, str) or not key or "/" in key or key in (".", ".."):
                raise InvalidInput(f"artifact name {key!r} must be a plain, non-empty name")
            if not src.exists():
                raise InvalidInput(f"artifact {key!r}: {source} does not exist")
            target = directory / ARTIFACTS / key / src.name
            target.parent.mkdir(parents=True, exist_ok=True)
            if src.is_dir():
                shutil.copytree(src, target)
            else:
                shutil.copy2(src, target)
            packaged[key] = target.relative_to(directory).as_posix()
        cls = type(model)
        return {
            "file": MODEL_FILE,
            "files": [MODEL_FILE],
            "serialization": "cloudpickle",
            "class": f"{cls.__module__}.{cls.__qualname__}",
            "python_model": isinstance(model, PythonModel),
            "artifacts": packaged,
        }

    def _context(self, directory: Path, info: dict[str, Any]) -> PythonModelContext:
        from loopml.models._manifest import child

        return PythonModelContext(
            {k: str(child(directory, v)) for k, v in (info.get("artifacts") or {}).items()}
        )

    def load(self, directory: Path, info: dict[str, Any], read: ReadBytes) -> Any:
        model = load_pickle(info, read)
        if isinstance(model, PythonModel):
            model.load_context(self._context(directory, info))
        return model

    def wrap(self, native: Any, directory: Path, info: dict[str, Any]) -> NativeModel:
        reason = f"{type(native).__name__} has no predict_proba"
        proba = getattr(native, "predict_proba", None)
        if isinstance(native, PythonModel):
            context = self._context(directory, info)
            predict = native.predict
            return NativeModel(
                predict=lambda x: _output(predict(context, x)),
                predict_proba=None if proba is None else (lambda x: _output(proba(context, x))),
                no_proba_reason=reason,
            )
        predict = native.predict
        return NativeModel(
            predict=lambda x: _output(predict(x)),
            predict_proba=None if proba is None else (lambda x: _output(proba(x))),
            no_proba_reason=reason,
        )

    def keeps_files(self, info: dict[str, Any]) -> bool:
        return bool(info.get("artifacts"))
