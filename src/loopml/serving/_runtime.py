"""The model runtime of the inference server: load a model by URI, warm it up, predict."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from loopml.errors import InvalidInput
from loopml.models import LoadedModel, load_model

__all__ = ["ModelRuntime"]


def _jsonable(values: Any) -> list[Any]:
    """Predictions as JSON values (numpy scalars and arrays become Python ones)."""
    if isinstance(values, pd.DataFrame):
        return [dict(zip(values.columns, row, strict=True)) for row in values.to_numpy().tolist()]
    if isinstance(values, pd.Series):
        values = values.to_numpy()
    return np.asarray(values).tolist()


@dataclass
class ModelRuntime:
    """One loaded, warmed-up model and what the server says about it."""

    model_uri: str
    model: LoadedModel
    load_seconds: float
    loaded_at: float
    info: dict[str, Any] = field(default_factory=dict)
    lookup: Any = None  # a FeatureLookup when the model reads online features

    @classmethod
    def load(cls, model_uri: str, *, runtime: str = "auto", trusted: bool = False) -> ModelRuntime:
        """Load ``model_uri`` (any form ``loopml.load_model`` takes) and warm it up on its input
        example, so the first request does not pay for lazy initialisation."""
        started = time.perf_counter()
        model = load_model(model_uri, runtime=runtime, trusted=trusted)  # type: ignore[arg-type]
        lookup = None
        features = model.manifest.get("features")
        if features:  # requests carry entity keys; the features come from the online store
            from loopml.features import FeatureLookup

            lookup = FeatureLookup(features)
            # The entity keys and request-only fields go before the signature sees the input.
            lookup.keep = model.signature.input_names if model.signature else None
        example = model.input_example
        if example is not None:
            model.predict(example)
        seconds = time.perf_counter() - started
        meta = model.metadata
        info = {
            "model_uri": model_uri,
            "name": meta.get("name"),
            "version": meta.get("version"),
            "flavor": model.flavor,
            "runtime": model.runtime,
            "digest": model.digest,
            "signature": None if model.signature is None else model.signature.to_dict(),
            "load_seconds": round(seconds, 4),
            "features": features or None,
        }
        runtime_ = cls(model_uri, model, seconds, time.time(), info, lookup)
        runtime_.info["loaded_at"] = time.strftime(
            "%Y-%m-%dT%H:%M:%SZ", time.gmtime(runtime_.loaded_at)
        )
        return runtime_

    def predict_records(self, records: list[dict[str, Any]]) -> list[Any]:
        """Predictions for records (column → value), one per record, in order."""
        if not records:
            raise InvalidInput("no instances to predict")
        if not all(isinstance(r, dict) for r in records):
            raise InvalidInput("each instance must be a JSON object of feature name → value")
        keys = records[0].keys()
        for i, r in enumerate(records):
            if r.keys() != keys:  # a DataFrame would fill the gap with NaN and answer 200
                missing, extra = sorted(keys - r.keys()), sorted(r.keys() - keys)
                what = (
                    f"lacks {', '.join(map(repr, missing))}"
                    if missing
                    else f"has {', '.join(map(repr, extra))} that instance 0 lacks"
                )
                raise InvalidInput(f"instance {i} {what}: every instance needs the same fields")
        if self.lookup is not None:
            records = self.lookup.enrich(records)
            keep = self.lookup.keep
            if keep:
                records = [{k: r[k] for k in keep if k in r} for r in records]
        try:
            return _jsonable(self.model.predict_records(records))
        except (ValueError, TypeError) as exc:  # input the signature let through, the model not
            raise InvalidInput(f"the model could not predict this input: {exc}") from exc
