"""``RemoteFeatureStore``: the feature store of a loopml server, with ``FeatureStore``'s calls.

Definitions travel as their JSON specs; training sets, pushed rows and entity frames as Arrow IPC
streams; the registry is fetched once and re-read only when its stamp changes. The server
computes training sets and materializes, so every file a source names must be readable there.
"""

from __future__ import annotations

import datetime as dt
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

import orjson
import pandas as pd
import pyarrow as pa

from loopml.errors import InvalidInput
from loopml.features._definitions import FeatureService, kind_of
from loopml.features._materialize import MaterializeResult
from loopml.features._offline import TrainingSet, entity_table
from loopml.features._registry import Catalog, Plan, PlanItem
from loopml.features._skew import SkewReport
from loopml.features._store import FeatureStoreBase, OnlineResponse, to_utc_us
from loopml.tracking import RestRoutes

__all__ = ["RemoteFeatureStore", "RemoteTrainingSet"]

_BASE = "/features"


def _ipc(table: pa.Table) -> bytes:
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    return bytes(sink.getvalue().to_pybytes())


def _feature_args(features: Sequence[str] | FeatureService | str) -> dict[str, Any]:
    if isinstance(features, FeatureService):
        return {"feature_service": features.name}
    if isinstance(features, str):  # a service's name, or one "view:feature"
        return {"features": [features]} if ":" in features else {"feature_service": features}
    if isinstance(features, Sequence) and all(isinstance(f, str) for f in features):
        return {"features": list(features)}
    raise InvalidInput("features must be a list of 'view:feature' or a feature service")


def _spec(obj: Any) -> dict[str, Any]:
    """``obj``'s spec, a relative local source path made absolute (the server has another
    working directory)."""
    kind = kind_of(obj)
    spec = obj.to_spec()
    source = spec.get("source")
    if kind == "feature_view" and isinstance(source, dict) and "://" not in source["path"]:
        path = Path(source["path"]).expanduser()
        spec["source"] = {**source, "path": str(path.resolve())}
    return {"kind": kind, "spec": spec}


def _plan(data: Mapping[str, Any]) -> Plan:
    return Plan([PlanItem(**item) for item in data["items"]])


class RemoteTrainingSet(TrainingSet):
    """A training set the server computes on the first ``to_arrow()`` (then kept)."""

    def __init__(self, store: RemoteFeatureStore, entity_df: Any, args: dict[str, Any]) -> None:
        self._store = store
        self._entities = entity_table(entity_df)
        self._args = args
        self._result: pa.Table | None = None
        self._meta: dict[str, Any] = {}

    def to_arrow(self) -> pa.Table:
        """The training set as an Arrow table."""
        if self._result is None:
            query = urlencode(self._args, doseq=True)
            raw = self._store._http.request_bytes(
                "POST", f"{_BASE}/historical?{query}", content=_ipc(self._entities)
            )
            table = pa.ipc.open_stream(raw).read_all()
            meta = table.schema.metadata or {}
            self._meta = orjson.loads(meta.get(b"loopml", b"{}"))
            self._result = table.replace_schema_metadata(
                {k: v for k, v in meta.items() if k != b"loopml"} or None
            )
        return self._result

    @property
    def feature_views(self) -> list[str]:  # type: ignore[override]
        """``name@version`` of every view the training set read."""
        self.to_arrow()
        return list(self._meta.get("feature_views", []))

    @property
    def feature_service(self) -> str | None:  # type: ignore[override]
        """The feature service asked for, if any."""
        self.to_arrow()
        return self._meta.get("feature_service")

    @property
    def metadata(self) -> Mapping[str, Any]:
        """What the job read: feature names, view versions, the entity row count."""
        self.to_arrow()
        return dict(self._meta)


class RemoteFeatureStore(RestRoutes, FeatureStoreBase):
    """A loopml server's feature store over HTTP (``/api/v1/features``): what
    ``FeatureStore()`` gives when ``LOOPML_TRACKING_URI`` names a server and no database is
    set. Applying definitions needs an admin's token."""

    def __init__(
        self,
        url: str,
        *,
        repo_path: str | Path | None = None,
        workspace: str = "default",
        token: str | None = None,
        registry_ttl_seconds: float = 5.0,
        timeout: float = 600.0,
        _http: Any = None,
    ) -> None:
        super().__init__(url, workspace=workspace, token=token, timeout=timeout, _http=_http)
        self.repo_path = None if repo_path is None else Path(repo_path)
        self.registry_ttl_seconds = registry_ttl_seconds
        self._catalog: Catalog | None = None
        self._checked = 0.0
        self._lock = threading.Lock()

    # -- registry ----------------------------------------------------------------------------
    @property
    def catalog(self) -> Catalog:
        """The server's registry, re-read when it changed (checked each
        ``registry_ttl_seconds``)."""
        catalog = self._catalog
        if catalog is not None and time.monotonic() - self._checked < self.registry_ttl_seconds:
            return catalog
        with self._lock:
            held = None if self._catalog is None else self._catalog.stamp
            data = self._http.request("GET", f"{_BASE}/registry", params={"stamp": held})
            if self._catalog is None or not data.get("unchanged"):
                rows = [(o["kind"], o["name"], o["version"], o["spec"]) for o in data["objects"]]
                self._catalog = Catalog(rows, data["stamp"])
            self._checked = time.monotonic()
            return self._catalog

    def refresh_registry(self) -> None:
        """Re-read the registry now."""
        self._checked = 0.0
        _ = self.catalog

    def _definitions(self, path: str, objects: Any, partial: bool) -> Plan:
        if not isinstance(objects, (list, tuple)):
            objects = [objects]
        body = {"objects": [_spec(o) for o in objects], "partial": partial}
        return _plan(self._http.request("POST", f"{_BASE}/{path}", body=body))

    def plan(self, objects: Sequence[Any], *, partial: bool = True) -> Plan:
        """What ``apply`` would add, change and (with ``partial=False``) remove."""
        return self._definitions("plan", objects, partial)

    def apply(self, objects: Any, *, partial: bool = True) -> Plan:
        """Register definitions on the server (a changed one gets a new version)."""
        plan = self._definitions("apply", objects, partial)
        self.refresh_registry()
        return plan

    # -- offline -----------------------------------------------------------------------------
    def get_historical_features(
        self,
        entity_df: Any,
        features: Sequence[str] | FeatureService | str,
        *,
        full_feature_names: bool = False,
    ) -> RemoteTrainingSet:
        """A point-in-time correct training set, computed by the server (``.to_df()``)."""
        args = _feature_args(features)
        if full_feature_names:
            args["full_feature_names"] = "true"
        return RemoteTrainingSet(self, entity_df, args)

    # -- materialization ---------------------------------------------------------------------
    def _materialize(
        self, body: dict[str, Any], progress: Callable[[str, int], None] | None
    ) -> list[MaterializeResult]:
        data = self._http.request("POST", f"{_BASE}/materialize", body=body)
        results = [MaterializeResult(**r) for r in data["results"]]
        for r in results:
            if progress is not None:
                progress(r.view, r.rows)
        return results

    @staticmethod
    def _iso(value: Any, what: str) -> str:
        us = to_utc_us(value, what)
        return pd.Timestamp(us, unit="us", tz="UTC").isoformat()

    def materialize(
        self,
        start_date: Any,
        end_date: Any,
        feature_views: Sequence[str] | None = None,
        *,
        progress: Callable[[str, int], None] | None = None,
    ) -> list[MaterializeResult]:
        """Have the server write the latest row per entity in [start, end] online, per view."""
        body: dict[str, Any] = {
            "start": self._iso(start_date, "start_date"),
            "end": self._iso(end_date, "end_date"),
        }
        if feature_views is not None:
            body["feature_views"] = list(feature_views)
        return self._materialize(body, progress)

    def materialize_incremental(
        self,
        end_date: Any,
        feature_views: Sequence[str] | None = None,
        *,
        progress: Callable[[str, int], None] | None = None,
    ) -> list[MaterializeResult]:
        """Have the server materialize each view from its watermark to ``end``."""
        body: dict[str, Any] = {"end": self._iso(end_date, "end_date"), "incremental": True}
        if feature_views is not None:
            body["feature_views"] = list(feature_views)
        return self._materialize(body, progress)

    # -- online ------------------------------------------------------------------------------
    def get_online_features(
        self,
        features: Sequence[str] | FeatureService | str,
        entity_rows: Sequence[Mapping[str, Any]] | Mapping[str, Sequence[Any]],
        *,
        full_feature_names: bool = False,
    ) -> OnlineResponse:
        """The latest values for each entity row, read by the server."""
        body: dict[str, Any] = _feature_args(features)
        body["entities"] = _entity_columns(entity_rows, list(self.entity_key_types(features)))
        body["full_feature_names"] = full_feature_names
        data = self._http.request("POST", f"{_BASE}/online", body=body)
        meta = data["metadata"]
        response = OnlineResponse.from_feast_json(data, len(meta["join_keys"]))
        response.decode(meta.get("value_types") or {})
        return response

    def push(self, feature_view: str, df: Any, *, to: str = "online_and_offline") -> int:
        """Write fresh rows of a view online and to its offline data, on the server."""
        query = urlencode({"feature_view": feature_view, "to": to})
        raw = self._http.request_bytes(
            "POST", f"{_BASE}/push?{query}", content=_ipc(entity_table(df, "pushed rows"))
        )
        return int(orjson.loads(raw)["rows"])

    # -- catalog -----------------------------------------------------------------------------
    def describe(
        self, name: str, *, versions: bool = False, online_rows: bool = False
    ) -> dict[str, Any]:
        """A view's spec, versions, materialization state, statistics and online rows."""
        params = {"versions": versions, "online_rows": online_rows}
        path = f"{_BASE}/views/{quote(name, safe='')}"
        return dict(self._http.request("GET", path, params=params))

    def versions(self, kind: str, name: str) -> list[dict[str, Any]]:
        """Every version of a registered object, oldest first, with its spec."""
        path = f"{_BASE}/registry/{quote(kind, safe='')}/{quote(name, safe='')}"
        return list(self._http.request("GET", path)["versions"])

    def for_workspace(self, workspace: str) -> RemoteFeatureStore:
        """The same server's feature store in another workspace."""
        return RemoteFeatureStore(
            self.base_url,
            repo_path=self.repo_path,
            workspace=workspace,
            token=self._token,
            registry_ttl_seconds=self.registry_ttl_seconds,
            timeout=self._timeout,
            _http=self._http.for_workspace(workspace),
        )

    def list_objects(self, kind: str) -> list[dict[str, Any]]:
        """Registered ``entity`` or ``feature_service`` objects as JSON-able summaries."""
        route = {"entity": "entities", "feature_service": "services"}.get(kind)
        if route is None:
            raise InvalidInput("kind must be 'entity' or 'feature_service'")
        return list(self._http.request("GET", f"{_BASE}/{route}")[route])

    def skew(
        self, feature_view: str, *, sample: int = 1000, tolerance: float = 1e-6
    ) -> SkewReport:
        """The training-serving skew check of a view, run by the server."""
        body = {"feature_view": feature_view, "sample": sample, "tolerance": tolerance}
        data = self._http.request("POST", f"{_BASE}/skew", body=body)
        fields = ("view", "as_of", "entities", "tolerance", "features")
        return SkewReport(**{k: data[k] for k in fields})


def _entity_columns(rows: Any, wanted: list[str]) -> dict[str, list[Any]]:
    """The ``wanted`` columns of entity rows (a list of objects or an object of lists), as
    JSON-able lists; the server checks their values."""
    if isinstance(rows, Mapping):
        out = {}
        for k in wanted:
            if k not in rows:
                raise InvalidInput(f"entity rows lack {k!r}")
            col = rows[k]
            if hasattr(col, "tolist") and not isinstance(col, (str, bytes)):
                col = col.tolist()  # a NumPy array or pandas Series
            if isinstance(col, (str, bytes)) or not isinstance(col, Sequence):
                raise InvalidInput(f"entity column {k!r} must be a list")
            out[k] = [_plain(v) for v in col]
        return out
    if isinstance(rows, (str, bytes)) or not isinstance(rows, Sequence):
        raise InvalidInput("entity_rows must be a list of objects or an object of lists")
    columns: dict[str, list[Any]] = {k: [] for k in wanted}
    for row in rows:
        if not isinstance(row, Mapping):
            raise InvalidInput("each entity row must be an object of key values")
        for k in wanted:
            if k not in row:
                raise InvalidInput(f"an entity row lacks {k!r}")
            columns[k].append(_plain(row[k]))
    return columns


def _plain(value: Any) -> Any:
    """A value as JSON can carry it: NumPy scalars as Python ones, missing values as null,
    timestamps as ISO 8601 (naive ones without an offset, so they arrive naive)."""
    if value is pd.NaT:
        return None
    if isinstance(value, pd.Timestamp):
        value = value.to_pydatetime()
    if isinstance(value, dt.datetime):
        return value.isoformat()
    if hasattr(value, "item") and not isinstance(value, (str, bytes)):
        value = value.item()
    try:
        if pd.isna(value):
            return None
    except (TypeError, ValueError):
        pass
    return value
