"""``LoadedModel``: one predict API over every flavor and runtime."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from loopml.errors import InvalidState
from loopml.models._schema import Signature

__all__ = ["LoadedModel"]


class LoadedModel:
    """A model returned by ``load_model``: ``predict``/``predict_proba`` enforce the signature,
    then call ONNX Runtime (``runtime="onnx"``) or the native object (``runtime="native"``).

    Attributes:
        native: the original object (an estimator, Booster, ``onnx.ModelProto``, python model).
        flavor: sklearn, xgboost, lightgbm, onnx or pyfunc.
        runtime: "onnx" or "native".
        signature: the ``Signature``, or None when the model was saved without one.
        manifest: the parsed ``loopml-model.json`` (for a model MLflow saved, loopml's reading
            of its ``MLmodel``, with ``format: "mlflow"`` and the YAML under ``mlmodel``).
        digest: the SHA-256 of the manifest (of the ``MLmodel`` for a model MLflow saved).
        metadata: where the model came from (model_uri, run_id, name, version, ...).
    """

    __slots__ = (
        "__weakref__",
        "_native",
        "_native_loader",
        "_no_proba",
        "_predict",
        "_prepare",
        "_proba",
        "digest",
        "flavor",
        "manifest",
        "metadata",
        "runtime",
        "signature",
    )

    def __init__(
        self,
        *,
        native: Any,
        flavor: str,
        runtime: str,
        signature: Signature | None,
        manifest: dict[str, Any],
        digest: str,
        metadata: dict[str, Any],
        prepare: Callable[[Any], Any],
        predict: Callable[[Any], Any],
        predict_proba: Callable[[Any], Any] | None,
        no_proba_reason: str,
        native_loader: Callable[[], Any] | None = None,
    ) -> None:
        self._native = native
        self._native_loader = native_loader  # loads ``native`` on first use (ONNX runtime)
        self.flavor = flavor
        self.runtime = runtime
        self.signature = signature
        self.manifest = manifest
        self.digest = digest
        self.metadata = metadata
        self._prepare = prepare
        self._predict = predict
        self._proba = predict_proba
        self._no_proba = no_proba_reason

    def predict(self, data: Any) -> Any:
        """Predictions for a DataFrame, dict of columns, records, one record, or array.

        Raises:
            InvalidInput: the input does not fit the signature (the message names the column).
        """
        return self._predict(self._prepare(data))

    @property
    def native(self) -> Any:
        """The original object; on the ONNX runtime it is unpickled the first time it is asked
        for, so a server predicting with ONNX Runtime never imports the training library."""
        loader = self._native_loader
        if loader is not None:
            self._native = loader()
            self._native_loader = None
        return self._native

    def predict_records(self, records: list[Any]) -> Any:
        """Predictions for instances (dicts of feature → value), as ``predict`` gives them.

        The serving path: records of plain numbers with exactly the signature's float columns
        skip pandas' record parsing and the per-column checks they cannot fail.

        Raises:
            InvalidInput: the records do not fit the signature (the message names the column).
        """
        fast = getattr(self._prepare, "records", None)
        frame = None if fast is None else fast(records)
        if frame is None:
            import pandas as pd

            return self.predict(pd.DataFrame.from_records(records))
        return self._predict(frame)

    def predict_proba(self, data: Any) -> Any:
        """Class probabilities, a 2-D float array.

        Raises:
            InvalidState: the model has no probabilities.
            InvalidInput: the input does not fit the signature.
        """
        if self._proba is None:
            reason = self._no_proba() if callable(self._no_proba) else self._no_proba
            raise InvalidState(f"{self.flavor} model: {reason}")
        return self._proba(self._prepare(data))

    @property
    def input_example(self) -> Any:
        """The input example saved with the model (DataFrame or array), or None."""
        from loopml.models._example import example_from_json

        example = self.manifest.get("input_example")
        return None if example is None else example_from_json(example)

    def __repr__(self) -> str:
        uri = self.metadata.get("model_uri", "?")
        return (
            f"<LoadedModel {uri} flavor={self.flavor} runtime={self.runtime} "
            f"digest={self.digest[:12]}>"
        )
