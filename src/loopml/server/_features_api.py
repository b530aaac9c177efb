"""``/api/v1/features``: online values (shaped like Feast's ``/get-online-features``), push,
materialization, and the catalog (views, entities, services, their versions and statistics)."""

from __future__ import annotations

import base64
import datetime as dt
import logging
import threading
from typing import Any

import orjson
import pyarrow as pa
from fastapi import APIRouter, Request, Response
from fastapi.concurrency import run_in_threadpool

from loopml.errors import InvalidInput, LoopmlError
from loopml.features import (
    FeatureStore,
    SqliteOnlineStore,
    definition_from_spec,
    describe_view,
    skew_check,
)
from loopml.server._auth import note_change

router = APIRouter(prefix="/api/v1/features", tags=["features"])

_log = logging.getLogger("loopml.server")
_WORKSPACE_HEADER = "x-loopml-workspace"
ARROW_STREAM = "application/vnd.apache.arrow.stream"
_ONLINE_BODY = {
    "content": {
        "application/json": {
            "schema": {
                "type": "object",
                "required": ["entities"],
                "properties": {
                    "features": {"type": "array", "items": {"type": "string"}},
                    "feature_service": {"type": "string"},
                    "entities": {"type": "object", "additionalProperties": {"type": "array"}},
                    "full_feature_names": {"type": "boolean"},
                },
            }
        }
    },
    "required": True,
}
_lock = threading.Lock()


def _store(request: Request) -> FeatureStore:
    """The feature store of the request's workspace (one per workspace, made on first use)."""
    state = request.app.state
    return _store_for(state, request.headers.get(_WORKSPACE_HEADER) or state.workspace)


def _store_for(state: Any, workspace: str) -> FeatureStore:
    stores: dict[str, FeatureStore] = state.feature_stores
    store = stores.get(workspace)
    if store is None:
        with _lock:
            store = stores.get(workspace)
            if store is None:
                if len(stores) >= 1000:
                    raise InvalidInput("too many workspaces served at once")
                base = stores.get(state.workspace)
                store = FeatureStore(
                    database_uri=state.database_uri,
                    online_store=None if base is None else base.online,
                    workspace=workspace,
                )
                if workspace != state.workspace:
                    store.registry.check_workspace()  # a 404 for a workspace that is not there
                stores[workspace] = store
    return store


async def _json(request: Request) -> dict[str, Any]:
    body = await request.body()
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError:
        raise InvalidInput("the request body must be JSON") from None
    if not isinstance(data, dict):
        raise InvalidInput("the request body must be a JSON object")
    return data


def _ok(data: Any) -> Response:
    return Response(orjson.dumps(data, default=_jsonable), media_type="application/json")


def _feature_list(body: dict[str, Any]) -> tuple[Any, bool]:
    """The ``features`` or ``feature_service`` and ``full_feature_names`` of a body."""
    features: Any = body.get("features")
    service = body.get("feature_service")
    if (features is None) == (service is None):
        raise InvalidInput(
            "give either 'features' (a list of 'view:feature') or 'feature_service'"
        )
    if service is not None:
        if not isinstance(service, str):
            raise InvalidInput("'feature_service' must be a string")
        features = service
    elif not isinstance(features, list) or not all(isinstance(f, str) for f in features):
        raise InvalidInput("'features' must be a list of 'view:feature' strings")
    full = body.get("full_feature_names", False)
    if not isinstance(full, bool):
        raise InvalidInput("'full_feature_names' must be true or false")
    return features, full


def _online(store: FeatureStore, body: dict[str, Any]) -> dict[str, Any]:
    unknown = sorted(set(body) - {"features", "feature_service", "entities", "full_feature_names"})
    if unknown:
        raise InvalidInput(f"unknown field {unknown[0]!r}")
    features, full = _feature_list(body)
    entities = body.get("entities")
    if not isinstance(entities, dict) or not entities:
        raise InvalidInput("'entities' must be an object of key names to lists of values")
    response = store.get_online_features(features, entities, full_feature_names=full)
    out = response.to_feast_json()
    out["metadata"]["join_keys"] = response.join_keys  # (beyond Feast's body; clients may skip)
    if response.value_types:
        out["metadata"]["value_types"] = response.value_types
    return out


@router.post("/online", openapi_extra={"requestBody": _ONLINE_BODY})
async def get_online_features(request: Request) -> Response:
    """Latest feature values for entity keys; the body and response follow Feast's server.
    (Served by ``OnlineFastPath`` in front of the app; this route documents it.)"""
    store = _store(request)
    body = await _json(request)
    if isinstance(store.online, SqliteOnlineStore):  # a local read takes microseconds
        return _ok(_online(store, body))
    return _ok(await run_in_threadpool(_online, store, body))


def _push(store: FeatureStore, body: dict[str, Any]) -> dict[str, Any]:
    import pandas as pd

    unknown = sorted(set(body) - {"feature_view", "rows", "to"})
    if unknown:
        raise InvalidInput(f"unknown field {unknown[0]!r}")
    view = body.get("feature_view")
    rows = body.get("rows")
    if not isinstance(view, str):
        raise InvalidInput("'feature_view' must name a feature view")
    if (
        not isinstance(rows, dict)
        or not rows
        or not all(isinstance(v, list) for v in rows.values())
    ):
        raise InvalidInput("'rows' must be an object of column names to lists of values")
    if len({len(v) for v in rows.values()}) != 1:
        raise InvalidInput("'rows' columns must all have the same length")
    frame = pd.DataFrame(rows)
    source = store.get_feature_view(view).source
    assert source is not None
    for col in (source.timestamp_field, source.created_timestamp_column):
        if col and col in frame:
            try:
                frame[col] = pd.to_datetime(frame[col], utc=True, format="ISO8601")
            except (ValueError, TypeError):
                raise InvalidInput(f"'rows.{col}' must hold ISO 8601 timestamps") from None
    to = body.get("to", "online_and_offline")
    return {"rows": store.push(view, frame, to=to)}


@router.post("/push")
async def push(request: Request) -> Response:
    """Write fresh rows of a view online (newer wins) and to its offline data."""
    store = _store(request)
    if _is_arrow(request):
        query = request.query_params
        unknown = sorted(set(query) - {"feature_view", "to"})
        if unknown:
            raise InvalidInput(f"unknown query parameter {unknown[0]!r}")
        if "feature_view" not in query:
            raise InvalidInput("'feature_view' (a query parameter) must name a feature view")
        table = _arrow_table(await request.body())
        to = query.get("to", "online_and_offline")
        rows = await run_in_threadpool(lambda: store.push(query["feature_view"], table, to=to))
        return _ok({"rows": rows})
    body = await _json(request)
    return _ok(await run_in_threadpool(_push, store, body))


def _is_arrow(request: Request) -> bool:
    content_type = request.headers.get("content-type", "").split(";")[0].strip()
    return content_type in (ARROW_STREAM, "application/octet-stream")


def _arrow_table(raw: bytes) -> pa.Table:
    try:
        return pa.ipc.open_stream(raw).read_all()
    except (pa.ArrowInvalid, OSError):
        raise InvalidInput("the request body is not an Arrow IPC stream") from None


def _materialize(store: FeatureStore, body: dict[str, Any]) -> dict[str, Any]:
    unknown = sorted(set(body) - {"start", "end", "feature_views", "incremental"})
    if unknown:
        raise InvalidInput(f"unknown field {unknown[0]!r}")
    views = body.get("feature_views")
    if views is not None and (
        not isinstance(views, list) or not all(isinstance(v, str) for v in views)
    ):
        raise InvalidInput("'feature_views' must be a list of view names")
    if "end" not in body:
        raise InvalidInput("'end' is required (an ISO 8601 date-time)")
    if body.get("incremental", False):
        results = store.materialize_incremental(body["end"], views)
    else:
        if "start" not in body:
            raise InvalidInput("'start' is required unless 'incremental' is true")
        results = store.materialize(body["start"], body["end"], views)
    return {"results": [r.to_dict() for r in results]}


@router.post("/materialize")
async def materialize(request: Request) -> Response:
    """Move the latest rows of [start, end] (or since the watermark) online."""
    store = _store(request)
    body = await _json(request)
    return _ok(await run_in_threadpool(_materialize, store, body))


@router.get("/views")
async def list_views(request: Request) -> Response:
    """Feature views and on-demand views with their versions and last materialization."""
    store = _store(request)
    return _ok(
        {
            "views": await run_in_threadpool(
                lambda: [describe_view(store, v) for v in _all_views(store)]
            )
        }
    )


def _all_views(store: FeatureStore) -> list[str]:
    catalog = store.catalog
    return sorted([*catalog.views, *catalog.odfvs])


@router.get("/views/{name}")
async def get_view(
    request: Request, name: str, versions: bool = True, online_rows: bool = True
) -> Response:
    """One view: its spec, versions, materialization state, statistics and online rows."""
    store = _store(request)
    return _ok(
        await run_in_threadpool(
            lambda: describe_view(store, name, versions=versions, online_rows=online_rows)
        )
    )


@router.get("/registry/{kind}/{name}")
async def get_versions(request: Request, kind: str, name: str) -> Response:
    """Every version of a registered object, oldest first, with its spec."""
    store = _store(request)
    if kind not in ("entity", "feature_view", "on_demand_feature_view", "feature_service"):
        raise InvalidInput(
            "kind must be entity, feature_view, on_demand_feature_view or feature_service"
        )
    return _ok({"versions": await run_in_threadpool(store.versions, kind, name)})


@router.get("/entities")
async def list_entities(request: Request) -> Response:
    """Registered entities."""
    store = _store(request)
    objs = await run_in_threadpool(store.registry.list_objects, "entity")
    return _ok({"entities": objs})


@router.get("/services")
async def list_services(request: Request) -> Response:
    """Registered feature services."""
    store = _store(request)
    objs = await run_in_threadpool(store.registry.list_objects, "feature_service")
    return _ok({"services": objs})


# -- definitions over HTTP -------------------------------------------------------------------
@router.get("/registry")
async def get_registry(request: Request, stamp: str | None = None) -> Response:
    """Every current definition as its spec, with a stamp that changes when any does
    (``?stamp=`` the one a client holds: ``{"unchanged": true}`` if it is still current)."""
    store = _store(request)
    current = await run_in_threadpool(store.registry.etag)  # fresh, not the cached catalog's
    if stamp == current:
        return _ok({"stamp": current, "unchanged": True})
    catalog = await run_in_threadpool(lambda: store.catalog)
    if catalog.etag != current:
        await run_in_threadpool(store.refresh_registry)
        catalog = store.catalog
        current = catalog.etag
    objects = [
        {"kind": kind, "name": name, "version": catalog.versions[(kind, name)], "spec": spec}
        for (kind, name), spec in catalog.specs.items()
    ]
    return _ok({"stamp": current, "objects": objects})


def _definitions(body: dict[str, Any]) -> tuple[list[Any], bool]:
    unknown = sorted(set(body) - {"objects", "partial"})
    if unknown:
        raise InvalidInput(f"unknown field {unknown[0]!r}")
    items = body.get("objects")
    if not isinstance(items, list):
        raise InvalidInput("'objects' must be a list of {'kind', 'spec'} objects")
    partial = body.get("partial", True)
    if not isinstance(partial, bool):
        raise InvalidInput("'partial' must be true or false")
    objects = []
    for i, item in enumerate(items):
        if not isinstance(item, dict) or not isinstance(item.get("spec"), dict):
            raise InvalidInput(f"'objects[{i}]' must be an object with a 'kind' and a 'spec'")
        try:
            objects.append(definition_from_spec(item.get("kind"), item["spec"]))
        except InvalidInput as exc:
            raise InvalidInput(f"'objects[{i}]': {exc}") from None
    return objects, partial


@router.post("/plan")
async def plan(request: Request) -> Response:
    """What applying the definitions would add, change and (``partial: false``) remove
    (admins only, as ``apply``: reading an on-demand view's spec unpickles its function)."""
    store = _store(request)
    objects, partial = _definitions(await _json(request))
    result = await run_in_threadpool(lambda: store.plan(objects, partial=partial))
    return _ok(result.to_dict())


@router.post("/apply")
async def apply(request: Request) -> Response:
    """Register definitions (admins only: a source names files the server reads, and an
    on-demand view's function runs on it)."""
    store = _store(request)
    objects, partial = _definitions(await _json(request))
    result = await run_in_threadpool(lambda: store.apply(objects, partial=partial))
    note_change(request, after=result.to_dict())
    return _ok(result.to_dict())


# -- training sets ---------------------------------------------------------------------------
def _query_options(request: Request) -> dict[str, Any]:
    query = request.query_params
    unknown = sorted(set(query) - {"features", "feature_service", "full_feature_names"})
    if unknown:
        raise InvalidInput(f"unknown query parameter {unknown[0]!r}")
    out: dict[str, Any] = {}
    if "features" in query:
        out["features"] = query.getlist("features")
    if "feature_service" in query:
        out["feature_service"] = query["feature_service"]
    full = query.get("full_feature_names", "false").lower()
    if full not in ("true", "false"):
        raise InvalidInput("'full_feature_names' must be true or false")
    out["full_feature_names"] = full == "true"
    return out


def _entity_frame(entities: Any) -> Any:
    import pandas as pd

    if not isinstance(entities, dict) or not entities:
        raise InvalidInput("'entities' must be an object of column names to lists of values")
    if not all(isinstance(v, list) for v in entities.values()):
        raise InvalidInput("'entities' columns must be lists")
    if len({len(v) for v in entities.values()}) != 1:
        raise InvalidInput("'entities' columns must all have the same length")
    if "event_timestamp" not in entities:
        raise InvalidInput("'entities.event_timestamp' is required (ISO 8601 date-times)")
    frame = pd.DataFrame(entities)
    try:
        frame["event_timestamp"] = pd.to_datetime(
            frame["event_timestamp"], utc=True, format="ISO8601"
        )
    except (ValueError, TypeError):
        raise InvalidInput("'entities.event_timestamp' must hold ISO 8601 date-times") from None
    return frame


def _historical(store: FeatureStore, body: dict[str, Any], entities: Any) -> Any:
    features, full = _feature_list(body)
    job = store.get_historical_features(entities, features, full_feature_names=full)
    return job.to_arrow(), {**job.metadata, "feature_service": job.feature_service}


@router.post("/historical")
async def historical(request: Request) -> Response:
    """A point-in-time correct training set. A JSON body (``entities`` with an
    ``event_timestamp`` column) gets JSON columns; an Arrow IPC stream body (options in the
    query) gets an Arrow IPC stream, the job's metadata in its schema."""
    store = _store(request)
    arrow_in = _is_arrow(request)
    if arrow_in:
        body = _query_options(request)
        entities = _arrow_table(await request.body())
    else:
        body = await _json(request)
        unknown = sorted(
            set(body) - {"features", "feature_service", "entities", "full_feature_names"}
        )
        if unknown:
            raise InvalidInput(f"unknown field {unknown[0]!r}")
        entities = _entity_frame(body.get("entities"))
    table, meta = await run_in_threadpool(_historical, store, body, entities)
    accept = request.headers.get("accept", "")
    if ARROW_STREAM in accept or (arrow_in and "application/json" not in accept):
        meta_bytes = orjson.dumps(meta)
        table = table.replace_schema_metadata(
            {**(table.schema.metadata or {}), b"loopml": meta_bytes}
        )
        sink = pa.BufferOutputStream()
        with pa.ipc.new_stream(sink, table.schema) as writer:
            writer.write_table(table)
        return Response(sink.getvalue().to_pybytes(), media_type=ARROW_STREAM)
    columns = {name: table.column(name).to_pylist() for name in table.column_names}
    payload = orjson.dumps(
        {"metadata": meta, "columns": columns}, option=orjson.OPT_NON_STR_KEYS, default=_jsonable
    )
    return Response(payload, media_type="application/json")


def _jsonable(value: Any) -> Any:
    if isinstance(value, bytes):
        return base64.b64encode(value).decode()
    if isinstance(value, dt.timedelta):
        return value.total_seconds()
    return str(value)


@router.post("/skew")
async def skew(request: Request) -> Response:
    """The training-serving skew check of a view: online values against the point-in-time
    offline values as of now, for a sample of its entities."""
    store = _store(request)
    body = await _json(request)
    unknown = sorted(set(body) - {"feature_view", "sample", "tolerance"})
    if unknown:
        raise InvalidInput(f"unknown field {unknown[0]!r}")
    view = body.get("feature_view")
    if not isinstance(view, str):
        raise InvalidInput("'feature_view' must name a feature view")
    sample = body.get("sample", 1000)
    tolerance = body.get("tolerance", 1e-6)
    if not isinstance(tolerance, (int, float)) or isinstance(tolerance, bool):
        raise InvalidInput("'tolerance' must be a number")
    report = await run_in_threadpool(
        lambda: skew_check(store, view, sample=sample, tolerance=float(tolerance))
    )
    return _ok(report.to_dict())


_ONLINE_PATH = "/api/v1/features/online"
_MAX_ONLINE_BODY = 16 << 20
_JSON_HEADER = (b"content-type", b"application/json")


class OnlineFastPath:
    """ASGI layer answering ``POST /api/v1/features/online`` without FastAPI's routing and
    exception middleware (the route is read per prediction, so its overhead matters); every
    other request goes to the app behind."""

    def __init__(self, app: Any) -> None:
        self.app = app

    def __getattr__(self, name: str) -> Any:  # state, routes, openapi ... of the app behind
        return getattr(self.app, name)

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http" or scope["path"] != _ONLINE_PATH or scope["method"] != "POST":
            await self.app(scope, receive, send)
            return
        state = self.app.state
        workspace = state.workspace
        for name, value in scope["headers"]:
            if name == b"x-loopml-workspace" and value:
                workspace = value.decode("latin-1")
        status = 200
        try:
            raw = await _read_body(receive)
            try:
                body = orjson.loads(raw)
            except orjson.JSONDecodeError:
                raise InvalidInput("the request body must be JSON") from None
            if not isinstance(body, dict):
                raise InvalidInput("the request body must be a JSON object")
            store = _store_for(state, workspace)
            if isinstance(store.online, SqliteOnlineStore):  # a local read takes microseconds
                data = _online(store, body)
            else:
                data = await run_in_threadpool(_online, store, body)
            payload = orjson.dumps(data, option=orjson.OPT_NON_STR_KEYS, default=_jsonable)
        except LoopmlError as exc:
            status = exc.http_status
            payload = orjson.dumps({"error_code": exc.code, "message": str(exc)})
            if status >= 500:
                _log.error("POST %s failed: %s", _ONLINE_PATH, exc)
        except Exception as exc:
            _log.exception("POST %s failed", _ONLINE_PATH)
            status = 500
            payload = orjson.dumps(
                {
                    "error_code": "INTERNAL_ERROR",
                    "message": f"internal error: {type(exc).__name__}",
                }
            )
        headers = [_JSON_HEADER, (b"content-length", str(len(payload)).encode())]
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": payload})


async def _read_body(receive: Any) -> bytes:
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise InvalidInput("the client went away before sending the body")
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > _MAX_ONLINE_BODY:
            raise InvalidInput(f"the body exceeds {_MAX_ONLINE_BODY} bytes")
        chunks.append(chunk)
        if not message.get("more_body", False):
            return chunks[0] if len(chunks) == 1 else b"".join(chunks)
