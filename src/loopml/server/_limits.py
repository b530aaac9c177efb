"""Request size and time limits: a body over the limit is refused with 413 before it is read
whole, and a client that stalls while sending its body gets 408 (``LOOPML_BODY_TIMEOUT_S``,
default 30 s between two parts), so a slow client cannot hold a worker for ever.

Uploads of artifacts (``PUT`` of files) are streamed to the artifact store and have no limit
here; every other body (JSON) is capped at ``LOOPML_MAX_REQUEST_MB`` (default 64 MiB). JSON
nesting is bounded by the parsers themselves (orjson stops at depth 1024), which answer 400.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

import orjson

__all__ = ["BodyLimit", "BodyStalled", "BodyTimeout", "send_error"]

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
        message = f"the request body is over {self.max_bytes} bytes"
        await send_error(send, 413, "REQUEST_TOO_LARGE", message)


class BodyStalled(BaseException):
    """Raised into the app from ``receive``; a BaseException, so that no handler of the app
    turns it into a 500 on the way out."""


class BodyTimeout:
    """ASGI middleware answering 408 when the next part of a request body takes longer than
    ``seconds`` to arrive (uploads included); outermost, so that every layer reading a body
    is covered."""

    def __init__(self, app: Any, seconds: float) -> None:
        self.app = app
        self.seconds = seconds

    def __getattr__(self, name: str) -> Any:
        return getattr(self.app, name)

    async def __call__(
        self,
        scope: Scope,
        receive: Callable[[], Awaitable[Message]],
        send: Callable[[Message], Awaitable[None]],
    ) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started, complete = False, False

        async def timed_receive() -> Message:
            # only the request body is timed: once it is whole, a receive() is the app
            # listening for the client going away (a streamed download), which may take long
            nonlocal complete
            if complete:
                return await receive()
            try:
                async with asyncio.timeout(self.seconds):  # no task per message, as wait_for
                    message = await receive()
            except TimeoutError:
                raise BodyStalled from None
            if message["type"] != "http.request" or not message.get("more_body", False):
                complete = True
            return message

        async def watch(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, timed_receive, watch)
        except BodyStalled:
            if not started:
                message = f"the request body stalled for over {self.seconds:g} s"
                await send_error(send, 408, "REQUEST_TIMEOUT", message, close=True)


async def send_error(
    send: Callable[[Message], Awaitable[None]],
    status: int,
    code: str,
    message: str,
    *,
    close: bool = False,
    extra: list[tuple[bytes, bytes]] | None = None,
) -> None:
    """Answer ``{"error_code", "message"}`` with ``status`` straight from ASGI (before the app,
    or instead of it)."""
    body = orjson.dumps({"error_code": code, "message": message})
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
        *(extra or []),
    ]
    if close:
        headers.append((b"connection", b"close"))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
