"""The XGBoost flavor: scikit-learn API models and Boosters in XGBoost's own UBJSON format
(no pickle); ONNX through onnxmltools."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

from loopml.errors import IntegrityError, InvalidInput, MissingDependency
from loopml.models._flavors import (
    Flavor,
    NativeModel,
    OnnxCandidate,
    ReadBytes,
    estimator_model,
    library_versions,
    module_roots,
)
from loopml.models._manifest import child

__all__ = ["XGBoostFlavor"]

MODEL_FILE = "model.ubj"
# The classes a manifest may name; never a name taken from the manifest as it is.
_CLASSES = (
    "Booster",
    "XGBClassifier",
    "XGBRegressor",
    "XGBRanker",
    "XGBRFClassifier",
    "XGBRFRegressor",
)


class XGBoostFlavor(Flavor):
    """``xgboost.Booster`` and the ``XGBClassifier``/``XGBRegressor`` family."""

    name = "xgboost"
    libraries = ("xgboost",)

    def matches(self, model: Any) -> bool:
        if "xgboost" not in module_roots(model):
            return False
        import xgboost

        return isinstance(model, xgboost.Booster | xgboost.XGBModel)

    def save(
        self, model: Any, directory: Path, *, artifacts: dict[str, str] | None = None
    ) -> dict[str, Any]:
        cls = type(model).__name__
        if cls not in _CLASSES:
            raise InvalidInput(
                f"{cls} is not one of XGBoost's own model classes ({', '.join(_CLASSES)}); "
                "save it with flavor='sklearn' (pickled) instead"
            )
        model.save_model(str(directory / MODEL_FILE))
        return {
            "file": MODEL_FILE,
            "files": [MODEL_FILE],
            "serialization": "xgboost-ubj",
            "class": cls,
        }

    def load(self, directory: Path, info: dict[str, Any], read: ReadBytes) -> Any:
        import xgboost

        cls = info.get("class")
        if cls not in _CLASSES:
            raise IntegrityError(f"model manifest names XGBoost class {cls!r}, which is not known")
        model = getattr(xgboost, cls)()
        model.load_model(str(child(directory, info["file"])))
        return model

    def wrap(self, native: Any, directory: Path, info: dict[str, Any]) -> NativeModel:
        import xgboost

        if isinstance(native, xgboost.Booster):
            return NativeModel(
                predict=native.inplace_predict,
                predict_proba=None,
                no_proba_reason="an xgboost Booster has no predict_proba; predict returns "
                "what its objective outputs (probabilities for binary:logistic)",
            )
        return estimator_model(native)

    def onnx_candidates(self, native: Any, example: Any) -> list[OnnxCandidate]:
        try:
            import onnxmltools
            from onnxmltools.convert.common.data_types import FloatTensorType
        except ImportError as exc:
            raise MissingDependency(
                "onnxmltools is not installed, so no ONNX copy was made; "
                "pip install 'loopml[xgboost]'"
            ) from exc
        import xgboost

        # onnxmltools reads features as f0, f1, ...: convert a copy without feature names.
        if isinstance(native, xgboost.Booster):
            plain = native.copy()
            booster = plain
        else:
            plain = copy.deepcopy(native)
            booster = plain.get_booster()
        booster.feature_names = None
        booster.feature_types = None
        width = example.shape[1]
        version = library_versions(["onnxmltools"]).get("onnxmltools", "?")
        return [
            OnnxCandidate(
                "tensor",
                "float",
                f"onnxmltools {version}",
                lambda: onnxmltools.convert_xgboost(
                    plain, initial_types=[("input", FloatTensorType([None, width]))]
                ),
            )
        ]
