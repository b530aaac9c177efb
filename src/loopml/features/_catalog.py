"""The catalog view of a feature store: what a view is, its versions, freshness and statistics."""

from __future__ import annotations

import time
from typing import Any

from loopml.errors import NotFound
from loopml.features._store import FeatureStore, FeatureStoreBase

__all__ = ["describe_view"]


def describe_view(
    store: FeatureStoreBase, name: str, *, versions: bool = False, online_rows: bool = False
) -> dict[str, Any]:
    """A view's kind, current version and spec, materialization state, statistics (and, when
    asked, every version and the number of entities online)."""
    if not isinstance(store, FeatureStore):  # a RemoteFeatureStore: the server describes it
        return store.describe(name, versions=versions, online_rows=online_rows)
    catalog = store.catalog
    if name in catalog.views:
        kind = "feature_view"
    elif name in catalog.odfvs:
        kind = "on_demand_feature_view"
    else:
        raise NotFound(f"feature view {name!r} does not exist")
    spec = {k: v for k, v in catalog.specs[(kind, name)].items() if k != "udf"}
    out: dict[str, Any] = {
        "kind": kind,
        "name": name,
        "version": catalog.versions[(kind, name)],
        "features": [{"name": f["name"], "dtype": f["dtype"]} for f in spec["schema"]],
        "spec": spec,
    }
    if kind == "feature_view":
        state = store.registry.state(name)
        out["watermark_us"] = state["watermark"]
        out["materialized_at"] = state["materialized_at"]
        out["stats"] = state["stats"]
        if state["materialized_at"] is not None:
            out["age_seconds"] = round(time.time() - state["materialized_at"] / 1000, 3)
        if online_rows and spec.get("online", True):
            out["online_rows"] = store.online.count(store._table(name))
    if versions:
        out["versions"] = [
            {"version": v["version"], "created_at": v["created_at"], "spec_hash": v["spec_hash"]}
            for v in store.registry.versions(kind, name)
        ]
    return out
