"""``/api/v1/features``: online values (shaped like Feast's ``/get-online-features``), push,
materialization, and the catalog (views, entities, services, their versions and statistics)."""

from __future__ import annotations

import threading
from typing import Any

import orjson
from fastapi import APIRouter, Request, Response
from fastapi.concurrency import run_in_threadpool

from loopml.errors import InvalidInput
from loopml.features import FeatureStore, SqliteOnlineStore, describe_view

router = APIRouter(prefix="/api/v1/features", tags=["features"])

_WORKSPACE_HEADER = "x-loopml-workspace"
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
    workspace = request.headers.get(_WORKSPACE_HEADER) or state.workspace
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
    return Response(orjson.dumps(data), media_type="application/json")


def _online(store: FeatureStore, body: dict[str, Any]) -> dict[str, Any]:
    unknown = sorted(set(body) - {"features", "feature_service", "entities", "full_feature_names"})
    if unknown:
        raise InvalidInput(f"unknown field {unknown[0]!r}")
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
    entities = body.get("entities")
    if not isinstance(entities, dict) or not entities:
        raise InvalidInput("'entities' must be an object of key names to lists of values")
    full = body.get("full_feature_names", False)
    if not isinstance(full, bool):
        raise InvalidInput("'full_feature_names' must be true or false")
    response = store.get_online_features(features, entities, full_feature_names=full)
    return response.to_feast_json()


@router.post("/online", openapi_extra={"requestBody": _ONLINE_BODY})
async def get_online_features(request: Request) -> Response:
    """Latest feature values for entity keys; the body and response follow Feast's server."""
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
    body = await _json(request)
    return _ok(await run_in_threadpool(_push, store, body))


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
async def get_view(request: Request, name: str) -> Response:
    """One view: its spec, versions, materialization state, statistics and online rows."""
    store = _store(request)
    return _ok(
        await run_in_threadpool(
            lambda: describe_view(store, name, versions=True, online_rows=True)
        )
    )


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
