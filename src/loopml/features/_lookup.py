"""The serving hook: a model logged with feature references gets its online features by key."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from loopml.errors import InvalidInput
from loopml.features._store import FeatureStore

__all__ = ["FeatureLookup"]


class FeatureLookup:
    """Adds a model's online features to request records that carry only entity keys (and
    request fields): one online read per batch of records."""

    def __init__(
        self, features: Mapping[str, Any] | list[str] | str, store: FeatureStore | None = None
    ) -> None:
        if isinstance(features, Mapping):
            if "service" in features:
                features = str(features["service"])
            elif "refs" in features:
                features = list(features["refs"])
            else:
                raise InvalidInput("a model's features must name a service or refs")
        self.features: list[str] | str = features
        self.store = store if store is not None else FeatureStore()
        plan = self.store._online_plan(self.features, False)  # fails early on unknown features
        self.keys = list(plan.keys) + [r for r in plan.request_fields if r not in plan.keys]
        self.names = list(plan.names)
        self.keep: list[str] | None = None  # the columns the model takes, when it says

    def enrich(self, records: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """The records with the features added (a record's own value for a feature wins)."""
        plan = self.store._online_plan(self.features, False)
        keys = list(plan.keys) + [r for r in plan.request_fields if r not in plan.keys]
        columns: dict[str, list[Any]] = {k: [] for k in keys}
        for i, record in enumerate(records):
            if not isinstance(record, Mapping):
                raise InvalidInput("each instance must be a JSON object of entity keys")
            for k in keys:
                if k not in record:
                    raise InvalidInput(f"instance {i} lacks entity key {k!r}")
                columns[k].append(record[k])
        values = self.store.get_online_features(self.features, columns).to_dict()
        names = plan.names
        return [
            {**{n: values[n][i] for n in names}, **record}
            if any(n in record for n in names)
            else {**record, **{n: values[n][i] for n in names}}
            for i, record in enumerate(records)
        ]
