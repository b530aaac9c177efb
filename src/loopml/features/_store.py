"""``FeatureStore``: Feast's entry point over loopml's registry, offline joins and online store."""

from __future__ import annotations

import base64
import datetime as dt
import glob
import threading
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from loopml.errors import InvalidInput, NotFound
from loopml.features._definitions import (
    Entity,
    FeatureService,
    FeatureView,
    OnDemandFeatureView,
)
from loopml.features._materialize import (
    NULL_CREATED,
    FeatureStats,
    MaterializeResult,
    encode_keys,
    key_order,
    materialize_view,
)
from loopml.features._odfv import input_names, run_odfv
from loopml.features._offline import RetrievalJob, unique_columns
from loopml.features._online import OnlineStore, open_online_store
from loopml.features._refs import Resolved, resolve
from loopml.features._registry import Catalog, Plan, SqlFeatureRegistry

__all__ = ["FeatureStore", "FeatureStoreBase", "OnlineResponse", "to_utc_us"]

_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)


def _parse_iso(text: str, what: str) -> dt.datetime:
    """An ISO 8601 date-time (``Z`` for UTC) as written: naive stays naive."""
    try:
        return dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise InvalidInput(f"{what} {text!r} is not an ISO 8601 date-time") from None


def to_utc_us(value: Any, what: str) -> int:
    """A datetime (naive means UTC), pandas Timestamp or ISO string as µs since the epoch."""
    if isinstance(value, str):
        value = _parse_iso(value, what)
    if isinstance(value, pd.Timestamp):
        value = value.to_pydatetime()
    if isinstance(value, dt.date) and not isinstance(value, dt.datetime):
        value = dt.datetime(value.year, value.month, value.day)
    if not isinstance(value, dt.datetime):
        raise InvalidInput(f"{what} must be a datetime")
    if value.tzinfo is None:
        value = value.replace(tzinfo=dt.UTC)
    delta = value - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def _iso(us: int) -> str:
    return (_EPOCH + dt.timedelta(microseconds=us)).strftime("%Y-%m-%dT%H:%M:%SZ")


_PRESENT, _MISSING, _EXPIRED = 0, 1, 2
_STATUS = {_MISSING: "NOT_FOUND", _EXPIRED: "OUTSIDE_MAX_AGE"}
_CODES = {"NOT_FOUND": _MISSING, "OUTSIDE_MAX_AGE": _EXPIRED}


def _parse_iso_us(text: str) -> int:
    return to_utc_us(text, "an event timestamp")


class OnlineResponse:
    """Online feature values, column-major as in Feast: join keys first, then features in the
    order requested. Statuses and timestamps are worked out only when asked for."""

    __slots__ = ("_keys", "_names", "_states", "_values", "value_types")

    def __init__(
        self,
        keys: dict[str, list[Any]],
        names: list[str],
        values: list[list[Any]],
        states: list[tuple[list[int] | None, list[int]]],
    ) -> None:
        self._keys = keys
        self._names = names
        self._values = values
        self._states = states  # per feature: (row states or None when all present, timestamps)
        # answered features whose values JSON cannot carry as they are: UnixTimestamp, Bytes
        self.value_types: Mapping[str, str] = {}

    def to_dict(self, include_event_timestamps: bool = False) -> dict[str, list[Any]]:
        """``{column: [value per entity row]}``; unknown entities give None."""
        out: dict[str, list[Any]] = dict(self._keys)
        out.update(zip(self._names, self._values, strict=True))
        if include_event_timestamps:
            for name, (states, stamps) in zip(self._names, self._states, strict=True):
                out[f"{name}__ts"] = [
                    0 if states is not None and states[i] == _MISSING else s // 1_000_000
                    for i, s in enumerate(stamps)
                ]
        return out

    def to_df(self, include_event_timestamps: bool = False) -> pd.DataFrame:
        """The values as a DataFrame, one row per entity row."""
        return pd.DataFrame(self.to_dict(include_event_timestamps))

    @property
    def join_keys(self) -> list[str]:
        """The entity key columns, which come first."""
        return list(self._keys)

    @property
    def feature_names(self) -> list[str]:
        """The answered features' column names, in the order asked for."""
        return list(self._names)

    def decode(self, types: Mapping[str, str]) -> None:
        """Turn JSON-carried values back into their types (``UnixTimestamp``: ISO 8601 to
        datetime, ``Bytes``: base64 to bytes), for the features ``types`` names."""
        for j, name in enumerate(self._names):
            kind = types.get(name)
            if kind == "UnixTimestamp":
                parse: Callable[[Any], Any] = dt.datetime.fromisoformat
            elif kind == "Bytes":
                parse = base64.b64decode
            else:
                continue
            self._values[j] = [None if v is None else parse(v) for v in self._values[j]]

    def _statuses(self, j: int) -> list[str]:
        states, _ = self._states[j]
        vals = self._values[j]
        if states is None:
            return ["PRESENT" if v is not None else "NULL_VALUE" for v in vals]
        return [
            ("PRESENT" if v is not None else "NULL_VALUE") if s == _PRESENT else _STATUS[s]
            for s, v in zip(states, vals, strict=True)
        ]

    @property
    def statuses(self) -> dict[str, list[str]]:
        """Per feature and row: PRESENT, NOT_FOUND, OUTSIDE_MAX_AGE or NULL_VALUE."""
        return {name: self._statuses(j) for j, name in enumerate(self._names)}

    def to_feast_json(self) -> dict[str, Any]:
        """The body Feast's feature server returns from ``/get-online-features``."""
        results = []
        for vals in self._keys.values():
            results.append(
                {
                    "values": vals,
                    "statuses": ["PRESENT"] * len(vals),
                    "event_timestamps": ["1970-01-01T00:00:00Z"] * len(vals),
                }
            )
        iso: dict[int, str] = {}  # features of one view share their timestamps

        def text(us: int) -> str:
            out = iso.get(us)
            if out is None:
                out = iso[us] = _iso(us)
            return out

        for j, vals in enumerate(self._values):
            states, stamps = self._states[j]
            if states is not None:
                stamps = [0 if st == _MISSING else s for st, s in zip(states, stamps, strict=True)]
            results.append(
                {
                    "values": vals,
                    "statuses": self._statuses(j),
                    "event_timestamps": [text(s) for s in stamps],
                }
            )
        return {
            "metadata": {"feature_names": list(self._keys) + list(self._names)},
            "results": results,
        }

    @classmethod
    def from_feast_json(cls, body: Mapping[str, Any], n_keys: int) -> OnlineResponse:
        """The response a ``to_feast_json`` body describes (its first ``n_keys`` columns are
        the entity keys); timestamps keep the body's whole seconds."""
        names = list(body["metadata"]["feature_names"])
        results = body["results"]
        keys = {names[i]: list(results[i]["values"]) for i in range(n_keys)}
        values, states = [], []
        for result in results[n_keys:]:
            codes = [_CODES.get(st, _PRESENT) for st in result["statuses"]]
            stamps = [_parse_iso_us(t) for t in result["event_timestamps"]]
            values.append(list(result["values"]))
            states.append(
                (None if _MISSING not in codes and _EXPIRED not in codes else codes, stamps)
            )
        return cls(keys, names[n_keys:], values, states)


class _OnlinePlan:
    """A feature list resolved for online reads: cached per feature list and catalog."""

    def __init__(
        self, store: FeatureStore, catalog: Catalog, resolved: Resolved, full: bool
    ) -> None:
        self.resolved = resolved
        self.names = resolved.names(full)
        self.keys: list[str] = []
        self.key_types: dict[str, Any] = {}
        self.views: list[tuple[str, list[str], list[str], int | None, Any]] = []
        self.convert: dict[tuple[str, str], Callable[[Any], Any]] = {}
        for view_name, features in resolved.views.items():
            view = catalog.view(view_name)
            if not view.online:
                raise InvalidInput(f"feature view {view_name!r} is not online (online=False)")
            vkeys: list[str] = view._join_keys  # type: ignore[attr-defined]
            for k in vkeys:
                if k not in self.key_types:
                    self.keys.append(k)
                    self.key_types[k] = view.join_key_types[k]  # type: ignore[attr-defined]
            table = store._table(view_name)
            read = store.online.reader(table, features)
            ttl = view.ttl_seconds
            ttl_us = None if ttl is None else int(ttl * 1_000_000)
            self.views.append((view_name, features, key_order(view), ttl_us, read))
            types = {f.name: f.type.name for f in view.features}
            for f in features:
                if types[f] in _CONVERT:
                    self.convert[(view_name, f)] = _CONVERT[types[f]]
        self.odfvs = [(catalog.odfvs[n], outs) for n, outs in resolved.odfvs.items()]
        self.request_fields = list(resolved.request_fields)
        self.timestamp_fields = [  # request fields typed UnixTimestamp: ISO 8601 over JSON
            f.name
            for odfv_name in resolved.odfvs
            for src in catalog.odfvs[odfv_name].sources
            for f in getattr(src, "schema", None) or ()
            if f.type.name == "UnixTimestamp" and f.name in self.request_fields
        ]
        self.wanted = self.keys + [r for r in self.request_fields if r not in self.keys]
        # One view read in the order asked for: its columns are the answer as they come.
        self.direct = (
            not self.odfvs
            and not self.convert
            and len(self.views) == 1
            and [(self.views[0][0], f) for f in self.views[0][1]] == resolved.output
        )
        # the answered features JSON cannot carry as they are (a server names them)
        self.value_types: dict[str, str] = {}
        for (view_name, f), name in zip(resolved.output, self.names, strict=True):
            if view_name in catalog.views:
                fields = catalog.views[view_name].features
            else:
                fields = catalog.odfvs[view_name].schema
            kind = next((x.type.name for x in fields if x.name == f), "")
            if kind in ("UnixTimestamp", "Bytes"):
                self.value_types[name] = kind
        # ... and keyed by one Int64 or String column: one entity row is answered in one step
        self.single: tuple[str, bool, int | None, Any] | None = None
        if self.direct and len(self.keys) == 1 and self.wanted == self.keys:
            kind = self.key_types[self.keys[0]].name
            if kind in ("Int64", "String"):
                _, _, _, ttl_us, read = self.views[0]
                self.single = (self.keys[0], kind == "Int64", ttl_us, read)


def _from_us(value: Any) -> Any:
    if value is None:
        return None
    return _EPOCH + dt.timedelta(microseconds=int(value))


def _one_row(plan: _OnlinePlan, rows: Any) -> OnlineResponse | None:
    """The answer for one plain entity row (``[{key: value}]`` or ``{key: [value]}``) of a
    ``single`` plan, or None for the general path (which also says what is wrong)."""
    assert plan.single is not None
    name, is_int, ttl_us, read = plan.single
    kind = type(rows)
    try:
        if kind is list and len(rows) == 1:
            value = rows[0][name]
        elif kind is dict and len(rows) == 1:
            column = rows[name]
            if type(column) is not list or len(column) != 1:
                return None
            value = column[0]
        else:
            return None
    except (KeyError, TypeError, ValueError, IndexError):
        return None
    if is_int:
        if type(value) is not int or not _INT64[0] <= value <= _INT64[1]:
            return None
    elif type(value) is not str:
        return None
    row = read([value])[0]
    n = len(plan.names)
    if row is None:
        blank = [[None] for _ in range(n)]
        return OnlineResponse({name: [value]}, plan.names, blank, [([_MISSING], [0])] * n)
    if ttl_us is not None and row[1] < time.time_ns() // 1000 - ttl_us:
        blank = [[None] for _ in range(n)]
        return OnlineResponse({name: [value]}, plan.names, blank, [([_EXPIRED], [row[1]])] * n)
    return OnlineResponse(
        {name: [value]}, plan.names, [[v] for v in row[2:]], [(None, [row[1]])] * n
    )


def _timestamp(value: Any, field: str) -> Any:
    """A request field's ISO 8601 string as the datetime it writes (naive stays naive, as a
    naive datetime passed in would); other values as they are."""
    if not isinstance(value, str):
        return value
    return _parse_iso(value, f"request field {field!r}:")


def _to_bool(value: Any) -> Any:
    return None if value is None else bool(value)


_CONVERT: dict[str, Callable[[Any], Any]] = {"Bool": _to_bool, "UnixTimestamp": _from_us}
_INT64 = (-(2**63), 2**63 - 1)


def _plain_ints(col: list[Any]) -> bool:
    """Whether every value is a Python int within Int64 (the common case, checked quickly)."""
    return all(type(v) is int for v in col) and (
        not col or (_INT64[0] <= min(col) and max(col) <= _INT64[1])
    )


def _check_key(value: Any, key: str, kind: str) -> Any:
    if kind.startswith("Int"):
        number: Any = None
        if isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_)):
            number = int(value)
        elif isinstance(value, (float, np.floating)) and float(value).is_integer():
            number = int(value)
        if number is not None:
            if not _INT64[0] <= number <= _INT64[1]:
                raise InvalidInput(f"entity key {key!r} {number} is out of the Int64 range")
            return number
    elif kind == "String":
        if isinstance(value, (str, np.str_)):
            return str(value)
    raise InvalidInput(f"entity key {key!r} must be {kind}, got {value!r}")


class FeatureStoreBase:
    """What every feature store (on the database or through a server) offers on top of its
    ``catalog``, ``plan`` and ``apply``: repository folders and the registry reads."""

    repo_path: Path | None = None

    @property
    def catalog(self) -> Catalog:
        """The resolved registry."""
        raise NotImplementedError

    def plan(self, objects: Sequence[Any], *, partial: bool = True) -> Plan:
        """What ``apply`` would add, change and (with ``partial=False``) remove."""
        raise NotImplementedError

    def apply(self, objects: Any, *, partial: bool = True) -> Plan:
        """Register definitions (a changed one gets a new version)."""
        raise NotImplementedError

    def _repo(self, path: str | Path | None) -> list[Any]:
        from loopml.features._repo import load_repo

        return load_repo(path or self.repo_path or ".")

    def plan_repo(self, path: str | Path | None = None) -> Plan:
        """What applying the feature repository folder would add, change and remove."""
        return self.plan(self._repo(path), partial=False)

    def apply_repo(self, path: str | Path | None = None) -> Plan:
        """Make the registry match the feature repository folder (objects not in it removed)."""
        return self.apply(self._repo(path), partial=False)

    def list_entities(self) -> list[Entity]:
        """Registered entities."""
        return list(self.catalog.entities.values())

    def list_feature_views(self) -> list[FeatureView]:
        """Registered feature views."""
        return list(self.catalog.views.values())

    def list_on_demand_feature_views(self) -> list[OnDemandFeatureView]:
        """Registered on-demand feature views."""
        return list(self.catalog.odfvs.values())

    def list_feature_services(self) -> list[FeatureService]:
        """Registered feature services."""
        return list(self.catalog.services.values())

    def get_entity(self, name: str) -> Entity:
        """The registered entity ``name``."""
        try:
            return self.catalog.entities[name]
        except KeyError:
            raise NotFound(f"entity {name!r} does not exist") from None

    def get_feature_view(self, name: str) -> FeatureView:
        """The registered feature view ``name``."""
        return self.catalog.view(name)

    def get_on_demand_feature_view(self, name: str) -> OnDemandFeatureView:
        """The registered on-demand feature view ``name``."""
        try:
            return self.catalog.odfvs[name]
        except KeyError:
            raise NotFound(f"on-demand feature view {name!r} does not exist") from None

    def get_feature_service(self, name: str) -> FeatureService:
        """The registered feature service ``name``."""
        return self.catalog.service(name)

    def entity_key_types(self, features: Sequence[str] | FeatureService | str) -> dict[str, str]:
        """The entity keys (and request fields, typed by their schema) a feature list needs,
        with their type names: what a caller must send to ``get_online_features``."""
        catalog = self.catalog
        resolved = resolve(catalog, features)
        out: dict[str, str] = {}
        for view_name in resolved.views:
            view = catalog.view(view_name)
            for k in view._join_keys:  # type: ignore[attr-defined]
                out.setdefault(k, view.join_key_types[k].name)  # type: ignore[attr-defined]
        for name in resolved.odfvs:
            for s in catalog.odfvs[name].sources:
                for f in getattr(s, "schema", None) or ():
                    out.setdefault(f.name, f.type.name)
        return out


class FeatureStore(FeatureStoreBase):
    """Feature definitions, training sets and online values on the configured loopml home.

    ``FeatureStore()`` uses the metadata database of the settings (``LOOPML_HOME``,
    ``LOOPML_DATABASE_URI``) and the online store of ``LOOPML_ONLINE_STORE_URI`` (SQLite under
    the home by default, or ``redis://``). ``repo_path`` names a feature repository folder for
    ``apply_repo``/``plan_repo``.
    """

    def __new__(
        cls,
        repo_path: str | Path | None = None,
        *,
        database_uri: str | None = None,
        online_store: str | OnlineStore | None = None,
        workspace: str | None = None,
        registry_ttl_seconds: float = 5.0,
    ) -> Any:
        """A ``RemoteFeatureStore`` when the settings name a loopml server and no database."""
        from loopml.config import get_settings

        settings = get_settings()
        tracking = settings.tracking_uri or ""
        remote = tracking.startswith(("http://", "https://"))
        if cls is FeatureStore and remote and not (database_uri or settings.database_uri):
            if online_store is None:
                from loopml.features._remote import RemoteFeatureStore

                return RemoteFeatureStore(
                    tracking,
                    repo_path=repo_path,
                    workspace=workspace or settings.workspace,
                    token=settings.tracking_token,
                    registry_ttl_seconds=registry_ttl_seconds,
                )
        return super().__new__(cls)

    def __init__(
        self,
        repo_path: str | Path | None = None,
        *,
        database_uri: str | None = None,
        online_store: str | OnlineStore | None = None,
        workspace: str | None = None,
        registry_ttl_seconds: float = 5.0,
    ) -> None:
        from loopml.config import get_settings

        settings = get_settings()
        self.repo_path = None if repo_path is None else Path(repo_path)
        uri = database_uri or settings.database_uri
        if uri is None:
            tracking = settings.tracking_uri
            if tracking and tracking.startswith(("http://", "https://")):
                raise InvalidInput(
                    "an online_store cannot be given for a loopml server's feature store "
                    "(the server's own is used): set LOOPML_DATABASE_URI to work on the database"
                )
            uri = tracking or settings.resolved_database_uri
        self.workspace = workspace or settings.workspace
        self.registry = SqlFeatureRegistry(uri, workspace=self.workspace)
        if isinstance(online_store, OnlineStore):
            self.online = online_store
        else:
            self.online = open_online_store(online_store or settings.resolved_online_store_uri)
        self.home = settings.home.expanduser().resolve()
        self.registry_ttl_seconds = registry_ttl_seconds
        self._lock = threading.Lock()
        self._catalog: Catalog | None = None
        self._checked = 0.0

    # -- registry ----------------------------------------------------------------------------
    def _table(self, view: str) -> str:
        return f"{self.workspace}__{view}"

    @property
    def catalog(self) -> Catalog:
        """The resolved registry, re-read if it changed (checked each ``registry_ttl_seconds``)."""
        catalog = self._catalog
        now = time.monotonic()
        if catalog is not None and now - self._checked < self.registry_ttl_seconds:
            return catalog
        with self._lock:
            if self._catalog is None or self.registry.stamp() != self._catalog.stamp:
                self._catalog = self.registry.catalog()
                self.online.invalidate()
            self._checked = time.monotonic()
            return self._catalog

    def refresh_registry(self) -> None:
        """Re-read the registry now."""
        self._checked = 0.0
        with self._lock:
            self._catalog = None
        _ = self.catalog

    def plan(self, objects: Sequence[Any], *, partial: bool = True) -> Plan:
        """What ``apply`` would add, change and (with ``partial=False``) remove."""
        return self.registry.plan(list(objects), partial=partial)

    def apply(self, objects: Any, *, partial: bool = True) -> Plan:
        """Register definitions (a changed one gets a new version) and prepare online tables."""
        if not isinstance(objects, (list, tuple)):
            objects = [objects]
        plan = self.registry.apply(list(objects), partial=partial)
        self.refresh_registry()
        catalog = self.catalog
        for item in plan.items:
            if item.kind != "feature_view":
                continue
            if item.action in ("add", "change"):
                view = catalog.views[item.name]
                if view.online:
                    self.online.prepare(self._table(item.name), view.feature_names)
            elif item.action == "remove":  # a view added again later starts from nothing
                self.online.drop(self._table(item.name))
                self.registry.set_state(
                    item.name, watermark=None, checkpoint=None, stats={}, materialized_at=None
                )
        return plan

    # -- offline -----------------------------------------------------------------------------
    def _pushed_dir(self, view: str) -> Path:
        return self.home / "features" / "pushed" / self.workspace / view

    def _pushed(self, view: str) -> list[str]:
        return sorted(glob.glob(str(self._pushed_dir(view) / "*.parquet")))

    def get_historical_features(
        self,
        entity_df: Any,
        features: Sequence[str] | FeatureService | str,
        *,
        full_feature_names: bool = False,
    ) -> RetrievalJob:
        """A point-in-time correct training set for the entity rows (``.to_df()``)."""
        catalog = self.catalog
        return RetrievalJob(
            catalog,
            resolve(catalog, features),
            entity_df,
            full_feature_names=full_feature_names,
            pushed=self._pushed,
        )

    # -- materialization ---------------------------------------------------------------------
    def _online_views(self, names: Sequence[str] | None) -> list[FeatureView]:
        catalog = self.catalog
        if names is None:
            return [v for v in catalog.views.values() if v.online]
        views = [catalog.view(n) for n in names]
        offline = [v.name for v in views if not v.online]
        if offline:
            raise InvalidInput(f"feature view {offline[0]!r} is not online (online=False)")
        return views

    def _materialize_one(
        self,
        view: FeatureView,
        start_us: int,
        end_us: int,
        progress: Callable[[str, int], None] | None,
        *,
        incremental: bool = False,
    ) -> MaterializeResult:
        state = self.registry.state(view.name)
        version = view.version  # type: ignore[attr-defined]
        checkpoint = state["checkpoint"] or {}
        same = checkpoint.get("start") == start_us and checkpoint.get("version") == version
        if same and incremental and checkpoint.get("end") != end_us:
            # An interrupted incremental run: finish its window first, then go on from there.
            self._materialize_one(view, start_us, checkpoint["end"], progress)
            return self._materialize_one(view, checkpoint["end"], end_us, progress)
        window = {"start": start_us, "end": end_us, "version": version}
        resume = None
        stats = None
        before = 0
        if same and checkpoint.get("end") == end_us:
            resume = checkpoint.get("last_key")
            before = int(checkpoint.get("rows", 0))
            stats = {k: FeatureStats.from_state(v) for k, v in checkpoint.get("stats", {}).items()}

        def on_batch(rows: int, last_key: list[Any], now: dict[str, FeatureStats]) -> None:
            self.registry.set_state(
                view.name,
                checkpoint={
                    **window,
                    "last_key": last_key,
                    "rows": before + rows,
                    "stats": {k: v.to_state() for k, v in now.items()},
                },
            )
            if progress is not None:
                progress(view.name, before + rows)

        rows, stats = materialize_view(
            view,
            self.online,
            self._table(view.name),
            start_us,
            end_us,
            pushed=self._pushed(view.name),
            resume_after=resume,
            stats=stats,
            on_batch=on_batch,
        )
        summary = {name: s.to_dict() for name, s in stats.items() if name in view.feature_names}
        watermark = state["watermark"]
        self.registry.set_state(
            view.name,
            watermark=end_us if watermark is None else max(watermark, end_us),
            stats={
                "features": summary,
                "rows": before + rows,
                "window": [start_us, end_us],
                "version": version,
                "resumed": resume is not None,
            },
            checkpoint=None,
            materialized_at=int(time.time() * 1000),
        )
        return MaterializeResult(view.name, start_us, end_us, rows, resume, summary)

    def materialize(
        self,
        start_date: Any,
        end_date: Any,
        feature_views: Sequence[str] | None = None,
        *,
        progress: Callable[[str, int], None] | None = None,
    ) -> list[MaterializeResult]:
        """Write the latest row per entity with event time in [start, end] online, per view."""
        start = to_utc_us(start_date, "start_date")
        end = to_utc_us(end_date, "end_date")
        if start > end:
            raise InvalidInput("start_date must not be after end_date")
        return [
            self._materialize_one(v, start, end, progress)
            for v in self._online_views(feature_views)
        ]

    def materialize_incremental(
        self,
        end_date: Any,
        feature_views: Sequence[str] | None = None,
        *,
        progress: Callable[[str, int], None] | None = None,
    ) -> list[MaterializeResult]:
        """Materialize each view from its watermark (first time: ``end - ttl``) to ``end``."""
        end = to_utc_us(end_date, "end_date")
        out = []
        for view in self._online_views(feature_views):
            watermark = self.registry.state(view.name)["watermark"]
            if watermark is not None:
                start = watermark
            elif view.ttl_seconds is not None:
                start = end - int(view.ttl_seconds * 1_000_000)
            else:
                start = 0
            if start > end:
                raise InvalidInput(
                    f"end_date is before feature view {view.name!r}'s watermark {_iso(start)}"
                )
            out.append(self._materialize_one(view, start, end, progress, incremental=True))
        return out

    # -- online ------------------------------------------------------------------------------
    def _online_plan(self, features: Any, full: bool) -> _OnlinePlan:
        catalog = self.catalog
        cache_key: Any
        if isinstance(features, FeatureService):
            cache_key = ("service", features.name, full)
        elif isinstance(features, str):
            cache_key = (features, full)
        else:
            try:
                cache_key = (tuple(features), full)
            except TypeError:
                raise InvalidInput("features must be a list of 'view:feature'") from None
        plans = catalog.cache  # plans live and die with the catalog they were made from
        plan = plans.get(cache_key)
        if plan is None:
            plan = _OnlinePlan(self, catalog, resolve(catalog, features), full)
            if len(plans) > 1000:
                plans.clear()
            plans[cache_key] = plan
        return plan

    def get_online_features(
        self,
        features: Sequence[str] | FeatureService | str,
        entity_rows: Sequence[Mapping[str, Any]] | Mapping[str, Sequence[Any]],
        *,
        full_feature_names: bool = False,
    ) -> OnlineResponse:
        """The latest values for each entity row (a list of dicts or a dict of lists)."""
        plan = self._online_plan(features, full_feature_names)
        response = _one_row(plan, entity_rows) if plan.single is not None else None
        if response is None:
            response = self._read_online(plan, entity_rows)
        response.value_types = plan.value_types
        return response

    def _read_online(self, plan: _OnlinePlan, entity_rows: Any) -> OnlineResponse:
        columns = self._entity_columns(plan, entity_rows)
        n = len(columns[plan.wanted[0]]) if plan.wanted else 0
        got: dict[tuple[str, str], tuple[list[Any], tuple[list[int] | None, list[int]]]] = {}
        for view_name, feats, vkeys, ttl, read in plan.views:
            keys = (
                columns[vkeys[0]] if len(vkeys) == 1 else encode_keys([columns[k] for k in vkeys])
            )
            rows = read(keys)
            states: list[int] | None = None
            if ttl is not None:
                oldest = time.time_ns() // 1000 - ttl
                if None in rows or any(r[1] < oldest for r in rows):
                    states = [
                        _MISSING if r is None else (_EXPIRED if r[1] < oldest else _PRESENT)
                        for r in rows
                    ]
            elif None in rows:
                states = [_MISSING if r is None else _PRESENT for r in rows]
            width = len(feats) + 2
            if states is not None:  # missing or expired rows: their values are None
                blank = (None,) * width
                rows = [
                    r if s == _PRESENT else (blank if r is None else (r[0], r[1], *blank[2:]))
                    for r, s in zip(rows, states, strict=True)
                ]
            if n:
                cols = [list(c) for c in zip(*rows, strict=True)]
            else:
                cols = [[] for _ in range(width)]
            stamps = [0 if t is None else t for t in cols[1]] if states is not None else cols[1]
            state = (states, stamps)
            values = cols[2:]
            if plan.direct:
                keys_out = {k: columns[k] for k in plan.keys}
                return OnlineResponse(keys_out, plan.names, values, [state] * len(values))
            for f, col in zip(feats, values, strict=True):
                convert = plan.convert.get((view_name, f))
                if convert is not None:
                    col = [convert(v) for v in col]
                got[(view_name, f)] = (col, state)
        for odfv, outputs in plan.odfvs:
            self._run_odfv(odfv, outputs, columns, got, n)
        values = []
        states_out = []
        for ref in plan.resolved.output:
            v, st = got[ref]
            values.append(v)
            states_out.append(st)
        keys_out = {k: columns[k] for k in plan.keys}
        return OnlineResponse(keys_out, plan.names, values, states_out)

    @staticmethod
    def _entity_columns(plan: _OnlinePlan, rows: Any) -> dict[str, list[Any]]:
        wanted = plan.wanted
        if type(rows) is list and len(wanted) == 1:  # the common call: [{"id": 1}, ...]
            k = wanted[0]
            try:
                col = [row[k] for row in rows]
            except (KeyError, TypeError, IndexError):
                pass  # the general path below says what is wrong
            else:
                kind = plan.key_types[k].name if k in plan.key_types else ""
                if kind.startswith("Int") and _plain_ints(col):
                    return {k: col}
                if kind == "String" and all(type(v) is str for v in col):
                    return {k: col}
        if isinstance(rows, Mapping):
            columns = {}
            n = None
            for k in wanted:
                if k not in rows:
                    raise InvalidInput(f"entity rows lack {k!r}")
                col = rows[k]
                if hasattr(col, "tolist") and not isinstance(col, (str, bytes)):
                    col = col.tolist()  # a NumPy array or pandas Series
                if isinstance(col, (str, bytes)) or not isinstance(col, Sequence):
                    raise InvalidInput(f"entity column {k!r} must be a list")
                if n is not None and len(col) != n:
                    raise InvalidInput("entity columns must all have the same length")
                n = len(col)
                columns[k] = list(col)
        else:
            if isinstance(rows, (str, bytes)) or not isinstance(rows, Sequence):
                raise InvalidInput("entity_rows must be a list of objects or an object of lists")
            columns = {k: [] for k in wanted}
            for row in rows:
                if not isinstance(row, Mapping):
                    raise InvalidInput("each entity row must be an object of key values")
                for k in wanted:
                    try:
                        columns[k].append(row[k])
                    except KeyError:
                        raise InvalidInput(f"an entity row lacks {k!r}") from None
        for r in plan.timestamp_fields:
            if any(isinstance(v, str) for v in columns[r]):
                columns[r] = [_timestamp(v, r) for v in columns[r]]
        for k in plan.keys:
            kind = plan.key_types[k].name
            col = columns[k]
            if kind.startswith("Int"):
                if not _plain_ints(col):
                    columns[k] = [_check_key(v, k, kind) for v in col]
            elif not all(type(v) is str for v in col) or kind != "String":
                columns[k] = [_check_key(v, k, kind) for v in col]
        return columns

    @staticmethod
    def _run_odfv(
        odfv: OnDemandFeatureView,
        outputs: list[str],
        columns: dict[str, list[Any]],
        got: dict[tuple[str, str], tuple[list[Any], tuple[list[int] | None, list[int]]]],
        n: int,
    ) -> None:
        feats, request = input_names(odfv)
        inputs: dict[str, list[Any]] = {f: got[(v, f)][0] for v, f in feats}
        for r in request:
            inputs[r] = columns[r]
        frame: Any = inputs if odfv.mode == "python" else pd.DataFrame(inputs)
        out = run_odfv(odfv, frame)
        now = time.time_ns() // 1000
        for name in outputs:
            vals = [None if pd.isna(v) else v for v in out[name].tolist()]
            got[(odfv.name, name)] = (vals, (None, [now] * n))

    # -- push --------------------------------------------------------------------------------
    def push(self, feature_view: str, df: Any, *, to: str = "online_and_offline") -> int:
        """Write fresh rows of a view online (newer wins) and append them to its offline data;
        every row is checked first, so a bad row writes nothing."""
        if to not in ("online", "offline", "online_and_offline"):
            raise InvalidInput("to must be 'online', 'offline' or 'online_and_offline'")
        view = self.catalog.view(feature_view)
        if to == "online" and not view.online:
            raise InvalidInput(f"feature view {view.name!r} is not online (online=False)")
        source = view.source
        assert source is not None
        keys: list[str] = view._join_keys  # type: ignore[attr-defined]
        need = [*keys, source.timestamp_field, *view.feature_names]
        created = source.created_timestamp_column
        try:
            if isinstance(df, pd.DataFrame):
                unique_columns(list(df.columns), "pushed rows")
                table = pa.Table.from_pandas(df, preserve_index=False)
            elif isinstance(df, pa.Table):
                unique_columns(df.column_names, "pushed rows")
                table = df
            else:
                raise InvalidInput("push needs a pandas DataFrame or an Arrow table")
            missing = [c for c in need if c not in table.column_names]
            if missing:
                raise InvalidInput(f"pushed rows lack column {missing[0]!r} of view {view.name!r}")
            if created and created not in table.column_names:
                stamp = dt.datetime.now(dt.UTC)
                table = table.append_column(
                    created, pa.array([stamp] * table.num_rows, pa.timestamp("us", tz="UTC"))
                )
            table = _conform(table.select(need + ([created] if created else [])), view)
        except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError) as exc:
            raise InvalidInput(f"pushed rows do not fit view {view.name!r}: {exc}") from exc
        for col in (*keys, source.timestamp_field):
            if table.column(col).null_count:
                raise InvalidInput(f"pushed rows have an empty {col!r}")
        if table.num_rows == 0:
            return 0
        rows = None
        if to != "offline" and view.online:
            order = key_order(view)
            us = pa.int64()
            ts_us = pc.cast(table.column(source.timestamp_field), us).to_pylist()
            if created:
                cr = pc.fill_null(pc.cast(table.column(created), us), NULL_CREATED).to_pylist()
            else:
                cr = [NULL_CREATED] * table.num_rows
            values = []
            for f in view.features:
                col = table.column(f.name)
                if f.type.name == "UnixTimestamp":
                    col = pc.cast(col, us)
                values.append(col.to_pylist())
            encoded = encode_keys([table.column(k).to_pylist() for k in order])
            rows = list(zip(encoded, ts_us, cr, *values, strict=True))
        if to != "online":
            import pyarrow.parquet as pq

            folder = self._pushed_dir(view.name)
            folder.mkdir(parents=True, exist_ok=True)
            final = folder / f"{time.time_ns():020d}-{uuid.uuid4().hex[:8]}.parquet"
            partial = final.with_suffix(".tmp")
            pq.write_table(table, str(partial))
            partial.rename(final)
        if rows is not None:
            self.online.prepare(self._table(view.name), view.feature_names)
            self.online.write(self._table(view.name), view.feature_names, rows)
        return table.num_rows

    # -- catalog ------------------------------------------------------------------------------
    def describe(
        self, name: str, *, versions: bool = False, online_rows: bool = False
    ) -> dict[str, Any]:
        """A view's spec, materialization state and statistics (``describe_view``)."""
        from loopml.features._catalog import describe_view

        return describe_view(self, name, versions=versions, online_rows=online_rows)

    def list_objects(self, kind: str) -> list[dict[str, Any]]:
        """Registered ``entity`` or ``feature_service`` objects as JSON-able summaries."""
        return self.registry.list_objects(kind)

    def versions(self, kind: str, name: str) -> list[dict[str, Any]]:
        """Every version of a registered object, oldest first, with its spec."""
        return self.registry.versions(kind, name)

    def skew(self, feature_view: str, *, sample: int = 1000, tolerance: float = 1e-6) -> Any:
        """The training-serving skew check of a view (``skew_check``)."""
        from loopml.features._skew import skew_check

        return skew_check(self, feature_view, sample=sample, tolerance=tolerance)

    def close(self) -> None:
        """Close the online store's connections."""
        self.online.close()


def _conform(table: pa.Table, view: FeatureView) -> pa.Table:
    """Cast pushed columns to the view's types (keys, features; timestamps to UTC µs)."""
    source = view.source
    assert source is not None
    types = {f.name: f.type.arrow for f in view.features}
    types.update({k: t.arrow for k, t in view.join_key_types.items()})  # type: ignore[attr-defined]
    stamp = pa.timestamp("us", tz="UTC")
    fields = []
    for name in table.column_names:
        if name in types:
            fields.append(pa.field(name, types[name]))
        else:
            column_type = table.schema.field(name).type
            if not (pa.types.is_timestamp(column_type) or pa.types.is_date(column_type)):
                raise pa.ArrowInvalid(f"{name!r} must hold timestamps")
            column = table.column(name)
            if pa.types.is_timestamp(column_type) and column_type.tz is None:
                column = pc.assume_timezone(column, "UTC")
            index = table.column_names.index(name)
            table = table.set_column(index, name, pc.cast(column, stamp, safe=False))
            fields.append(pa.field(name, stamp))
    return table.cast(pa.schema(fields))
