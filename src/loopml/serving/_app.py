"""The inference server's ASGI app: every protocol on one port, plus health and metrics.

``POST /predict`` takes one instance (a JSON object of feature → value) and answers
``{"prediction": ...}``; given a list of instances, or ``{"instances": [...]}``, it answers
``{"predictions": [...]}``. ``POST /predict/batch`` takes a list or ``{"instances": [...]}``.
Native answers also name the variant, the model version and the prediction id (in the body and in
``X-Loopml-Variant``, ``X-Loopml-Model-Version`` and ``X-Prediction-Id`` headers). Bad input is a
400 ``{"error_code", "message"}`` naming the field, a body over the limit a 413, a full queue a
503 with ``Retry-After``; nothing a client sends makes a 500.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, Request, Response
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException

from loopml.errors import InvalidInput, LoopmlError, Overloaded
from loopml.serving._batcher import BatchingConfig
from loopml.serving._fastpath import FastPath, parse_instances
from loopml.serving._http import MAX_BODY_BYTES, BodyTooLarge, json_response, read_body
from loopml.serving._kserve import kserve_router
from loopml.serving._metrics import CONTENT_TYPE_LATEST
from loopml.serving._runtime import ModelRuntime
from loopml.serving._service import InferenceService
from loopml.serving._tfserving import tf_serving_router

__all__ = ["create_serving_app"]

_log = logging.getLogger("loopml.serving")
RETRY_AFTER_SECONDS = 1
_json = json_response


def _error(status: int, code: str, message: str, headers: dict[str, str] | None = None) -> Any:
    return _json({"error_code": code, "message": message}, status, headers)


async def _instances(request: Request) -> tuple[list[dict[str, Any]], bool]:
    """The request's instances, and whether it sent a single one."""
    return parse_instances(await read_body(request))


def create_serving_app(
    target: ModelRuntime | InferenceService,
    *,
    batching: BatchingConfig | None = None,
    max_body_bytes: int = MAX_BODY_BYTES,
) -> Any:
    """The inference server (an ASGI app) for a loaded model or a deployment's service.

    The native predict routes are answered by a bare ASGI layer in front of the FastAPI app
    (``FastPath``); attributes such as ``state`` are the FastAPI app's.
    """
    service = (
        target
        if isinstance(target, InferenceService)
        else InferenceService.for_runtime(target, batching=batching)
    )

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        follower = getattr(service, "follower", None)
        if follower is not None:
            follower.start()
        try:
            yield
        finally:
            if follower is not None:
                await asyncio.to_thread(follower.stop)
            for v in service.table.variants:
                v.batcher.close()
            if service.prediction_log is not None:
                close = getattr(service.prediction_log, "close", None)
                if close is not None:
                    close()

    app = FastAPI(title="loopml serving", description=f"Serving {service.name}", lifespan=lifespan)
    app.router.redirect_slashes = False
    app.state.service = service
    app.state.max_body_bytes = max_body_bytes
    app.include_router(tf_serving_router(service))
    v2 = kserve_router(service)
    app.include_router(v2)

    @app.get("/health")
    def health() -> dict[str, str]:
        """Liveness."""
        return {"status": "ok"}

    @app.get("/ready")
    def ready() -> dict[str, Any]:
        """Readiness: the models are loaded and warmed up (the app exists only then)."""
        return {"ready": True, "model_uri": service.primary.runtime.model_uri}

    @app.get("/model/info")
    def model_info() -> dict[str, Any]:
        """Name, version, flavor, runtime, signature and load time of the served model."""
        return service.info()

    @app.get("/metrics")
    def metrics() -> Response:
        """Prometheus metrics in the text exposition format."""
        return Response(service.metrics.render(), media_type=CONTENT_TYPE_LATEST)

    def answer(pred: Any, body: dict[str, Any]) -> Response:
        body["model_version"] = pred.variant.model_version
        body["variant"] = pred.variant.spec.name
        body["prediction_id"] = pred.prediction_id
        return _json(body, headers=pred.headers)

    @app.post("/predict")
    async def predict(request: Request) -> Response:
        """Predict one instance, or a list of instances."""
        records, single = await _instances(request)
        pred = await service.predict(records, headers=request.headers)
        out = pred.outputs
        return answer(pred, {"prediction": out[0]} if single else {"predictions": out})

    @app.post("/predict/batch")
    async def predict_batch(request: Request) -> Response:
        """Predict many instances in one model call."""
        records, _ = await _instances(request)
        pred = await service.predict(records, headers=request.headers)
        return answer(pred, {"predictions": pred.outputs})

    @app.exception_handler(LoopmlError)
    async def loopml_error(request: Request, exc: LoopmlError) -> Response:
        if isinstance(exc, Overloaded):
            headers = {"Retry-After": str(RETRY_AFTER_SECONDS)}
            return _error(503, exc.code, str(exc), headers)
        if exc.http_status >= 500:
            _log.error("%s %s failed: %s", request.method, request.url.path, exc)
        return _error(exc.http_status, exc.code, str(exc), getattr(exc, "headers", None))

    @app.exception_handler(BodyTooLarge)
    async def too_large(request: Request, exc: BodyTooLarge) -> Response:
        return _error(413, "REQUEST_TOO_LARGE", f"the body exceeds {max_body_bytes} bytes")

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

    return FastPath(app, service, max_body_bytes, v2_infer=v2.infer)  # type: ignore[attr-defined]
