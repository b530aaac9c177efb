"""The inference server's ASGI app: the native JSON protocol and health routes.

``POST /predict`` takes one instance (a JSON object of feature → value) and answers
``{"prediction": ...}``; given a list of instances, or ``{"instances": [...]}``, it answers
``{"predictions": [...]}``. ``POST /predict/batch`` takes a list or ``{"instances": [...]}``.
Bad input is a 400 ``{"error_code", "message"}`` naming the field; nothing a client sends makes
a 500.
"""

from __future__ import annotations

import logging
from typing import Any

import orjson
from fastapi import FastAPI, Request, Response
from fastapi.exceptions import RequestValidationError
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException

from loopml.errors import InvalidInput, LoopmlError
from loopml.serving._runtime import ModelRuntime
from loopml.serving._tfserving import tf_serving_router

__all__ = ["create_serving_app"]

_log = logging.getLogger("loopml.serving")
MAX_BODY_BYTES = 16 * 1024 * 1024


def _json(body: Any, status: int = 200) -> Response:
    return Response(orjson.dumps(body), status_code=status, media_type="application/json")


def _error(status: int, code: str, message: str) -> Response:
    return _json({"error_code": code, "message": message}, status)


async def _instances(request: Request) -> tuple[list[dict[str, Any]], bool]:
    """The request's instances, and whether it sent a single one."""
    raw = await request.body()
    if len(raw) > MAX_BODY_BYTES:
        raise _TooLarge()
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


def create_serving_app(runtime: ModelRuntime) -> FastAPI:
    """The inference server for one loaded model."""
    app = FastAPI(title="loopml serving", description=f"Serving {runtime.model_uri}")
    app.router.redirect_slashes = False
    app.state.runtime = runtime
    app.include_router(tf_serving_router(runtime))

    @app.get("/health")
    def health() -> dict[str, str]:
        """Liveness."""
        return {"status": "ok"}

    @app.get("/ready")
    def ready() -> dict[str, Any]:
        """Readiness: the model is loaded and warmed up (the app exists only then)."""
        return {"ready": True, "model_uri": runtime.model_uri}

    @app.get("/model/info")
    def model_info() -> dict[str, Any]:
        """Name, version, flavor, runtime, signature and load time of the served model."""
        return runtime.info

    @app.post("/predict")
    async def predict(request: Request) -> Response:
        """Predict one instance, or a list of instances."""
        records, single = await _instances(request)
        out = await run_in_threadpool(runtime.predict_records, records)
        return _json({"prediction": out[0]} if single else {"predictions": out})

    @app.post("/predict/batch")
    async def predict_batch(request: Request) -> Response:
        """Predict many instances in one model call."""
        records, _ = await _instances(request)
        return _json({"predictions": await run_in_threadpool(runtime.predict_records, records)})

    @app.exception_handler(LoopmlError)
    async def loopml_error(request: Request, exc: LoopmlError) -> Response:
        if exc.http_status >= 500:
            _log.error("%s %s failed: %s", request.method, request.url.path, exc)
        return _error(exc.http_status, exc.code, str(exc))

    @app.exception_handler(_TooLarge)
    async def too_large(request: Request, exc: _TooLarge) -> Response:
        return _error(413, "REQUEST_TOO_LARGE", f"the body exceeds {MAX_BODY_BYTES} bytes")

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> Response:
        return _error(400, InvalidInput.code, f"invalid request: {exc.errors()}")

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> Response:
        return _error(exc.status_code, "HTTP_ERROR", str(exc.detail))

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> Response:
        _log.exception("%s %s failed", request.method, request.url.path)
        return _error(500, "INTERNAL_ERROR", f"internal error: {type(exc).__name__}")

    return app
