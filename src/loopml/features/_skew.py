"""Training-serving skew: online values against the offline (training) values as of now."""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass, field
from typing import Any

import duckdb
import pandas as pd

from loopml.errors import InvalidInput
from loopml.features._sources import connect, quote, source_sql
from loopml.features._store import FeatureStore, FeatureStoreBase

__all__ = ["SkewReport", "skew_check"]

_EXAMPLES = 5


@dataclass
class SkewReport:
    """Per feature: how many sampled entities were compared and how many disagreed."""

    view: str
    as_of: str
    entities: int
    tolerance: float
    features: dict[str, dict[str, Any]] = field(default_factory=dict)

    @property
    def skewed(self) -> list[str]:
        """Features where some entity's online value differs from its offline value."""
        return [
            n
            for n, f in self.features.items()
            if f["mismatches"] or f["online_only"] or f["offline_only"]
        ]

    @property
    def ok(self) -> bool:
        """Whether no sampled value differs."""
        return not self.skewed

    def to_dict(self) -> dict[str, Any]:
        """The report as JSON-able data."""
        return {
            "view": self.view,
            "as_of": self.as_of,
            "entities": self.entities,
            "tolerance": self.tolerance,
            "features": self.features,
            "skewed": self.skewed,
            "ok": self.ok,
        }


def _same(a: Any, b: Any, tol: float) -> bool:
    if isinstance(a, (int, float)) and isinstance(b, (int, float)):
        return math.isclose(float(a), float(b), rel_tol=tol, abs_tol=tol)
    return bool(a == b)


def _missing(v: Any) -> bool:
    return v is None or (isinstance(v, float) and math.isnan(v))


def skew_check(
    store: FeatureStoreBase,
    view: str,
    *,
    sample: int = 1000,
    entity_rows: pd.DataFrame | None = None,
    tolerance: float = 1e-6,
) -> SkewReport:
    """Compare a view's online values with the point-in-time offline values as of now, for
    ``sample`` entities drawn from its source (or the given ``entity_rows`` of join keys)."""
    if not isinstance(store, FeatureStore):  # a RemoteFeatureStore: the server checks
        if entity_rows is not None:
            raise InvalidInput("entity_rows cannot be sent to a server's skew check")
        return store.skew(view, sample=sample, tolerance=tolerance)  # type: ignore[no-any-return]
    if not isinstance(sample, int) or isinstance(sample, bool) or not 1 <= sample <= 1_000_000:
        raise InvalidInput("sample must be an integer from 1 to 1,000,000")
    if not tolerance >= 0:
        raise InvalidInput("tolerance must not be negative")
    fv = store.get_feature_view(view)
    if not fv.online:
        raise InvalidInput(f"feature view {view!r} is not online (online=False)")
    keys: list[str] = fv._join_keys  # type: ignore[attr-defined]
    if entity_rows is None:
        con = connect()
        try:
            rel = source_sql(con, fv.source, columns=keys, pushed=store._pushed(view))  # type: ignore[arg-type]
            cols = ", ".join(quote(k) for k in keys)
            not_null = " AND ".join(f"{quote(k)} IS NOT NULL" for k in keys)
            distinct = f"SELECT DISTINCT {cols} FROM {rel} WHERE {not_null}"
            entity_rows = con.sql(
                f"SELECT * FROM ({distinct}) USING SAMPLE reservoir({int(sample)} ROWS) "
                "REPEATABLE (7)"
            ).df()
        except duckdb.Error as exc:
            first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
            raise InvalidInput(
                f"cannot read the source of feature view {view!r}: {first}"
            ) from exc
        finally:
            con.close()
    else:
        missing = [k for k in keys if k not in entity_rows.columns]
        if missing:
            raise InvalidInput(f"entity_rows lack join key {missing[0]!r}")
        entity_rows = entity_rows[keys].drop_duplicates()
    now = dt.datetime.now(dt.UTC)
    refs = [f"{view}:{f}" for f in fv.feature_names]
    frame = entity_rows.reset_index(drop=True).assign(event_timestamp=pd.Timestamp(now))
    offline = store.get_historical_features(frame, refs).to_df() if len(frame) else frame
    online = store.get_online_features(refs, {k: entity_rows[k].tolist() for k in keys}).to_dict()
    report = SkewReport(view, now.isoformat(), len(frame), tolerance)
    for name in fv.feature_names:
        stats = {"compared": 0, "mismatches": 0, "online_only": 0, "offline_only": 0}
        examples: list[dict[str, Any]] = []
        off_values = offline[name].tolist() if len(frame) else []
        for i, (on, off) in enumerate(zip(online[name], off_values, strict=True)):
            on_missing, off_missing = _missing(on), _missing(off)
            if on_missing and off_missing:
                continue
            stats["compared"] += 1
            if on_missing != off_missing:
                stats["offline_only" if on_missing else "online_only"] += 1
            elif _same(on, off, tolerance):
                continue
            else:
                stats["mismatches"] += 1
            if len(examples) < _EXAMPLES:
                key = {k: online[k][i] for k in keys}
                examples.append(
                    {"key": key, "online": on, "offline": None if off_missing else off}
                )
        bad = stats["mismatches"] + stats["online_only"] + stats["offline_only"]
        report.features[name] = {
            **stats,
            "mismatch_share": bad / stats["compared"] if stats["compared"] else 0.0,
            "examples": examples,
        }
    return report
