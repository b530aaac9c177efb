"""The native protocol's hot path as a bare ASGI layer in front of the FastAPI app.

``POST /predict``, ``POST /predict/batch`` and KServe v2's ``POST /v2/models/{name}/infer`` are
answered here, without FastAPI's routing,
dependency solving and middleware stack (a measured third of a request's CPU time); every other
request, and these routes' OpenAPI description, goes to the app behind. Behaviour is the same as
the app's own routes: the body limit (413), JSON errors naming the field (400), overload (503 with
``Retry-After``), variant headers, and a 500 only for a server-side fault.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Awaitable, Callable
from typing import Any

import orjson
from starlette.requests import Request

from loopml.errors import InvalidInput, LoopmlError, Overloaded
from loopml.serving._service import InferenceService, Prediction

__all__ = ["FastPath", "parse_instances"]

_log = logging.getLogger("loopml.serving")
_PATHS = frozenset({"/predict", "/predict/batch"})
_V2 = re.compile(r"^/v2/models/(?P<name>[^/]+)(?:/versions/(?P<version>[^/]+))?/infer$")
_JSON = (b"content-type", b"application/json")


def parse_instances(raw: bytes) -> tuple[list[Any], bool]:
    """The instances of a native request body, and whether it sent a single one."""
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise InvalidInput(f"the request body is not valid JSON: {exc}") from exc
    if isinstance(body, dict) and "instances" in body:
        body = body["instances"]
        if not isinstance(body, list):
            raise InvalidInput("'instances' must be a list of objects")
        return body, False
    if isinstance(body, dict):
        return [body], True
    if isinstance(body, list):
        return body, False
    raise InvalidInput("the body must be an instance (a JSON object) or a list of them")


class _TooLarge(Exception):
    pass


class FastPath:
    """ASGI app: the native predict routes here, everything else to ``app``."""

    def __init__(
        self,
        app: Any,
        service: InferenceService,
        max_body_bytes: int,
        *,
        v2_infer: Callable[[Request, str, str | None], Awaitable[Any]] | None = None,
    ) -> None:
        self.app = app
        self.service = service
        self.max_body_bytes = max_body_bytes
        self.v2_infer = v2_infer

    def __getattr__(self, name: str) -> Any:  # state, router, openapi ... of the app behind
        return getattr(self.app, name)

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http" or scope["method"] != "POST":
            await self.app(scope, receive, send)
            return
        path = scope["path"]
        if path not in _PATHS:
            v2 = _V2.match(path) if self.v2_infer is not None else None
            if v2 is None:
                await self.app(scope, receive, send)
                return
            # KServe v2 infer: its own handler, without FastAPI's routing and middleware
            scope["app"] = self.app
            assert self.v2_infer is not None
            try:
                response = await self.v2_infer(Request(scope, receive), v2["name"], v2["version"])
            except Exception as exc:
                _log.exception("POST %s failed", path)
                await _send(send, 500, {"error": f"internal error: {type(exc).__name__}"})
                return
            await response(scope, receive, send)
            return
        headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}
        pred: Prediction | None = None
        try:
            raw = await self._body(headers, receive)
            records, single = parse_instances(raw)
            pred = await self.service.predict(records, headers=headers)
        except _TooLarge:
            message = f"the body exceeds {self.max_body_bytes} bytes"
            await _send(send, 413, {"error_code": "REQUEST_TOO_LARGE", "message": message})
            return
        except LoopmlError as exc:
            extra = dict(getattr(exc, "headers", None) or {})
            if isinstance(exc, Overloaded):
                extra["retry-after"] = "1"
            elif exc.http_status >= 500:
                _log.error("POST %s failed: %s", scope["path"], exc)
            body = {"error_code": exc.code, "message": str(exc)}
            await _send(send, exc.http_status, body, extra)
            return
        except Exception as exc:
            _log.exception("POST %s failed", scope["path"])
            body = {
                "error_code": "INTERNAL_ERROR",
                "message": f"internal error: {type(exc).__name__}",
            }
            await _send(send, 500, body)
            return
        out = pred.outputs
        answer: dict[str, Any] = (
            {"prediction": out[0]}
            if single and scope["path"] == "/predict"
            else {"predictions": out}
        )
        variant = pred.variant
        answer["model_version"] = variant.model_version
        answer["variant"] = variant.spec.name
        answer["prediction_id"] = pred.prediction_id
        await _send(send, 200, answer, pred.headers)

    async def _body(self, headers: dict[str, str], receive: Any) -> bytes:
        limit = self.max_body_bytes
        declared = headers.get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            raise _TooLarge()
        chunks, size = [], 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                raise InvalidInput("the client went away before sending the body")
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > limit:
                raise _TooLarge()
            chunks.append(chunk)
            if not message.get("more_body", False):
                return chunks[0] if len(chunks) == 1 else b"".join(chunks)


async def _send(send: Any, status: int, body: Any, headers: dict[str, str] | None = None) -> None:
    payload = orjson.dumps(body, option=orjson.OPT_SERIALIZE_NUMPY)
    raw = [_JSON, (b"content-length", str(len(payload)).encode())]
    if headers:
        raw.extend((k.encode("latin-1"), v.encode("latin-1")) for k, v in headers.items())
    await send({"type": "http.response.start", "status": status, "headers": raw})
    await send({"type": "http.response.body", "body": payload})
