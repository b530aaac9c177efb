"""MLflow's tracking REST routes (experiments, runs, metrics, logged models), its artifact proxy
(``/api/2.0/mlflow-artifacts``) and ``server-info``, over loopml's own stores.

A run the ``mlflow`` client logs here is a loopml run: the same rows that loopml's SDK, CLI and
API read. Artifact locations under the server's root are shown to the client as
``mlflow-artifacts:/<relative path>``, so it moves files through this server and needs no
storage credentials.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.responses import StreamingResponse
from starlette.concurrency import iterate_in_threadpool, run_in_threadpool

from loopml.errors import InvalidInput, InvalidState, NotFound
from loopml.server._mlflow_common import (
    ArtifactUris,
    Fields,
    declare_fields,
    json_response,
    mlflow_search_text,
    request_fields,
)
from loopml.server._tracking_api import BINARY_RESPONSE, SyncChunks, prepend_chunk, scoped
from loopml.store import ArtifactStore, validate_artifact_path
from loopml.tracking import (
    Experiment,
    LoggedModel,
    LoggedModelStore,
    Metric,
    Param,
    Run,
    RunBatch,
    RunInfo,
    RunTag,
    SqlTrackingStore,
    encode_float,
)

router = APIRouter()
artifacts_router = APIRouter()


def _store(request: Request) -> SqlTrackingStore:
    return scoped(request.app.state.tracking_store, request)


def _uris(request: Request) -> ArtifactUris:
    return request.app.state.mlflow_artifacts  # type: ignore[no-any-return]


def _kv(items: dict[str, str]) -> list[dict[str, str]]:
    return [{"key": k, "value": v} for k, v in items.items()]


# -- records in MLflow's JSON shapes -------------------------------------------------------------
def _experiment(exp: Experiment, uris: ArtifactUris) -> dict[str, Any]:
    return {
        "experiment_id": exp.experiment_id,
        "name": exp.name,
        "artifact_location": uris.to_client(exp.artifact_location),
        "lifecycle_stage": exp.lifecycle_stage,
        "last_update_time": exp.last_update_time,
        "creation_time": exp.creation_time,
        "tags": _kv(exp.tags),
    }


def _run_info(info: RunInfo, uris: ArtifactUris) -> dict[str, Any]:
    out: dict[str, Any] = {
        "run_id": info.run_id,
        "run_uuid": info.run_id,
        "run_name": info.run_name,
        "experiment_id": info.experiment_id,
        "user_id": info.user_id,
        "status": info.status,
        "start_time": info.start_time,
        "artifact_uri": uris.to_client(info.artifact_uri),
        "lifecycle_stage": info.lifecycle_stage,
    }
    if info.end_time is not None:
        out["end_time"] = info.end_time
    return out


def _metric(m: Metric) -> dict[str, Any]:
    return {"key": m.key, "value": encode_float(m.value), "timestamp": m.timestamp, "step": m.step}


def _run(run: Run, points: list[Metric], uris: ArtifactUris) -> dict[str, Any]:
    return {
        "info": _run_info(run.info, uris),
        "data": {
            "metrics": [_metric(m) for m in points],
            "params": _kv(run.data.params),
            "tags": _kv(run.data.tags),
        },
        "inputs": {},
        "outputs": {},
    }


def _runs(store: SqlTrackingStore, found: list[Run], uris: ArtifactUris) -> list[dict[str, Any]]:
    points = store.latest_metric_points([r.info.run_id for r in found])
    return [_run(r, points[r.info.run_id], uris) for r in found]


def _logged_model(model: LoggedModel, uris: ArtifactUris) -> dict[str, Any]:
    info: dict[str, Any] = {
        "model_id": model.model_id,
        "experiment_id": model.experiment_id,
        "name": model.name,
        "creation_timestamp_ms": model.creation_timestamp_ms,
        "last_updated_timestamp_ms": model.last_updated_timestamp_ms,
        "artifact_uri": uris.to_client(model.artifact_uri),
        "status": model.status,
        "tags": _kv(model.tags),
    }
    if model.creator_id.isdigit():  # an int64 in MLflow's protocol
        info["creator_id"] = int(model.creator_id)
    for key in ("model_type", "source_run_id", "status_message"):
        value = getattr(model, key)
        if value:
            info[key] = value
    return {"info": info, "data": {"params": _kv(model.params), "metrics": []}}


_DEFAULT_MADE: set[tuple[str, str]] = set()


def _experiment_id(store: SqlTrackingStore, experiment_id: str) -> str:
    """MLflow's clients use experiment ``0`` (Default) without creating it; so does loopml,
    which creates it on first use."""
    key = (store.db.uri, store.workspace)
    if experiment_id == "0" and key not in _DEFAULT_MADE:
        made = store.get_default_experiment_id()
        if made == "0":
            _DEFAULT_MADE.add(key)  # checked once per database and workspace
        return made
    return experiment_id


def _run_id(fields: Fields) -> str:
    """``run_id``, or the deprecated ``run_uuid`` older clients send."""
    value = fields.str("run_id") or fields.str("run_uuid")
    if not value:
        raise InvalidInput("missing value for required parameter 'run_id'")
    return str(value)


# -- server info ---------------------------------------------------------------------------------
def server_info() -> dict[str, Any]:
    """What MLflow 3 clients ask the server before using it."""
    return {
        "store_type": "SqlStore",
        "workspaces_enabled": False,
        "trace_archival_enabled": False,
        "multipart_uploads_enabled": False,
        "multipart_downloads_enabled": False,
        "presigned_upload_run_id_supported": False,
        "presigned_upload_model_id_supported": False,
        "features_enabled": {"gateway": False},
    }


@artifacts_router.get("/api/3.0/mlflow/server-info", include_in_schema=False)
@artifacts_router.get("/ajax-api/3.0/mlflow/server-info", include_in_schema=False)
def get_server_info() -> dict[str, Any]:
    """Store type and optional features (none of the optional ones are offered)."""
    return server_info()


# -- experiments ---------------------------------------------------------------------------------
@router.post(
    "/experiments/create",
    openapi_extra=declare_fields(
        "POST", name="string!", artifact_location="string", tags="key-values"
    ),
)
async def create_experiment(request: Request) -> Response:
    """Create an experiment."""
    f = await request_fields(request)
    location = f.str("artifact_location")
    store = _store(request)
    eid = await run_in_threadpool(
        store.create_experiment,
        f.str("name", required=True),
        artifact_location=_uris(request).from_client(location) if location else None,
        tags=f.key_values("tags"),
    )
    return json_response({"experiment_id": eid})


@router.get("/experiments/get", openapi_extra=declare_fields("GET", experiment_id="string!"))
async def get_experiment(request: Request) -> Response:
    """One experiment by id."""
    f = await request_fields(request)
    store = _store(request)
    eid = await run_in_threadpool(_experiment_id, store, f.str("experiment_id", required=True))
    exp = await run_in_threadpool(store.get_experiment, eid)
    return json_response({"experiment": _experiment(exp, _uris(request))})


@router.get(
    "/experiments/get-by-name", openapi_extra=declare_fields("GET", experiment_name="string!")
)
async def get_experiment_by_name(request: Request) -> Response:
    """One experiment by name; a missing one is RESOURCE_DOES_NOT_EXIST, as in MLflow."""
    f = await request_fields(request)
    name = f.str("experiment_name", required=True)
    exp = await run_in_threadpool(_store(request).find_experiment_by_name, name)
    if exp is None:
        raise NotFound(f"Could not find experiment with name '{name}'")
    return json_response({"experiment": _experiment(exp, _uris(request))})


@router.post(
    "/experiments/search",
    openapi_extra=declare_fields(
        "POST",
        view_type="string",
        filter="string",
        max_results="integer",
        order_by="strings",
        page_token="string",
    ),
)
@router.get(
    "/experiments/search",
    openapi_extra=declare_fields(
        "GET",
        view_type="string",
        filter="string",
        max_results="integer",
        order_by="strings",
        page_token="string",
    ),
)
async def search_experiments(request: Request) -> Response:
    """A page of experiments."""
    f = await request_fields(request)
    page = await run_in_threadpool(
        _store(request).search_experiments,
        view_type=f.raw("view_type") or "ACTIVE_ONLY",
        max_results=f.int("max_results", default=1000),
        filter_string=f.str("filter"),
        order_by=f.str_list("order_by"),
        page_token=f.str("page_token"),
    )
    body: dict[str, Any] = {"experiments": [_experiment(e, _uris(request)) for e in page]}
    if page.token:
        body["next_page_token"] = page.token
    return json_response(body)


@router.post("/experiments/delete", openapi_extra=declare_fields("POST", experiment_id="string!"))
async def delete_experiment(request: Request) -> Response:
    """Move an experiment to the trash."""
    f = await request_fields(request)
    await run_in_threadpool(
        _store(request).delete_experiment, f.str("experiment_id", required=True)
    )
    return json_response({})


@router.post("/experiments/restore", openapi_extra=declare_fields("POST", experiment_id="string!"))
async def restore_experiment(request: Request) -> Response:
    """Restore a deleted experiment."""
    f = await request_fields(request)
    await run_in_threadpool(
        _store(request).restore_experiment, f.str("experiment_id", required=True)
    )
    return json_response({})


@router.post(
    "/experiments/update",
    openapi_extra=declare_fields("POST", experiment_id="string!", new_name="string"),
)
async def update_experiment(request: Request) -> Response:
    """Rename an experiment."""
    f = await request_fields(request)
    new_name = f.str("new_name")
    if new_name:
        await run_in_threadpool(
            _store(request).rename_experiment, f.str("experiment_id", required=True), new_name
        )
    return json_response({})


@router.post(
    "/experiments/set-experiment-tag",
    openapi_extra=declare_fields("POST", experiment_id="string!", key="string!", value="string"),
)
async def set_experiment_tag(request: Request) -> Response:
    """Set a tag on an experiment."""
    f = await request_fields(request)
    store, eid = _store(request), f.str("experiment_id", required=True)
    key, value = f.str("key", required=True), f.str("value", default="")
    await run_in_threadpool(
        lambda: store.set_experiment_tag(_experiment_id(store, eid), key, value)
    )
    return json_response({})


# -- runs -------------------------------------------------------------------------------------
@router.post(
    "/runs/create",
    openapi_extra=declare_fields(
        "POST",
        experiment_id="string",
        user_id="string",
        run_name="string",
        start_time="integer",
        tags="key-values",
    ),
)
async def create_run(request: Request) -> Response:
    """Start a run."""
    f = await request_fields(request)
    store = _store(request)
    tags = f.key_values("tags")
    eid, start_time = f.str("experiment_id") or "0", f.int("start_time")
    run_name, user_id = f.str("run_name") or tags.get("mlflow.runName"), f.str("user_id")

    def work() -> Run:  # one trip to the worker thread per request
        return store.create_run(
            _experiment_id(store, eid),
            start_time=start_time,
            tags=tags,
            run_name=run_name,
            parent_run_id=tags.get("mlflow.parentRunId"),
            user_id=user_id,
        )

    run = await run_in_threadpool(work)
    return json_response({"run": _run(run, [], _uris(request))})


@router.get("/runs/get", openapi_extra=declare_fields("GET", run_id="string!"))
async def get_run(request: Request) -> Response:
    """One run with its latest metrics, params and tags."""
    f = await request_fields(request)
    store, run_id, uris = _store(request), _run_id(f), _uris(request)
    found = await run_in_threadpool(lambda: _runs(store, [store.get_run(run_id)], uris))
    return json_response({"run": found[0]})


@router.post(
    "/runs/update",
    openapi_extra=declare_fields(
        "POST", run_id="string!", status="string", end_time="integer", run_name="string"
    ),
)
async def update_run(request: Request) -> Response:
    """Change a run's status, end time or name."""
    f = await request_fields(request)
    info = await run_in_threadpool(
        _store(request).update_run,
        _run_id(f),
        status=f.str("status"),
        end_time=f.int("end_time"),
        run_name=f.str("run_name"),
    )
    return json_response({"run_info": _run_info(info, _uris(request))})


@router.post("/runs/delete", openapi_extra=declare_fields("POST", run_id="string!"))
async def delete_run(request: Request) -> Response:
    """Move a run to the trash."""
    f = await request_fields(request)
    await run_in_threadpool(_store(request).delete_run, _run_id(f))
    return json_response({})


@router.post("/runs/restore", openapi_extra=declare_fields("POST", run_id="string!"))
async def restore_run(request: Request) -> Response:
    """Restore a deleted run."""
    f = await request_fields(request)
    await run_in_threadpool(_store(request).restore_run, _run_id(f))
    return json_response({})


def _metric_from(item: Any, where: str) -> Metric:
    if not isinstance(item, dict):
        raise InvalidInput(f"invalid entry in '{where}': expected an object")
    f = Fields(item, from_query=False)
    return Metric(
        f.str("key", required=True),
        f.float("value", required=True),
        f.int("timestamp", required=True),
        f.int("step", default=0),
    )


@router.post(
    "/runs/log-metric",
    openapi_extra=declare_fields(
        "POST",
        run_id="string!",
        key="string!",
        value="number!",
        timestamp="integer!",
        step="integer",
    ),
)
async def log_metric(request: Request) -> Response:
    """Log one metric point."""
    f = await request_fields(request)
    metric = _metric_from(f.data, "body")
    await run_in_threadpool(_store(request).log_batch, _run_id(f), metrics=[metric])
    return json_response({})


@router.post(
    "/runs/log-parameter",
    openapi_extra=declare_fields("POST", run_id="string!", key="string!", value="string"),
)
async def log_param(request: Request) -> Response:
    """Log one param."""
    f = await request_fields(request)
    param = Param(f.str("key", required=True), f.str("value", default=""))
    await run_in_threadpool(_store(request).log_batch, _run_id(f), params=[param])
    return json_response({})


@router.post(
    "/runs/set-tag",
    openapi_extra=declare_fields("POST", run_id="string!", key="string!", value="string"),
)
async def set_tag(request: Request) -> Response:
    """Set a tag on a run."""
    f = await request_fields(request)
    tag = RunTag(f.str("key", required=True), f.str("value", default=""))
    await run_in_threadpool(_store(request).log_batch, _run_id(f), tags=[tag])
    return json_response({})


@router.post(
    "/runs/delete-tag", openapi_extra=declare_fields("POST", run_id="string!", key="string!")
)
async def delete_tag(request: Request) -> Response:
    """Remove a tag from a run."""
    f = await request_fields(request)
    await run_in_threadpool(_store(request).delete_tag, _run_id(f), f.str("key", required=True))
    return json_response({})


@router.post(
    "/runs/log-batch",
    openapi_extra=declare_fields(
        "POST", run_id="string!", metrics="metrics", params="key-values", tags="key-values"
    ),
)
async def log_batch(request: Request) -> Response:
    """Log metrics, params and tags to one run in one transaction."""
    f = await request_fields(request)
    raw_metrics = f.raw("metrics") or []
    if not isinstance(raw_metrics, list):
        raise InvalidInput("invalid value for parameter 'metrics': expected a list")
    metrics = [_metric_from(m, "metrics") for m in raw_metrics]
    params = [Param(k, v) for k, v in f.key_values("params").items()]
    tags = [RunTag(k, v) for k, v in f.key_values("tags").items()]
    batch = RunBatch(_run_id(f), metrics, params, tags)
    await run_in_threadpool(_store(request).write_batches, [batch])
    return json_response({})


@router.post("/runs/log-model", openapi_extra=declare_fields("POST", run_id="string!"))
@router.post("/runs/log-inputs", openapi_extra=declare_fields("POST", run_id="string!"))
@router.post("/runs/outputs", openapi_extra=declare_fields("POST", run_id="string!"))
async def log_model_references(request: Request) -> Response:
    """Accepted for the client's sake: loopml links runs and models through the registry and
    the logged model's ``source_run_id``; the run must exist."""
    f = await request_fields(request)
    await run_in_threadpool(_store(request).get_run, _run_id(f))
    return json_response({})


@router.post(
    "/runs/search",
    openapi_extra=declare_fields(
        "POST",
        experiment_ids="strings",
        filter="string",
        run_view_type="string",
        max_results="integer",
        order_by="strings",
        page_token="string",
    ),
)
async def search_runs(request: Request) -> Response:
    """Runs matching MLflow's filter grammar, one page at a time."""
    f = await request_fields(request)
    store, uris = _store(request), _uris(request)
    ids, filter_string = f.str_list("experiment_ids"), mlflow_search_text(f.str("filter"))
    view_type, max_results = (
        f.raw("run_view_type") or "ACTIVE_ONLY",
        f.int("max_results", default=1000),
    )
    order_by = [mlflow_search_text(o) or "" for o in f.str_list("order_by")]
    page_token = f.str("page_token")

    def work() -> dict[str, Any]:  # one trip to the worker thread per request
        page = store.search_runs(
            [_experiment_id(store, e) for e in ids],
            filter_string=filter_string,
            view_type=view_type,
            max_results=max_results,
            order_by=order_by,
            page_token=page_token,
        )
        body: dict[str, Any] = {"runs": _runs(store, list(page), uris)}
        if page.token:
            body["next_page_token"] = page.token
        return body

    return json_response(await run_in_threadpool(work))


@router.get(
    "/metrics/get-history",
    openapi_extra=declare_fields("GET", run_id="string!", metric_key="string!"),
)
async def get_metric_history(request: Request) -> Response:
    """Every point of one metric (one page: loopml sends the whole history)."""
    f = await request_fields(request)
    key, run_id = f.str("metric_key", required=True), _run_id(f)
    values, timestamps, steps = await run_in_threadpool(
        _store(request).get_metric_history_columns, run_id, key
    )
    metrics = [
        {"key": key, "value": encode_float(v), "timestamp": t, "step": s, "run_id": run_id}
        for v, t, s in zip(values, timestamps, steps, strict=True)
    ]
    return json_response({"metrics": metrics})


@router.get(
    "/artifacts/list", openapi_extra=declare_fields("GET", run_id="string!", path="string")
)
async def list_run_artifacts(request: Request) -> Response:
    """A folder of a run's artifacts (the pre-proxy listing route)."""
    f = await request_fields(request)
    store = _store(request)
    run_id = _run_id(f)
    run = await run_in_threadpool(store.get_run, run_id)
    files = await run_in_threadpool(store.list_artifacts, run_id, f.str("path"))
    return json_response(
        {
            "root_uri": _uris(request).to_client(run.info.artifact_uri),
            "files": [_file(i.path, i.is_dir, i.file_size) for i in files],
        }
    )


def _file(path: str, is_dir: bool, size: int | None) -> dict[str, Any]:
    out: dict[str, Any] = {"path": path, "is_dir": is_dir}
    if not is_dir and size is not None:
        out["file_size"] = size
    return out


# -- logged models (MLflow 3) --------------------------------------------------------------------
def _models(request: Request) -> LoggedModelStore:
    return LoggedModelStore(_store(request))


@router.post(
    "/logged-models",
    openapi_extra=declare_fields(
        "POST",
        experiment_id="string!",
        name="string",
        model_type="string",
        source_run_id="string",
        params="key-values",
        tags="key-values",
    ),
)
async def create_logged_model(request: Request) -> Response:
    """Create a pending logged model; the client then uploads its files and finalizes it."""
    f = await request_fields(request)
    store = _store(request)
    eid = await run_in_threadpool(_experiment_id, store, f.str("experiment_id", required=True))
    model = await run_in_threadpool(
        _models(request).create,
        eid,
        name=f.str("name"),
        model_type=f.str("model_type"),
        source_run_id=f.str("source_run_id"),
        params=f.key_values("params"),
        tags=f.key_values("tags"),
    )
    return json_response({"model": _logged_model(model, _uris(request))})


@router.post(
    "/logged-models/search",
    openapi_extra=declare_fields(
        "POST",
        experiment_ids="strings",
        filter="string",
        max_results="integer",
        page_token="string",
    ),
)
async def search_logged_models(request: Request) -> Response:
    """Logged models of experiments, newest first; ``filter`` takes ``=``/``!=`` clauses on
    ``name``, ``model_id``, ``source_run_id``, ``status`` and ``model_type`` joined by AND
    (what the client sends to resolve ``runs:/<run>/<name>``); datasets are not supported."""
    f = await request_fields(request)
    store = _store(request)
    ids, filter_string = f.str_list("experiment_ids"), f.str("filter")
    max_results, token = f.int("max_results", default=100), f.str("page_token")
    models = _models(request)
    page = await run_in_threadpool(
        lambda: models.search(
            [_experiment_id(store, e) for e in ids],
            filter_string=filter_string,
            max_results=max_results,
            page_token=token,
        )
    )
    body: dict[str, Any] = {"models": [_logged_model(m, _uris(request)) for m in page]}
    if page.token:
        body["next_page_token"] = page.token
    return json_response(body)


@router.get("/logged-models/{model_id}")
async def get_logged_model(model_id: str, request: Request) -> Response:
    """One logged model."""
    model = await run_in_threadpool(_models(request).get, model_id)
    return json_response({"model": _logged_model(model, _uris(request))})


@router.patch("/logged-models/{model_id}", openapi_extra=declare_fields("PATCH", status="string!"))
async def finalize_logged_model(model_id: str, request: Request) -> Response:
    """Mark a logged model READY (its files are uploaded) or UPLOAD_FAILED."""
    f = await request_fields(request)
    model = await run_in_threadpool(
        _models(request).finalize, model_id, f.str("status", required=True)
    )
    return json_response({"model": _logged_model(model, _uris(request))})


@router.delete("/logged-models/{model_id}")
async def delete_logged_model(model_id: str, request: Request) -> Response:
    """Forget a logged model."""
    await run_in_threadpool(_models(request).delete, model_id)
    return json_response({})


@router.patch(
    "/logged-models/{model_id}/tags", openapi_extra=declare_fields("PATCH", tags="key-values")
)
async def set_logged_model_tags(model_id: str, request: Request) -> Response:
    """Set tags on a logged model."""
    f = await request_fields(request)
    await run_in_threadpool(_models(request).set_tags, model_id, f.key_values("tags"))
    return json_response({})


@router.delete("/logged-models/{model_id}/tags/{key:path}")
async def delete_logged_model_tag(model_id: str, key: str, request: Request) -> Response:
    """Remove a tag from a logged model."""
    await run_in_threadpool(_models(request).delete_tag, model_id, key)
    return json_response({})


@router.post(
    "/logged-models/{model_id}/params", openapi_extra=declare_fields("POST", params="key-values")
)
async def log_logged_model_params(model_id: str, request: Request) -> Response:
    """Add params to a logged model."""
    f = await request_fields(request)
    await run_in_threadpool(_models(request).log_params, model_id, f.key_values("params"))
    return json_response({})


# -- the artifact proxy -----------------------------------------------------------------------
_PROXY = "/api/2.0/mlflow-artifacts/artifacts"


def _proxy_store(request: Request) -> ArtifactStore:
    return ArtifactStore(_uris(request).root)


@artifacts_router.get(_PROXY)
async def proxy_list(request: Request, path: str | None = None) -> Response:
    """The immediate children of a folder under the artifact root (base names, as MLflow)."""
    clean = validate_artifact_path(path) if path else ""
    store = _proxy_store(request)
    try:
        found = await run_in_threadpool(store.list, clean)
    except NotFound:
        found = []
    files = [_file(i.path.rsplit("/", 1)[-1], i.is_dir, i.file_size) for i in found]
    return json_response({"files": files})


def _check_writable(request: Request, path: str) -> None:
    """The proxy writes only where the client may: not into the registry's own files, and into
    a logged model's folder only while that model is pending (finalized files are fixed)."""
    parts = path.split("/")
    if parts[0] == "registry":
        raise InvalidState("the registry's files are written through the registry, not the proxy")
    if len(parts) >= 3 and parts[1] == "models" and parts[2].startswith("m-"):
        model = _models(request).get(parts[2])
        if model.status != "LOGGED_MODEL_PENDING":
            raise InvalidState(
                f"logged model {model.model_id} is {model.status}; its files can no longer change"
            )


@artifacts_router.put(_PROXY + "/{path:path}")
async def proxy_upload(path: str, request: Request) -> Response:
    """Store the request body (streamed) at ``path`` under the artifact root."""
    clean = validate_artifact_path(path, allow_empty=False)
    await run_in_threadpool(_check_writable, request, clean)
    chunks = SyncChunks(request.stream())
    await run_in_threadpool(_proxy_store(request).put_stream, chunks, clean)
    return json_response({})


@artifacts_router.get(
    _PROXY + "/{path:path}", response_class=StreamingResponse, responses=BINARY_RESPONSE
)
async def proxy_download(path: str, request: Request) -> StreamingResponse:
    """Stream one file from under the artifact root."""
    clean = validate_artifact_path(path, allow_empty=False)
    chunks: Iterator[bytes] = await run_in_threadpool(_proxy_store(request).iter_chunks, clean)
    first = await run_in_threadpool(next, chunks, b"")
    return StreamingResponse(
        prepend_chunk(first, iterate_in_threadpool(chunks)),
        media_type="application/octet-stream",
    )


@artifacts_router.delete(_PROXY + "/{path:path}")
async def proxy_delete(path: str, request: Request) -> Response:
    """Delete a file or folder under the artifact root."""
    clean = validate_artifact_path(path, allow_empty=False)
    await run_in_threadpool(_check_writable, request, clean)
    await run_in_threadpool(_proxy_store(request).delete, clean)
    return json_response({})


@artifacts_router.post("/api/2.0/mlflow-artifacts/mpu/{action}", include_in_schema=False)
async def proxy_multipart(action: str) -> Response:
    """Multipart uploads are not offered (``server-info`` says so, and the client then uses
    single streamed PUTs, which loopml writes without holding the file in memory)."""
    del action
    return Response(
        content=b'{"error_code": "NOT_IMPLEMENTED", "message": "multipart upload is not '
        b'supported by loopml server; files are streamed with PUT"}',
        status_code=501,
        media_type="application/json",
    )
