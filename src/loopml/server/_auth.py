"""Access control for every route of ``loopml server``, in one ASGI layer in front of the app:
a route added later is covered without doing anything.

- With no user in the database (the embedded experience), requests pass as ``anonymous``.
- Once a user exists, every request but ``GET /health``, the web UI's static files and sign-in
  needs ``Authorization: Bearer <token>`` or the web UI's session cookie (401 otherwise); a
  change made with the cookie also needs its ``X-CSRF-Token`` (403 otherwise). The caller's
  role in the request's workspace (``X-Loopml-Workspace``, default the server's) must cover
  what the request does (403 otherwise): reading needs ``reader``, changing needs ``editor``,
  deleting needs ``manager``, administration needs an admin. A grant on one registered model
  or deployment counts for that object's routes.
- Every change (any request that is not a read) is appended to the audit log with who, what,
  where from and the outcome, whatever the outcome.
"""

from __future__ import annotations

import hmac
import logging
import re
import time
from collections.abc import Awaitable, Callable, MutableMapping
from http.cookies import SimpleCookie
from typing import Any

import orjson
from starlette.concurrency import run_in_threadpool

from loopml.server._identity import Identity, SqlIdentityStore, csrf_token
from loopml.server._limits import BodyStalled, send_error

__all__ = ["AccessControl", "acting_user", "note_change", "required_role"]

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

_log = logging.getLogger("loopml.server.audit")
WORKSPACE_HEADER = b"x-loopml-workspace"
OPEN = frozenset({("GET", "/health"), ("HEAD", "/health"), ("GET", "/"), ("HEAD", "/")})
UI_STATIC = "/ui/"  # the web UI's scripts and styles: public, they hold no data
SESSION_PATH = "/api/v1/session"  # sign-in, sign-out, who am I: the route decides
SESSION_COOKIE = "loopml_session"
CSRF_HEADER = b"x-csrf-token"
_SAFE = ("GET", "HEAD", "OPTIONS")
_READ_POSTS = re.compile(
    r"(/search$|/features/(online|historical|skew)$|/validate$|/latest-versions$)"
)
# definitions name files the server reads, and reading an on-demand view's spec unpickles code
_ADMIN_POSTS = re.compile(r"^/api/v1/features/(plan|apply)$")
_MLFLOW_DELETE = re.compile(r"^/(ajax-)?api/2\.0/mlflow/[\w-]+/delete$")
_OBJECT = re.compile(r"^/api/v1/(models|deployments)/([^/]+)")
_MLFLOW_MODEL = re.compile(r"^/(ajax-)?api/2\.0/mlflow/(registered-models|model-versions)/")
_PEEK_LIMIT = 1 << 20  # a registry body larger than this is not searched for the model name
_OBJECT_TYPES = {"models": "model", "deployments": "deployment"}
ANONYMOUS = Identity(name="anonymous", is_admin=True)
_OPEN_RECHECK_SECONDS = 1.0  # an open server notices its first user within this


def acting_user(request: Any, declared: str | None = None) -> str | None:
    """Who to record as making a change: the signed-in caller when access control is on (a
    self-declared ``user_id`` is then ignored), else what the client declared."""
    identity = request.scope.get("state", {}).get("identity")
    if isinstance(identity, Identity) and identity is not ANONYMOUS:
        return identity.name
    return declared


def note_change(request: Any, **detail: Any) -> None:
    """Add ``detail`` (e.g. ``before=``, ``after=``) to this request's audit event."""
    request.scope.setdefault("state", {}).setdefault("audit", {}).update(detail)


def required_role(method: str, path: str) -> str:
    """The role a request needs: ``self`` (any signed-in caller, about itself), ``reader``,
    ``editor``, ``manager`` or ``admin``."""
    if path.startswith("/api/v1/admin/") or _ADMIN_POSTS.match(path):
        return "admin"
    if path == "/api/v1/me" or path.startswith("/api/v1/me/"):
        return "self"
    if path.startswith(("/api/v1/grants", "/api/v1/audit")):
        return "manager"
    if method in ("GET", "HEAD", "OPTIONS"):
        return "reader"
    if method == "POST" and _READ_POSTS.search(path):
        return "reader"
    if method == "DELETE" or _MLFLOW_DELETE.match(path):
        return "manager"
    return "editor"


def _object_of(path: str) -> tuple[str, str] | None:
    match = _OBJECT.match(path)
    if match is None or match.group(2) == "search":
        return None
    return _OBJECT_TYPES[match.group(1)], match.group(2)


class AccessControl:
    """The ASGI middleware that authenticates, authorises and audits every request."""

    def __init__(
        self,
        app: Any,
        identities: SqlIdentityStore,
        *,
        default_workspace: str = "default",
        require_auth: bool = False,
    ) -> None:
        self.app = app
        self.identities = identities
        self.default_workspace = default_workspace
        self.require_auth = require_auth
        self._enabled: tuple[float, bool] = (0.0, False)

    def __getattr__(self, name: str) -> Any:  # state, routes, openapi ... of the app behind
        return getattr(self.app, name)

    async def _auth_enabled(self) -> bool:
        if self.require_auth:
            return True
        checked, enabled = self._enabled
        if enabled:
            return True  # once on, on until restart: disabling every user does not open it
        if time.monotonic() - checked > _OPEN_RECHECK_SECONDS:
            enabled = await run_in_threadpool(self.identities.has_users)
            self._enabled = (time.monotonic(), enabled)
        return enabled

    async def _identity(self, token: str, kind: str = "api") -> Identity | None:
        # looked up on every request, so a revoked token or a disabled user stops at once
        try:
            return await run_in_threadpool(self.identities.authenticate, token, kind)
        except Exception:  # noqa: BLE001 - a vanished user is simply refused
            return None

    async def _caller(
        self, method: str, headers: dict[bytes, bytes]
    ) -> tuple[Identity | None, str]:
        """Who is calling (a bearer token, else the session cookie), or None and why not."""
        auth = headers.get(b"authorization", b"").decode("latin-1")
        if auth:
            scheme, _, token = auth.partition(" ")
            found = await self._identity(token.strip()) if scheme.lower() == "bearer" else None
            return found, "a valid API token is required (Authorization: Bearer ...)"
        session = session_of(headers)
        if not session:
            return None, "a valid API token is required (Authorization: Bearer ...)"
        found = await self._identity(session, "session")
        if found is None:
            return None, "the session has ended: sign in again"
        if method not in _SAFE:
            given = headers.get(CSRF_HEADER, b"")  # bytes: any header value compares safely
            if not hmac.compare_digest(given, csrf_token(session).encode()):
                return found, "csrf"
        return found, ""

    async def _refuse(
        self, send: Send, scope: Scope, workspace: str, actor: str, status: int, message: str
    ) -> None:
        code = "UNAUTHENTICATED" if status == 401 else "PERMISSION_DENIED"
        method, path = scope["method"], scope["path"]
        if required_role(method, path) != "reader":  # refused changes are audited too, first
            obj = _object_of(path) or scope.get("state", {}).get("audit_object") or ("", "")
            await run_in_threadpool(
                self.identities.audit,
                actor=actor,
                workspace=workspace,
                action=f"{method} {path}",
                object_type=obj[0],
                object_name=obj[1],
                status=status,
                remote=str((scope.get("client") or ("", 0))[0]),
            )
        await _refuse(send, status, code, message)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        method, path = scope["method"], scope["path"]
        raw_headers = scope.get("headers") or []
        headers = dict(raw_headers)
        for name in (WORKSPACE_HEADER, b"authorization"):
            if sum(1 for key, _ in raw_headers if key == name) > 1:  # which one would count?
                message = f"the {name.decode()} header is given more than once"
                await send_error(send, 400, "BAD_REQUEST", message)
                return
        workspace = headers.get(WORKSPACE_HEADER, b"").decode("latin-1") or self.default_workspace
        if (method, path) in OPEN or (method in _SAFE and path.startswith(UI_STATIC)):
            await self.app(scope, receive, send)
            return
        enabled = await self._auth_enabled()
        if path == SESSION_PATH:  # sign-in and sign-out check for themselves
            state = scope.setdefault("state", {})
            state["auth_enabled"] = enabled
            state["identity"] = (await self._caller("GET", headers))[0] if enabled else ANONYMOUS
            await self.app(scope, receive, send)
            return
        identity = ANONYMOUS
        if enabled:
            found, why = await self._caller(method, headers)
            if found is not None and why == "csrf":
                message = "a change made with the session cookie needs its X-CSRF-Token header"
                await self._refuse(send, scope, workspace, found.name, 403, message)
                return
            if found is None:
                await self._refuse(send, scope, workspace, "anonymous", 401, why)
                return
            need = required_role(method, path)
            if need == "admin":
                allowed = found.is_admin
            else:
                allowed = need == "self" or found.can(workspace, need, _object_of(path))
            if not allowed and need != "admin" and _MLFLOW_MODEL.match(path):
                # the MLflow registry routes name the model in the query or the body: a grant
                # on that one model counts there too
                name, receive = await _mlflow_model_name(scope, receive)
                if name:
                    scope.setdefault("state", {})["audit_object"] = ("model", name)
                    allowed = found.can(workspace, need, ("model", name))
            if not allowed:
                what = (
                    "an admin" if need == "admin" else f"role {need!r} in workspace {workspace!r}"
                )
                message = f"{found.name} needs {what}"
                await self._refuse(send, scope, workspace, found.name, 403, message)
                return
            identity = found
        scope.setdefault("state", {})["identity"] = identity
        if required_role(method, path) == "reader" or (
            method in ("GET", "HEAD") and path.startswith(("/api/v1/admin/", "/api/v1/me"))
        ):
            await self.app(scope, receive, send)
            return
        status, written = 500, False

        async def record() -> None:
            nonlocal written
            if written:
                return
            written = True
            obj = _object_of(path) or scope.get("state", {}).get("audit_object") or ("", "")
            client = scope.get("client") or ("", 0)
            try:
                await run_in_threadpool(
                    self.identities.audit,
                    actor=identity.name,
                    workspace=workspace,
                    action=f"{method} {path}",
                    object_type=obj[0],
                    object_name=obj[1],
                    status=status,
                    remote=str(client[0]),
                    detail=scope.get("state", {}).get("audit"),
                )
            except Exception:  # the answer must still go out; the failure is logged loudly
                _log.exception("could not write the audit event of %s %s", method, path)

        async def watch(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            elif message["type"] == "http.response.body" and not message.get("more_body"):
                await record()  # in the log before the client hears the answer
            await send(message)

        try:
            await self.app(scope, receive, watch)
        except BodyStalled:
            status = 408  # the timeout layer outside answers it
            raise
        finally:
            await record()  # the app failed before answering


async def _mlflow_model_name(scope: Scope, receive: Receive) -> tuple[str, Receive]:
    """The model an MLflow registry request names, read from where its handler reads it (the
    query string for GET and for a DELETE without a body, the JSON body otherwise; see
    ``request_fields``), and a ``receive`` that replays the body read to find it. A name
    given twice, or a body too large to look into, names nothing."""
    from urllib.parse import parse_qs

    def from_query() -> str:
        query = parse_qs(scope.get("query_string", b"").decode("latin-1"))
        names = query.get("name", [])
        return names[0] if len(names) == 1 else ""

    if scope["method"] == "GET":
        return from_query(), receive
    chunks, size = [], 0
    while True:
        message = await receive()
        if message["type"] != "http.request":
            return "", receive
        chunk = message.get("body", b"")
        chunks.append(chunk)
        size += len(chunk)
        if not message.get("more_body", False) or size > _PEEK_LIMIT:
            break
    body, more = b"".join(chunks), bool(message.get("more_body", False))
    replayed = False

    async def replay() -> Message:
        nonlocal replayed
        if replayed:
            return await receive()
        replayed = True
        return {"type": "http.request", "body": body, "more_body": more}

    if more:
        return "", replay
    if scope["method"] == "DELETE" and not body.strip():
        return from_query(), replay
    try:
        parsed = orjson.loads(body)
    except orjson.JSONDecodeError:
        return "", replay
    name = parsed.get("name") if isinstance(parsed, dict) else None
    return (name if isinstance(name, str) else ""), replay


def session_of(headers: dict[bytes, bytes]) -> str:
    """The session cookie's value, or ""."""
    raw = headers.get(b"cookie", b"").decode("latin-1")
    if SESSION_COOKIE not in raw:
        return ""
    cookie: SimpleCookie = SimpleCookie()
    try:
        cookie.load(raw)
    except Exception:  # noqa: BLE001 - a malformed cookie header is no session
        return ""
    morsel = cookie.get(SESSION_COOKIE)
    return morsel.value if morsel is not None else ""


async def _refuse(send: Send, status: int, code: str, message: str) -> None:
    extra = [(b"www-authenticate", b'Bearer realm="loopml"')] if status == 401 else None
    await send_error(send, status, code, message, extra=extra)
