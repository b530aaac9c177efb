"""Administration over HTTP: users and service accounts, tokens, workspaces, grants, the audit
log (``/api/v1/admin/...`` for admins), a workspace's grants and audit for its managers
(``/api/v1/grants``, ``/api/v1/audit``), and the caller's own identity and tokens
(``/api/v1/me``)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Query, Request
from fastapi.concurrency import run_in_threadpool

from loopml.errors import InvalidInput, PermissionDenied
from loopml.server._auth import WORKSPACE_HEADER, note_change
from loopml.server._identity import Identity, SqlIdentityStore
from loopml.server._tracking_api import JsonRoute

router = APIRouter(prefix="/api/v1", tags=["access"], route_class=JsonRoute)
Limit = Annotated[int, Query(ge=1, le=10_000)]


def _store(request: Request) -> SqlIdentityStore:
    return request.app.state.identity_store  # type: ignore[no-any-return]


def _caller(request: Request) -> Identity:
    found = request.scope.get("state", {}).get("identity")
    if not isinstance(found, Identity):
        raise PermissionDenied("no identity on this request")
    return found


def _workspace(request: Request) -> str:
    raw = request.headers.get(WORKSPACE_HEADER.decode())
    return raw or str(request.app.state.workspace)


def _body(body: Any, required: set[str], optional: set[str]) -> dict[str, Any]:
    if not isinstance(body, dict):
        raise InvalidInput("the body must be a JSON object")
    unknown = sorted(set(body) - required - optional)
    if unknown:
        raise InvalidInput(f"unknown field {unknown[0]!r}")
    missing = sorted(required - set(body))
    if missing:
        raise InvalidInput(f"field {missing[0]!r} is required")
    return body


def _flag(spec: dict[str, Any], key: str) -> bool:
    value = spec.get(key, False)
    if not isinstance(value, bool):
        raise InvalidInput(f"{key} must be true or false")
    return value


# -- users --------------------------------------------------------------------------------------
@router.get("/admin/users")
async def list_users(request: Request) -> dict[str, Any]:
    """Every user and service account with its grants."""
    found = await run_in_threadpool(_store(request).list_users)
    return {"users": [u.to_dict() for u in found]}


@router.post("/admin/users", status_code=201)
async def create_user(request: Request, body: Annotated[Any, Body()] = None) -> dict[str, Any]:
    """``{"name", "password"?, "admin"?, "service"?}``."""
    spec = _body(body, {"name"}, {"password", "admin", "service"})
    password = spec.get("password")
    if password is not None and not isinstance(password, str):
        raise InvalidInput("password must be a string")
    user = await run_in_threadpool(
        lambda: _store(request).create_user(
            spec["name"],
            password=password,
            admin=_flag(spec, "admin"),
            service=_flag(spec, "service"),
        )
    )
    return {"user": user.to_dict()}


@router.post("/admin/users/{name}/disable")
async def disable_user(name: str, request: Request) -> dict[str, Any]:
    """Disable a user: its tokens stop working."""
    user = await run_in_threadpool(_store(request).set_disabled, name, True)
    return {"user": user.to_dict()}


@router.post("/admin/users/{name}/password")
async def set_password(
    name: str, request: Request, body: Annotated[Any, Body()] = None
) -> dict[str, Any]:
    """``{"password"}``: set a user's password (its failed sign-ins are forgotten)."""
    spec = _body(body, {"password"}, set())
    if not isinstance(spec["password"], str):
        raise InvalidInput("password must be a string")
    await run_in_threadpool(_store(request).set_password, name, spec["password"])
    return {"user": name}


@router.post("/admin/users/{name}/enable")
async def enable_user(name: str, request: Request) -> dict[str, Any]:
    """Enable a disabled user again."""
    user = await run_in_threadpool(_store(request).set_disabled, name, False)
    return {"user": user.to_dict()}


# -- tokens -------------------------------------------------------------------------------------
def _token_spec(body: Any) -> tuple[str, float | None]:
    spec = _body(body if body is not None else {}, set(), {"name", "expires_in_days"})
    name = spec.get("name", "token")
    days = spec.get("expires_in_days", 90)
    if days is not None and (isinstance(days, bool) or not isinstance(days, (int, float))):
        raise InvalidInput("expires_in_days must be a number of days or null")
    return name, days


@router.post("/admin/users/{name}/tokens", status_code=201)
async def create_token_for(
    name: str, request: Request, body: Annotated[Any, Body()] = None
) -> dict[str, Any]:
    """A token for any user (the secret is in this answer only)."""
    token_name, days = _token_spec(body)
    made = await run_in_threadpool(
        lambda: _store(request).create_token(name, token_name, expires_in_days=days)
    )
    return {"token": made.to_dict()}


@router.get("/admin/tokens")
async def list_all_tokens(request: Request, user: str | None = None) -> dict[str, Any]:
    """Tokens of everyone (or of ``user``), without secrets."""
    found = await run_in_threadpool(_store(request).list_tokens, user)
    return {"tokens": [t.to_dict() for t in found]}


@router.delete("/admin/tokens/{token_id}")
async def revoke_any_token(token_id: str, request: Request) -> dict[str, Any]:
    """Revoke anyone's token."""
    await run_in_threadpool(_store(request).revoke_token, token_id)
    return {"revoked": token_id}


@router.get("/me")
async def me(request: Request) -> dict[str, Any]:
    """The caller: name, admin flag, roles per workspace and per object."""
    ident = _caller(request)
    return {
        "name": ident.name,
        "is_admin": ident.is_admin,
        "roles": ident.roles,
        "object_roles": [
            {"workspace": w, "object_type": t, "object_name": n, "role": r}
            for (w, t, n), r in ident.object_roles.items()
        ],
    }


@router.get("/me/tokens")
async def my_tokens(request: Request) -> dict[str, Any]:
    """The caller's tokens, without secrets."""
    found = await run_in_threadpool(_store(request).list_tokens, _caller(request).name)
    return {"tokens": [t.to_dict() for t in found]}


@router.post("/me/tokens", status_code=201)
async def create_my_token(request: Request, body: Annotated[Any, Body()] = None) -> dict[str, Any]:
    """A new token for the caller (the secret is in this answer only)."""
    ident = _caller(request)
    if ident.name == "anonymous":
        raise InvalidInput("create users first: an open server has no one to give a token to")
    token_name, days = _token_spec(body)
    made = await run_in_threadpool(
        lambda: _store(request).create_token(ident.name, token_name, expires_in_days=days)
    )
    return {"token": made.to_dict()}


@router.delete("/me/tokens/{token_id}")
async def revoke_my_token(token_id: str, request: Request) -> dict[str, Any]:
    """Revoke one of the caller's tokens."""
    store = _store(request)
    if await run_in_threadpool(store.token_owner, token_id) != _caller(request).name:
        raise PermissionDenied("that token belongs to someone else")
    await run_in_threadpool(store.revoke_token, token_id)
    return {"revoked": token_id}


# -- workspaces and grants ----------------------------------------------------------------------
@router.get("/admin/workspaces")
async def list_workspaces(request: Request) -> dict[str, Any]:
    """Every workspace."""
    return {"workspaces": await run_in_threadpool(_store(request).list_workspaces)}


@router.post("/admin/workspaces", status_code=201)
async def create_workspace(
    request: Request, body: Annotated[Any, Body()] = None
) -> dict[str, Any]:
    """``{"name", "description"?}``."""
    spec = _body(body, {"name"}, {"description"})
    made = await run_in_threadpool(
        _store(request).create_workspace, spec["name"], str(spec.get("description", ""))
    )
    return {"workspace": made}


def _grant(spec: dict[str, Any]) -> dict[str, str]:
    out = {}
    for key in ("user", "role", "object_type", "object_name"):
        value = spec.get(key, "")
        if not isinstance(value, str):
            raise InvalidInput(f"{key} must be a string")
        out[key] = value
    return out


async def _note_grant(
    request: Request, user: str, workspace: str, object_type: str, object_name: str
) -> None:
    """Put the grant's current role (``before``) and scope in the audit event."""
    found = await run_in_threadpool(_store(request).list_grants, workspace)
    before = next(
        (
            g["role"]
            for g in found
            if g["user"] == user
            and g["object_type"] == object_type
            and g["object_name"] == object_name
        ),
        None,
    )
    note_change(
        request, user=user, object_type=object_type, object_name=object_name, before=before
    )


@router.get("/grants")
async def list_grants(request: Request) -> dict[str, Any]:
    """The grants of the request's workspace (managers)."""
    found = await run_in_threadpool(_store(request).list_grants, _workspace(request))
    return {"grants": found}


@router.post("/grants", status_code=201)
async def add_grant(request: Request, body: Annotated[Any, Body()] = None) -> dict[str, Any]:
    """Give a role in the request's workspace: ``{"user", "role", "object_type"?,
    "object_name"?}`` (managers)."""
    spec = _grant(_body(body, {"user", "role"}, {"object_type", "object_name"}))
    workspace = _workspace(request)
    await _note_grant(request, spec["user"], workspace, spec["object_type"], spec["object_name"])
    await run_in_threadpool(
        lambda: _store(request).add_grant(
            spec["user"],
            workspace,
            spec["role"],
            object_type=spec["object_type"],
            object_name=spec["object_name"],
        )
    )
    note_change(request, after=spec["role"])
    return {"grant": {**spec, "workspace": workspace}}


@router.delete("/grants")
async def remove_grant(
    request: Request,
    user: str,
    object_type: str = "",
    object_name: str = "",
) -> dict[str, Any]:
    """Take a grant back (managers)."""
    workspace = _workspace(request)
    await _note_grant(request, user, workspace, object_type, object_name)
    note_change(request, after=None)
    await run_in_threadpool(
        lambda: _store(request).remove_grant(
            user, workspace, object_type=object_type, object_name=object_name
        )
    )
    return {"removed": {"user": user, "workspace": workspace}}


# -- audit ----------------------------------------------------------------------------------------
async def _events(request: Request, **filters: Any) -> dict[str, Any]:
    found = await run_in_threadpool(lambda: _store(request).audit_log(**filters))
    return {"events": [e.to_dict() for e in found]}


@router.get("/audit")
async def workspace_audit(
    request: Request,
    actor: str | None = None,
    object_type: str | None = None,
    object_name: str | None = None,
    limit: Limit = 100,
) -> dict[str, Any]:
    """The request's workspace's audit log, newest first (managers)."""
    return await _events(
        request,
        actor=actor,
        workspace=_workspace(request),
        object_type=object_type,
        object_name=object_name,
        limit=limit,
    )


@router.get("/admin/audit")
async def all_audit(
    request: Request,
    actor: str | None = None,
    workspace: str | None = None,
    object_type: str | None = None,
    object_name: str | None = None,
    limit: Limit = 100,
) -> dict[str, Any]:
    """The whole audit log, newest first (admins)."""
    return await _events(
        request,
        actor=actor,
        workspace=workspace,
        object_type=object_type,
        object_name=object_name,
        limit=limit,
    )
