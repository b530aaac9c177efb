"""Running on-demand feature views: the same function on a training frame and on a request."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pandas as pd

from loopml.errors import InvalidInput
from loopml.features._definitions import OnDemandFeatureView, RequestSource

__all__ = ["input_names", "run_odfv"]


def input_names(odfv: OnDemandFeatureView) -> tuple[list[tuple[str, str]], list[str]]:
    """The (view, feature) pairs and the request fields an on-demand view reads."""
    features: list[tuple[str, str]] = []
    request: list[str] = []
    for s in odfv.sources:
        if isinstance(s, RequestSource):
            request += [f.name for f in s.schema]
        else:
            features += [(s.view, f) for f in s.features]
    return features, request


def _fail(odfv: OnDemandFeatureView, exc: BaseException) -> InvalidInput:
    return InvalidInput(
        f"on-demand feature view {odfv.name!r} failed: {type(exc).__name__}: {exc}"
    )


def run_odfv(
    odfv: OnDemandFeatureView, inputs: Mapping[str, list[Any]] | pd.DataFrame
) -> pd.DataFrame:
    """The view's output columns (its schema, in order) for the given input columns."""
    n = len(inputs) if isinstance(inputs, pd.DataFrame) else len(next(iter(inputs.values()), []))
    try:
        if odfv.mode == "pandas":
            frame = inputs if isinstance(inputs, pd.DataFrame) else pd.DataFrame(dict(inputs))
            out = odfv.udf(frame)
            if not isinstance(out, pd.DataFrame):
                raise TypeError(f"returned {type(out).__name__}, not a DataFrame")
        else:
            data = (
                {c: inputs[c].tolist() for c in inputs.columns}
                if isinstance(inputs, pd.DataFrame)
                else {k: list(v) for k, v in inputs.items()}
            )
            result = odfv.udf(data)
            if not isinstance(result, Mapping):
                raise TypeError(f"returned {type(result).__name__}, not a dict of lists")
            out = pd.DataFrame({k: list(v) for k, v in result.items()})
    except InvalidInput:
        raise
    except Exception as exc:
        raise _fail(odfv, exc) from exc
    missing = [f.name for f in odfv.schema if f.name not in out.columns]
    if missing:
        raise InvalidInput(
            f"on-demand feature view {odfv.name!r} did not return {', '.join(missing)}"
        )
    if len(out) != n:
        raise InvalidInput(
            f"on-demand feature view {odfv.name!r} returned {len(out)} rows for {n} inputs"
        )
    out = out[[f.name for f in odfv.schema]].reset_index(drop=True)
    for f in odfv.schema:
        target = f.type.arrow
        try:
            if pd.api.types.is_float_dtype(out[f.name]) or f.type.name.startswith(
                ("Float", "Int")
            ):
                out[f.name] = pd.to_numeric(out[f.name], errors="raise")
                if f.type.name.startswith("Float"):
                    out[f.name] = out[f.name].astype(target.to_pandas_dtype())
        except (ValueError, TypeError) as exc:
            raise InvalidInput(
                f"on-demand feature view {odfv.name!r}: {f.name!r} is not {f.type.name}"
            ) from exc
    return out
