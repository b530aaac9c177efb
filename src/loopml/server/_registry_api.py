"""``/api/v1`` routes for the model registry: models, versions, aliases, history, webhooks."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request, Response
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, ConfigDict, Field, StrictInt
from starlette.concurrency import iterate_in_threadpool, run_in_threadpool

from loopml.registry import EVENTS, SqlRegistryStore, validate_model_name, validate_text
from loopml.server._auth import acting_user, note_change
from loopml.server._tracking_api import (
    BINARY_RESPONSE,
    JsonRoute,
    SyncChunks,
    prepend_chunk,
    scoped,
)

router = APIRouter(prefix="/api/v1", tags=["registry"], route_class=JsonRoute)


async def registry_for(request: Request) -> SqlRegistryStore:
    """The registry store scoped to the request's workspace."""
    return scoped(request.app.state.registry_store, request)


Registry = Annotated[SqlRegistryStore, Depends(registry_for)]


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class CreateModel(_Body):
    name: str
    tags: dict[str, str] = Field(default_factory=dict)
    description: str | None = None


class UpdateModel(_Body):
    name: str | None = None
    description: str | None = None


class Search(_Body):
    filter: str | None = None
    max_results: StrictInt = 100
    order_by: list[str] | None = None
    page_token: str | None = None


class TagBody(_Body):
    key: str
    value: str


class CreateVersion(_Body):
    source: str
    run_id: str | None = None
    tags: dict[str, str] = Field(default_factory=dict)
    run_link: str | None = None
    description: str | None = None
    user_id: str | None = None
    manifest_digest: str | None = None
    dataset_versions: list[str] = Field(default_factory=list)
    feature_views: list[str] = Field(default_factory=list)
    status: str | None = None


class UpdateVersion(_Body):
    description: str | None = None
    status: str | None = None
    status_message: str | None = None


class LatestVersions(_Body):
    stages: list[str] | None = None


class StageBody(_Body):
    stage: str
    archive_existing_versions: bool = False
    user_id: str | None = None
    reason: str | None = None


class AliasBody(_Body):
    version: str
    user_id: str | None = None
    reason: str | None = None


class RollbackBody(_Body):
    user_id: str | None = None
    reason: str | None = None


class CreateWebhook(_Body):
    url: str
    events: list[str] = Field(default_factory=lambda: list(EVENTS))
    secret: str
    model_name: str | None = None
    description: str | None = None


class DispatchBody(_Body):
    timeout: float = Field(default=30.0, gt=0, le=300)


# -- registered models -------------------------------------------------------------------------
@router.post("/models")
def create_model(body: CreateModel, registry: Registry) -> dict[str, Any]:
    """Create a registered model."""
    model = registry.create_registered_model(
        body.name, tags=body.tags, description=body.description
    )
    return {"registered_model": model.to_dict()}


@router.post("/models/search")
def search_models(body: Search, registry: Registry) -> dict[str, Any]:
    """A page of registered models matching a filter."""
    page = registry.search_registered_models(
        filter_string=body.filter,
        max_results=body.max_results,
        order_by=body.order_by,
        page_token=body.page_token,
    )
    return {"registered_models": [m.to_dict() for m in page], "next_page_token": page.token}


@router.get("/models/{name}")
def get_model(name: str, registry: Registry) -> dict[str, Any]:
    """A registered model with its tags, aliases and latest versions."""
    return {"registered_model": registry.get_registered_model(name).to_dict()}


@router.patch("/models/{name}")
def update_model(name: str, body: UpdateModel, registry: Registry) -> dict[str, Any]:
    """Rename a model and/or change its description."""
    if body.description is not None:  # check both before changing either
        validate_text(body.description, "description")
    if body.name is not None:
        validate_model_name(body.name)
    current = name
    model = None
    if body.name is not None:
        model = registry.rename_registered_model(current, body.name)
        current = body.name
    if body.description is not None:
        model = registry.update_registered_model(current, description=body.description)
    return {"registered_model": (model or registry.get_registered_model(current)).to_dict()}


@router.delete("/models/{name}")
def delete_model(name: str, registry: Registry) -> dict[str, Any]:
    """Delete a model with its versions, aliases and history."""
    registry.delete_registered_model(name)
    return {}


@router.post("/models/{name}/tags")
def set_model_tag(name: str, body: TagBody, registry: Registry) -> dict[str, Any]:
    """Set a tag on a model."""
    registry.set_registered_model_tag(name, body.key, body.value)
    return {}


@router.delete("/models/{name}/tags")
def delete_model_tag(name: str, registry: Registry, key: str = Query(...)) -> dict[str, Any]:
    """Remove a tag from a model."""
    registry.delete_registered_model_tag(name, key)
    return {}


# -- versions ----------------------------------------------------------------------------------
@router.post("/models/{name}/versions")
def create_version(name: str, body: CreateVersion, registry: Registry) -> dict[str, Any]:
    """Register a new version of a model."""
    version = registry.create_model_version(name, **body.model_dump())
    return {"model_version": version.to_dict()}


@router.post("/model-versions/search")
def search_versions(body: Search, registry: Registry) -> dict[str, Any]:
    """A page of model versions matching a filter."""
    page = registry.search_model_versions(
        filter_string=body.filter,
        max_results=body.max_results,
        order_by=body.order_by,
        page_token=body.page_token,
    )
    return {"model_versions": [v.to_dict() for v in page], "next_page_token": page.token}


@router.post("/models/{name}/latest-versions")
def latest_versions(name: str, body: LatestVersions, registry: Registry) -> dict[str, Any]:
    """The newest version in each stage."""
    found = registry.get_latest_versions(name, body.stages)
    return {"model_versions": [v.to_dict() for v in found]}


@router.get("/models/{name}/versions/{version}")
def get_version(name: str, version: str, registry: Registry) -> dict[str, Any]:
    """One model version."""
    return {"model_version": registry.get_model_version(name, version).to_dict()}


@router.patch("/models/{name}/versions/{version}")
def update_version(
    name: str, version: str, body: UpdateVersion, registry: Registry
) -> dict[str, Any]:
    """Change a version's description or registration status."""
    found = registry.update_model_version(name, version, **body.model_dump())
    return {"model_version": found.to_dict()}


@router.delete("/models/{name}/versions/{version}")
def delete_version(name: str, version: str, registry: Registry) -> dict[str, Any]:
    """Delete a version (its aliases go with it, recorded)."""
    registry.delete_model_version(name, version)
    return {}


@router.post("/models/{name}/versions/{version}/tags")
def set_version_tag(name: str, version: str, body: TagBody, registry: Registry) -> dict[str, Any]:
    """Set a tag on a version."""
    registry.set_model_version_tag(name, version, body.key, body.value)
    return {}


@router.delete("/models/{name}/versions/{version}/tags")
def delete_version_tag(
    name: str, version: str, registry: Registry, key: str = Query(...)
) -> dict[str, Any]:
    """Remove a tag from a version."""
    registry.delete_model_version_tag(name, version, key)
    return {}


@router.post("/models/{name}/versions/{version}/stage")
def transition_stage(
    name: str, version: str, body: StageBody, registry: Registry
) -> dict[str, Any]:
    """Move a version to a stage (MLflow compatibility; prefer aliases)."""
    found = registry.transition_model_version_stage(
        name,
        version,
        body.stage,
        archive_existing_versions=body.archive_existing_versions,
        user_id=body.user_id,
        reason=body.reason,
    )
    return {"model_version": found.to_dict()}


# -- aliases, history, compare -----------------------------------------------------------------
@router.put("/models/{name}/aliases/{alias}")
def set_alias(
    name: str, alias: str, body: AliasBody, registry: Registry, request: Request
) -> dict[str, Any]:
    """Point an alias at a version; the move is recorded in the history."""
    event = registry.set_registered_model_alias(
        name,
        alias,
        body.version,
        user_id=acting_user(request, body.user_id),
        reason=body.reason,
    )
    note_change(request, alias=alias, before=event.from_version, after=event.to_version)
    return {"event": event.to_dict()}


@router.get("/models/{name}/aliases/{alias}")
def get_alias(name: str, alias: str, registry: Registry) -> dict[str, Any]:
    """The version an alias points at."""
    return {"model_version": registry.get_model_version_by_alias(name, alias).to_dict()}


@router.delete("/models/{name}/aliases/{alias}")
def delete_alias(
    name: str,
    alias: str,
    registry: Registry,
    request: Request,
    user_id: str | None = None,
    reason: str | None = None,
) -> dict[str, Any]:
    """Remove an alias."""
    before = registry.get_model_version_by_alias(name, alias).version
    registry.delete_registered_model_alias(
        name, alias, user_id=acting_user(request, user_id), reason=reason
    )
    note_change(request, alias=alias, before=before, after=None)
    return {}


@router.get("/models/{name}/aliases/{alias}/at")
def alias_at(
    name: str, alias: str, registry: Registry, timestamp: int = Query(...)
) -> dict[str, Any]:
    """The version an alias pointed at at a moment (ms since the epoch), or null."""
    found = registry.get_alias_at(name, alias, timestamp)
    return {"model_version": None if found is None else found.to_dict()}


@router.post("/models/{name}/aliases/{alias}/rollback")
def rollback(
    name: str, alias: str, body: RollbackBody, registry: Registry, request: Request
) -> dict[str, Any]:
    """Move an alias back to its previous version."""
    event = registry.rollback(
        name, alias, user_id=acting_user(request, body.user_id), reason=body.reason
    )
    note_change(request, alias=alias, before=event.from_version, after=event.to_version)
    return {"event": event.to_dict()}


@router.get("/models/{name}/history")
def history(
    name: str,
    registry: Registry,
    alias: str | None = None,
    kinds: Annotated[list[str] | None, Query()] = None,
    max_results: int = 1000,
    page_token: str | None = None,
) -> dict[str, Any]:
    """The model's history, newest first."""
    page = registry.get_model_history(
        name, alias=alias, kinds=kinds, max_results=max_results, page_token=page_token
    )
    return {"events": [e.to_dict() for e in page], "next_page_token": page.token}


@router.get("/models/{name}/compare")
def compare(
    name: str, registry: Registry, a: str = Query(...), b: str = Query(...)
) -> dict[str, Any]:
    """Two versions side by side with their differences."""
    return {"comparison": registry.compare_versions(name, a, b).to_dict()}


# -- version files -----------------------------------------------------------------------------
@router.get("/models/{name}/versions/{version}/artifacts")
def list_version_artifacts(
    name: str, version: str, registry: Registry, path: str | None = None
) -> dict[str, Any]:
    """The immediate children of a folder of a version's files."""
    files = registry.list_version_artifacts(name, version, path)
    return {"files": [f.to_dict() for f in files]}


@router.put("/models/{name}/versions/{version}/artifacts/{path:path}", status_code=204)
async def upload_version_artifact(
    name: str, version: str, path: str, request: Request, registry: Registry
) -> Response:
    """Store one file of a version registered with ``source="registry:"`` (streamed)."""
    chunks = SyncChunks(request.stream())
    await run_in_threadpool(registry.put_version_artifact_stream, name, version, chunks, path)
    return Response(status_code=204)


@router.get(
    "/models/{name}/versions/{version}/artifacts/{path:path}",
    response_class=StreamingResponse,
    responses=BINARY_RESPONSE,
)
async def download_version_artifact(
    name: str, version: str, path: str, registry: Registry
) -> StreamingResponse:
    """Stream one file of a version."""
    chunks = await run_in_threadpool(registry.iter_version_artifact, name, version, path)
    first = await run_in_threadpool(next, chunks, b"")
    return StreamingResponse(
        prepend_chunk(first, iterate_in_threadpool(chunks)),
        media_type="application/octet-stream",
    )


# -- webhooks ----------------------------------------------------------------------------------
@router.post("/webhooks")
def create_webhook(body: CreateWebhook, registry: Registry) -> dict[str, Any]:
    """Register a webhook; the secret is stored, never returned."""
    hook = registry.create_webhook(
        body.url,
        events=body.events,
        secret=body.secret,
        model_name=body.model_name,
        description=body.description,
    )
    return {"webhook": hook.to_dict()}


@router.get("/webhooks")
def list_webhooks(registry: Registry) -> dict[str, Any]:
    """The workspace's webhooks."""
    return {"webhooks": [w.to_dict() for w in registry.list_webhooks()]}


@router.delete("/webhooks/{webhook_id}")
def delete_webhook(webhook_id: str, registry: Registry) -> dict[str, Any]:
    """Delete a webhook and its deliveries."""
    registry.delete_webhook(webhook_id)
    return {}


@router.get("/webhooks/{webhook_id}/deliveries")
def list_deliveries(webhook_id: str, registry: Registry, max_results: int = 100) -> dict[str, Any]:
    """A webhook's deliveries, newest first."""
    found = registry.list_webhook_deliveries(webhook_id, max_results=max_results)
    return {"deliveries": [d.to_dict() for d in found]}


@router.post("/webhooks/dispatch")
def dispatch(body: DispatchBody, registry: Registry) -> dict[str, Any]:
    """Send the deliveries due now (the server also does this in the background)."""
    return {"attempted": registry.dispatch_webhooks(timeout=body.timeout)}
