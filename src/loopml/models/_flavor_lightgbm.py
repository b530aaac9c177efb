"""The LightGBM flavor: Boosters in LightGBM's text format, ``LGBMModel`` estimators pickled
(their scikit-learn state has no native format); ONNX through onnxmltools."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from loopml.errors import MissingDependency
from loopml.models._flavors import (
    Flavor,
    NativeModel,
    OnnxCandidate,
    ReadBytes,
    dump_pickle,
    estimator_model,
    library_versions,
    load_pickle,
    module_roots,
)
from loopml.models._manifest import child

__all__ = ["LightGBMFlavor"]

BOOSTER_FILE = "model.txt"
ESTIMATOR_FILE = "model.pkl"


class LightGBMFlavor(Flavor):
    """``lightgbm.Booster`` and the ``LGBMClassifier``/``LGBMRegressor`` family."""

    name = "lightgbm"
    libraries = ("lightgbm", "cloudpickle")

    def matches(self, model: Any) -> bool:
        if "lightgbm" not in module_roots(model):
            return False
        import lightgbm

        return isinstance(model, lightgbm.Booster | lightgbm.LGBMModel)

    def save(
        self, model: Any, directory: Path, *, artifacts: dict[str, str] | None = None
    ) -> dict[str, Any]:
        import lightgbm

        cls = type(model)
        name = f"{cls.__module__}.{cls.__qualname__}"
        if isinstance(model, lightgbm.Booster):
            model.save_model(str(directory / BOOSTER_FILE))
            files = {"file": BOOSTER_FILE, "serialization": "lightgbm-text"}
        else:
            dump_pickle(model, directory / ESTIMATOR_FILE)
            files = {"file": ESTIMATOR_FILE, "serialization": "cloudpickle"}
        return {**files, "files": [files["file"]], "class": name}

    def load(self, directory: Path, info: dict[str, Any], read: ReadBytes) -> Any:
        import lightgbm

        if info.get("serialization") == "lightgbm-text":
            return lightgbm.Booster(model_file=str(child(directory, info["file"])))
        return load_pickle(info, read)

    def wrap(self, native: Any, directory: Path, info: dict[str, Any]) -> NativeModel:
        import lightgbm

        if isinstance(native, lightgbm.Booster):
            return NativeModel(
                predict=native.predict,
                predict_proba=None,
                no_proba_reason="a lightgbm Booster has no predict_proba; predict returns what "
                "its objective outputs (probabilities for binary)",
            )
        return estimator_model(native)

    def onnx_candidates(self, native: Any, example: Any) -> list[OnnxCandidate]:
        try:
            import onnxmltools
            from onnxmltools.convert.common.data_types import FloatTensorType
        except ImportError as exc:
            raise MissingDependency(
                "onnxmltools is not installed, so no ONNX copy was made; "
                "pip install 'loopml[lightgbm]'"
            ) from exc
        width = example.shape[1]
        version = library_versions(["onnxmltools"]).get("onnxmltools", "?")
        return [
            OnnxCandidate(
                "tensor",
                "float",
                f"onnxmltools {version}",
                lambda: onnxmltools.convert_lightgbm(
                    native, initial_types=[("input", FloatTensorType([None, width]))], zipmap=False
                ),
            )
        ]
