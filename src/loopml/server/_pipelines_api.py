"""``/api/v1/pipelines`` and ``/api/v1/pipeline-runs``: pipelines, their runs and steps (status,
cache hits, inputs, outputs, logs), queueing a run, and cron schedules.

The server never runs pipeline code: a run asked for over HTTP is queued, and ``loopml
scheduler`` (next to the code and the database) starts it.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, Query, Request
from fastapi.concurrency import run_in_threadpool

from loopml.errors import InvalidInput, NotFound
from loopml.pipelines import SqlPipelineStore, add_schedule, enqueue_run
from loopml.server._tracking_api import JsonRoute, scoped

router = APIRouter(prefix="/api/v1", tags=["pipelines"], route_class=JsonRoute)


async def pipelines_for(request: Request) -> SqlPipelineStore:
    """The pipeline store scoped to the request's workspace."""
    return scoped(request.app.state.pipeline_store, request)


Store = Annotated[SqlPipelineStore, Depends(pipelines_for)]
Limit = Annotated[int, Query(ge=1, le=1000)]


def _object(body: Any, allowed: set[str]) -> dict[str, Any]:
    if body is None:
        return {}
    if not isinstance(body, dict):
        raise InvalidInput("the body must be a JSON object")
    unknown = sorted(set(body) - allowed)
    if unknown:
        raise InvalidInput(f"unknown field {unknown[0]!r}")
    return body


@router.get("/pipelines")
async def list_pipelines(store: Store) -> dict[str, Any]:
    """Every pipeline of the workspace with its DAG and last run."""
    found = await run_in_threadpool(store.list_pipelines)
    return {"pipelines": [p.to_dict() for p in found]}


@router.get("/pipelines/{name}")
async def get_pipeline(name: str, store: Store) -> dict[str, Any]:
    """One pipeline with its schedules."""
    info = await run_in_threadpool(store.get_pipeline, name)
    schedules = await run_in_threadpool(store.list_schedules, name)
    return {"pipeline": info.to_dict(), "schedules": [s.to_dict() for s in schedules]}


@router.get("/pipelines/{name}/runs")
async def pipeline_runs(
    name: str, store: Store, status: str | None = None, limit: Limit = 50
) -> dict[str, Any]:
    """Runs of one pipeline, newest first (steps without logs)."""
    runs = await run_in_threadpool(lambda: store.list_runs(name, status=status, limit=limit))
    return {"runs": [r.to_dict() for r in runs]}


@router.post("/pipelines/{name}/runs", status_code=201)
async def queue_run(
    name: str, store: Store, body: Annotated[Any, Body()] = None
) -> dict[str, Any]:
    """Queue a run (``{"params": {...}}``) for ``loopml scheduler`` to start."""
    spec = _object(body, {"params"})
    params = spec.get("params") or {}
    if not isinstance(params, dict):
        raise InvalidInput("params must be an object")
    run_id = await run_in_threadpool(lambda: enqueue_run(name, params, trigger="api", store=store))
    run = await run_in_threadpool(store.get_run, run_id)
    return {"run": run.to_dict()}


@router.get("/pipeline-runs")
async def all_runs(store: Store, status: str | None = None, limit: Limit = 50) -> dict[str, Any]:
    """Runs of every pipeline, newest first."""
    runs = await run_in_threadpool(lambda: store.list_runs(None, status=status, limit=limit))
    return {"runs": [r.to_dict() for r in runs]}


@router.get("/pipeline-runs/{run_id}")
async def get_run(run_id: str, store: Store) -> dict[str, Any]:
    """One run: its DAG and every step's status, attempts, times, cache hit, inputs, outputs."""
    run = await run_in_threadpool(store.get_run, run_id)
    return {"run": run.to_dict()}


@router.get("/pipeline-runs/{run_id}/steps/{step}/logs")
async def step_logs(run_id: str, step: str, store: Store) -> dict[str, Any]:
    """What a step printed and logged (the last 64 KiB), with its error."""
    run = await run_in_threadpool(store.get_run, run_id)
    found = run.steps.get(step)
    if found is None:
        raise NotFound(f"pipeline run {run_id} has no step {step!r}")
    return {"step": step, "status": found.status, "logs": found.logs, "error": found.error}


@router.get("/pipelines/{name}/schedules")
async def list_schedules(name: str, store: Store) -> dict[str, Any]:
    """Schedules of one pipeline."""
    await run_in_threadpool(store.get_pipeline, name)
    found = await run_in_threadpool(store.list_schedules, name)
    return {"schedules": [s.to_dict() for s in found]}


@router.post("/pipelines/{name}/schedules", status_code=201)
async def create_schedule(
    name: str, store: Store, body: Annotated[Any, Body()] = None
) -> dict[str, Any]:
    """Schedule runs: ``{"cron": "0 3 * * *", "params": {...}}`` (UTC)."""
    spec = _object(body, {"cron", "params"})
    cron = spec.get("cron")
    if not isinstance(cron, str):
        raise InvalidInput("cron must be a cron expression string")
    params = spec.get("params") or {}
    if not isinstance(params, dict):
        raise InvalidInput("params must be an object")
    schedule = await run_in_threadpool(lambda: add_schedule(store, name, cron, params))
    return {"schedule": schedule.to_dict()}


@router.patch("/pipeline-schedules/{schedule_id}")
async def update_schedule(
    schedule_id: int, store: Store, body: Annotated[Any, Body()] = None
) -> dict[str, Any]:
    """Pause or resume: ``{"enabled": false}``."""
    spec = _object(body, {"enabled"})
    if not isinstance(spec.get("enabled"), bool):
        raise InvalidInput("enabled must be true or false")
    schedule = await run_in_threadpool(
        store.set_schedule_enabled, schedule_id, bool(spec["enabled"])
    )
    return {"schedule": schedule.to_dict()}


@router.delete("/pipeline-schedules/{schedule_id}")
async def delete_schedule(schedule_id: int, store: Store) -> dict[str, Any]:
    """Remove a schedule."""
    await run_in_threadpool(store.delete_schedule, schedule_id)
    return {"deleted": schedule_id}
