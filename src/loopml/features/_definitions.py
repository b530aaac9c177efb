"""Feature definitions with Feast's names: ``Entity``, ``FileSource``, ``Field``, ``FeatureView``,
``FeatureService``, ``RequestSource`` and on-demand feature views.

Each object turns into a JSON spec (``to_spec``) and back (``from_spec``): the registry stores
specs, versions them by a hash of the spec, and rebuilds objects from them.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import inspect
import re
import textwrap
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import PurePosixPath
from typing import Any

import orjson

from loopml.errors import InvalidInput
from loopml.features._types import ValueType, value_type

__all__ = [
    "Entity",
    "FeatureService",
    "FeatureView",
    "FeatureViewProjection",
    "Field",
    "FileSource",
    "OnDemandFeatureView",
    "RequestSource",
    "definition_from_spec",
    "on_demand_feature_view",
    "spec_hash",
]

_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_\-]{0,127}")
_COLUMN = re.compile(r"[^\x00:\"]{1,255}")
KINDS = ("entity", "feature_view", "on_demand_feature_view", "feature_service")


def check_name(name: Any, what: str) -> str:
    """``name`` if it is a valid object name, else ``InvalidInput`` naming ``what``."""
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        raise InvalidInput(
            f"{what} name {name!r} must be 1-128 letters, digits, '_' or '-', "
            "starting with a letter or '_'"
        )
    return name


def _check_column(name: Any, what: str) -> str:
    if not isinstance(name, str) or not _COLUMN.fullmatch(name) or name.startswith("__"):
        raise InvalidInput(f"{what} {name!r} must be a column name without ':' or a '__' prefix")
    return name


def _check_tags(tags: Mapping[str, str] | None, what: str) -> dict[str, str]:
    if tags is None:
        return {}
    if not isinstance(tags, Mapping) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in tags.items()
    ):
        raise InvalidInput(f"{what} tags must be a mapping of strings to strings")
    return dict(tags)


def _check_text(value: Any, what: str) -> str:
    if value is None:
        return ""
    if not isinstance(value, str):
        raise InvalidInput(f"{what} must be a string")
    return value


def spec_hash(spec: Mapping[str, Any]) -> str:
    """A stable hash of a spec (what versions an object): SHA-256 of its canonical JSON."""
    body = {k: v for k, v in spec.items() if k != "udf"}  # the pickle is not stable; source is
    return hashlib.sha256(orjson.dumps(body, option=orjson.OPT_SORT_KEYS)).hexdigest()


@dataclass(eq=False)
class Entity:
    """A thing features describe, identified by its join keys (``Entity("driver", ["id"])``)."""

    name: str
    join_keys: list[str] | None = None
    value_type: ValueType | str | None = None
    description: str = ""
    tags: dict[str, str] | None = None
    owner: str = ""

    def __post_init__(self) -> None:
        check_name(self.name, "entity")
        keys = [self.name] if self.join_keys is None else self.join_keys
        if isinstance(keys, str) or not isinstance(keys, Sequence) or not keys:
            raise InvalidInput(f"entity {self.name!r}: join_keys must be a non-empty list")
        self.join_keys = [_check_column(k, f"entity {self.name!r} join key") for k in keys]
        if len(set(self.join_keys)) != len(self.join_keys):
            raise InvalidInput(f"entity {self.name!r}: join_keys repeat a name")
        self.value_type = None if self.value_type is None else value_type(self.value_type)
        self.description = _check_text(self.description, f"entity {self.name!r} description")
        self.owner = _check_text(self.owner, f"entity {self.name!r} owner")
        self.tags = _check_tags(self.tags, f"entity {self.name!r}")

    @property
    def join_key(self) -> str:
        """The first join key (Feast's single-key spelling)."""
        assert self.join_keys
        return self.join_keys[0]

    def to_spec(self) -> dict[str, Any]:
        """This entity as a JSON-able spec."""
        vt = self.value_type
        return {
            "name": self.name,
            "join_keys": list(self.join_keys or ()),
            "value_type": vt.name if isinstance(vt, ValueType) else None,
            "description": self.description,
            "tags": dict(self.tags or {}),
            "owner": self.owner,
        }

    @classmethod
    def from_spec(cls, spec: Mapping[str, Any]) -> Entity:
        """An entity from its spec."""
        return cls(
            name=spec["name"],
            join_keys=list(spec["join_keys"]),
            value_type=spec.get("value_type"),
            description=spec.get("description", ""),
            tags=dict(spec.get("tags") or {}),
            owner=spec.get("owner", ""),
        )


@dataclass(eq=False)
class Field:
    """A named, typed column of a feature view's schema (``Field(name="f0", dtype=Float32)``)."""

    name: str
    dtype: ValueType | str | type
    description: str = ""
    tags: dict[str, str] | None = None

    def __post_init__(self) -> None:
        _check_column(self.name, "field")
        self.dtype = value_type(self.dtype)
        self.description = _check_text(self.description, f"field {self.name!r} description")
        self.tags = _check_tags(self.tags, f"field {self.name!r}")

    @property
    def type(self) -> ValueType:
        """The field's ``ValueType``."""
        assert isinstance(self.dtype, ValueType)
        return self.dtype

    def to_spec(self) -> dict[str, Any]:
        """This field as a JSON-able spec."""
        return {
            "name": self.name,
            "dtype": self.type.name,
            "description": self.description,
            "tags": dict(self.tags or {}),
        }

    @classmethod
    def from_spec(cls, spec: Mapping[str, Any]) -> Field:
        """A field from its spec."""
        return cls(
            name=spec["name"],
            dtype=spec["dtype"],
            description=spec.get("description", ""),
            tags=dict(spec.get("tags") or {}),
        )


def _fields(schema: Any, what: str) -> list[Field]:
    if schema is None:
        return []
    if isinstance(schema, (str, bytes)) or not isinstance(schema, Iterable):
        raise InvalidInput(f"{what} schema must be a list of Field")
    out = list(schema)
    for f in out:
        if not isinstance(f, Field):
            raise InvalidInput(f"{what} schema must be a list of Field, not {type(f).__name__}")
    names = [f.name for f in out]
    dup = sorted({n for n in names if names.count(n) > 1})
    if dup:
        raise InvalidInput(f"{what} schema names a field twice: {', '.join(dup)}")
    return out


_FORMATS = ("parquet", "csv")


@dataclass(eq=False)
class FileSource:
    """Rows in Parquet or CSV files (a file, a folder or a glob; local or ``s3://``)."""

    path: str
    timestamp_field: str = "event_timestamp"
    created_timestamp_column: str = ""
    name: str = ""
    file_format: str | None = None
    field_mapping: dict[str, str] | None = None
    description: str = ""
    tags: dict[str, str] | None = None
    owner: str = ""

    def __post_init__(self) -> None:
        if hasattr(self.path, "__fspath__"):
            self.path = str(self.path)
        if not isinstance(self.path, str) or not self.path:
            raise InvalidInput("FileSource path must be a non-empty string")
        if not isinstance(self.timestamp_field, str) or not self.timestamp_field:
            raise InvalidInput("FileSource timestamp_field must name a column")
        _check_column(self.timestamp_field, "FileSource timestamp_field")
        if self.created_timestamp_column:
            _check_column(self.created_timestamp_column, "FileSource created_timestamp_column")
        else:
            self.created_timestamp_column = ""
        if self.name:
            check_name(self.name, "source")
        if self.file_format is None:
            suffix = PurePosixPath(self.path.rstrip("/")).suffix.lower()
            self.file_format = "csv" if suffix in (".csv", ".tsv") else "parquet"
        if self.file_format not in _FORMATS:
            raise InvalidInput(f"FileSource file_format must be one of {', '.join(_FORMATS)}")
        mapping = self.field_mapping or {}
        if not isinstance(mapping, Mapping) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in mapping.items()
        ):
            raise InvalidInput("FileSource field_mapping must map column names to names")
        self.field_mapping = dict(mapping)
        self.description = _check_text(self.description, "FileSource description")
        self.owner = _check_text(self.owner, "FileSource owner")
        self.tags = _check_tags(self.tags, "FileSource")

    def to_spec(self) -> dict[str, Any]:
        """This source as a JSON-able spec."""
        return {
            "type": "file",
            "path": self.path,
            "timestamp_field": self.timestamp_field,
            "created_timestamp_column": self.created_timestamp_column,
            "name": self.name,
            "file_format": self.file_format,
            "field_mapping": dict(self.field_mapping or {}),
            "description": self.description,
            "tags": dict(self.tags or {}),
            "owner": self.owner,
        }

    @classmethod
    def from_spec(cls, spec: Mapping[str, Any]) -> FileSource:
        """A source from its spec."""
        body = {k: v for k, v in spec.items() if k != "type"}
        return cls(**body)


@dataclass(eq=False)
class RequestSource:
    """Values that arrive with the request (an on-demand view's input), with their schema."""

    name: str
    schema: list[Field]
    description: str = ""
    tags: dict[str, str] | None = None

    def __post_init__(self) -> None:
        check_name(self.name, "request source")
        self.schema = _fields(self.schema, f"request source {self.name!r}")
        if not self.schema:
            raise InvalidInput(f"request source {self.name!r} needs a schema")
        self.tags = _check_tags(self.tags, f"request source {self.name!r}")

    def to_spec(self) -> dict[str, Any]:
        """This source as a JSON-able spec."""
        return {
            "type": "request",
            "name": self.name,
            "schema": [f.to_spec() for f in self.schema],
            "description": self.description,
            "tags": dict(self.tags or {}),
        }

    @classmethod
    def from_spec(cls, spec: Mapping[str, Any]) -> RequestSource:
        """A request source from its spec."""
        return cls(
            name=spec["name"],
            schema=[Field.from_spec(f) for f in spec["schema"]],
            description=spec.get("description", ""),
            tags=dict(spec.get("tags") or {}),
        )


def _ttl_seconds(ttl: Any, what: str) -> float | None:
    if ttl is None:
        return None
    if isinstance(ttl, dt.timedelta):
        seconds = ttl.total_seconds()
    elif isinstance(ttl, (int, float)) and not isinstance(ttl, bool):
        seconds = float(ttl)
    else:
        raise InvalidInput(f"{what} ttl must be a timedelta, seconds or None")
    if seconds < 0:
        raise InvalidInput(f"{what} ttl must not be negative")
    return seconds or None  # Feast: a ttl of 0 means no limit


@dataclass(eq=False)
class FeatureView:
    """Features of one or more entities read from a source, with a time-to-live."""

    name: str
    entities: list[Entity | str] = field(default_factory=list)
    schema: list[Field] | None = None
    source: FileSource | None = None
    ttl: dt.timedelta | float | None = None
    online: bool = True
    tags: dict[str, str] | None = None
    description: str = ""
    owner: str = ""

    def __post_init__(self) -> None:
        check_name(self.name, "feature view")
        what = f"feature view {self.name!r}"
        if isinstance(self.entities, (str, Entity)):
            self.entities = [self.entities]
        for e in self.entities:
            if not isinstance(e, (Entity, str)):
                raise InvalidInput(f"{what} entities must be Entity objects or entity names")
        self.schema = _fields(self.schema, what)
        if not isinstance(self.source, FileSource):
            raise InvalidInput(f"{what} needs a FileSource as its source")
        seconds = _ttl_seconds(self.ttl, what)
        self.ttl = None if seconds is None else dt.timedelta(seconds=seconds)
        if not isinstance(self.online, bool):
            raise InvalidInput(f"{what} online must be true or false")
        self.tags = _check_tags(self.tags, what)
        self.description = _check_text(self.description, f"{what} description")
        self.owner = _check_text(self.owner, f"{what} owner")

    @property
    def entity_names(self) -> list[str]:
        """The names of this view's entities."""
        return [e if isinstance(e, str) else e.name for e in self.entities]

    @property
    def ttl_seconds(self) -> float | None:
        """The ttl in seconds, or None for no limit."""
        return None if self.ttl is None else self.ttl.total_seconds()

    @property
    def features(self) -> list[Field]:
        """The feature fields: the schema without the join keys (set once entities resolve)."""
        keys = set(getattr(self, "_join_keys", ()))
        return [f for f in self.schema or () if f.name not in keys]

    @property
    def feature_names(self) -> list[str]:
        """The names of this view's features."""
        return [f.name for f in self.features]

    def __getitem__(self, names: Sequence[str] | str) -> FeatureViewProjection:
        """A projection of this view on some of its features (``view[["a", "b"]]``)."""
        if isinstance(names, str):
            names = [names]
        return FeatureViewProjection(self.name, list(names), self)

    def to_spec(self) -> dict[str, Any]:
        """This view as a JSON-able spec."""
        assert isinstance(self.source, FileSource)
        return {
            "name": self.name,
            "entities": self.entity_names,
            "schema": [f.to_spec() for f in self.schema or ()],
            "source": self.source.to_spec(),
            "ttl": self.ttl_seconds,
            "online": self.online,
            "tags": dict(self.tags or {}),
            "description": self.description,
            "owner": self.owner,
        }

    @classmethod
    def from_spec(cls, spec: Mapping[str, Any]) -> FeatureView:
        """A view from its spec (entities by name)."""
        return cls(
            name=spec["name"],
            entities=list(spec["entities"]),
            schema=[Field.from_spec(f) for f in spec["schema"]],
            source=FileSource.from_spec(spec["source"]),
            ttl=spec.get("ttl"),
            online=bool(spec.get("online", True)),
            tags=dict(spec.get("tags") or {}),
            description=spec.get("description", ""),
            owner=spec.get("owner", ""),
        )


@dataclass(frozen=True)
class FeatureViewProjection:
    """Some features of one view (``view[["a", "b"]]``), as a feature service lists them."""

    view: str
    features: list[str]
    source: Any = field(default=None, compare=False, repr=False)

    def refs(self) -> list[str]:
        """The ``view:feature`` references this projection stands for."""
        return [f"{self.view}:{f}" for f in self.features]


_SIMPLE = (int, float, str, bytes, bool, type(None))


def _simple(value: Any, depth: int = 0) -> bool:
    if isinstance(value, _SIMPLE):
        return True
    if depth < 3 and isinstance(value, (tuple, list, frozenset, set)):
        return all(_simple(v, depth + 1) for v in value)
    if depth < 3 and isinstance(value, dict):
        return all(_simple(k, depth + 1) and _simple(v, depth + 1) for k, v in value.items())
    return False


def udf_fingerprint(fn: Callable[..., Any], _seen: set[int] | None = None) -> str:
    """A hash of what a function computes: its source, and the plain values (numbers, strings,
    containers of them) and helper functions it reads from globals and closures."""
    seen = _seen if _seen is not None else set()
    seen.add(id(fn))
    parts = [_function_source(fn)]
    code = getattr(fn, "__code__", None)
    if code is not None:
        names: set[str] = set()
        stack = [code]
        while stack:
            c = stack.pop()
            names.update(c.co_names)
            stack.extend(k for k in c.co_consts if hasattr(k, "co_names"))
        scope = getattr(fn, "__globals__", {}) or {}
        for name in sorted(names):
            if name not in scope:
                continue
            value = scope[name]
            if _simple(value):
                parts.append(f"{name}={value!r}")
            elif inspect.isfunction(value) and id(value) not in seen:
                parts.append(f"{name}:{udf_fingerprint(value, seen)}")
        for i, cell in enumerate(getattr(fn, "__closure__", None) or ()):
            try:
                value = cell.cell_contents
            except ValueError:
                continue
            if _simple(value):
                parts.append(f"closure{i}={value!r}")
            elif inspect.isfunction(value) and id(value) not in seen:
                parts.append(f"closure{i}:{udf_fingerprint(value, seen)}")
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()


def _unloadable(name: str, exc: BaseException) -> Callable[[Any], Any]:
    def fail(_inputs: Any) -> Any:
        raise InvalidInput(
            f"on-demand feature view {name!r} cannot be loaded in this process: "
            f"{type(exc).__name__}: {exc}"
        )

    return fail


def _function_source(fn: Callable[..., Any]) -> str:
    try:
        return textwrap.dedent(inspect.getsource(fn))
    except (OSError, TypeError):
        return getattr(fn, "__qualname__", repr(fn))


class OnDemandFeatureView:
    """Features computed by a Python function from request data and other views' features.

    The same function runs on the training frame and on each online request. ``mode="pandas"``
    gives it a DataFrame and expects one back; ``mode="python"`` gives it a dict of column lists
    (faster for one-row online requests) and expects a dict of lists back.
    """

    def __init__(
        self,
        name: str,
        sources: Sequence[FeatureView | FeatureViewProjection | RequestSource],
        schema: Sequence[Field],
        udf: Callable[[Any], Any],
        *,
        mode: str = "pandas",
        description: str = "",
        tags: Mapping[str, str] | None = None,
        owner: str = "",
        udf_source: str | None = None,
        udf_hash: str | None = None,
    ) -> None:
        self.name = check_name(name, "on-demand feature view")
        what = f"on-demand feature view {name!r}"
        if mode not in ("pandas", "python"):
            raise InvalidInput(f"{what} mode must be 'pandas' or 'python'")
        if not callable(udf):
            raise InvalidInput(f"{what} needs a function")
        self.sources: list[Any] = []
        for s in sources:
            if isinstance(s, FeatureView):
                s = s[s.feature_names] if s.schema else FeatureViewProjection(s.name, [], s)
            if not isinstance(s, (FeatureViewProjection, RequestSource)):
                raise InvalidInput(f"{what} sources must be feature views or request sources")
            self.sources.append(s)
        if not self.sources:
            raise InvalidInput(f"{what} needs at least one source")
        self.schema = _fields(schema, what)
        if not self.schema:
            raise InvalidInput(f"{what} needs a schema of the features it returns")
        self.udf = udf
        self.mode = mode
        self.description = _check_text(description, f"{what} description")
        self.owner = _check_text(owner, f"{what} owner")
        self.tags = _check_tags(tags, what)
        self.udf_source = udf_source if udf_source is not None else _function_source(udf)
        self.udf_hash = udf_hash or udf_fingerprint(udf)

    @property
    def features(self) -> list[Field]:
        """The fields the function returns."""
        return list(self.schema)

    @property
    def feature_names(self) -> list[str]:
        """The names of the features the function returns."""
        return [f.name for f in self.schema]

    def __getitem__(self, names: Sequence[str] | str) -> FeatureViewProjection:
        """A projection of this view on some of its features."""
        if isinstance(names, str):
            names = [names]
        return FeatureViewProjection(self.name, list(names), self)

    def to_spec(self) -> dict[str, Any]:
        """This view as a JSON-able spec (the function is pickled with cloudpickle)."""
        import cloudpickle

        sources = []
        for s in self.sources:
            if isinstance(s, RequestSource):
                sources.append(s.to_spec())
            else:
                sources.append({"type": "view", "view": s.view, "features": list(s.features)})
        return {
            "name": self.name,
            "sources": sources,
            "schema": [f.to_spec() for f in self.schema],
            "mode": self.mode,
            "udf_source": self.udf_source,
            "udf_hash": self.udf_hash,
            "udf": base64.b64encode(cloudpickle.dumps(self.udf)).decode(),
            "description": self.description,
            "tags": dict(self.tags),
            "owner": self.owner,
        }

    @classmethod
    def from_spec(cls, spec: Mapping[str, Any]) -> OnDemandFeatureView:
        """A view from its spec (unpickles the function: the registry is trusted)."""
        import cloudpickle

        sources: list[Any] = []
        for s in spec["sources"]:
            if s["type"] == "request":
                sources.append(RequestSource.from_spec(s))
            else:
                sources.append(FeatureViewProjection(s["view"], list(s["features"])))
        try:
            udf = cloudpickle.loads(base64.b64decode(spec["udf"]))
        except Exception as exc:  # e.g. a module the function needs is not importable here
            udf = _unloadable(spec["name"], exc)
        return cls(
            spec["name"],
            sources,
            [Field.from_spec(f) for f in spec["schema"]],
            udf,
            mode=spec.get("mode", "pandas"),
            description=spec.get("description", ""),
            tags=spec.get("tags") or {},
            owner=spec.get("owner", ""),
            udf_source=spec.get("udf_source", ""),
            udf_hash=spec.get("udf_hash") or "-",
        )


def _without_decorators(src: str) -> str:
    """A function's source from its ``def`` line on."""
    import ast

    try:
        node = ast.parse(src).body[0]
    except (SyntaxError, IndexError):
        return src
    return "".join(src.splitlines(keepends=True)[node.lineno - 1 :])


def on_demand_feature_view(
    *,
    sources: Sequence[FeatureView | FeatureViewProjection | RequestSource],
    schema: Sequence[Field],
    mode: str = "pandas",
    name: str | None = None,
    description: str = "",
    tags: Mapping[str, str] | None = None,
    owner: str = "",
) -> Callable[[Callable[[Any], Any]], OnDemandFeatureView]:
    """Decorator: the function becomes an ``OnDemandFeatureView`` named after it."""

    def wrap(fn: Callable[[Any], Any]) -> OnDemandFeatureView:
        src = _function_source(fn)
        src = _without_decorators(src)
        return OnDemandFeatureView(
            name or fn.__name__,
            sources,
            schema,
            fn,
            mode=mode,
            description=description,
            tags=tags,
            owner=owner,
            udf_source=src,
        )

    return wrap


@dataclass(eq=False)
class FeatureService:
    """A named set of features (whole views or projections) that a model consumes."""

    name: str
    features: list[Any] = field(default_factory=list)
    description: str = ""
    tags: dict[str, str] | None = None
    owner: str = ""

    def __post_init__(self) -> None:
        check_name(self.name, "feature service")
        what = f"feature service {self.name!r}"
        items: list[FeatureViewProjection] = []
        for f in self.features:
            if isinstance(f, (FeatureView, OnDemandFeatureView)):
                f = FeatureViewProjection(f.name, [], f)  # all features, resolved at apply
            if not isinstance(f, FeatureViewProjection):
                raise InvalidInput(f"{what} features must be feature views or projections")
            items.append(f)
        if not items:
            raise InvalidInput(f"{what} needs at least one feature view")
        self.features = items
        self.tags = _check_tags(self.tags, what)
        self.description = _check_text(self.description, f"{what} description")
        self.owner = _check_text(self.owner, f"{what} owner")

    def to_spec(self) -> dict[str, Any]:
        """This service as a JSON-able spec (empty feature lists mean the whole view)."""
        return {
            "name": self.name,
            "features": [{"view": p.view, "features": list(p.features)} for p in self.features],
            "description": self.description,
            "tags": dict(self.tags or {}),
            "owner": self.owner,
        }

    @classmethod
    def from_spec(cls, spec: Mapping[str, Any]) -> FeatureService:
        """A service from its spec."""
        return cls(
            name=spec["name"],
            features=[
                FeatureViewProjection(p["view"], list(p["features"])) for p in spec["features"]
            ],
            description=spec.get("description", ""),
            tags=dict(spec.get("tags") or {}),
            owner=spec.get("owner", ""),
        )


def kind_of(obj: Any) -> str:
    """The registry kind of a definition object, or ``InvalidInput``."""
    if isinstance(obj, Entity):
        return "entity"
    if isinstance(obj, FeatureView):
        return "feature_view"
    if isinstance(obj, OnDemandFeatureView):
        return "on_demand_feature_view"
    if isinstance(obj, FeatureService):
        return "feature_service"
    raise InvalidInput(
        f"cannot apply a {type(obj).__name__}: apply Entity, FeatureView, "
        "OnDemandFeatureView or FeatureService objects"
    )


FROM_SPEC: dict[str, Callable[[Mapping[str, Any]], Any]] = {
    "entity": Entity.from_spec,
    "feature_view": FeatureView.from_spec,
    "on_demand_feature_view": OnDemandFeatureView.from_spec,
    "feature_service": FeatureService.from_spec,
}


def definition_from_spec(kind: str, spec: Any) -> Any:
    """A definition object from its registry ``kind`` and JSON ``spec`` (``InvalidInput`` when
    either is not one; an on-demand view's function is unpickled: trusted input only)."""
    if kind not in FROM_SPEC:
        raise InvalidInput(f"kind must be one of {', '.join(FROM_SPEC)}")
    if not isinstance(spec, Mapping):
        raise InvalidInput(f"a {kind} spec must be an object")
    try:
        return FROM_SPEC[kind](spec)
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise InvalidInput(f"not a {kind} spec: {exc!r}") from None
