"""MLflow's model registry REST routes (``registered-models/*``, ``model-versions/*``), served
from loopml's registry so that what the ``mlflow`` client registers lands in loopml's store.

Methods, field names and response shapes are those of MLflow's ``model_registry.proto`` as its
REST client sends and parses them. Optional fields that are unset are left out of responses
rather than sent as null (the client reads a missing ``run_id`` as None, ``run_link`` as "").
MLflow's client sends a DELETE's fields as a JSON body; a query string is read when there is no
body. The client does not say who it is, so history entries written here have an empty
``user_id`` (but for a version's deletion, where the store records the server's user).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from fastapi import APIRouter, Request, Response
from starlette.concurrency import run_in_threadpool

from loopml.errors import InvalidInput, NotFound
from loopml.registry import ModelVersion, RegisteredModel, SqlRegistryStore
from loopml.server._mlflow_common import (
    ArtifactUris,
    Fields,
    declare_fields,
    json_response,
    request_fields,
)
from loopml.server._registry_api import registry_for
from loopml.server._tracking_api import store_for
from loopml.store import validate_artifact_path
from loopml.tracking import LoggedModelStore, SqlTrackingStore

router = APIRouter()

_LOGGED_MODEL = "models:/m-"
_ANONYMOUS = ""  # the user recorded in history: MLflow's client sends none
_MAX_PAGE = 50_000  # the store's largest page; the client follows next_page_token for more
# MLflow's client appends this to every registered-model search to hide prompts; loopml keeps
# no prompts apart, and its tag filters match only models having the tag, so it is dropped.
_NOT_PROMPT = re.compile(
    r"(?:^\s*|\s+AND\s+)tags?\.`mlflow\.prompt\.is_prompt`\s*!=\s*'true'\s*$", re.IGNORECASE
)
# A registered model version as a source (``copy_model_version`` sends one); names hold no / or @.
_VERSION_URI = re.compile(r"models:/([^/@]+)(?:/([0-9]+)|@([\w\-]+))/?")
_ORDER_TIMESTAMP = re.compile(r"^\s*timestamp\b", re.IGNORECASE)


@dataclass(frozen=True, slots=True)
class _Scope:
    """The request's stores (scoped to its workspace) and the artifact URI mapping."""

    registry: SqlRegistryStore
    tracking: SqlTrackingStore
    artifacts: ArtifactUris


Handler = Callable[[Fields, _Scope], dict[str, Any]]


def _route(method: str, path: str, **fields: str) -> Callable[[Handler], Handler]:
    """Serve ``handler(fields, scope)`` at ``path``; it runs in a worker thread, since the
    stores block on the database. ``fields`` declare what it reads (``declare_fields``)."""

    def register(handler: Handler) -> Handler:
        async def endpoint(request: Request) -> Response:
            fields = await request_fields(request)
            scope = _Scope(
                await registry_for(request),
                await store_for(request),
                request.app.state.mlflow_artifacts,
            )
            return json_response(await run_in_threadpool(handler, fields, scope))

        router.add_api_route(
            path,
            endpoint,
            methods=[method],
            name=f"mlflow_{handler.__name__}",
            summary=(handler.__doc__ or "").strip(),
            response_class=Response,
            openapi_extra=declare_fields(method, **fields),
        )
        return handler

    return register


# -- JSON shapes -------------------------------------------------------------------------------
def _pairs(tags: dict[str, str]) -> list[dict[str, str]]:
    return [{"key": k, "value": v} for k, v in tags.items()]


def version_json(version: ModelVersion) -> dict[str, Any]:
    """A version as MLflow's ``ModelVersion`` message."""
    out: dict[str, Any] = {
        "name": version.name,
        "version": version.version,
        "creation_timestamp": version.creation_timestamp,
        "last_updated_timestamp": version.last_updated_timestamp,
        "user_id": version.user_id,
        "current_stage": version.current_stage,
        "description": version.description,
        "source": version.source,
        "status": version.status,
        "tags": _pairs(version.tags),
        "aliases": list(version.aliases),
    }
    if version.run_id:
        out["run_id"] = version.run_id
    if version.run_link:
        out["run_link"] = version.run_link
    if version.status_message is not None:
        out["status_message"] = version.status_message
    if version.source.startswith(_LOGGED_MODEL):
        out["model_id"] = version.source[len("models:/") :].strip("/")
    return out


def model_json(model: RegisteredModel) -> dict[str, Any]:
    """A registered model as MLflow's ``RegisteredModel`` message."""
    return {
        "name": model.name,
        "creation_timestamp": model.creation_timestamp,
        "last_updated_timestamp": model.last_updated_timestamp,
        "description": model.description,
        "latest_versions": [version_json(v) for v in model.latest_versions],
        "tags": _pairs(model.tags),
        "aliases": [{"alias": a, "version": v} for a, v in model.aliases.items()],
    }


def _search_args(fields: Fields, default_max: int) -> dict[str, Any]:
    max_results = fields.int("max_results", default=default_max)
    order_by = [
        _ORDER_TIMESTAMP.sub("last_updated_timestamp", item)  # MLflow's alias
        for item in fields.str_list("order_by")
    ]
    return {
        "max_results": min(max_results, _MAX_PAGE),
        "order_by": order_by or None,
        "page_token": fields.str("page_token") or None,
    }


def _page(key: str, items: list[dict[str, Any]], token: str | None) -> dict[str, Any]:
    return {key: items, "next_page_token": token} if token else {key: items}


# -- registered models -------------------------------------------------------------------------
@_route(
    "POST", "/registered-models/create", name="string!", tags="key-values", description="string"
)
def create_registered_model(f: Fields, s: _Scope) -> dict[str, Any]:
    """Create a registered model."""
    model = s.registry.create_registered_model(
        f.str("name", required=True),
        tags=f.key_values("tags"),
        description=f.str("description"),
    )
    return {"registered_model": model_json(model)}


@_route("GET", "/registered-models/get", name="string!")
def get_registered_model(f: Fields, s: _Scope) -> dict[str, Any]:
    """A registered model with its tags, aliases and latest version per stage."""
    return {
        "registered_model": model_json(
            s.registry.get_registered_model(f.str("name", required=True))
        )
    }


@_route("POST", "/registered-models/rename", name="string!", new_name="string!")
def rename_registered_model(f: Fields, s: _Scope) -> dict[str, Any]:
    """Give a registered model a new name."""
    model = s.registry.rename_registered_model(
        f.str("name", required=True), f.str("new_name", required=True)
    )
    return {"registered_model": model_json(model)}


@_route("PATCH", "/registered-models/update", name="string!", description="string")
def update_registered_model(f: Fields, s: _Scope) -> dict[str, Any]:
    """Change a registered model's description (an absent one clears it, as in MLflow)."""
    model = s.registry.update_registered_model(
        f.str("name", required=True), description=f.str("description", default="")
    )
    return {"registered_model": model_json(model)}


@_route("DELETE", "/registered-models/delete", name="string!")
def delete_registered_model(f: Fields, s: _Scope) -> dict[str, Any]:
    """Delete a registered model with its versions and aliases."""
    s.registry.delete_registered_model(f.str("name", required=True))
    return {}


@_route(
    "GET",
    "/registered-models/search",
    filter="string",
    max_results="integer",
    order_by="strings",
    page_token="string",
)
def search_registered_models(f: Fields, s: _Scope) -> dict[str, Any]:
    """A page of registered models matching a filter."""
    text = _NOT_PROMPT.sub("", f.str("filter") or "").strip()
    page = s.registry.search_registered_models(filter_string=text or None, **_search_args(f, 100))
    return _page("registered_models", [model_json(m) for m in page], page.token)


def _latest_versions(f: Fields, s: _Scope) -> dict[str, Any]:
    found = s.registry.get_latest_versions(
        f.str("name", required=True), f.str_list("stages") or None
    )
    return {"model_versions": [version_json(v) for v in found]}


@_route("POST", "/registered-models/get-latest-versions", name="string!", stages="strings")
def get_latest_versions(f: Fields, s: _Scope) -> dict[str, Any]:
    """The newest version in each of the given stages (every stage when none is given)."""
    return _latest_versions(f, s)


@_route("GET", "/registered-models/get-latest-versions", name="string!", stages="strings")
def get_latest_versions_get(f: Fields, s: _Scope) -> dict[str, Any]:
    """The newest version in each of the given stages (the GET form)."""
    return _latest_versions(f, s)


@_route("POST", "/registered-models/set-tag", name="string!", key="string!", value="string")
def set_registered_model_tag(f: Fields, s: _Scope) -> dict[str, Any]:
    """Set a tag on a registered model."""
    s.registry.set_registered_model_tag(
        f.str("name", required=True), f.str("key", required=True), f.str("value", default="")
    )
    return {}


@_route("DELETE", "/registered-models/delete-tag", name="string!", key="string!")
def delete_registered_model_tag(f: Fields, s: _Scope) -> dict[str, Any]:
    """Remove a tag from a registered model."""
    s.registry.delete_registered_model_tag(
        f.str("name", required=True), f.str("key", required=True)
    )
    return {}


@_route("POST", "/registered-models/alias", name="string!", alias="string!", version="string!")
def set_registered_model_alias(f: Fields, s: _Scope) -> dict[str, Any]:
    """Point an alias at a version (recorded in the model's history)."""
    s.registry.set_registered_model_alias(
        f.str("name", required=True),
        f.str("alias", required=True),
        f.str("version", required=True),
        user_id=_ANONYMOUS,
    )
    return {}


@_route("DELETE", "/registered-models/alias", name="string!", alias="string!")
def delete_registered_model_alias(f: Fields, s: _Scope) -> dict[str, Any]:
    """Remove an alias (recorded in the model's history)."""
    s.registry.delete_registered_model_alias(
        f.str("name", required=True), f.str("alias", required=True), user_id=_ANONYMOUS
    )
    return {}


@_route("GET", "/registered-models/alias", name="string!", alias="string!")
def get_model_version_by_alias(f: Fields, s: _Scope) -> dict[str, Any]:
    """The version an alias points at."""
    found = s.registry.get_model_version_by_alias(
        f.str("name", required=True), f.str("alias", required=True)
    )
    return {"model_version": version_json(found)}


# -- model versions ----------------------------------------------------------------------------
def _candidates(location: str, root: str) -> Iterator[tuple[str, str]]:
    """The runs (``("run", id)``) and logged models (``("model", id)``) whose artifact folder a
    location may lie in, read from loopml's layouts ``<experiment>/<run_id>/artifacts`` and
    ``<experiment>/models/<model_id>/artifacts``; each is checked against the store before use."""
    if location.startswith(root + "/"):
        location = location[len(root) + 1 :]
    parts = location.split("/")
    for i in range(1, len(parts)):
        if parts[i] != "artifacts" or not parts[i - 1]:
            continue
        if parts[i - 1].startswith("m-") and i >= 2 and parts[i - 2] == "models":
            yield "model", parts[i - 1]
        else:
            yield "run", parts[i - 1]


def _registrable_source(source: str, run_id: str | None, model_id: str | None, s: _Scope) -> str:
    """``source`` as the registry keeps it: a location the client sent (``mlflow-artifacts:/``
    or a path under the artifact root) that is a run's or a logged model's artifact folder, or
    lies in a run's, becomes ``runs:/<run_id>/<path>`` or ``models:/<model_id>``; anything
    else is left for the store to accept or refuse. A registered version
    (``models:/<name>/<version>`` or ``models:/<name>@<alias>``) gives its own source, so a
    copy reads the same files."""
    copied = _VERSION_URI.fullmatch(source)
    if copied is not None:
        name, number, alias = copied.groups()
        original = (
            s.registry.get_model_version(name, number)
            if number
            else s.registry.get_model_version_by_alias(name, alias)
        )
        # files uploaded to a version are its own; a copy would need them copied too
        return source if original.source.startswith("registry:") else original.source
    if source.startswith(("runs:/", "models:/", "registry:")):
        return source
    location = s.artifacts.from_client(source).rstrip("/")
    named = [("model", model_id)] if model_id else []
    named += [("run", run_id)] if run_id else []
    for kind, ident in named or list(_candidates(location, s.artifacts.root)):
        try:
            if kind == "model":
                root = LoggedModelStore(s.tracking).get(ident).artifact_uri.rstrip("/")
            else:
                root = s.tracking.get_run(ident).info.artifact_uri.rstrip("/")
        except (NotFound, InvalidInput):  # not an id, or no such object: not its folder
            continue
        if location == root:
            return f"models:/{ident}" if kind == "model" else f"runs:/{ident}"
        if kind == "run" and location.startswith(root + "/"):
            return f"runs:/{ident}/{validate_artifact_path(location[len(root) + 1 :])}"
    return source


@_route(
    "POST",
    "/model-versions/create",
    name="string!",
    source="string!",
    run_id="string",
    model_id="string",
    tags="key-values",
    run_link="string",
    description="string",
)
def create_model_version(f: Fields, s: _Scope) -> dict[str, Any]:
    """Register a model's files as the next version of a registered model."""
    run_id = f.str("run_id") or None
    model_id = f.str("model_id") or None
    source = _registrable_source(f.str("source", required=True), run_id, model_id, s)
    if (
        model_id
        and source.startswith("models:/")
        and source[len("models:/") :].strip("/") != model_id
    ):
        raise InvalidInput(f"source {source!r} names another logged model than {model_id!r}")
    version = s.registry.create_model_version(
        f.str("name", required=True),
        source,
        run_id=run_id,
        tags=f.key_values("tags"),
        run_link=f.str("run_link") or None,
        description=f.str("description"),
        user_id=_ANONYMOUS,
    )
    return {"model_version": version_json(version)}


@_route("GET", "/model-versions/get", name="string!", version="string!")
def get_model_version(f: Fields, s: _Scope) -> dict[str, Any]:
    """One model version."""
    found = s.registry.get_model_version(
        f.str("name", required=True), f.str("version", required=True)
    )
    return {"model_version": version_json(found)}


@_route("PATCH", "/model-versions/update", name="string!", version="string!", description="string")
def update_model_version(f: Fields, s: _Scope) -> dict[str, Any]:
    """Change a version's description."""
    found = s.registry.update_model_version(
        f.str("name", required=True),
        f.str("version", required=True),
        description=f.str("description"),
    )
    return {"model_version": version_json(found)}


@_route("DELETE", "/model-versions/delete", name="string!", version="string!")
def delete_model_version(f: Fields, s: _Scope) -> dict[str, Any]:
    """Delete a version (aliases pointing at it are removed, recorded)."""
    s.registry.delete_model_version(f.str("name", required=True), f.str("version", required=True))
    return {}


@_route(
    "GET",
    "/model-versions/search",
    filter="string",
    max_results="integer",
    order_by="strings",
    page_token="string",
)
def search_model_versions(f: Fields, s: _Scope) -> dict[str, Any]:
    """A page of model versions matching a filter."""
    page = s.registry.search_model_versions(
        filter_string=f.str("filter") or None, **_search_args(f, 200_000)
    )
    return _page("model_versions", [version_json(v) for v in page], page.token)


@_route("GET", "/model-versions/get-download-uri", name="string!", version="string!")
def get_model_version_download_uri(f: Fields, s: _Scope) -> dict[str, Any]:
    """Where the client downloads a version's files (through the server's artifact proxy)."""
    location = s.registry.version_files_uri(
        f.str("name", required=True), f.str("version", required=True)
    )
    return {"artifact_uri": s.artifacts.to_client(location)}


@_route(
    "POST",
    "/model-versions/transition-stage",
    name="string!",
    version="string!",
    stage="string!",
    archive_existing_versions="boolean",
)
def transition_model_version_stage(f: Fields, s: _Scope) -> dict[str, Any]:
    """Move a version to a stage, optionally archiving the others in it (recorded)."""
    found = s.registry.transition_model_version_stage(
        f.str("name", required=True),
        f.str("version", required=True),
        f.str("stage", required=True),
        archive_existing_versions=f.bool("archive_existing_versions"),
        user_id=_ANONYMOUS,
    )
    return {"model_version": version_json(found)}


@_route(
    "POST",
    "/model-versions/set-tag",
    name="string!",
    version="string!",
    key="string!",
    value="string",
)
def set_model_version_tag(f: Fields, s: _Scope) -> dict[str, Any]:
    """Set a tag on a version."""
    s.registry.set_model_version_tag(
        f.str("name", required=True),
        f.str("version", required=True),
        f.str("key", required=True),
        f.str("value", default=""),
    )
    return {}


@_route("DELETE", "/model-versions/delete-tag", name="string!", version="string!", key="string!")
def delete_model_version_tag(f: Fields, s: _Scope) -> dict[str, Any]:
    """Remove a tag from a version."""
    s.registry.delete_model_version_tag(
        f.str("name", required=True), f.str("version", required=True), f.str("key", required=True)
    )
    return {}
