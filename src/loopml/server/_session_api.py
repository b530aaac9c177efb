"""Sign-in for the web UI: ``POST /api/v1/session`` checks a password and sets an HttpOnly,
SameSite=Strict session cookie (Secure over HTTPS); ``GET`` says who the cookie belongs to and
gives its CSRF token; ``DELETE`` signs out. Sign-in attempts are rate-limited per client
address, on top of the account lockout of the identity store."""

from __future__ import annotations

import collections
import threading
import time
from typing import Annotated, Any

from fastapi import APIRouter, Body, Request, Response
from fastapi.concurrency import run_in_threadpool

from loopml.config import get_settings
from loopml.errors import InvalidInput, InvalidState, RateLimited, Unauthenticated
from loopml.server._auth import ANONYMOUS, SESSION_COOKIE, session_of
from loopml.server._identity import SESSION_HOURS, Identity, SqlIdentityStore, csrf_token
from loopml.server._tracking_api import JsonRoute

router = APIRouter(prefix="/api/v1", tags=["access"], route_class=JsonRoute)

ATTEMPTS_PER_MINUTE = 10


class AttemptLimiter:
    """At most ``limit`` attempts per ``window`` seconds for each key (a client address)."""

    def __init__(self, limit: int = ATTEMPTS_PER_MINUTE, window: float = 60.0) -> None:
        self.limit, self.window = limit, window
        self._seen: dict[str, collections.deque[float]] = {}
        self._lock = threading.Lock()

    def check(self, key: str) -> None:
        """Count one attempt, or raise ``RateLimited`` if ``key`` is over its limit."""
        now = time.monotonic()
        with self._lock:
            if len(self._seen) > 10_000:  # forget idle clients rather than grow without bound
                self._seen = {k: q for k, q in self._seen.items() if q and q[-1] > now - 60}
            seen = self._seen.setdefault(key, collections.deque())
            while seen and seen[0] <= now - self.window:
                seen.popleft()
            if len(seen) >= self.limit:
                wait = int(seen[0] + self.window - now) + 1
                raise RateLimited(f"too many sign-in attempts: try again in {wait} s")
            seen.append(now)


def _store(request: Request) -> SqlIdentityStore:
    return request.app.state.identity_store  # type: ignore[no-any-return]


def _limiter(request: Request) -> AttemptLimiter:
    state = request.app.state
    if not hasattr(state, "sign_in_limiter"):
        state.sign_in_limiter = AttemptLimiter()
    return state.sign_in_limiter  # type: ignore[no-any-return]


def _describe(identity: Identity | None, enabled: bool, session: str) -> dict[str, Any]:
    if identity is None:
        return {"auth_enabled": enabled, "user": None}
    return {
        "auth_enabled": enabled,
        "user": identity.name if identity is not ANONYMOUS else None,
        "admin": identity.is_admin,
        "roles": identity.roles,
        "csrf_token": csrf_token(session) if session else None,
    }


@router.get("/session")
def get_session(request: Request) -> dict[str, Any]:
    """Whether access control is on, and who the session cookie signs in (null: nobody)."""
    state = request.scope.get("state", {})
    session = session_of(dict(request.scope["headers"]))
    return _describe(state.get("identity"), bool(state.get("auth_enabled")), session)


@router.post("/session")
async def sign_in(
    request: Request, response: Response, body: Annotated[Any, Body()] = None
) -> dict[str, Any]:
    """``{"username", "password"}``: sets the session cookie and answers its CSRF token."""
    if not isinstance(body, dict):
        raise InvalidInput("the body must be a JSON object")
    for key in ("username", "password"):
        if not isinstance(body.get(key), str) or not body[key]:
            raise InvalidInput(f"{key} is required (a string)")
    unknown = sorted(set(body) - {"username", "password"})
    if unknown:
        raise InvalidInput(f"unknown field {unknown[0]!r}")
    if not request.scope.get("state", {}).get("auth_enabled"):
        raise InvalidState(
            "access control is off (no user exists): there is nothing to sign in to"
        )
    client = (request.scope.get("client") or ("", 0))[0]
    _limiter(request).check(str(client))
    store = _store(request)
    status = 500
    try:
        session = await run_in_threadpool(
            lambda: store.start_session(body["username"], body["password"], remote=str(client))
        )
        status = 200
    except Unauthenticated:
        status = 401
        raise
    finally:
        actor = body["username"] if status == 200 else f"(sign-in as {body['username']!r})"
        await run_in_threadpool(
            store.audit,
            actor=actor[:255],
            workspace="",
            action="POST /api/v1/session",
            status=status,
            remote=str(client),
        )
    secret = str(session.secret)
    response.set_cookie(
        SESSION_COOKIE,
        secret,
        max_age=SESSION_HOURS * 3600,
        path="/",
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https" or get_settings().secure_cookies,
    )
    identity = await run_in_threadpool(store.identity, session.user)
    return {**_describe(identity, True, secret), "expires_at": session.expires_at}


@router.delete("/session")
async def sign_out(request: Request, response: Response) -> dict[str, Any]:
    """Ends the session of the cookie (if any) and clears the cookie."""
    session = session_of(dict(request.scope["headers"]))
    if session:
        await run_in_threadpool(_store(request).end_session, session)
    response.delete_cookie(SESSION_COOKIE, path="/", httponly=True, samesite="strict")
    return {}
