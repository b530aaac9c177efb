"""The serving hook: a model logged with feature references gets its online features by key."""

from __future__ import annotations

import threading
from collections.abc import Mapping
from typing import Any

from loopml.errors import InvalidInput
from loopml.features._refs import resolve
from loopml.features._store import FeatureStore, FeatureStoreBase

__all__ = ["FeatureLookup"]

_stores: dict[tuple[Any, ...], FeatureStoreBase] = {}
_lock = threading.Lock()


def _process_store() -> FeatureStoreBase:
    """One feature store per process and settings, shared by every lookup (loading or swapping
    a model does not open another)."""
    from loopml.config import get_settings

    s = get_settings()
    key = (
        s.tracking_uri,
        s.resolved_database_uri,
        s.resolved_online_store_uri,
        s.workspace,
        s.tracking_token,
    )
    with _lock:
        store = _stores.get(key)
        if store is None:
            store = _stores[key] = FeatureStore()
        return store


class FeatureLookup:
    """Adds a model's online features to request records that carry only entity keys (and
    request fields): one online read per batch of records."""

    def __init__(
        self,
        features: Mapping[str, Any] | list[str] | str,
        store: FeatureStoreBase | None = None,
    ) -> None:
        if isinstance(features, Mapping):
            if "service" in features:
                features = str(features["service"])
            elif "refs" in features:
                features = list(features["refs"])
            else:
                raise InvalidInput("a model's features must name a service or refs")
        self.features: list[str] | str = features
        self.store: FeatureStoreBase = store if store is not None else _process_store()
        self._catalog: Any = None
        self._layout: tuple[list[str], list[str]] = ([], [])
        self.keys, self.names = self._current()  # fails early on unknown features
        self.keep: list[str] | None = None  # the columns the model takes, when it says

    def _current(self) -> tuple[list[str], list[str]]:
        """The entity keys and request fields a record needs, and the feature names added
        (worked out again only when the registry changed)."""
        catalog = self.store.catalog
        if catalog is not self._catalog:
            resolved = resolve(catalog, self.features)
            for name in resolved.views:
                if not catalog.view(name).online:
                    raise InvalidInput(f"feature view {name!r} is not online (online=False)")
            keys = list(self.store.entity_key_types(self.features))
            self._catalog, self._layout = catalog, (keys, resolved.names(False))
        return self._layout

    def enrich(self, records: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """The records with the features added (a record's own value for a feature wins)."""
        keys, _ = self._current()
        columns: dict[str, list[Any]] = {k: [] for k in keys}
        for i, record in enumerate(records):
            if not isinstance(record, Mapping):
                raise InvalidInput("each instance must be a JSON object of entity keys")
            for k in keys:
                if k not in record:
                    raise InvalidInput(f"instance {i} lacks entity key {k!r}")
                columns[k].append(record[k])
        response = self.store.get_online_features(self.features, columns)
        values = response.to_dict()
        names = response.feature_names  # the store's answer, even if the registry just changed
        return [
            {**{n: values[n][i] for n in names}, **record}
            if any(n in record for n in names)
            else {**record, **{n: values[n][i] for n in names}}
            for i, record in enumerate(records)
        ]
