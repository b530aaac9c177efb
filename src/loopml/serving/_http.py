"""Small HTTP helpers shared by the protocol routers: bounded body reads and JSON answers."""

from __future__ import annotations

from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response

__all__ = ["MAX_BODY_BYTES", "BodyTooLarge", "json_response", "read_body"]

MAX_BODY_BYTES = 16 * 1024 * 1024


class BodyTooLarge(Exception):
    """The request body is over the server's limit (answered 413)."""


def json_response(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    """A JSON response (numpy values allowed)."""
    return Response(
        orjson.dumps(body, option=orjson.OPT_SERIALIZE_NUMPY),
        status_code=status,
        media_type="application/json",
        headers=headers,
    )


async def read_body(request: Request) -> bytes:
    """The request body, refused once it passes the app's limit (without reading it all)."""
    limit: int = getattr(request.app.state, "max_body_bytes", MAX_BODY_BYTES)
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise BodyTooLarge()
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise BodyTooLarge()
        chunks.append(chunk)
    return b"".join(chunks)
