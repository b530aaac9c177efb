"""TF Serving's v1 REST API: ``POST /v1/models/{name}[/versions/{v}]:predict`` with ``instances``
(row format) or ``inputs`` (columnar format), and ``GET /v1/models/{name}`` model status.

Row instances are objects of feature → value, or lists of values in the signature's column
order; columnar ``inputs`` is an object of feature → list of values, or one list of rows.
Errors answer ``{"error": message}`` as TF Serving does (400 for bad input, 404 for another
model or version).
"""

from __future__ import annotations

from typing import Any

import orjson
from fastapi import APIRouter, Request, Response

from loopml.errors import InvalidInput, LoopmlError, NotFound, Overloaded
from loopml.serving._http import json_response, read_body
from loopml.serving._service import InferenceService, Variant

__all__ = ["tf_serving_router"]


_json = json_response


def _check(service: InferenceService, name: str, version: str | None) -> None:
    if not service.serves(name):
        raise NotFound(
            f"Servable not found for request: Latest({name}); this server serves {service.name}"
        )
    if version is not None:
        try:
            service.table.by_version(version)
        except NotFound as exc:
            raise NotFound(
                f"Servable not found for request: Specific({name}, {version}); "
                f"this server serves {exc}"
            ) from exc


def _first(body: Any) -> Any:
    """The body's first instance when it is an object (where a unit id field may be)."""
    if not isinstance(body, dict):
        return None
    rows = body.get("instances", body.get("inputs"))
    if isinstance(rows, list):
        return rows[0] if rows else None
    if isinstance(rows, dict):
        return {k: v[0] for k, v in rows.items() if isinstance(v, list) and v}
    return None


def _records(variant: Variant, body: Any) -> tuple[list[dict[str, Any]], bool]:
    """Records from a TF Serving body (lists of values named by ``variant``'s signature), and
    whether it used the columnar format."""
    if not isinstance(body, dict) or ("instances" in body) == ("inputs" in body):
        raise InvalidInput("the body must hold exactly one of 'instances' or 'inputs'")
    signature = variant.runtime.model.signature
    columns = [] if signature is None else list(signature.input_names)
    if "instances" in body:
        rows = body["instances"]
        if not isinstance(rows, list) or not rows:
            raise InvalidInput("'instances' must be a non-empty list")
        return [_row(r, columns, i) for i, r in enumerate(rows)], False
    inputs = body["inputs"]
    if isinstance(inputs, dict):
        lengths = {len(v) if isinstance(v, list) else -1 for v in inputs.values()}
        if not inputs or len(lengths) != 1 or -1 in lengths:
            raise InvalidInput("'inputs' must map each feature to a list, all of one length")
        (n,) = lengths
        return [{k: v[i] for k, v in inputs.items()} for i in range(n)], True
    if isinstance(inputs, list) and inputs:
        return [_row(r, columns, i) for i, r in enumerate(inputs)], True
    raise InvalidInput("'inputs' must be an object of feature → values or a list of rows")


def _row(row: Any, columns: list[str], i: int) -> dict[str, Any]:
    if isinstance(row, dict):
        return row
    if isinstance(row, list):
        if not columns:
            raise InvalidInput("list instances need a model signature to name the columns")
        if len(row) != len(columns):
            raise InvalidInput(
                f"instance {i} has {len(row)} values; the model takes {len(columns)} "
                f"({', '.join(columns)})"
            )
        return dict(zip(columns, row, strict=True))
    raise InvalidInput(f"instance {i} must be an object or a list of values")


def tf_serving_router(service: InferenceService) -> APIRouter:
    """TF Serving's REST routes for one served model."""
    router = APIRouter(tags=["tf-serving"])

    async def predict(request: Request, name: str, version: str | None) -> Response:
        try:
            _check(service, name, version)
            try:
                body = orjson.loads(await read_body(request))
            except orjson.JSONDecodeError as exc:
                raise InvalidInput(f"the request body is not valid JSON: {exc}") from exc
            route = service.choose(headers=request.headers, version=version, first=_first(body))
            records, columnar = _records(route[0], body)
            pred = await service.predict(records, protocol="tfserving", route=route)
        except Overloaded as exc:
            return _json({"error": str(exc)}, 503, {"Retry-After": "1"})
        except LoopmlError as exc:
            return _json({"error": str(exc)}, exc.http_status, getattr(exc, "headers", None))
        out = pred.outputs
        return _json({"outputs": out} if columnar else {"predictions": out}, headers=pred.headers)

    @router.post("/v1/models/{name}:predict")
    async def predict_latest(name: str, request: Request) -> Response:
        """Predict with the served version."""
        return await predict(request, name, None)

    @router.post("/v1/models/{name}/versions/{version}:predict")
    async def predict_version(name: str, version: str, request: Request) -> Response:
        """Predict with a named version (it must be the served one)."""
        return await predict(request, name, version)

    def status(name: str, version: str | None) -> Response:
        try:
            _check(service, name, version)
        except NotFound as exc:
            return _json({"error": str(exc)}, 404)
        versions = sorted({v.model_version for v in service.table.live})
        if version is not None:
            versions = [version]
        states = [
            {
                "version": v,
                "state": "AVAILABLE",
                "status": {"error_code": "OK", "error_message": ""},
            }
            for v in versions
        ]
        return _json({"model_version_status": states})

    @router.get("/v1/models/{name}")
    def model_status(name: str) -> Response:
        """The served version's state."""
        return status(name, None)

    @router.get("/v1/models/{name}/versions/{version}")
    def version_status(name: str, version: str) -> Response:
        """One version's state."""
        return status(name, version)

    return router
