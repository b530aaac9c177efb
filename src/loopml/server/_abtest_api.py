"""``/api/v1/abtests``: define experiments (on a deployment's variants or their own), assign
units, record exposures and events, analyse, stop."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, Query, Request
from fastapi.concurrency import run_in_threadpool

from loopml.abtest import Experiment, SqlExperimentStore, deployment_predictions
from loopml.errors import InvalidInput
from loopml.monitoring import Monitor
from loopml.server._tracking_api import JsonRoute, scoped

router = APIRouter(prefix="/api/v1/abtests", tags=["abtests"], route_class=JsonRoute)
MAX_RECORDS = 10_000


async def experiments_for(request: Request) -> SqlExperimentStore:
    """The experiment store scoped to the request's workspace."""
    return scoped(request.app.state.experiment_store, request)


Store = Annotated[SqlExperimentStore, Depends(experiments_for)]


def _records(body: Any, key: str) -> list[Any]:
    if not isinstance(body, dict) or set(body) != {key} or not isinstance(body[key], list):
        raise InvalidInput(f"the body must be {{{key!r}: [...]}}")
    if len(body[key]) > MAX_RECORDS:
        raise InvalidInput(f"{key}: at most {MAX_RECORDS} per request")
    return body[key]


def _deployment_variants(request: Request, name: str) -> dict[str, float]:
    deployments = scoped(request.app.state.deployment_store, request)
    dep = deployments.get_deployment(name)
    live = {v.name: float(v.weight) for v in dep.variants if v.role != "shadow" and v.weight > 0}
    if len(live) < 2:
        raise InvalidInput(f"deployment {name!r} has {len(live)} live variant(s); 2 are needed")
    return live


@router.post("")
async def create(
    request: Request, store: Store, body: Annotated[dict[str, Any], Body()]
) -> dict[str, Any]:
    """Define and start an experiment; with ``deployment`` and no ``variants``, its live
    variants and weights."""
    spec = dict(body)
    if spec.get("deployment") and "variants" not in spec:
        spec["variants"] = await run_in_threadpool(
            _deployment_variants, request, str(spec["deployment"])
        )
    experiment = Experiment.from_dict(spec)
    await run_in_threadpool(store.create, experiment)
    return {"experiment": experiment.to_dict()}


@router.get("")
async def list_all(store: Store) -> dict[str, Any]:
    """Every experiment of the workspace."""
    found = await run_in_threadpool(store.list)
    return {"experiments": [e.to_dict() for e in found]}


@router.get("/{name}")
async def get(name: str, store: Store) -> dict[str, Any]:
    """One experiment with its exposed units per variant."""
    experiment = await run_in_threadpool(store.get, name)
    counts = await run_in_threadpool(store.counts, name)
    return {"experiment": experiment.to_dict(), "exposed": counts}


@router.get("/{name}/assign")
async def assign_unit(
    name: str, store: Store, unit_id: Annotated[str, Query(min_length=1, max_length=255)]
) -> dict[str, Any]:
    """The unit's variant (null outside the allocation)."""
    experiment = await run_in_threadpool(store.get, name)
    return {"unit_id": unit_id, "variant": experiment.assign(unit_id)}


@router.post("/{name}/exposures")
async def exposures(name: str, store: Store, body: Annotated[Any, Body()]) -> dict[str, Any]:
    """Record first exposures: ``{"exposures": [{"unit_id", "variant"?, "timestamp"?}]}``."""
    records = _records(body, "exposures")
    return {"new": await run_in_threadpool(store.log_exposures, name, records)}


@router.post("/{name}/events")
async def events(name: str, store: Store, body: Annotated[Any, Body()]) -> dict[str, Any]:
    """Record metric events: ``{"events": [{"unit_id", "metric", "value"?, "timestamp"?}]}``."""
    records = _records(body, "events")
    return {"stored": await run_in_threadpool(store.log_events, name, records)}


@router.get("/{name}/analysis")
async def analysis(
    name: str, request: Request, store: Store, method: str | None = None
) -> dict[str, Any]:
    """The analysis: a row per (metric, variant), the SRM check and the verdict."""

    def run() -> dict[str, Any]:
        experiment = store.get(name)
        state = request.app.state
        monitor = Monitor(scoped(state.monitor_store, request), log_uri=state.prediction_log_uri)
        predictions = deployment_predictions(experiment, monitor)
        return store.analyze(name, method=method, predictions=predictions).to_dict()

    return await run_in_threadpool(run)


@router.post("/{name}/stop")
async def stop(
    name: str, store: Store, body: Annotated[dict[str, Any] | None, Body()] = None
) -> dict[str, Any]:
    """Stop the experiment (``{"reason": "..."}``)."""
    reason = (body or {}).get("reason", "")
    if not isinstance(reason, str):
        raise InvalidInput("reason must be a string")
    experiment = await run_in_threadpool(store.stop, name, reason)
    return {"experiment": experiment.to_dict()}
