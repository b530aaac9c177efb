"""The feature store: Feast's definitions and calls, point-in-time joins in DuckDB, online
values in SQLite or Redis.

```python
from datetime import timedelta
from loopml.features import Entity, FeatureStore, FeatureView, Field, FileSource, Float32

driver = Entity(name="driver", join_keys=["driver_id"])
stats = FeatureView(
    name="driver_stats", entities=[driver], ttl=timedelta(days=1),
    schema=[Field(name="conv_rate", dtype=Float32)],
    source=FileSource(path="data/driver_stats.parquet", timestamp_field="event_timestamp"),
)
store = FeatureStore()
store.apply([driver, stats])
train = store.get_historical_features(entity_df, ["driver_stats:conv_rate"]).to_df()
store.materialize_incremental(end_date=datetime.now(UTC))
store.get_online_features(["driver_stats:conv_rate"], [{"driver_id": 1001}]).to_dict()
```
"""

from __future__ import annotations

from loopml.features._catalog import describe_view
from loopml.features._definitions import (
    Entity,
    FeatureService,
    FeatureView,
    FeatureViewProjection,
    Field,
    FileSource,
    OnDemandFeatureView,
    RequestSource,
    definition_from_spec,
    on_demand_feature_view,
)
from loopml.features._lookup import FeatureLookup
from loopml.features._materialize import MaterializeResult
from loopml.features._offline import RetrievalJob, TrainingSet
from loopml.features._online import OnlineStore, SqliteOnlineStore, open_online_store
from loopml.features._registry import Plan, PlanItem, SqlFeatureRegistry
from loopml.features._remote import RemoteFeatureStore, RemoteTrainingSet
from loopml.features._skew import SkewReport, skew_check
from loopml.features._store import FeatureStore, OnlineResponse
from loopml.features._types import (
    Bool,
    Bytes,
    Float32,
    Float64,
    Int32,
    Int64,
    String,
    UnixTimestamp,
    ValueType,
)

__all__ = [
    "Bool",
    "Bytes",
    "Entity",
    "FeatureLookup",
    "FeatureService",
    "FeatureStore",
    "FeatureView",
    "FeatureViewProjection",
    "Field",
    "FileSource",
    "Float32",
    "Float64",
    "Int32",
    "Int64",
    "MaterializeResult",
    "OnDemandFeatureView",
    "OnlineResponse",
    "OnlineStore",
    "Plan",
    "PlanItem",
    "RemoteFeatureStore",
    "RemoteTrainingSet",
    "RequestSource",
    "RetrievalJob",
    "SkewReport",
    "SqlFeatureRegistry",
    "SqliteOnlineStore",
    "String",
    "TrainingSet",
    "UnixTimestamp",
    "ValueType",
    "definition_from_spec",
    "describe_view",
    "on_demand_feature_view",
    "open_online_store",
    "skew_check",
]
