"""An optional bearer token for an inference server's predict routes (``LOOPML_SERVING_TOKEN``),
separate from the control plane's tokens: clients that may predict need not be able to change
anything else. Health, readiness, metadata and metrics (the GET routes) stay open for probes
and Prometheus."""

from __future__ import annotations

import hmac
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from loopml.serving._fastpath import _send

__all__ = ["PredictToken"]

Message = MutableMapping[str, Any]


class PredictToken:
    """ASGI middleware: every POST needs ``Authorization: Bearer <token>`` (401 otherwise)."""

    def __init__(self, app: Any, token: str) -> None:
        self.app = app
        self._expected = f"Bearer {token}".encode()

    def __getattr__(self, name: str) -> Any:  # state, routes ... of the app behind
        return getattr(self.app, name)

    async def __call__(
        self,
        scope: MutableMapping[str, Any],
        receive: Callable[[], Awaitable[Message]],
        send: Callable[[Message], Awaitable[None]],
    ) -> None:
        if scope["type"] == "http" and scope["method"] == "POST":
            given = dict(scope.get("headers") or []).get(b"authorization", b"")
            if not hmac.compare_digest(given, self._expected):
                message = "this server's predict routes need its serving token"
                await _send(
                    send,
                    401,
                    {"error_code": "UNAUTHENTICATED", "message": message},
                    {"www-authenticate": 'Bearer realm="loopml-serving"'},
                )
                return
        await self.app(scope, receive, send)
