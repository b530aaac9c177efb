"""The seeds' Feast feature store: entities, file sources and feature views, a feature service,
point-in-time correct training data (``get_historical_features``), materialization and online
reads (``get_online_features`` for ``{"user_id": 1001, "item_id": 2001}``), and seed 001's
feature versions (a changed definition gets a new version; old ones stay readable).

The definitions and calls are Feast's; the registry sits in loopml's database, training sets are
DuckDB joins over the Parquet files, and online values live in SQLite (Redis by configuration).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd

from loopml.features import (
    Entity,
    FeatureService,
    FeatureStore,
    FeatureView,
    Field,
    FileSource,
    Float64,
    Int64,
    String,
)

# Source data: a daily snapshot of user statistics for three days, and an item catalogue.
now = datetime.now(UTC).replace(microsecond=0)
days = [now - timedelta(days=d, hours=1) for d in (2, 1, 0)]
rng = np.random.default_rng(8)
Path("data").mkdir(exist_ok=True)
users = pd.DataFrame(
    [
        {
            "user_id": user_id,
            "event_timestamp": day,
            "created_timestamp": day + timedelta(minutes=5),
            "age": 20 + user_id % 40,
            "city": ["beijing", "shanghai", "shenzhen"][user_id % 3],
            "total_orders": int(n * (user_id % 7 + 1)),
            "average_order_value": float(rng.gamma(4, 25)),
        }
        for user_id in range(1001, 1051)
        for n, day in enumerate(days, start=1)
    ]
)
users.to_parquet("data/user_stats.parquet")
items = pd.DataFrame(
    {
        "item_id": range(2001, 2021),
        "event_timestamp": days[0],
        "category": [["books", "games", "music", "toys"][i % 4] for i in range(20)],
    }
)
items.to_parquet("data/item_features.parquet")

# Definitions, as in a Feast feature repository.
user = Entity(name="user", join_keys=["user_id"])
item = Entity(name="item", join_keys=["item_id"])
user_stats = FeatureView(
    name="user_stats",
    entities=[user],
    ttl=timedelta(days=2),
    schema=[
        Field(name="age", dtype=Int64),
        Field(name="city", dtype=String),
        Field(name="total_orders", dtype=Int64),
        Field(name="average_order_value", dtype=Float64),
    ],
    source=FileSource(
        path="data/user_stats.parquet",
        timestamp_field="event_timestamp",
        created_timestamp_column="created_timestamp",
    ),
)
item_features = FeatureView(
    name="item_features",
    entities=[item],
    ttl=timedelta(days=30),
    schema=[Field(name="category", dtype=String)],
    source=FileSource(path="data/item_features.parquet", timestamp_field="event_timestamp"),
)
user_service = FeatureService(
    name="user_service", features=[user_stats[["total_orders", "average_order_value"]]]
)

store = FeatureStore()  # the registry and online store under $LOOPML_HOME
store.apply([user, item, user_stats, item_features, user_service])
print(f"applied: {[v.name for v in store.list_feature_views()]}")

# Training data: each label gets the feature values as they were at its timestamp.
entity_df = pd.DataFrame(
    {
        "user_id": [1001, 1001, 1002],
        "event_timestamp": [
            days[0] + timedelta(hours=2),
            days[2] + timedelta(minutes=30),
            days[1],
        ],
        "label": [0, 1, 0],
    }
)
training_df = store.get_historical_features(entity_df=entity_df, features=user_service).to_df()
print("training set (point in time):")
print(training_df[["user_id", "event_timestamp", "total_orders", "label"]].to_string(index=False))

# Online: load the latest values into the online store, then read them for one request.
store.materialize_incremental(end_date=datetime.now(UTC))
features = store.get_online_features(
    features=["user_stats:age", "user_stats:city", "item_features:category"],
    entity_rows=[{"user_id": 1001, "item_id": 2001}],
).to_dict()
print(f"online features: {features}")

# Feature versions: changing a definition and applying it again makes version 2.
user_stats_v2 = FeatureView(
    name="user_stats",
    entities=[user],
    ttl=timedelta(days=7),  # the changed definition
    schema=user_stats.schema,
    source=user_stats.source,
    description="user statistics, one week of freshness",
)
store.apply([user_stats_v2])
for version in store.versions("feature_view", "user_stats"):
    spec = version["spec"]
    print(f"user_stats version {version['version']}: ttl {spec['ttl'] / 86400:.0f} days")
