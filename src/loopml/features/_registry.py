"""The versioned feature registry in the metadata database, and the resolved catalog read from it.

Applying a definition whose normalised spec (schema inferred from the source, join keys and
their types resolved from the entities) hashes differently from the current one makes a new
version; old versions stay readable. Removing an object marks it deleted; its versions stay.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson
from sqlalchemy import Connection, func, insert, select, update

from loopml.errors import AlreadyExists, InvalidInput, NotFound
from loopml.features._definitions import (
    FROM_SPEC,
    KINDS,
    Entity,
    FeatureService,
    FeatureView,
    OnDemandFeatureView,
    RequestSource,
    check_name,
    kind_of,
    spec_hash,
)
from loopml.features._sources import describe_source
from loopml.features._types import Float32, Float64, Int32, Int64, String, ValueType, value_type
from loopml.store import Database, open_database
from loopml.store.tables import feature_object_versions, feature_objects, feature_view_state

__all__ = ["Catalog", "Plan", "PlanItem", "SqlFeatureRegistry", "duckdb_value_type"]

_DUCK_TYPES = {
    "BIGINT": Int64,
    "INTEGER": Int32,
    "SMALLINT": Int32,
    "TINYINT": Int32,
    "UBIGINT": Int64,
    "UINTEGER": Int64,
    "USMALLINT": Int32,
    "UTINYINT": Int32,
    "HUGEINT": Int64,
    "DOUBLE": Float64,
    "FLOAT": Float32,
    "REAL": Float32,
    "VARCHAR": String,
    "BOOLEAN": value_type("Bool"),
    "BLOB": value_type("Bytes"),
    "DATE": value_type("UnixTimestamp"),
}


_KEY_TYPES = ("Int32", "Int64", "String")


def duckdb_value_type(duck: str) -> ValueType | None:
    """The ``ValueType`` of a DuckDB column type, or None if none fits."""
    duck = duck.upper()
    if duck.startswith("TIMESTAMP"):
        return value_type("UnixTimestamp")
    if duck.startswith("DECIMAL"):
        return Float64
    return _DUCK_TYPES.get(duck)


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


@dataclass(frozen=True)
class PlanItem:
    """One object's fate in a plan: ``add``, ``change``, ``remove`` or ``unchanged``."""

    kind: str
    name: str
    action: str
    version: int | None  # the version it will have (None when removed)
    changes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """This item as JSON-able data."""
        return {
            "kind": self.kind,
            "name": self.name,
            "action": self.action,
            "version": self.version,
            "changes": list(self.changes),
        }


@dataclass(frozen=True)
class Plan:
    """What applying a set of definitions adds, changes and removes."""

    items: list[PlanItem]

    def _of(self, action: str) -> list[PlanItem]:
        return [i for i in self.items if i.action == action]

    @property
    def added(self) -> list[PlanItem]:
        """Objects that will be created."""
        return self._of("add")

    @property
    def changed(self) -> list[PlanItem]:
        """Objects that will get a new version."""
        return self._of("change")

    @property
    def removed(self) -> list[PlanItem]:
        """Objects that will be marked deleted."""
        return self._of("remove")

    @property
    def has_changes(self) -> bool:
        """Whether applying would change anything."""
        return any(i.action != "unchanged" for i in self.items)

    def to_dict(self) -> dict[str, Any]:
        """This plan as JSON-able data."""
        return {"items": [i.to_dict() for i in self.items], "has_changes": self.has_changes}


def _diff_specs(old: Mapping[str, Any], new: Mapping[str, Any]) -> list[str]:
    out: list[str] = []
    for key in sorted(set(old) | set(new)):
        if key == "udf" or old.get(key) == new.get(key):
            continue
        if key == "schema":
            before = {f["name"]: f["dtype"] for f in old.get("schema") or ()}
            after = {f["name"]: f["dtype"] for f in new.get("schema") or ()}
            fields = [f"+ field {n} ({t})" for n, t in after.items() if n not in before]
            fields += [f"- field {n}" for n in before if n not in after]
            fields += [
                f"~ field {n}: {before[n]} -> {t}"
                for n, t in after.items()
                if n in before and before[n] != t
            ]
            out += fields or ["~ schema (order, descriptions or tags)"]
        else:
            out.append(f"~ {key}")
    return out


def stamp_etag(stamp: Any) -> str:
    """A registry stamp as a short string."""
    return hashlib.sha256(repr(stamp).encode()).hexdigest()[:24]


class Catalog:
    """The registry's current objects, resolved: what the stores read definitions from."""

    def __init__(self, rows: Iterable[tuple[str, str, int, dict[str, Any]]], stamp: Any) -> None:
        self.stamp = stamp
        self.cache: dict[Any, Any] = {}  # what a store derives from this catalog (online plans)
        self.versions: dict[tuple[str, str], int] = {}
        self.specs: dict[tuple[str, str], dict[str, Any]] = {}
        self.entities: dict[str, Entity] = {}
        self.views: dict[str, FeatureView] = {}
        self.odfvs: dict[str, OnDemandFeatureView] = {}
        self.services: dict[str, FeatureService] = {}
        for kind, name, version, spec in rows:
            self.versions[(kind, name)] = version
            self.specs[(kind, name)] = spec
            obj = FROM_SPEC[kind](spec)
            if kind == "feature_view":
                obj._join_keys = list(spec.get("join_keys") or ())  # type: ignore[attr-defined]
                obj.join_key_types = {  # type: ignore[attr-defined]
                    k: value_type(t) for k, t in (spec.get("join_key_types") or {}).items()
                }
                obj.version = version  # type: ignore[attr-defined]
            else:
                obj.version = version
            {
                "entity": self.entities,
                "feature_view": self.views,
                "on_demand_feature_view": self.odfvs,
                "feature_service": self.services,
            }[kind][name] = obj

    @property
    def etag(self) -> str:
        """The stamp as a short string (what a remote client compares)."""
        return stamp_etag(self.stamp)

    def view(self, name: str) -> FeatureView:
        """The feature view ``name``, or ``NotFound``."""
        try:
            return self.views[name]
        except KeyError:
            raise NotFound(f"feature view {name!r} does not exist") from None

    def service(self, name: str) -> FeatureService:
        """The feature service ``name``, or ``NotFound``."""
        try:
            return self.services[name]
        except KeyError:
            raise NotFound(f"feature service {name!r} does not exist") from None

    def version_refs(self, views: Iterable[str]) -> list[str]:
        """``name@version`` for each named view (plain or on-demand), for lineage."""
        out = []
        for name in views:
            kind = "feature_view" if name in self.views else "on_demand_feature_view"
            out.append(f"{name}@{self.versions[(kind, name)]}")
        return out


class SqlFeatureRegistry:
    """Feature definitions of one workspace in the metadata database, versioned."""

    def __init__(self, database: Database | str, *, workspace: str = "default") -> None:
        self.db = open_database(database) if isinstance(database, str) else database
        self.workspace = workspace

    # -- reading -----------------------------------------------------------------------------
    def _with_spec(self, query: Any) -> Any:
        """``query`` joined to each object's current version, in this workspace."""
        return query.join(
            feature_object_versions,
            (feature_object_versions.c.object_id == feature_objects.c.object_id)
            & (feature_object_versions.c.version == feature_objects.c.version),
        ).where(feature_objects.c.workspace == self.workspace)

    def _stamp(self, conn: Connection) -> tuple[Any, ...]:
        return tuple(
            conn.execute(
                select(
                    func.count(),
                    func.count(feature_objects.c.deleted_at),
                    func.max(feature_objects.c.updated_at),
                    func.sum(feature_objects.c.version),
                ).where(feature_objects.c.workspace == self.workspace)
            ).one()
        )

    def stamp(self) -> tuple[Any, ...]:
        """A cheap value that changes whenever anything in this workspace's registry changes."""
        with self.db.engine.connect() as conn:
            return self._stamp(conn)

    def etag(self) -> str:
        """``stamp()`` as the short string a catalog read now would carry (``Catalog.etag``)."""
        return stamp_etag(self.stamp())

    def catalog(self) -> Catalog:
        """The current (not deleted) objects, resolved."""
        with self.db.engine.connect() as conn:
            stamp = self._stamp(conn)
            columns = select(
                feature_objects.c.kind,
                feature_objects.c.name,
                feature_objects.c.version,
                feature_object_versions.c.spec,
            )
            rows = conn.execute(
                self._with_spec(columns).where(feature_objects.c.deleted_at.is_(None))
            ).all()
        order = {k: i for i, k in enumerate(KINDS)}
        parsed = sorted(
            ((r.kind, r.name, r.version, orjson.loads(r.spec)) for r in rows),
            key=lambda r: (order[r[0]], r[1]),
        )
        return Catalog(parsed, stamp)

    def list_objects(
        self, kind: str | None = None, *, deleted: bool = False
    ) -> list[dict[str, Any]]:
        """Objects (kind, name, version, times, spec of the current version), by kind and name."""
        if kind is not None and kind not in KINDS:
            raise InvalidInput(f"kind must be one of {', '.join(KINDS)}")
        query = self._with_spec(select(feature_objects, feature_object_versions.c.spec)).order_by(
            feature_objects.c.kind, feature_objects.c.name
        )
        if kind is not None:
            query = query.where(feature_objects.c.kind == kind)
        if not deleted:
            query = query.where(feature_objects.c.deleted_at.is_(None))
        with self.db.engine.connect() as conn:
            rows = conn.execute(query).all()
        return [
            {
                "kind": r.kind,
                "name": r.name,
                "version": r.version,
                "created_at": r.created_at,
                "updated_at": r.updated_at,
                "deleted_at": r.deleted_at,
                "spec": orjson.loads(r.spec),
            }
            for r in rows
        ]

    def _object(self, conn: Connection, kind: str, name: str) -> Any:
        row = conn.execute(
            select(feature_objects).where(
                feature_objects.c.workspace == self.workspace,
                feature_objects.c.kind == kind,
                feature_objects.c.name == name,
            )
        ).first()
        if row is None:
            raise NotFound(f"{kind.replace('_', ' ')} {name!r} does not exist")
        return row

    def versions(self, kind: str, name: str) -> list[dict[str, Any]]:
        """Every version of an object, oldest first, with its spec."""
        with self.db.engine.connect() as conn:
            obj = self._object(conn, kind, name)
            rows = conn.execute(
                select(feature_object_versions)
                .where(feature_object_versions.c.object_id == obj.object_id)
                .order_by(feature_object_versions.c.version)
            ).all()
        return [
            {
                "version": r.version,
                "spec_hash": r.spec_hash,
                "created_at": r.created_at,
                "spec": orjson.loads(r.spec),
            }
            for r in rows
        ]

    def get_spec(self, kind: str, name: str, version: int | None = None) -> dict[str, Any]:
        """The spec of an object's version (default the current one, even if deleted)."""
        with self.db.engine.connect() as conn:
            obj = self._object(conn, kind, name)
            number = obj.version if version is None else version
            row = conn.execute(
                select(feature_object_versions.c.spec).where(
                    feature_object_versions.c.object_id == obj.object_id,
                    feature_object_versions.c.version == number,
                )
            ).first()
        if row is None:
            raise NotFound(f"{kind.replace('_', ' ')} {name!r} has no version {number}")
        return dict(orjson.loads(row.spec))

    # -- planning and applying ------------------------------------------------------------------
    def _current(self, conn: Connection) -> dict[tuple[str, str], Any]:
        rows = conn.execute(
            self._with_spec(select(feature_objects, feature_object_versions.c.spec))
        ).all()
        return {(r.kind, r.name): r for r in rows}

    def _desired(
        self, objects: Sequence[Any], current: Mapping[tuple[str, str], Any], partial: bool
    ) -> dict[tuple[str, str], dict[str, Any]]:
        """Normalised specs of the objects to apply, checked against each other and the
        registry objects that stay."""
        desired: dict[tuple[str, str], Any] = {}
        for obj in objects:
            key = (kind_of(obj), obj.name)
            other = desired.get(key)
            if other is not None and other is not obj:
                if spec_hash(other.to_spec()) != spec_hash(obj.to_spec()):
                    raise InvalidInput(
                        f"{key[0].replace('_', ' ')} {obj.name!r} is defined twice, differently"
                    )
                continue
            desired[key] = obj
        kept = {
            k: orjson.loads(r.spec)
            for k, r in current.items()
            if r.deleted_at is None and partial and k not in desired
        }

        def spec_of(kind: str, name: str) -> dict[str, Any] | None:
            if (kind, name) in specs:
                return specs[(kind, name)]
            return kept.get((kind, name))

        specs: dict[tuple[str, str], dict[str, Any]] = {}
        for (kind, name), obj in sorted(desired.items(), key=lambda kv: KINDS.index(kv[0][0])):
            if kind == "entity":
                specs[(kind, name)] = obj.to_spec()
            elif kind == "feature_view":
                specs[(kind, name)] = self._view_spec(obj, spec_of)
            elif kind == "on_demand_feature_view":
                specs[(kind, name)] = self._odfv_spec(obj, spec_of)
            else:
                specs[(kind, name)] = self._service_spec(obj, spec_of)
        names = [
            n
            for (k, n) in list(specs) + list(kept)
            if k in ("feature_view", "on_demand_feature_view")
        ]
        dup = sorted({n for n in names if names.count(n) > 1})
        if dup:
            raise InvalidInput(
                f"a feature view and an on-demand feature view share the name {dup[0]!r}"
            )
        for (kind, name), spec in kept.items():
            self._check_kept(kind, name, spec, spec_of)
        return specs

    def _check_kept(self, kind: str, name: str, spec: Mapping[str, Any], spec_of: Any) -> None:
        """An object that stays as it is must still fit the objects that change around it."""
        what = f"{kind.replace('_', ' ')} {name!r}"
        if kind == "feature_view":
            keys: list[str] = []
            for e in spec["entities"]:
                keys += (spec_of("entity", e) or {}).get("join_keys", [])
            if keys != spec.get("join_keys"):
                raise InvalidInput(
                    f"{what} was applied with join keys {spec.get('join_keys')}; its entities now "
                    f"give {keys}: apply the view together with its entities"
                )
            return
        projections: list[Mapping[str, Any]] = []
        if kind == "feature_service":
            projections = spec["features"]
        elif kind == "on_demand_feature_view":
            projections = [s for s in spec["sources"] if s["type"] == "view"]
        for p in projections:
            _, names = self._features_of(p["view"], spec_of, what)
            gone = [f for f in p["features"] if f not in names]
            if gone:
                raise InvalidInput(
                    f"{what} uses {p['view']}:{gone[0]}, which the new definition of "
                    f"{p['view']!r} drops: apply {name!r} too"
                )

    @staticmethod
    def _view_spec(view: FeatureView, spec_of: Any) -> dict[str, Any]:
        what = f"feature view {view.name!r}"
        keys: list[str] = []
        key_types: dict[str, str] = {}
        entities: list[dict[str, Any]] = []
        for e in view.entities:
            name = e if isinstance(e, str) else e.name
            spec = spec_of("entity", name)
            if spec is None:
                raise InvalidInput(f"{what} uses entity {name!r}, which is not registered")
            entities.append(spec)
            for k in spec["join_keys"]:
                if k in keys:
                    raise InvalidInput(f"{what}: join key {k!r} comes from two entities")
                keys.append(k)
                if spec.get("value_type"):
                    key_types[k] = spec["value_type"]
        if not keys:
            raise InvalidInput(f"{what} needs at least one entity")
        source = view.source
        assert source is not None
        try:
            columns = describe_source(source)
        except InvalidInput:
            if not view.schema:
                raise
            columns = None
        schema = {f.name: f for f in view.schema or ()}
        for k in keys:
            if k in schema:
                key_types.setdefault(k, schema[k].type.name)
        reserved = {source.timestamp_field, source.created_timestamp_column, *keys}
        if columns is not None:
            for col in (source.timestamp_field, *keys):
                if col not in columns:
                    raise InvalidInput(f"{what}: source {source.path!r} has no column {col!r}")
            if source.created_timestamp_column and source.created_timestamp_column not in columns:
                raise InvalidInput(
                    f"{what}: source {source.path!r} has no column "
                    f"{source.created_timestamp_column!r}"
                )
            if not columns[source.timestamp_field].upper().startswith(("TIMESTAMP", "DATE")):
                raise InvalidInput(
                    f"{what}: timestamp field {source.timestamp_field!r} is "
                    f"{columns[source.timestamp_field]}, not a timestamp"
                )
            for k in keys:
                if k not in key_types:
                    vt = duckdb_value_type(columns[k])
                    if vt is None:
                        raise InvalidInput(
                            f"{what}: join key {k!r} has unsupported type {columns[k]}"
                        )
                    key_types[k] = vt.name
            missing = [f for f in schema if f not in columns]
            if missing:
                raise InvalidInput(
                    f"{what}: source {source.path!r} has no column {missing[0]!r} "
                    f"(missing: {', '.join(missing)})"
                )
        spec = view.to_spec()
        fields = [f.to_spec() for f in view.schema or () if f.name not in keys]
        if not view.schema:
            assert columns is not None
            for col, duck in columns.items():
                if col in reserved or col.startswith("__"):
                    continue
                vt = duckdb_value_type(duck)
                if vt is None:
                    raise InvalidInput(
                        f"{what}: cannot infer a feature type for column {col!r} ({duck}); "
                        "give the view a schema"
                    )
                fields.append({"name": col, "dtype": vt.name, "description": "", "tags": {}})
        if not fields:
            raise InvalidInput(f"{what} has no features")
        for f in fields:
            if f["name"] in reserved:
                raise InvalidInput(f"{what}: {f['name']!r} is a timestamp column, not a feature")
        bad = [k for k in keys if k in key_types and key_types[k] not in _KEY_TYPES]
        if bad:
            raise InvalidInput(
                f"{what}: join key {bad[0]!r} is {key_types[bad[0]]}; join keys must be "
                "Int32, Int64 or String"
            )
        missing_types = [k for k in keys if k not in key_types]
        if missing_types:
            raise InvalidInput(
                f"{what}: cannot tell the type of join key {missing_types[0]!r} (the source is "
                "not readable): give the entity a value_type"
            )
        spec["schema"] = fields
        spec["join_keys"] = keys
        spec["join_key_types"] = key_types
        return spec

    @staticmethod
    def _features_of(kind_view: str, spec_of: Any, what: str) -> tuple[str, list[str]]:
        view = spec_of("feature_view", kind_view) or spec_of("on_demand_feature_view", kind_view)
        if view is None:
            raise InvalidInput(f"{what} uses feature view {kind_view!r}, which is not registered")
        kind = "feature_view" if spec_of("feature_view", kind_view) else "on_demand_feature_view"
        return kind, [f["name"] for f in view["schema"]]

    def _odfv_spec(self, odfv: OnDemandFeatureView, spec_of: Any) -> dict[str, Any]:
        what = f"on-demand feature view {odfv.name!r}"
        spec = odfv.to_spec()
        inputs: list[str] = []
        for s, src in zip(spec["sources"], odfv.sources, strict=True):
            if isinstance(src, RequestSource):
                inputs += [f.name for f in src.schema]
                continue
            kind, names = self._features_of(s["view"], spec_of, what)
            if kind != "feature_view":
                raise InvalidInput(f"{what}: sources must be feature views, not {s['view']!r}")
            if not s["features"]:
                s["features"] = names
            unknown = [f for f in s["features"] if f not in names]
            if unknown:
                raise InvalidInput(
                    f"{what}: feature view {s['view']!r} has no feature {unknown[0]!r}"
                )
            inputs += s["features"]
        twice = sorted({n for n in inputs if inputs.count(n) > 1})
        if twice:
            raise InvalidInput(f"{what}: two of its inputs are named {twice[0]!r}")
        return spec

    def _service_spec(self, service: FeatureService, spec_of: Any) -> dict[str, Any]:
        what = f"feature service {service.name!r}"
        spec = service.to_spec()
        seen: set[str] = set()
        for p in spec["features"]:
            _, names = self._features_of(p["view"], spec_of, what)
            if not p["features"]:
                p["features"] = names
            unknown = [f for f in p["features"] if f not in names]
            if unknown:
                raise InvalidInput(
                    f"{what}: feature view {p['view']!r} has no feature {unknown[0]!r}"
                )
            if p["view"] in seen:
                raise InvalidInput(f"{what} lists feature view {p['view']!r} twice")
            seen.add(p["view"])
        return spec

    def _plan(
        self, conn: Connection, objects: Sequence[Any], partial: bool
    ) -> tuple[Plan, dict[tuple[str, str], dict[str, Any]], dict[tuple[str, str], Any]]:
        current = self._current(conn)
        specs = self._desired(objects, current, partial)
        items: list[PlanItem] = []
        for (kind, name), spec in specs.items():
            row = current.get((kind, name))
            h = spec_hash(spec)
            if row is None:
                items.append(PlanItem(kind, name, "add", 1))
            elif row.deleted_at is not None:
                items.append(PlanItem(kind, name, "add", row.version + 1, ["re-added"]))
            elif row.spec_hash == h:
                items.append(PlanItem(kind, name, "unchanged", row.version))
            else:
                changes = _diff_specs(orjson.loads(row.spec), spec)
                items.append(PlanItem(kind, name, "change", row.version + 1, changes))
        if not partial:
            for (kind, name), row in current.items():
                if row.deleted_at is None and (kind, name) not in specs:
                    items.append(PlanItem(kind, name, "remove", None))
        order = {k: i for i, k in enumerate(KINDS)}
        items.sort(key=lambda i: (order[i.kind], i.name))
        return Plan(items), specs, current

    def plan(self, objects: Sequence[Any], *, partial: bool = True) -> Plan:
        """What ``apply`` would do; ``partial=False`` also removes objects not given."""
        with self.db.engine.connect() as conn:
            return self._plan(conn, objects, partial)[0]

    def apply(self, objects: Sequence[Any], *, partial: bool = True) -> Plan:
        """Register the objects (new versions for changed ones) in one transaction; a
        concurrent apply that got there first makes this one plan again (up to 5 times)."""
        for attempt in range(5):
            try:
                return self._apply(objects, partial)
            except AlreadyExists:
                if attempt == 4:
                    raise
                time.sleep(0.01 * (attempt + 1))
        raise AssertionError("unreachable")

    def _apply(self, objects: Sequence[Any], partial: bool) -> Plan:
        with self.db.write() as conn:
            plan, specs, current = self._plan(conn, objects, partial)
            now = _now_ms()
            for item in plan.items:
                key = (item.kind, item.name)
                row = current.get(key)
                if item.action == "remove":
                    conn.execute(
                        update(feature_objects)
                        .where(feature_objects.c.object_id == row.object_id)
                        .values(deleted_at=now, updated_at=now)
                    )
                    continue
                if item.action == "unchanged":
                    continue
                spec = specs[key]
                h = spec_hash(spec)
                if row is None:
                    self._ensure_workspace(conn)
                    object_id = conn.execute(
                        insert(feature_objects).values(
                            workspace=self.workspace,
                            kind=item.kind,
                            name=check_name(item.name, item.kind),
                            version=1,
                            spec_hash=h,
                            created_at=now,
                            updated_at=now,
                        )
                    ).inserted_primary_key[0]
                else:
                    object_id = row.object_id
                    conn.execute(
                        update(feature_objects)
                        .where(feature_objects.c.object_id == object_id)
                        .values(version=item.version, spec_hash=h, updated_at=now, deleted_at=None)
                    )
                conn.execute(
                    insert(feature_object_versions).values(
                        object_id=object_id,
                        version=item.version,
                        spec=orjson.dumps(spec).decode(),
                        spec_hash=h,
                        created_at=now,
                    )
                )
        return plan

    def check_workspace(self) -> None:
        """``NotFound`` unless this registry's workspace exists."""
        with self.db.engine.connect() as conn:
            self._ensure_workspace(conn)

    def _ensure_workspace(self, conn: Connection) -> None:
        from loopml.store.tables import workspaces

        exists = conn.execute(
            select(workspaces.c.name).where(workspaces.c.name == self.workspace)
        ).first()
        if exists is None:
            raise NotFound(f"workspace {self.workspace!r} does not exist")

    # -- materialization state ------------------------------------------------------------------
    def _view_id(self, conn: Connection, view: str) -> int:
        row = self._object(conn, "feature_view", view)
        return int(row.object_id)

    def state(self, view: str) -> dict[str, Any]:
        """A view's materialization state: watermark (µs), stats, checkpoint, materialized_at."""
        with self.db.engine.connect() as conn:
            object_id = self._view_id(conn, view)
            row = conn.execute(
                select(feature_view_state).where(feature_view_state.c.object_id == object_id)
            ).first()
        if row is None:
            return {"watermark": None, "stats": {}, "checkpoint": None, "materialized_at": None}
        return {
            "watermark": row.watermark,
            "stats": orjson.loads(row.stats),
            "checkpoint": None if row.checkpoint is None else orjson.loads(row.checkpoint),
            "materialized_at": row.materialized_at,
        }

    def set_state(self, view: str, **values: Any) -> None:
        """Update a view's materialization state (``watermark``, ``stats``, ``checkpoint``...)."""
        encoded = {
            k: (orjson.dumps(v).decode() if k in ("stats", "checkpoint") and v is not None else v)
            for k, v in values.items()
        }
        with self.db.write() as conn:
            object_id = self._view_id(conn, view)
            done = conn.execute(
                update(feature_view_state)
                .where(feature_view_state.c.object_id == object_id)
                .values(**encoded)
            ).rowcount
            if not done:
                conn.execute(insert(feature_view_state).values(object_id=object_id, **encoded))
