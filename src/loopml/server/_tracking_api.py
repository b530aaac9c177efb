"""``/api/v1`` routes for experiments, runs and artifacts: parse, call the store, format."""

from __future__ import annotations

import math
import re
from collections.abc import AsyncIterator, Callable, Coroutine
from typing import Annotated, Any, TypeVar

import orjson
from fastapi import APIRouter, Depends, Query, Request, Response
from fastapi.responses import StreamingResponse
from fastapi.routing import APIRoute
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import iterate_in_threadpool, run_in_threadpool

from loopml.errors import InvalidInput
from loopml.tracking import (
    Metric,
    Param,
    RunBatch,
    RunTag,
    SqlTrackingStore,
    decode_float,
    encode_float,
)

# A lone surrogate can only arrive as a \uD800-\uDFFF escape: raw surrogate bytes are not UTF-8.
_SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89a-fA-F]")
_SURROGATE = re.compile("[\ud800-\udfff]")


def lone_surrogate_at(value: Any) -> str | None:
    """Where in a decoded JSON value a string (or key) holds a lone surrogate, or ``None``.

    Python's ``json`` decodes ``"\\ud800"`` to a string no database driver, ``orjson`` or UTF-8
    response can encode; iterative, so a deeply nested body cannot exhaust the stack."""
    stack: list[tuple[str, Any]] = [("", value)]
    while stack:
        where, item = stack.pop()
        if isinstance(item, str):
            if _SURROGATE.search(item):
                return where or "body"
        elif isinstance(item, dict):
            for key, child in item.items():
                if _SURROGATE.search(key):
                    return f"{where or 'body'} (key {key!r})"
                stack.append((f"{where}.{key}" if where else key, child))
        elif isinstance(item, list):
            stack.extend((f"{where}[{i}]", child) for i, child in enumerate(item))
    return None


class JsonRoute(APIRoute):
    """A route whose JSON body may not hold lone surrogates (``"\\ud800"``): they are valid JSON
    but not text, and would fail deep in a driver or encoder as a 500. Refused with 400 naming
    the field, before the body is validated."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()
        if self.body_field is None:
            return handler  # FastAPI decodes no JSON for this route

        async def checked(request: Request) -> Response:
            mime = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
            is_json = not mime or mime == "application/json" or mime.endswith("+json")
            if is_json and _SURROGATE_ESCAPE.search(await request.body()):
                try:
                    data = await request.json()  # cached: FastAPI's own decoding reuses it
                except (ValueError, RecursionError):
                    data = None  # not JSON (or too deep): FastAPI answers that itself
                where = lone_surrogate_at(data)
                if where is not None:
                    raise InvalidInput(
                        f"{where}: text holds a lone UTF-16 surrogate (\\ud800-\\udfff), "
                        "which is not a character; send valid Unicode text"
                    )
            return await handler(request)

        return checked


router = APIRouter(prefix="/api/v1", route_class=JsonRoute)

_BINARY = {"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}}
BINARY_RESPONSE: dict[int | str, dict[str, Any]] = {
    200: {"description": "The file's bytes.", "content": _BINARY}
}
"""The OpenAPI declaration of a route that answers raw bytes (with ``response_class``
``Response`` or ``StreamingResponse``, so FastAPI does not also declare JSON)."""


_WORKSPACE_HEADER = "x-loopml-workspace"


S = TypeVar("S", bound=Any)


def scoped(base: S, request: Request) -> S:
    """A store (tracking, registry ...) scoped to the request's workspace header."""
    workspace = request.headers.get(_WORKSPACE_HEADER) or base.workspace
    return base if workspace == base.workspace else base.for_workspace(workspace)


async def store_for(request: Request) -> SqlTrackingStore:
    """The tracking store scoped to the request's workspace."""
    return scoped(request.app.state.tracking_store, request)


Store = Annotated[SqlTrackingStore, Depends(store_for)]


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class CreateExperiment(_Body):
    name: str
    artifact_location: str | None = None
    tags: dict[str, str] = Field(default_factory=dict)


class RenameExperiment(_Body):
    name: str


class TagBody(_Body):
    key: str
    value: str


class CreateRun(_Body):
    experiment_id: str
    start_time: int | None = None
    tags: dict[str, str] = Field(default_factory=dict)
    run_name: str | None = None
    parent_run_id: str | None = None
    user_id: str | None = None


class UpdateRun(_Body):
    status: str | None = None
    end_time: int | None = None
    run_name: str | None = None


class KeyValue(_Body):
    key: str
    value: str


class MetricColumns(_Body):
    """Metric points column-wise: the i-th key, value, timestamp and step make one point."""

    keys: list[str] = Field(default_factory=list)
    values: list[float | str] = Field(default_factory=list)
    timestamps: list[int] = Field(default_factory=list)
    steps: list[int] = Field(default_factory=list)


class BatchBody(_Body):
    run_id: str
    metrics: MetricColumns = Field(default_factory=MetricColumns)
    params: list[KeyValue] = Field(default_factory=list)
    tags: list[KeyValue] = Field(default_factory=list)
    status: str | None = None
    end_time: int | None = None


class MetricHistory(BaseModel):
    """Every point of one metric, column-wise."""

    key: str
    values: list[float | str]
    timestamps: list[int]
    steps: list[int]


class WriteBatches(_Body):
    batches: list[BatchBody]


class SearchRuns(_Body):
    experiment_ids: list[str]
    filter: str = ""
    view_type: str = "ACTIVE_ONLY"
    max_results: int = 1000
    order_by: list[str] = Field(default_factory=list)
    page_token: str | None = None
    columns: dict[str, list[str]] | None = None


def _json(body: dict[str, Any]) -> Response:
    """A JSON response straight from orjson: the hot routes skip response-model validation."""
    return Response(orjson.dumps(body), media_type="application/json")


# -- experiments -------------------------------------------------------------------------------
@router.post("/experiments")
def create_experiment(body: CreateExperiment, store: Store) -> dict[str, Any]:
    """Create an experiment."""
    eid = store.create_experiment(
        body.name, artifact_location=body.artifact_location, tags=body.tags
    )
    return {"experiment_id": eid}


@router.get("/experiments")
def search_experiments(
    store: Store,
    view_type: str = "ACTIVE_ONLY",
    max_results: int = 1000,
    filter: str | None = None,
    order_by: Annotated[list[str] | None, Query()] = None,
    page_token: str | None = None,
    stats: bool = False,
) -> dict[str, Any]:
    """Search experiments (MLflow's experiment filter grammar), one page at a time; with
    ``stats``, each carries its active run count and last run's start time."""
    page = store.search_experiments(
        view_type=view_type,
        max_results=max_results,
        filter_string=filter,
        order_by=order_by,
        page_token=page_token,
    )
    found = [e.to_dict() for e in page]
    if stats:
        counts = store.experiment_stats([e["experiment_id"] for e in found])
        for e in found:
            e.update(counts[e["experiment_id"]])
    return {"experiments": found, "next_page_token": page.token}


@router.get("/experiments/{experiment_id}/keys")
def run_keys(experiment_id: str, store: Store) -> dict[str, Any]:
    """The metric, param and tag keys the experiment's runs use (columns, autocompletion)."""
    store.get_experiment(experiment_id)  # 404 for an unknown one
    return store.run_keys([experiment_id])  # type: ignore[no-any-return]


@router.get("/experiments/get-by-name")
def get_experiment_by_name(store: Store, name: str = Query(...)) -> dict[str, Any]:
    """The experiment with a name, or ``{"experiment": null}``."""
    found = store.find_experiment_by_name(name)
    return {"experiment": None if found is None else found.to_dict()}


@router.post("/experiments/default")
def default_experiment(store: Store) -> dict[str, Any]:
    """The workspace's Default experiment, created on first use."""
    return {"experiment_id": store.get_default_experiment_id()}


@router.get("/experiments/{experiment_id}")
def get_experiment(experiment_id: str, store: Store) -> dict[str, Any]:
    """One experiment."""
    return {"experiment": store.get_experiment(experiment_id).to_dict()}


@router.patch("/experiments/{experiment_id}")
def rename_experiment(experiment_id: str, body: RenameExperiment, store: Store) -> dict[str, Any]:
    """Rename an experiment."""
    store.rename_experiment(experiment_id, body.name)
    return {}


@router.delete("/experiments/{experiment_id}")
def delete_experiment(experiment_id: str, store: Store) -> dict[str, Any]:
    """Move an experiment to the trash."""
    store.delete_experiment(experiment_id)
    return {}


@router.post("/experiments/{experiment_id}/restore")
def restore_experiment(experiment_id: str, store: Store) -> dict[str, Any]:
    """Restore a deleted experiment."""
    store.restore_experiment(experiment_id)
    return {}


@router.post("/experiments/{experiment_id}/purge")
def purge_experiment(experiment_id: str, store: Store) -> dict[str, Any]:
    """Erase a deleted experiment for good."""
    store.purge_experiment(experiment_id)
    return {}


@router.post("/experiments/{experiment_id}/tags")
def set_experiment_tag(experiment_id: str, body: TagBody, store: Store) -> dict[str, Any]:
    """Set a tag on an experiment."""
    store.set_experiment_tag(experiment_id, body.key, body.value)
    return {}


# -- runs --------------------------------------------------------------------------------------
@router.post("/runs")
def create_run(body: CreateRun, store: Store) -> Response:
    """Start a run."""
    run = store.create_run(
        body.experiment_id,
        start_time=body.start_time,
        tags=body.tags,
        run_name=body.run_name,
        parent_run_id=body.parent_run_id,
        user_id=body.user_id,
    )
    return _json({"run": run.to_dict()})


@router.post("/runs/batches")
def write_batches(body: WriteBatches, store: Store) -> Response:
    """Apply metric, param, tag and status writes for several runs in one transaction."""
    batches = []
    for i, b in enumerate(body.batches):
        m = b.metrics
        if not len(m.keys) == len(m.values) == len(m.timestamps) == len(m.steps):
            raise InvalidInput(
                f"batches.{i}.metrics: keys, values, timestamps and steps must have equal lengths"
            )
        try:
            values = [v if type(v) is float else decode_float(v) for v in m.values]
        except ValueError as exc:
            raise InvalidInput(f"batches.{i}.metrics.values: a value is not a number") from exc
        batches.append(
            RunBatch(
                b.run_id,
                list(map(Metric, m.keys, values, m.timestamps, m.steps)),
                [Param(p.key, p.value) for p in b.params],
                [RunTag(t.key, t.value) for t in b.tags],
                b.status,
                b.end_time,
            )
        )
    store.write_batches(batches)
    return _json({})


@router.post("/runs/search")
def search_runs(body: SearchRuns, store: Store) -> Response:
    """Runs matching a filter string, one page at a time."""
    page = store.search_runs(
        body.experiment_ids,
        filter_string=body.filter,
        view_type=body.view_type,
        max_results=body.max_results,
        order_by=body.order_by,
        page_token=body.page_token,
        columns=body.columns,
    )
    out = {"runs": [r.to_dict() for r in page], "next_page_token": page.token}
    return Response(orjson.dumps(out), media_type="application/json")


@router.get("/runs/{run_id}")
def get_run(run_id: str, store: Store) -> dict[str, Any]:
    """One run with its latest metrics, params and tags."""
    return {"run": store.get_run(run_id).to_dict()}


@router.patch("/runs/{run_id}")
def update_run(run_id: str, body: UpdateRun, store: Store) -> dict[str, Any]:
    """Change a run's status, end time or name."""
    info = store.update_run(
        run_id, status=body.status, end_time=body.end_time, run_name=body.run_name
    )
    return {"run_info": info.to_dict()}


@router.delete("/runs/{run_id}")
def delete_run(run_id: str, store: Store) -> dict[str, Any]:
    """Move a run to the trash."""
    store.delete_run(run_id)
    return {}


@router.post("/runs/{run_id}/restore")
def restore_run(run_id: str, store: Store) -> dict[str, Any]:
    """Restore a deleted run."""
    store.restore_run(run_id)
    return {}


@router.delete("/runs/{run_id}/tags")
def delete_tag(run_id: str, store: Store, key: str = Query(...)) -> dict[str, Any]:
    """Remove a tag from a run."""
    store.delete_tag(run_id, key)
    return {}


@router.get("/runs/{run_id}/metric-history", response_model=MetricHistory)
def metric_history(run_id: str, store: Store, key: str = Query(...)) -> Response:
    """Every point of one metric, column-wise: values, timestamps, steps."""
    values, timestamps, steps = store.get_metric_history_columns(run_id, key)
    if not all(map(math.isfinite, values)):
        values = [encode_float(v) for v in values]  # type: ignore[misc]
    body = {"key": key, "values": values, "timestamps": timestamps, "steps": steps}
    return Response(orjson.dumps(body), media_type="application/json")


# -- artifacts ---------------------------------------------------------------------------------
@router.get("/runs/{run_id}/artifacts")
def list_artifacts(run_id: str, store: Store, path: str | None = None) -> dict[str, Any]:
    """The immediate children of a folder of a run's artifacts."""
    return {"files": [f.to_dict() for f in store.list_artifacts(run_id, path)]}


@router.put("/runs/{run_id}/artifacts/{path:path}", status_code=204)
async def upload_artifact(run_id: str, path: str, request: Request, store: Store) -> Response:
    """Store the request body (streamed, never held whole in memory) as an artifact."""
    chunks = SyncChunks(request.stream())
    await run_in_threadpool(store.put_artifact_stream, run_id, chunks, path)
    return Response(status_code=204)


@router.get(
    "/runs/{run_id}/artifacts/{path:path}",
    response_class=StreamingResponse,
    responses=BINARY_RESPONSE,
)
async def download_artifact(run_id: str, path: str, store: Store) -> StreamingResponse:
    """Stream one artifact file."""
    chunks = await run_in_threadpool(store.iter_artifact, run_id, path)
    first = await run_in_threadpool(next, chunks, b"")  # raise ArtifactNotFound before headers
    return StreamingResponse(
        prepend_chunk(first, iterate_in_threadpool(chunks)), media_type="application/octet-stream"
    )


@router.delete("/runs/{run_id}/artifacts/{path:path}")
def delete_artifact(run_id: str, path: str, store: Store) -> dict[str, Any]:
    """Delete an artifact file or folder."""
    store.delete_artifact(run_id, path)
    return {}


async def prepend_chunk(first: bytes, rest: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
    if first:
        yield first
    async for chunk in rest:
        yield chunk


class SyncChunks:
    """Lets a worker thread pull an async request body chunk by chunk."""

    def __init__(self, stream: AsyncIterator[bytes]) -> None:
        import anyio.from_thread

        self._stream = stream
        self._from_thread = anyio.from_thread

    def __iter__(self) -> SyncChunks:
        return self

    def __next__(self) -> bytes:
        try:
            return self._from_thread.run(self._stream.__anext__)  # type: ignore[arg-type]
        except StopAsyncIteration:
            raise StopIteration from None
