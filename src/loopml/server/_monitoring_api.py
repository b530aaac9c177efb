"""``/api/v1/outcomes`` (ground truth, one or in bulk) and ``/api/v1/monitoring/...`` (drift,
quality, the HTML report, alert rules and alerts of a deployment)."""

from __future__ import annotations

import time
from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse

from loopml.errors import InvalidInput, NotFound
from loopml.monitoring import (
    MAX_OUTCOMES_PER_CALL,
    AlertRule,
    Monitor,
    SqlMonitorStore,
    parse_duration,
    render_report,
    report_data,
    summarize,
)
from loopml.server._tracking_api import JsonRoute, scoped

router = APIRouter(prefix="/api/v1", tags=["monitoring"], route_class=JsonRoute)


async def monitor_for(request: Request) -> Monitor:
    """A monitor over the request workspace's monitoring state."""
    state = request.app.state
    base: SqlMonitorStore = state.monitor_store
    return Monitor(
        scoped(base, request),
        log_uri=state.prediction_log_uri,
        registry=scoped(state.registry_store, request),
        tracking=scoped(state.tracking_store, request),
    )


Mon = Annotated[Monitor, Depends(monitor_for)]


async def visible_deployment(deployment: str, request: Request) -> str:
    """The path's deployment, if its prediction log is the caller's to read: a deployment
    registered only in other workspaces is not (404, as if it did not exist). The log has no
    workspace of its own; a name no workspace registers (an ad-hoc ``loopml serve``) is open
    to the workspace's readers."""
    store = request.app.state.deployment_store
    owners = await run_in_threadpool(store.workspaces_of, deployment)
    workspace = request.headers.get("x-loopml-workspace") or store.workspace
    if owners and workspace not in owners:
        raise NotFound(f"deployment {deployment!r} does not exist")
    return deployment


Deployment = Annotated[str, Depends(visible_deployment)]
Window = Annotated[str, Query(min_length=1, max_length=32)]


def _public(rule: AlertRule) -> dict[str, Any]:
    data = rule.to_dict()
    data["notifiers"] = [{k: v for k, v in n.items() if k != "secret"} for n in rule.notifiers]
    return data


@router.post("/outcomes")
async def post_outcomes(monitor: Mon, body: Annotated[Any, Body()]) -> dict[str, Any]:
    """Store ground truth: ``{"outcomes": [...]}`` or one ``{"prediction_id"|"unit_id",
    "value", "timestamp"?}``."""
    if isinstance(body, dict) and "outcomes" in body:
        if set(body) != {"outcomes"}:
            raise InvalidInput("a bulk body holds only 'outcomes'")
        records = body["outcomes"]
    elif isinstance(body, dict):
        records = [body]
    else:
        raise InvalidInput("the body must be an outcome object or {'outcomes': [...]}")
    if isinstance(records, list) and len(records) > MAX_OUTCOMES_PER_CALL:
        raise InvalidInput(f"outcomes: at most {MAX_OUTCOMES_PER_CALL} per request")
    stored = await run_in_threadpool(monitor.store.log_outcomes, records)
    return {"stored": stored}


@router.get("/monitoring/deployments/{deployment}/drift")
async def get_drift(
    deployment: Deployment, monitor: Mon, window: Window = "24h", variant: str | None = None
) -> dict[str, Any]:
    """Drift of the deployment's window against its serving version's training data."""
    report = await run_in_threadpool(monitor.check, deployment, window, variant=variant)
    return report.to_dict()


@router.get("/monitoring/deployments/{deployment}/traffic")
async def get_traffic(
    deployment: Deployment, monitor: Mon, window: Window = "5m"
) -> dict[str, Any]:
    """Per variant over the last ``window``: requests, requests per second, errors, error rate
    and latency percentiles (p50, p99), from the prediction log."""
    seconds = parse_duration(window)
    since = time.time() - seconds
    found = await run_in_threadpool(
        lambda: summarize(monitor.log_uri, deployment=deployment, since=since)
    )
    for stats in found.values():
        stats["requests_per_s"] = stats["requests"] / seconds
    return {"deployment": deployment, "window": window, "variants": found}


@router.get("/monitoring/deployments/{deployment}/quality")
async def get_quality(
    deployment: Deployment,
    monitor: Mon,
    window: Window = "24h",
    bucket: str | None = None,
    variant: str | None = None,
    tolerance: Annotated[float, Query(ge=0, lt=1)] = 0.05,
) -> dict[str, Any]:
    """Live quality by variant (and by time bucket), with baselines and degradations."""
    q = await run_in_threadpool(
        monitor.quality, deployment, window, bucket=bucket, variant=variant, tolerance=tolerance
    )
    return q.to_dict()


@router.get("/monitoring/deployments/{deployment}/report", response_class=HTMLResponse)
async def get_report(deployment: Deployment, monitor: Mon, window: Window = "24h") -> HTMLResponse:
    """The self-contained HTML report of the deployment's window."""
    data = await run_in_threadpool(report_data, monitor, deployment, window)
    return HTMLResponse(render_report(data))


@router.get("/monitoring/rules")
async def list_rules(monitor: Mon, deployment: str | None = None) -> dict[str, Any]:
    """The workspace's alert rules (webhook secrets left out)."""
    rules = await run_in_threadpool(monitor.store.list_rules, deployment)
    return {"rules": [_public(r) for r in rules]}


@router.put("/monitoring/rules/{name}")
async def put_rule(
    name: str, monitor: Mon, body: Annotated[dict[str, Any], Body()]
) -> dict[str, Any]:
    """Create or replace an alert rule. A webhook given without its secret keeps the secret
    stored for the same URL (responses never carry secrets, so a read-edit-write keeps it)."""
    rule = AlertRule.from_dict({**body, "name": name})
    try:
        old = await run_in_threadpool(monitor.store.get_rule, name)
    except NotFound:
        old = None
    if old is not None:
        secrets = {n.get("url"): n["secret"] for n in old.notifiers if n.get("secret")}
        for n in rule.notifiers:
            if n["type"] == "webhook" and "secret" not in n and n.get("url") in secrets:
                n["secret"] = secrets[n["url"]]
    await run_in_threadpool(monitor.store.put_rule, rule)
    return {"rule": _public(rule)}


@router.delete("/monitoring/rules/{name}")
async def delete_rule(name: str, monitor: Mon) -> dict[str, Any]:
    """Delete an alert rule and its alerts."""
    await run_in_threadpool(monitor.store.delete_rule, name)
    return {}


@router.get("/monitoring/alerts")
async def list_alerts(
    monitor: Mon,
    rule: str | None = None,
    deployment: str | None = None,
    limit: Annotated[int, Query(ge=1, le=10_000)] = 100,
) -> dict[str, Any]:
    """Fired and resolved alerts, newest first."""
    events = await run_in_threadpool(
        monitor.store.events, rule=rule, deployment=deployment, limit=limit
    )
    return {"alerts": [e.to_dict() for e in events]}
