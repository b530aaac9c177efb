"""The drift gate: new training data against the data a model version was trained on.

The reference comes from lineage: the registry records, on each version, the dataset versions
its run used (``ModelVersion.dataset_versions``, the same lineage ``loopml.monitoring`` reads);
the first is loaded with ``loopml.data.load`` and compared column by column with
``loopml.monitoring.detect_drift``. This works embedded and against a ``loopml server`` alike.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pandas as pd

from loopml.errors import InvalidInput
from loopml.gates._data import as_frame
from loopml.gates._refs import find_baseline
from loopml.gates._report import GateResult, fmt

__all__ = ["check_drift"]

_SHOWN = 10  # drifted columns named in the one-line detail


def _reference(model_uri: str | None, reference: Any) -> tuple[pd.DataFrame | None, str]:
    """The reference frame and a name for it: given, or the version's training dataset;
    None when the model URI's alias names no version yet (a first release)."""
    if reference is not None:
        name = reference if isinstance(reference, str) else "the given reference"
        return as_frame(reference, "reference"), name
    if model_uri is None:
        raise InvalidInput("check_drift needs a model URI (for its training data) or reference=")
    version = find_baseline(model_uri)
    if version is None:
        return None, model_uri
    if not version.dataset_versions:
        raise InvalidInput(
            f"{model_uri} (version {version.version}) has no training dataset in its lineage: "
            "log the training data with loopml.data.log_dataset in the run that logs the "
            "model, or pass a reference (a DataFrame or a dataset reference such as 'train@3')"
        )
    import loopml.data as ld

    ref = version.dataset_versions[0]
    return ld.load(ref), ref


def _profile(frame: pd.DataFrame, names: list[str], source: str) -> tuple[Any, list[str]]:
    """A reference profile of the columns that can be profiled, and those that cannot
    (identifier-like columns with too many categories)."""
    from loopml.monitoring import ReferenceProfile, profile_reference

    profiles: dict[str, Any] = {}
    skipped = []
    for name in names:
        try:
            profiles.update(profile_reference(frame, columns=[name]).columns)
        except InvalidInput:
            skipped.append(name)
    return ReferenceProfile(profiles, len(frame), source), skipped


def check_drift(
    data: Any,
    model_uri: str | None = None,
    *,
    reference: Any = None,
    max_share: float = 0.5,
    columns: Sequence[str] | None = None,
    method: Any = "auto",
    thresholds: dict[str, float] | None = None,
) -> GateResult:
    """Compare new data with a model version's training data; fail when too many columns
    drifted.

    Args:
        data: the new data: a DataFrame, Arrow table, dataset reference or Parquet/CSV path.
        model_uri: the version whose training dataset (from lineage) is the reference, e.g.
            ``models:/churn@production``. When that alias names no version yet (a first
            release) the gate passes with "no reference".
        reference: the reference itself instead (same forms as ``data``).
        max_share: the largest share of compared columns that may drift, 0 to 1.
        columns: the columns to compare; default every column both sides have.
        method, thresholds: as ``loopml.monitoring.detect_drift`` takes them.

    Returns:
        A ``GateResult`` named ``drift``: ``measured`` is the share of drifted columns, the
        detail names them.

    Raises:
        InvalidInput: bad arguments, no reference, no column in common. NotFound: unknown
        model, version or alias.
    """
    from loopml.monitoring import detect_drift

    ok = isinstance(max_share, int | float) and not isinstance(max_share, bool)
    if not ok or not 0 <= max_share <= 1:
        raise InvalidInput(f"max_share must be a number from 0 to 1, got {max_share!r}")
    current = as_frame(data)
    ref, source = _reference(model_uri, reference)
    if ref is None:
        detail = f"no reference: {source} names no version yet"
        return GateResult("drift", True, detail, None, float(max_share), {"reference": None})
    if columns is not None:
        names = [str(c) for c in columns]
        missing = [c for c in names if c not in ref.columns or c not in current.columns]
        if missing:
            raise InvalidInput(f"column {missing[0]!r} is not in both the data and {source}")
    else:
        names = [str(c) for c in ref.columns if c in current.columns]
    if not names:
        raise InvalidInput(f"the data shares no column with {source}")
    profile, skipped = _profile(ref, names, source)
    if not profile.columns:
        raise InvalidInput(f"no column of {source} can be compared: {', '.join(skipped)}")
    report = detect_drift(
        profile,
        current,
        columns=list(profile.columns),
        method=method,
        thresholds=thresholds,
        drift_share=1.0,  # the verdict is the gate's own: share against max_share
    )
    drifted = report.drifted_columns
    n, share = len(report.columns), report.share_drifted
    passed = share <= max_share
    shown = ", ".join(drifted[:_SHOWN]) + (", ..." if len(drifted) > _SHOWN else "")
    op = "<=" if passed else ">"
    detail = (
        f"{len(drifted)} of {n} columns drifted (share {fmt(share)} {op} {fmt(float(max_share))})"
        + (f": {shown}" if drifted else "")
    )
    absent = [str(c) for c in ref.columns if c not in current.columns]
    if absent and columns is None:
        detail += f"; not in the data: {', '.join(absent[:_SHOWN])}"
    evidence = {
        "reference": source,
        "drifted_columns": drifted,
        "columns": {
            name: {
                "drifted": c.drifted,
                "test": c.test,
                "statistic": c.statistic,
                "p_value": c.p_value,
                "effect_size": c.effect_size,
                "null_drift": c.null_drift,
                "note": c.note,
            }
            for name, c in report.columns.items()
        },
        "not_compared": skipped,
        "missing_from_data": absent,
    }
    return GateResult("drift", passed, detail, share, float(max_share), evidence)
