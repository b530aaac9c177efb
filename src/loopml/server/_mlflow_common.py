"""Shared pieces of the MLflow-compatible routes: prefixes, request fields, error bodies, and
the translation between loopml's artifact locations and ``mlflow-artifacts:/`` URIs.

MLflow's client sends GET parameters in the query string and everything else as a JSON body;
it ignores response fields it does not know and sends request fields a server may not know, so
unknown request fields are ignored here (a newer client must keep working). A missing or
mistyped known field is an ``INVALID_PARAMETER_VALUE`` naming it.
"""

from __future__ import annotations

import posixpath
import re
from collections.abc import Callable
from typing import Any

import orjson
from fastapi import APIRouter, Request, Response

from loopml.errors import (
    AlreadyExists,
    InvalidInput,
    InvalidState,
    LoopmlError,
    NotFound,
    Overloaded,
)

__all__ = [
    "MLFLOW_PREFIXES",
    "ArtifactUris",
    "Fields",
    "declare_fields",
    "include_twice",
    "mlflow_search_text",
    "json_response",
    "mlflow_error",
    "request_fields",
]

_INT = re.compile(r"-?[0-9]{1,19}")

# The client uses /api/2.0/mlflow; MLflow's web UI uses the /ajax-api alias.
MLFLOW_PREFIXES = ("/api/2.0/mlflow", "/ajax-api/2.0/mlflow")
COMPAT_PATH_PREFIXES = ("/api/2.0/", "/ajax-api/2.0/", "/api/3.0/", "/ajax-api/3.0/")


def include_twice(app: Any, router: APIRouter, *, tag: str) -> None:
    """Serve ``router`` under both MLflow prefixes (the alias is left out of the schema)."""
    app.include_router(router, prefix=MLFLOW_PREFIXES[0], tags=[tag])
    app.include_router(router, prefix=MLFLOW_PREFIXES[1], include_in_schema=False)


_STR: dict[str, Any] = {"type": "string"}
_KEY_VALUES = {
    "type": "array",
    "items": {"type": "object", "properties": {"key": _STR, "value": _STR}, "required": ["key"]},
}
_METRICS = {
    "type": "array",
    "items": {
        "type": "object",
        "properties": {
            "key": _STR,
            "value": {"type": "number"},
            "timestamp": {"type": "integer"},
            "step": {"type": "integer"},
        },
        "required": ["key", "value", "timestamp"],
    },
}
_FIELD_TYPES: dict[str, dict[str, Any]] = {
    "string": _STR,
    "integer": {"type": "integer"},
    "number": {"type": "number"},
    "boolean": {"type": "boolean"},
    "strings": {"type": "array", "items": _STR},
    "key-values": _KEY_VALUES,
    "metrics": _METRICS,
}


def declare_fields(method: str, **fields: str) -> dict[str, Any]:
    """``openapi_extra`` for a route that reads its fields by hand (``request_fields``): query
    parameters for GET, else a JSON object body. A type (``string``, ``integer``, ``number``,
    ``boolean``, ``strings``, ``key-values``, ``metrics``) ending in ``!`` is required.

    The schema then says what the route reads (so clients and the fuzz test know); unknown
    fields stay allowed, and the deprecated aliases MLflow still accepts are left out.
    """
    schemas = {name: _FIELD_TYPES[kind.rstrip("!")] for name, kind in fields.items()}
    required = [name for name, kind in fields.items() if kind.endswith("!")]
    if method.upper() == "GET":
        params = [
            {"name": name, "in": "query", "required": name in required, "schema": schema}
            for name, schema in schemas.items()
        ]
        return {"parameters": params}
    body: dict[str, Any] = {"type": "object", "properties": schemas}
    if required:
        body["required"] = required
    content = {"application/json": {"schema": body}}
    return {"requestBody": {"required": bool(required), "content": content}}


def mlflow_error(exc: LoopmlError) -> tuple[int, str]:
    """MLflow's (HTTP status, error code) for a loopml error.

    MLflow answers ``INVALID_STATE`` with 500, which its client retries; loopml sends the same
    code with 409, so the client raises the same ``MlflowException`` at once.
    """
    if isinstance(exc, NotFound):
        return 404, "RESOURCE_DOES_NOT_EXIST"
    if isinstance(exc, AlreadyExists):
        return 400, "RESOURCE_ALREADY_EXISTS"
    if isinstance(exc, InvalidInput):
        return 400, "INVALID_PARAMETER_VALUE"
    if isinstance(exc, InvalidState):
        return 409, "INVALID_STATE"
    if isinstance(exc, Overloaded):
        return 503, "TEMPORARILY_UNAVAILABLE"
    if exc.http_status == 409:
        return 409, "INVALID_STATE"
    if exc.http_status < 500:
        return 400, "INVALID_PARAMETER_VALUE"
    return 500, "INTERNAL_ERROR"


def json_response(body: dict[str, Any]) -> Response:
    """A JSON response (orjson; NaN is written as the string MLflow's protobuf JSON uses)."""
    return Response(orjson.dumps(body), media_type="application/json")


async def request_fields(request: Request) -> Fields:
    """The request's fields: the query string for GET, the JSON body otherwise (a DELETE's
    body when it has one — the client sends one — else its query string)."""
    raw = b"" if request.method == "GET" else await request.body()
    if request.method == "GET" or (request.method == "DELETE" and not raw.strip()):
        data: dict[str, Any] = {}
        for key, value in request.query_params.multi_items():
            if key in data:
                prev = data[key]
                data[key] = [*prev, value] if isinstance(prev, list) else [prev, value]
            else:
                data[key] = value
        return Fields(data, from_query=True)
    if not raw.strip():
        return Fields({}, from_query=False)
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise InvalidInput(f"the request body is not valid JSON: {exc}") from exc
    if not isinstance(data, dict):
        raise InvalidInput("the request body must be a JSON object")
    return Fields(data, from_query=False)


# MLflow reads these bare names in run filters and order_by as run attributes.
_BARE_ATTRIBUTES = re.compile(
    r"(?<![\w.`])(run_id|run_name|status|start_time|end_time|artifact_uri|user_id|"
    r"lifecycle_stage|experiment_id|created|Created)(?![\w.`])"
)
_QUOTED = re.compile(r"('(?:[^'\\]|\\.|'')*'|\"(?:[^\"\\]|\\.|\"\")*\"|`[^`]*`)")


def mlflow_search_text(text: str | None) -> str | None:
    """A run filter or order-by item with MLflow's bare attribute names (``status``,
    ``start_time`` ...) written as ``attributes.<name>``, which loopml's grammar requires;
    quoted text is left alone."""
    if not text:
        return text
    parts = _QUOTED.split(text)
    for i in range(0, len(parts), 2):  # even parts are outside quotes
        parts[i] = _BARE_ATTRIBUTES.sub(
            lambda m: (
                "attributes." + ("start_time" if m.group(1).lower() == "created" else m.group(1))
            ),
            parts[i],
        )
    return "".join(parts)


class Fields:
    """Typed access to a request's fields, with errors naming the field."""

    def __init__(self, data: dict[str, Any], *, from_query: bool) -> None:
        self.data = data
        self.from_query = from_query

    def raw(self, name: str, default: Any = None) -> Any:
        """The value as sent, or ``default``."""
        return self.data.get(name, default)

    def str(self, name: str, *, required: bool = False, default: str | None = None) -> Any:
        """A string field."""
        value = self.data.get(name)
        if value is None:
            if required:
                raise InvalidInput(f"missing value for required parameter '{name}'")
            return default
        if isinstance(value, list) and self.from_query and value:
            value = value[-1]
        if not isinstance(value, str):
            raise InvalidInput(
                f"invalid value {value!r:.80} for parameter '{name}': expected a string"
            )
        return value

    def int(self, name: str, *, required: bool = False, default: int | None = None) -> Any:
        """An integer field (proto int64 arrives as a number or a decimal string)."""
        value = self.data.get(name)
        if value is None or value == "":
            if required:
                raise InvalidInput(f"missing value for required parameter '{name}'")
            return default
        if isinstance(value, bool):
            raise InvalidInput(
                f"invalid value {value!r} for parameter '{name}': expected an integer"
            )
        if isinstance(value, int):
            return value
        if isinstance(value, str) and _INT.fullmatch(value.strip()):
            return int(value)
        raise InvalidInput(
            f"invalid value {value!r:.80} for parameter '{name}': expected an integer"
        )

    def float(self, name: str, *, required: bool = False) -> Any:
        """A double field (``"NaN"``, ``"Infinity"`` and ``"-Infinity"`` as strings)."""
        value = self.data.get(name)
        if value is None:
            if required:
                raise InvalidInput(f"missing value for required parameter '{name}'")
            return None
        if isinstance(value, bool):
            raise InvalidInput(
                f"invalid value {value!r} for parameter '{name}': expected a number"
            )
        if isinstance(value, int | float):
            return float(value)
        if isinstance(value, str):
            try:
                return float(value)
            except ValueError:
                pass
        raise InvalidInput(
            f"invalid value {value!r:.80} for parameter '{name}': expected a number"
        )

    def bool(self, name: str, default: bool = False) -> bool:
        """A boolean field (``true``/``false`` in a query string)."""
        value = self.data.get(name)
        if value is None:
            return default
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("true", "false"):
            return value.lower() == "true"
        raise InvalidInput(
            f"invalid value {value!r:.80} for parameter '{name}': expected a boolean"
        )

    def str_list(self, name: str) -> list[str]:
        """A repeated string field."""
        value = self.data.get(name)
        if value is None:
            return []
        if isinstance(value, str):
            return [value]
        if isinstance(value, list) and all(isinstance(v, str) for v in value):
            return list(value)
        raise InvalidInput(f"invalid value for parameter '{name}': expected a list of strings")

    def key_values(self, name: str) -> dict[str, str]:
        """A repeated ``{key, value}`` field (tags, params) as a dict."""
        value = self.data.get(name)
        if value is None:
            return {}
        if not isinstance(value, list):
            raise InvalidInput(f"invalid value for parameter '{name}': expected a list")
        out: dict[str, str] = {}
        for item in value:
            if not isinstance(item, dict) or not isinstance(item.get("key"), str):
                raise InvalidInput(f"invalid entry in '{name}': each needs a string 'key'")
            v = item.get("value")
            if v is None:
                v = ""
            elif isinstance(v, bool) or not isinstance(v, str | int | float):
                raise InvalidInput(
                    f"invalid value for '{item['key']}' in '{name}': expected a string"
                )
            key = item["key"]
            if key in out and out[key] != str(v):
                raise InvalidInput(f"'{name}' holds '{key}' twice with different values")
            out[key] = str(v)
        return out


class ArtifactUris:
    """Maps locations under the server's artifact root to ``mlflow-artifacts:/<relative>``, the
    scheme the client downloads and uploads through the server's artifact proxy."""

    SCHEME = "mlflow-artifacts:/"

    def __init__(self, root: str) -> None:
        self.root = root.rstrip("/")

    def to_client(self, uri: str) -> str:
        """The URI the client should see for a stored location."""
        if uri == self.root:
            return self.SCHEME
        if uri.startswith(self.root + "/"):
            return self.SCHEME + uri[len(self.root) + 1 :]
        return uri

    def from_client(self, uri: str) -> str:
        """The stored location for a URI the client sent."""
        if uri.startswith("mlflow-artifacts:"):
            rest = uri[len("mlflow-artifacts:") :]
            if rest.startswith("//"):  # mlflow-artifacts://host:port/path: this server's path
                rest = rest[2:].partition("/")[2]
            rest = posixpath.normpath("/" + rest).lstrip("/")
            return f"{self.root}/{rest}" if rest else self.root
        return uri


Handler = Callable[..., Any]
