"""Request size limits: a body over the limit is refused with 413 before it is read whole.

Uploads of artifacts (``PUT`` of files) are streamed to the artifact store and have no limit
here; every other body (JSON) is capped at ``LOOPML_MAX_REQUEST_MB`` (default 64 MiB). JSON
nesting is bounded by the parsers themselves (orjson stops at depth 1024), which answer 400.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

import orjson

__all__ = ["BodyLimit"]

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]


class BodyLimit:
    """ASGI middleware refusing request bodies over ``max_bytes`` (uploads excepted)."""

    def __init__(self, app: Any, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    def __getattr__(self, name: str) -> Any:  # state, routes, openapi ... of the app behind
        return getattr(self.app, name)

    async def __call__(
        self,
        scope: Scope,
        receive: Callable[[], Awaitable[Message]],
        send: Callable[[Message], Awaitable[None]],
    ) -> None:
        if scope["type"] != "http" or scope["method"] == "PUT":
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers") or [])
        declared = headers.get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_bytes:
            await self._refuse(send)
            return
        if declared is not None:
            await self.app(scope, receive, send)
            return
        # no length given (chunked): read it here, up to the limit, then hand it on
        chunks, seen = [], 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                return  # the client went away
            chunk = message.get("body", b"")
            seen += len(chunk)
            if seen > self.max_bytes:
                await self._refuse(send)
                return
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        body, replayed = b"".join(chunks), False

        async def replay() -> Message:
            nonlocal replayed
            if replayed:
                return await receive()
            replayed = True
            return {"type": "http.request", "body": body, "more_body": False}

        await self.app(scope, replay, send)

    async def _refuse(self, send: Callable[[Message], Awaitable[None]]) -> None:
        body = orjson.dumps(
            {
                "error_code": "REQUEST_TOO_LARGE",
                "message": f"the request body is over {self.max_bytes} bytes",
            }
        )
        await send(
            {
                "type": "http.response.start",
                "status": 413,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode()),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})
