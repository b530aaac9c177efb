"""The registry on the metadata database (SQLite embedded, PostgreSQL shared).

Every change that users see in the history (alias moves, stage changes, versions created or
deleted) writes its ``model_events`` row and its webhook deliveries in the same transaction as
the change itself, so the history and the outbox can never disagree with the registry.
"""

from __future__ import annotations

import logging
import re
import time
import uuid
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import orjson
from sqlalchemy import Connection, and_, delete, func, insert, select, update

from loopml.errors import AlreadyExists, InvalidInput, InvalidState, LoopmlError, NotFound
from loopml.registry._base import EVENTS, RegistryStore
from loopml.registry._compare import compare_versions
from loopml.registry._entities import (
    ModelEvent,
    ModelVersion,
    ModelVersionStatus,
    RegisteredModel,
    Stage,
    VersionComparison,
    Webhook,
    WebhookDelivery,
)
from loopml.registry._filter import compile_filter, compile_order
from loopml.registry._validation import (
    validate_alias,
    validate_model_name,
    validate_tag,
    validate_text,
    validate_user,
    validate_version,
)
from loopml.registry._webhooks import WebhookDispatcher, validate_webhook_url
from loopml.store import (
    ArtifactStore,
    Database,
    FileInfo,
    open_database,
    validate_artifact_path,
)
from loopml.store.tables import (
    dataset_inputs,
    dataset_versions,
    datasets,
    logged_models,
    model_aliases,
    model_events,
    model_version_tags,
    model_versions,
    registered_model_tags,
    registered_models,
    runs,
    webhook_deliveries,
    webhooks,
    workspaces,
)
from loopml.tracking import PagedList, SqlTrackingStore

__all__ = ["SqlRegistryStore"]

_MAX_PAGE = 50_000
_SHA256 = re.compile(r"[0-9a-f]{64}")
_log = logging.getLogger("loopml.registry")
REGISTRY_SOURCE = "registry:"
LOGGED_MODEL_SOURCE = "models:/m-"  # a model logged by an MLflow 3 client (logged_models)


def _now() -> int:
    return time.time_ns() // 1_000_000


def _page_args(max_results: Any, page_token: str | None) -> tuple[int, int]:
    if isinstance(max_results, bool) or not isinstance(max_results, int):
        raise InvalidInput(f"max_results must be an integer, got {max_results!r}")
    if not 1 <= max_results <= _MAX_PAGE:
        raise InvalidInput(f"max_results must be between 1 and {_MAX_PAGE}")
    offset = 0
    if page_token:
        try:
            offset = int(orjson.loads(bytes.fromhex(page_token))["offset"])
        except (ValueError, KeyError, TypeError) as exc:
            raise InvalidInput(
                f"page_token {page_token!r:.60} is not a token this server issued"
            ) from exc
        if offset < 0:
            raise InvalidInput(f"page_token {page_token!r:.60} is not a token this server issued")
    return max_results, offset


def _next_token(offset: int, count: int, has_more: bool) -> str | None:
    return orjson.dumps({"offset": offset + count}).hex() if has_more else None


def _str(v: int | None) -> str | None:
    return None if v is None else str(v)


class SqlRegistryStore(RegistryStore):
    """The registry on SQLAlchemy Core; registered-file versions live under ``artifact_root``."""

    def __init__(
        self,
        database: Database | str,
        artifact_root: str,
        *,
        workspace: str = "default",
        confine_artifacts: bool = False,
        dispatch_in_background: bool = True,
    ) -> None:
        self.db = open_database(database) if isinstance(database, str) else database
        self.artifact_root = artifact_root.rstrip("/")
        self.workspace = workspace
        # A shared server reads version files only from its own artifact root and runs.
        self.confine_artifacts = confine_artifacts
        self.dispatch_in_background = dispatch_in_background
        self._dispatcher = WebhookDispatcher(self.db)

    def for_workspace(self, workspace: str) -> SqlRegistryStore:
        store = SqlRegistryStore(
            self.db,
            self.artifact_root,
            workspace=workspace,
            confine_artifacts=self.confine_artifacts,
            dispatch_in_background=self.dispatch_in_background,
        )
        store._dispatcher = self._dispatcher
        return store

    def close(self) -> None:
        self._dispatcher.stop()

    # -- row helpers ---------------------------------------------------------------------------
    def _check_workspace(self, conn: Connection) -> None:
        found = conn.execute(
            select(workspaces.c.name).where(workspaces.c.name == self.workspace)
        ).first()
        if found is None:
            raise NotFound(f"workspace {self.workspace!r} does not exist")

    def _model_row(self, conn: Connection, name: str, *, lock: bool = False) -> Any:
        """The model's row; ``lock`` holds it until the transaction ends (PostgreSQL's
        ``FOR UPDATE``; SQLite's writers are serialised already), so concurrent writes to one
        model (version numbers, alias moves and their history) queue instead of racing."""
        validate_model_name(name)
        query = select(registered_models).where(
            registered_models.c.workspace == self.workspace,
            registered_models.c.name == name,
        )
        row = conn.execute(query.with_for_update() if lock else query).first()
        if row is None:
            raise NotFound(f"registered model {name!r} does not exist")
        return row

    def _version_row(self, conn: Connection, model: Any, version: str | int) -> Any:
        number = validate_version(version)
        row = conn.execute(
            select(model_versions).where(
                model_versions.c.model_id == model.model_id,
                model_versions.c.version == number,
            )
        ).first()
        if row is None:
            raise NotFound(f"model {model.name!r} has no version {number}")
        return row

    def _versions(
        self, conn: Connection, names: dict[int, str], rows: Sequence[Any]
    ) -> list[ModelVersion]:
        """Whole versions (tags, aliases) for rows, in the order given, set-based."""
        if not rows:
            return []
        ids = sorted({r.model_id for r in rows})
        tags: dict[tuple[int, int], dict[str, str]] = {}
        for mid, ver, key, value in conn.execute(
            select(
                model_version_tags.c.model_id,
                model_version_tags.c.version,
                model_version_tags.c.key,
                model_version_tags.c.value,
            ).where(
                model_version_tags.c.model_id.in_(ids),
                model_version_tags.c.version.in_(sorted({r.version for r in rows})),
            )
        ):
            tags.setdefault((mid, ver), {})[key] = value
        aliases: dict[tuple[int, int], list[str]] = {}
        for mid, alias, ver in conn.execute(
            select(model_aliases.c.model_id, model_aliases.c.alias, model_aliases.c.version)
            .where(model_aliases.c.model_id.in_(ids))
            .order_by(model_aliases.c.alias)
        ):
            aliases.setdefault((mid, ver), []).append(alias)
        return [
            ModelVersion(
                name=names[r.model_id],
                version=str(r.version),
                creation_timestamp=r.creation_time,
                last_updated_timestamp=r.last_updated_time,
                description=r.description,
                user_id=r.user_id,
                current_stage=r.current_stage,
                source=r.source,
                run_id=r.run_id,
                run_link=r.run_link,
                status=r.status,
                status_message=r.status_message,
                tags=tags.get((r.model_id, r.version), {}),
                aliases=aliases.get((r.model_id, r.version), []),
                manifest_digest=r.manifest_digest,
                dataset_versions=orjson.loads(r.dataset_versions),
                feature_views=orjson.loads(r.feature_views),
            )
            for r in rows
        ]

    def _models(self, conn: Connection, rows: Sequence[Any]) -> list[RegisteredModel]:
        """Whole registered models for rows: tags, aliases and the latest version per stage."""
        if not rows:
            return []
        ids = [r.model_id for r in rows]
        names = {r.model_id: r.name for r in rows}
        tags: dict[int, dict[str, str]] = {}
        for mid, key, value in conn.execute(
            select(
                registered_model_tags.c.model_id,
                registered_model_tags.c.key,
                registered_model_tags.c.value,
            ).where(registered_model_tags.c.model_id.in_(ids))
        ):
            tags.setdefault(mid, {})[key] = value
        aliases: dict[int, dict[str, str]] = {}
        for mid, alias, ver in conn.execute(
            select(model_aliases.c.model_id, model_aliases.c.alias, model_aliases.c.version)
            .where(model_aliases.c.model_id.in_(ids))
            .order_by(model_aliases.c.alias)
        ):
            aliases.setdefault(mid, {})[alias] = str(ver)
        newest = (
            select(
                model_versions.c.model_id,
                model_versions.c.current_stage,
                func.max(model_versions.c.version).label("version"),
            )
            .where(model_versions.c.model_id.in_(ids))
            .group_by(model_versions.c.model_id, model_versions.c.current_stage)
            .subquery()
        )
        latest_rows = conn.execute(
            select(model_versions)
            .join(
                newest,
                and_(
                    newest.c.model_id == model_versions.c.model_id,
                    newest.c.version == model_versions.c.version,
                ),
            )
            .order_by(model_versions.c.model_id, model_versions.c.version)
        ).fetchall()
        latest: dict[int, list[ModelVersion]] = {}
        for v_row, v in zip(latest_rows, self._versions(conn, names, latest_rows), strict=True):
            latest.setdefault(v_row.model_id, []).append(v)
        return [
            RegisteredModel(
                name=r.name,
                creation_timestamp=r.creation_time,
                last_updated_timestamp=r.last_updated_time,
                description=r.description,
                tags=tags.get(r.model_id, {}),
                aliases=aliases.get(r.model_id, {}),
                latest_versions=latest.get(r.model_id, []),
                workspace=r.workspace,
            )
            for r in rows
        ]

    def _touch(self, conn: Connection, model_id: int, now: int) -> None:
        conn.execute(
            update(registered_models)
            .where(registered_models.c.model_id == model_id)
            .values(last_updated_time=now)
        )

    def _record(
        self,
        conn: Connection,
        model: Any,
        event: str,
        *,
        now: int,
        user_id: str | None = None,
        reason: str | None = None,
        **fields: Any,
    ) -> ModelEvent:
        """Write one history entry and its webhook deliveries (the caller's transaction)."""
        kind = {
            "alias.set": "alias",
            "alias.deleted": "alias_deleted",
            "alias.rollback": "rollback",
            "stage.transitioned": "stage",
            "model_version.created": "version_created",
            "model_version.deleted": "version_deleted",
        }.get(event)
        user = validate_user(user_id)
        text = validate_text(reason, "reason")
        seq = None
        if kind is not None:
            seq = conn.execute(
                insert(model_events)
                .values(
                    model_id=model.model_id,
                    kind=kind,
                    time=now,
                    user_id=user,
                    reason=text,
                    **fields,
                )
                .returning(model_events.c.seq)
            ).scalar_one()
        record = ModelEvent(
            seq=seq or 0,
            name=model.name,
            kind=kind or event,
            timestamp=now,
            alias=fields.get("alias"),
            version=_str(fields.get("version")),
            from_version=_str(fields.get("from_version")),
            to_version=_str(fields.get("to_version")),
            from_stage=fields.get("from_stage"),
            to_stage=fields.get("to_stage"),
            user_id=user,
            reason=text,
        )
        self._enqueue(
            conn, "alias.set" if event == "alias.rollback" else event, model.name, record, now
        )
        return record

    def _enqueue(
        self,
        conn: Connection,
        event: str,
        name: str,
        record: ModelEvent | None,
        now: int,
        extra: dict[str, Any] | None = None,
    ) -> None:
        hooks = conn.execute(
            select(webhooks.c.webhook_id, webhooks.c.events, webhooks.c.model_name).where(
                webhooks.c.workspace == self.workspace, webhooks.c.active.is_(True)
            )
        ).fetchall()
        targets = [
            h.webhook_id
            for h in hooks
            if event in orjson.loads(h.events) and h.model_name in (None, name)
        ]
        if not targets:
            return
        payload: dict[str, Any] = {
            "event": event,
            "workspace": self.workspace,
            "model": name,
            "timestamp": now,
        }
        if record is not None:
            payload.update(
                {
                    k: v
                    for k, v in record.to_dict().items()
                    if k not in ("name", "timestamp") and v not in (None, "")
                }
            )
        payload.update(extra or {})
        body = orjson.dumps(payload).decode()
        conn.execute(
            insert(webhook_deliveries),
            [
                {
                    "webhook_id": t,
                    "event": event,
                    "payload": body,
                    "status": "pending",
                    "attempts": 0,
                    "next_attempt_time": now,
                    "created_time": now,
                }
                for t in targets
            ],
        )
        if self.dispatch_in_background:
            self._dispatcher.wake_after_commit(conn)

    # -- registered models ---------------------------------------------------------------------
    def create_registered_model(
        self, name: str, *, tags: dict[str, str] | None = None, description: str | None = None
    ) -> RegisteredModel:
        validate_model_name(name)
        tag_list = [validate_tag(k, v) for k, v in (tags or {}).items()]
        text = validate_text(description, "description")
        with self.db.write() as conn:
            now = _now()
            self._check_workspace(conn)
            exists_ = conn.execute(
                select(registered_models.c.model_id).where(
                    registered_models.c.workspace == self.workspace,
                    registered_models.c.name == name,
                )
            ).first()
            if exists_ is not None:
                raise AlreadyExists(f"registered model {name!r} already exists")
            model_id = conn.execute(
                insert(registered_models)
                .values(
                    workspace=self.workspace,
                    name=name,
                    description=text,
                    creation_time=now,
                    last_updated_time=now,
                    next_version=1,
                )
                .returning(registered_models.c.model_id)
            ).scalar_one()
            if tag_list:
                conn.execute(
                    insert(registered_model_tags),
                    [{"model_id": model_id, "key": k, "value": v} for k, v in tag_list],
                )
            self._enqueue(conn, "registered_model.created", name, None, now)
            return self._models(conn, [self._model_row(conn, name, lock=True)])[0]

    def get_registered_model(self, name: str) -> RegisteredModel:
        with self.db.read() as conn:
            return self._models(conn, [self._model_row(conn, name)])[0]

    def rename_registered_model(self, name: str, new_name: str) -> RegisteredModel:
        validate_model_name(new_name)
        with self.db.write() as conn:
            now = _now()
            row = self._model_row(conn, name, lock=True)
            if new_name != name:
                taken = conn.execute(
                    select(registered_models.c.model_id).where(
                        registered_models.c.workspace == self.workspace,
                        registered_models.c.name == new_name,
                    )
                ).first()
                if taken is not None:
                    raise AlreadyExists(f"registered model {new_name!r} already exists")
            conn.execute(
                update(registered_models)
                .where(registered_models.c.model_id == row.model_id)
                .values(name=new_name, last_updated_time=now)
            )
            conn.execute(  # webhooks scoped to the model follow it
                update(webhooks)
                .where(webhooks.c.workspace == self.workspace, webhooks.c.model_name == name)
                .values(model_name=new_name)
            )
            self._enqueue(
                conn, "registered_model.renamed", new_name, None, now, {"previous_name": name}
            )
            return self._models(conn, [self._model_row(conn, new_name)])[0]

    def update_registered_model(self, name: str, *, description: str) -> RegisteredModel:
        text = validate_text(description, "description")
        with self.db.write() as conn:
            row = self._model_row(conn, name, lock=True)
            conn.execute(
                update(registered_models)
                .where(registered_models.c.model_id == row.model_id)
                .values(description=text, last_updated_time=_now())
            )
            return self._models(conn, [self._model_row(conn, name, lock=True)])[0]

    def delete_registered_model(self, name: str) -> None:
        with self.db.write() as conn:
            now = _now()
            row = self._model_row(conn, name, lock=True)
            self._enqueue(conn, "registered_model.deleted", name, None, now)
            # Children first: SQLite enforces foreign keys only when asked to.
            conn.execute(
                delete(model_version_tags).where(model_version_tags.c.model_id == row.model_id)
            )
            for table in (model_aliases, model_events, model_versions, registered_model_tags):
                conn.execute(delete(table).where(table.c.model_id == row.model_id))
            conn.execute(
                delete(registered_models).where(registered_models.c.model_id == row.model_id)
            )
        self._remove_files(str(row.model_id))

    def search_registered_models(
        self,
        *,
        filter_string: str | None = None,
        max_results: int = 100,
        order_by: Sequence[str] | None = None,
        page_token: str | None = None,
    ) -> PagedList[RegisteredModel]:
        limit, offset = _page_args(max_results, page_token)
        rm = registered_models.c
        conditions = compile_filter(
            filter_string,
            {"name": (rm.name, False)},
            registered_model_tags,
            [(registered_model_tags.c.model_id, rm.model_id)],
        )
        order = compile_order(
            order_by,
            {
                "name": rm.name,
                "creation_timestamp": rm.creation_time,
                "last_updated_timestamp": rm.last_updated_time,
            },
            [rm.name.asc(), rm.model_id.asc()],
        )
        with self.db.read() as conn:
            rows = conn.execute(
                select(registered_models)
                .where(rm.workspace == self.workspace, *conditions)
                .order_by(*order)
                .offset(offset)
                .limit(limit + 1)
            ).fetchall()
            page = self._models(conn, rows[:limit])
        return PagedList(page, _next_token(offset, limit, len(rows) > limit))

    def set_registered_model_tag(self, name: str, key: str, value: str) -> None:
        key, text = validate_tag(key, value)
        with self.db.write() as conn:
            row = self._model_row(conn, name, lock=True)
            conn.execute(
                delete(registered_model_tags).where(
                    registered_model_tags.c.model_id == row.model_id,
                    registered_model_tags.c.key == key,
                )
            )
            conn.execute(
                insert(registered_model_tags).values(model_id=row.model_id, key=key, value=text)
            )
            self._touch(conn, row.model_id, _now())

    def delete_registered_model_tag(self, name: str, key: str) -> None:
        with self.db.write() as conn:
            row = self._model_row(conn, name, lock=True)
            gone = conn.execute(
                delete(registered_model_tags).where(
                    registered_model_tags.c.model_id == row.model_id,
                    registered_model_tags.c.key == key,
                )
            ).rowcount
            if not gone:
                raise NotFound(f"registered model {name!r} has no tag {key!r}")

    # -- versions ------------------------------------------------------------------------------
    def _check_source(self, conn: Connection, source: str, run_id: str | None) -> None:
        if not isinstance(source, str) or not source:
            raise InvalidInput("source must be a non-empty string")
        if source == REGISTRY_SOURCE:
            return
        if source.startswith("runs:/"):
            parts = source[len("runs:/") :].split("/", 1)
            if not parts[0]:
                raise InvalidInput(f"source {source!r} is not of the form runs:/<run_id>/<path>")
            if len(parts) > 1 and parts[1].strip("/"):
                validate_artifact_path(parts[1].strip("/"))
            if run_id is not None and parts[0] != run_id:
                raise InvalidInput(f"source {source!r} names another run than run_id {run_id!r}")
            self._run_artifact_uri(conn, parts[0])
            return
        if source.startswith(LOGGED_MODEL_SOURCE):
            self._logged_model_uri(conn, source)
            return
        if source.startswith("models:/"):
            raise InvalidInput(
                f"source {source!r}: register the model's run or files, not another model URI"
            )
        if self.confine_artifacts:
            raise InvalidInput(
                f"source {source!r}: a server registers only runs:/<run_id>/<path> (a model "
                "logged in one of its runs) or registry: (files uploaded to the version)"
            )

    def _logged_model_uri(self, conn: Connection, source: str) -> str:
        """The artifact folder of the logged model a ``models:/m-<id>`` source names."""
        model_id = source[len("models:/") :].strip("/")
        row = conn.execute(
            select(logged_models.c.artifact_uri).where(
                logged_models.c.model_id == model_id, logged_models.c.workspace == self.workspace
            )
        ).first()
        if row is None:
            raise NotFound(f"logged model {model_id!r} does not exist")
        return str(row.artifact_uri)

    def _run_artifact_uri(self, conn: Connection, run_id: str) -> str:
        row = conn.execute(
            select(runs.c.artifact_uri).where(
                runs.c.run_uuid == run_id, runs.c.workspace == self.workspace
            )
        ).first()
        if row is None:
            raise NotFound(f"run {run_id} does not exist")
        return str(row.artifact_uri)

    def _run_datasets(self, conn: Connection, run_id: str) -> tuple[list[str], list[str]]:
        """``name@version`` of every dataset version linked to ``run_id`` in this workspace,
        and the feature view versions those training sets were built from."""
        rows = conn.execute(
            select(datasets.c.name, dataset_versions.c.version, dataset_versions.c.tags)
            .join(dataset_versions, dataset_versions.c.dataset_id == datasets.c.dataset_id)
            .join(dataset_inputs, dataset_inputs.c.version_id == dataset_versions.c.version_id)
            .where(dataset_inputs.c.run_id == run_id, datasets.c.workspace == self.workspace)
            .order_by(datasets.c.name, dataset_versions.c.version)
        ).all()
        views: list[str] = []
        for r in rows:
            listed = orjson.loads(r.tags or "{}").get("loopml.feature_views", "")
            views += [v for v in listed.split(",") if v and v not in views]
        return [f"{r.name}@{r.version}" for r in rows], views

    def create_model_version(
        self,
        name: str,
        source: str,
        *,
        run_id: str | None = None,
        tags: dict[str, str] | None = None,
        run_link: str | None = None,
        description: str | None = None,
        user_id: str | None = None,
        manifest_digest: str | None = None,
        dataset_versions: Sequence[str] = (),
        feature_views: Sequence[str] = (),
        status: str | None = None,
    ) -> ModelVersion:
        tag_list = [validate_tag(k, v) for k, v in (tags or {}).items()]
        text = validate_text(description, "description")
        if run_id is not None and (not isinstance(run_id, str) or not run_id):
            raise InvalidInput(f"run_id must be a non-empty string, got {run_id!r}")
        if manifest_digest is not None and (
            not isinstance(manifest_digest, str) or not _SHA256.fullmatch(manifest_digest)
        ):
            raise InvalidInput("manifest_digest must be a SHA-256 hex digest (64 characters)")
        for field, refs in (
            ("dataset_versions", dataset_versions),
            ("feature_views", feature_views),
        ):
            if isinstance(refs, str) or not all(isinstance(r, str) for r in refs):
                raise InvalidInput(f"{field} must be a list of strings")
        state = status or ModelVersionStatus.READY
        if state not in (ModelVersionStatus.READY, ModelVersionStatus.PENDING_REGISTRATION):
            raise InvalidInput(f"status {status!r} is not READY or PENDING_REGISTRATION")
        if run_id is None and isinstance(source, str) and source.startswith("runs:/"):
            run_id = source[len("runs:/") :].split("/", 1)[0] or None
        with self.db.write() as conn:
            now = _now()
            model = self._model_row(conn, name, lock=True)
            self._check_source(conn, source, run_id)
            if run_id is not None:
                self._run_artifact_uri(conn, run_id)
                used, views = self._run_datasets(conn, run_id)
                if not dataset_versions:  # lineage: the dataset versions the run used
                    dataset_versions = used
                if not feature_views:  # and the feature views its training sets came from
                    feature_views = views
            number = model.next_version
            conn.execute(
                insert(model_versions).values(
                    model_id=model.model_id,
                    version=number,
                    creation_time=now,
                    last_updated_time=now,
                    description=text,
                    user_id=validate_user(user_id),
                    current_stage=Stage.NONE,
                    source=source,
                    run_id=run_id,
                    run_link=run_link,
                    status=state,
                    manifest_digest=manifest_digest,
                    dataset_versions=orjson.dumps(list(dataset_versions)).decode(),
                    feature_views=orjson.dumps(list(feature_views)).decode(),
                )
            )
            conn.execute(
                update(registered_models)
                .where(registered_models.c.model_id == model.model_id)
                .values(next_version=number + 1, last_updated_time=now)
            )
            if tag_list:
                conn.execute(
                    insert(model_version_tags),
                    [
                        {"model_id": model.model_id, "version": number, "key": k, "value": v}
                        for k, v in tag_list
                    ],
                )
            if state == ModelVersionStatus.READY:  # a pending version is announced once ready
                self._record(
                    conn, model, "model_version.created", now=now, user_id=user_id, version=number
                )
            return self._versions(
                conn, {model.model_id: name}, [self._version_row(conn, model, number)]
            )[0]

    def get_model_version(self, name: str, version: str | int) -> ModelVersion:
        with self.db.read() as conn:
            model = self._model_row(conn, name)
            row = self._version_row(conn, model, version)
            return self._versions(conn, {model.model_id: name}, [row])[0]

    def update_model_version(
        self,
        name: str,
        version: str | int,
        *,
        description: str | None = None,
        status: str | None = None,
        status_message: str | None = None,
    ) -> ModelVersion:
        values: dict[str, Any] = {"last_updated_time": _now()}
        if description is not None:
            values["description"] = validate_text(description, "description")
        if status is not None:
            allowed = (
                ModelVersionStatus.READY,
                ModelVersionStatus.FAILED_REGISTRATION,
                ModelVersionStatus.PENDING_REGISTRATION,
            )
            if status not in allowed:
                raise InvalidInput(f"status {status!r} is not one of {', '.join(allowed)}")
            values["status"] = status
        if status_message is not None:
            values["status_message"] = validate_text(status_message, "status_message")
        with self.db.write() as conn:
            model = self._model_row(conn, name, lock=True)
            row = self._version_row(conn, model, version)
            if (
                status is not None
                and row.status != ModelVersionStatus.PENDING_REGISTRATION
                and status != row.status
            ):
                raise InvalidState(
                    f"model {name!r} version {row.version} is {row.status}; only a pending "
                    "registration changes status"
                )
            conn.execute(
                update(model_versions)
                .where(
                    model_versions.c.model_id == model.model_id,
                    model_versions.c.version == row.version,
                )
                .values(**values)
            )
            self._touch(conn, model.model_id, values["last_updated_time"])
            if status == ModelVersionStatus.READY and row.status != status:
                self._record(
                    conn,
                    model,
                    "model_version.created",
                    now=values["last_updated_time"],
                    user_id=row.user_id,
                    version=row.version,
                )
            return self._versions(
                conn, {model.model_id: name}, [self._version_row(conn, model, row.version)]
            )[0]

    def delete_model_version(self, name: str, version: str | int) -> None:
        with self.db.write() as conn:
            now = _now()
            model = self._model_row(conn, name, lock=True)
            row = self._version_row(conn, model, version)
            for (alias,) in conn.execute(
                select(model_aliases.c.alias).where(
                    model_aliases.c.model_id == model.model_id,
                    model_aliases.c.version == row.version,
                )
            ).fetchall():
                self._record(
                    conn,
                    model,
                    "alias.deleted",
                    now=now,
                    alias=alias,
                    from_version=row.version,
                    reason=f"version {row.version} was deleted",
                )
            conn.execute(
                delete(model_aliases).where(
                    model_aliases.c.model_id == model.model_id,
                    model_aliases.c.version == row.version,
                )
            )
            conn.execute(
                delete(model_version_tags).where(
                    model_version_tags.c.model_id == model.model_id,
                    model_version_tags.c.version == row.version,
                )
            )
            conn.execute(
                delete(model_versions).where(
                    model_versions.c.model_id == model.model_id,
                    model_versions.c.version == row.version,
                )
            )
            self._record(conn, model, "model_version.deleted", now=now, version=row.version)
            self._touch(conn, model.model_id, now)
        if row.source == REGISTRY_SOURCE:
            self._remove_files(str(model.model_id), str(row.version))

    def search_model_versions(
        self,
        *,
        filter_string: str | None = None,
        max_results: int = 10_000,
        order_by: Sequence[str] | None = None,
        page_token: str | None = None,
    ) -> PagedList[ModelVersion]:
        limit, offset = _page_args(max_results, page_token)
        mv, rm = model_versions.c, registered_models.c
        conditions = compile_filter(
            filter_string,
            {
                "name": (rm.name, False),
                "version_number": (mv.version, True),
                "version": (mv.version, True),
                "run_id": (mv.run_id, False),
                "source": (mv.source, False),
                "source_path": (mv.source, False),
                "current_stage": (mv.current_stage, False),
                "status": (mv.status, False),
                "user_id": (mv.user_id, False),
            },
            model_version_tags,
            [
                (model_version_tags.c.model_id, mv.model_id),
                (model_version_tags.c.version, mv.version),
            ],
        )
        order = compile_order(
            order_by,
            {
                "name": rm.name,
                "version_number": mv.version,
                "creation_timestamp": mv.creation_time,
                "last_updated_timestamp": mv.last_updated_time,
            },
            [rm.name.asc(), mv.version.desc()],
        )
        with self.db.read() as conn:
            rows = conn.execute(
                select(model_versions, rm.name.label("model_name"))
                .join(registered_models, rm.model_id == mv.model_id)
                .where(rm.workspace == self.workspace, *conditions)
                .order_by(*order)
                .offset(offset)
                .limit(limit + 1)
            ).fetchall()
            rows = rows[: limit + 1]
            names = {r.model_id: r.model_name for r in rows}
            page = self._versions(conn, names, rows[:limit])
        return PagedList(page, _next_token(offset, limit, len(rows) > limit))

    def get_latest_versions(
        self, name: str, stages: Sequence[str] | None = None
    ) -> list[ModelVersion]:
        if isinstance(stages, str):
            raise InvalidInput("stages must be a list of stage names")
        wanted = [Stage.canonical(s) for s in stages] if stages else list(Stage.ALL)
        model = self.get_registered_model(name)
        order = {s: i for i, s in enumerate(wanted)}
        found = [v for v in model.latest_versions if v.current_stage in order]
        return sorted(found, key=lambda v: order[v.current_stage])

    def set_model_version_tag(self, name: str, version: str | int, key: str, value: str) -> None:
        key, text = validate_tag(key, value)
        with self.db.write() as conn:
            model = self._model_row(conn, name, lock=True)
            row = self._version_row(conn, model, version)
            where = (
                model_version_tags.c.model_id == model.model_id,
                model_version_tags.c.version == row.version,
                model_version_tags.c.key == key,
            )
            conn.execute(delete(model_version_tags).where(*where))
            conn.execute(
                insert(model_version_tags).values(
                    model_id=model.model_id, version=row.version, key=key, value=text
                )
            )

    def delete_model_version_tag(self, name: str, version: str | int, key: str) -> None:
        with self.db.write() as conn:
            model = self._model_row(conn, name, lock=True)
            row = self._version_row(conn, model, version)
            gone = conn.execute(
                delete(model_version_tags).where(
                    model_version_tags.c.model_id == model.model_id,
                    model_version_tags.c.version == row.version,
                    model_version_tags.c.key == key,
                )
            ).rowcount
            if not gone:
                raise NotFound(f"model {name!r} version {row.version} has no tag {key!r}")

    def transition_model_version_stage(
        self,
        name: str,
        version: str | int,
        stage: str,
        *,
        archive_existing_versions: bool = False,
        user_id: str | None = None,
        reason: str | None = None,
    ) -> ModelVersion:
        target = Stage.canonical(stage)
        if not isinstance(archive_existing_versions, bool):
            raise InvalidInput("archive_existing_versions must be true or false")
        if archive_existing_versions and target not in (Stage.STAGING, Stage.PRODUCTION):
            raise InvalidInput(
                "archive_existing_versions applies only to transitions to Staging or Production"
            )
        with self.db.write() as conn:
            now = _now()
            model = self._model_row(conn, name, lock=True)
            row = self._version_row(conn, model, version)
            moves = (
                [(row.version, row.current_stage, target)] if row.current_stage != target else []
            )
            if archive_existing_versions:
                for other, current in conn.execute(
                    select(model_versions.c.version, model_versions.c.current_stage).where(
                        model_versions.c.model_id == model.model_id,
                        model_versions.c.current_stage == target,
                        model_versions.c.version != row.version,
                    )
                ).fetchall():
                    moves.append((other, current, Stage.ARCHIVED))
            for number, before, after in moves:
                conn.execute(
                    update(model_versions)
                    .where(
                        model_versions.c.model_id == model.model_id,
                        model_versions.c.version == number,
                    )
                    .values(current_stage=after, last_updated_time=now)
                )
                self._record(
                    conn,
                    model,
                    "stage.transitioned",
                    now=now,
                    user_id=user_id,
                    reason=reason,
                    version=number,
                    from_stage=before,
                    to_stage=after,
                )
            self._touch(conn, model.model_id, now)
            return self._versions(
                conn, {model.model_id: name}, [self._version_row(conn, model, row.version)]
            )[0]

    # -- aliases and history -------------------------------------------------------------------
    def _alias_version(self, conn: Connection, model_id: int, alias: str) -> int | None:
        return conn.execute(
            select(model_aliases.c.version).where(
                model_aliases.c.model_id == model_id, model_aliases.c.alias == alias
            )
        ).scalar()

    def _move_alias(
        self,
        conn: Connection,
        model: Any,
        alias: str,
        number: int,
        *,
        event: str,
        now: int,
        user_id: str | None,
        reason: str | None,
    ) -> ModelEvent:
        current = self._alias_version(conn, model.model_id, alias)
        if current is None:
            conn.execute(
                insert(model_aliases).values(model_id=model.model_id, alias=alias, version=number)
            )
        else:
            conn.execute(
                update(model_aliases)
                .where(model_aliases.c.model_id == model.model_id, model_aliases.c.alias == alias)
                .values(version=number)
            )
        self._touch(conn, model.model_id, now)
        return self._record(
            conn,
            model,
            event,
            now=now,
            user_id=user_id,
            reason=reason,
            alias=alias,
            version=number,
            from_version=current,
            to_version=number,
        )

    def set_registered_model_alias(
        self,
        name: str,
        alias: str,
        version: str | int,
        *,
        user_id: str | None = None,
        reason: str | None = None,
    ) -> ModelEvent:
        validate_alias(alias)
        validate_text(reason, "reason")
        with self.db.write() as conn:
            now = _now()
            model = self._model_row(conn, name, lock=True)
            row = self._version_row(conn, model, version)
            if row.status != ModelVersionStatus.READY:
                raise InvalidState(
                    f"model {name!r} version {row.version} is {row.status}; an alias can point "
                    "only at a READY version"
                )
            if self._alias_version(conn, model.model_id, alias) == row.version:
                last = self._history(conn, model, alias=alias, kinds=None, limit=1, offset=0)
                if last:
                    return last[0]
            return self._move_alias(
                conn,
                model,
                alias,
                row.version,
                event="alias.set",
                now=now,
                user_id=user_id,
                reason=reason,
            )

    def delete_registered_model_alias(
        self, name: str, alias: str, *, user_id: str | None = None, reason: str | None = None
    ) -> None:
        validate_alias(alias)
        with self.db.write() as conn:
            now = _now()
            model = self._model_row(conn, name, lock=True)
            current = self._alias_version(conn, model.model_id, alias)
            if current is None:
                raise NotFound(f"model {name!r} has no alias {alias!r}")
            conn.execute(
                delete(model_aliases).where(
                    model_aliases.c.model_id == model.model_id, model_aliases.c.alias == alias
                )
            )
            self._touch(conn, model.model_id, now)
            self._record(
                conn,
                model,
                "alias.deleted",
                now=now,
                user_id=user_id,
                reason=reason,
                alias=alias,
                from_version=current,
            )

    def get_model_version_by_alias(self, name: str, alias: str) -> ModelVersion:
        validate_alias(alias)
        with self.db.read() as conn:
            model = self._model_row(conn, name)
            number = self._alias_version(conn, model.model_id, alias)
            if number is None:
                raise NotFound(f"model {name!r} has no alias {alias!r}")
            return self._versions(
                conn, {model.model_id: name}, [self._version_row(conn, model, number)]
            )[0]

    def _history(
        self,
        conn: Connection,
        model: Any,
        *,
        alias: str | None,
        kinds: Sequence[str] | None,
        limit: int,
        offset: int,
    ) -> list[ModelEvent]:
        ev = model_events.c
        query = select(model_events).where(ev.model_id == model.model_id)
        if alias is not None:
            query = query.where(ev.alias == alias)
        if kinds:
            query = query.where(ev.kind.in_(list(kinds)))
        rows = conn.execute(query.order_by(ev.seq.desc()).offset(offset).limit(limit)).fetchall()
        return [
            ModelEvent(
                seq=r.seq,
                name=model.name,
                kind=r.kind,
                timestamp=r.time,
                alias=r.alias,
                version=_str(r.version),
                from_version=_str(r.from_version),
                to_version=_str(r.to_version),
                from_stage=r.from_stage,
                to_stage=r.to_stage,
                user_id=r.user_id,
                reason=r.reason,
            )
            for r in rows
        ]

    def get_model_history(
        self,
        name: str,
        *,
        alias: str | None = None,
        kinds: Sequence[str] | None = None,
        max_results: int = 1000,
        page_token: str | None = None,
    ) -> PagedList[ModelEvent]:
        limit, offset = _page_args(max_results, page_token)
        if alias is not None:
            validate_alias(alias)
        known = (
            "alias",
            "alias_deleted",
            "rollback",
            "stage",
            "version_created",
            "version_deleted",
        )
        if isinstance(kinds, str) or any(k not in known for k in kinds or ()):
            raise InvalidInput(f"kinds must be a list of: {', '.join(known)}")
        with self.db.read() as conn:
            model = self._model_row(conn, name)
            events = self._history(
                conn, model, alias=alias, kinds=kinds, limit=limit + 1, offset=offset
            )
        return PagedList(events[:limit], _next_token(offset, limit, len(events) > limit))

    def get_alias_at(self, name: str, alias: str, timestamp_ms: int) -> ModelVersion | None:
        validate_alias(alias)
        if isinstance(timestamp_ms, bool) or not isinstance(timestamp_ms, int):
            raise InvalidInput(f"timestamp_ms must be an integer, got {timestamp_ms!r}")
        with self.db.read() as conn:
            model = self._model_row(conn, name)
            ev = model_events.c
            row = conn.execute(
                select(ev.to_version, ev.kind)
                .where(
                    ev.model_id == model.model_id,
                    ev.alias == alias,
                    ev.kind.in_(["alias", "rollback", "alias_deleted"]),
                    ev.time <= timestamp_ms,
                )
                .order_by(ev.seq.desc())
                .limit(1)
            ).first()
            if row is None or row.to_version is None:
                return None
            found = conn.execute(
                select(model_versions).where(
                    model_versions.c.model_id == model.model_id,
                    model_versions.c.version == row.to_version,
                )
            ).first()
            if found is None:
                raise NotFound(
                    f"alias {alias!r} pointed at version {row.to_version} then, "
                    "which has since been deleted"
                )
            return self._versions(conn, {model.model_id: name}, [found])[0]

    def rollback(
        self,
        name: str,
        alias: str = "production",
        *,
        user_id: str | None = None,
        reason: str | None = None,
    ) -> ModelEvent:
        validate_alias(alias)
        with self.db.write() as conn:
            now = _now()
            model = self._model_row(conn, name, lock=True)
            current = self._alias_version(conn, model.model_id, alias)
            if current is None:
                raise NotFound(f"model {name!r} has no alias {alias!r}")
            ev = model_events.c
            # Replay the alias's moves as an undo stack: a set pushes, a rollback pops.
            stack: list[int] = []
            for kind, to_version in conn.execute(
                select(ev.kind, ev.to_version)
                .where(ev.model_id == model.model_id, ev.alias == alias)
                .order_by(ev.seq)
            ):
                if kind == "alias":
                    stack.append(to_version)
                elif kind == "rollback" and stack:
                    stack.pop()  # the version rolled back from, then any it skipped
                    while stack and stack[-1] != to_version:
                        stack.pop()
                elif kind == "alias_deleted":
                    stack.clear()
            if stack and stack[-1] == current:
                stack.pop()
            existing = {
                v
                for (v,) in conn.execute(
                    select(model_versions.c.version).where(
                        model_versions.c.model_id == model.model_id
                    )
                )
            }
            while stack and stack[-1] not in existing:
                stack.pop()
            if not stack:
                raise InvalidState(
                    f"alias {alias!r} of model {name!r} has no earlier version to roll back to"
                )
            return self._move_alias(
                conn,
                model,
                alias,
                stack[-1],
                event="alias.rollback",
                now=now,
                user_id=user_id,
                reason=reason or f"rollback from version {current}",
            )

    def compare_versions(
        self, name: str, version_a: str | int, version_b: str | int
    ) -> VersionComparison:
        tracking = SqlTrackingStore(self.db, self.artifact_root, workspace=self.workspace)
        return compare_versions(self, tracking, name, version_a, version_b)

    # -- version files -------------------------------------------------------------------------
    def _remove_files(self, *parts: str) -> None:
        """Delete uploaded files of a deleted version or model (after the rows are gone)."""
        folder = "/".join(parts)
        try:
            root = ArtifactStore(f"{self.artifact_root}/registry/{self.workspace}")
            if root.exists(folder):
                root.delete(folder)
        except LoopmlError as exc:  # the registry change stands; the files are only garbage now
            _log.warning("could not remove registry files %s: %s", folder, exc)

    def _registry_location(self, model_id: int, version: int) -> str:
        return f"{self.artifact_root}/registry/{self.workspace}/{model_id}/{version}"

    def _registry_files(self, model_id: int, version: int) -> ArtifactStore:
        return ArtifactStore(self._registry_location(model_id, version))

    def _version_location(self, name: str, version: str | int) -> tuple[str, Any]:
        """Where a version's files are stored (a path or URI) and the version's row."""
        with self.db.read() as conn:
            model = self._model_row(conn, name)
            row = self._version_row(conn, model, version)
            source = row.source
            if source == REGISTRY_SOURCE:
                return self._registry_location(model.model_id, row.version), row
            if source.startswith("runs:/"):
                run_id, _, path = source[len("runs:/") :].partition("/")
                root = self._run_artifact_uri(conn, run_id).rstrip("/")
                path = validate_artifact_path(path.strip("/")) if path.strip("/") else ""
                return (f"{root}/{path}" if path else root), row
            if source.startswith(LOGGED_MODEL_SOURCE):
                return self._logged_model_uri(conn, source), row
        if self.confine_artifacts:
            raise InvalidState(
                f"model {name!r} version {row.version}: source {source!r} is outside "
                "this server's store"
            )
        return source, row

    def _version_files(self, name: str, version: str | int) -> tuple[ArtifactStore, Any]:
        location, row = self._version_location(name, version)
        return ArtifactStore(location), row

    def version_files_uri(self, name: str, version: str | int) -> str:
        """Where a version's files are stored (what MLflow's ``get-download-uri`` answers)."""
        return self._version_location(name, version)[0]

    def _upload_target(self, name: str, version: str | int) -> ArtifactStore:
        """The files of a version that still takes uploads (``registry:``, pending)."""
        files, row = self._version_files(name, version)
        if row.source != REGISTRY_SOURCE or row.status != ModelVersionStatus.PENDING_REGISTRATION:
            raise InvalidState(
                f"model {name!r} version {row.version} takes no uploads: only a version "
                f"registered with source {REGISTRY_SOURCE!r} and still pending does"
            )
        return files

    def upload_version_artifact(
        self, name: str, version: str | int, local_file: Path, artifact_path: str
    ) -> None:
        self._upload_target(name, version).put_file(local_file, artifact_path)

    def put_version_artifact_stream(
        self, name: str, version: str | int, chunks: Iterator[bytes], artifact_path: str
    ) -> None:
        """Store an uploaded file from a stream of chunks (the server's upload route)."""
        self._upload_target(name, version).put_stream(chunks, artifact_path)

    def list_version_artifacts(
        self, name: str, version: str | int, path: str | None = None
    ) -> list[FileInfo]:
        files, _ = self._version_files(name, version)
        return files.list(path or "")

    def iter_version_artifact(self, name: str, version: str | int, path: str) -> Iterator[bytes]:
        files, _ = self._version_files(name, version)
        return files.iter_chunks(path)

    # -- webhooks ------------------------------------------------------------------------------
    def create_webhook(
        self,
        url: str,
        *,
        events: Sequence[str] = EVENTS,
        secret: str,
        model_name: str | None = None,
        description: str | None = None,
    ) -> Webhook:
        validate_webhook_url(url)
        if isinstance(events, str) or not events or any(e not in EVENTS for e in events):
            raise InvalidInput(f"events must be a non-empty list of: {', '.join(EVENTS)}")
        if not isinstance(secret, str) or len(secret) < 8:
            raise InvalidInput("secret must be a string of at least 8 characters")
        if model_name is not None:
            validate_model_name(model_name)
        text = validate_text(description, "description")
        hook = Webhook(
            id=uuid.uuid4().hex,
            url=url,
            events=list(dict.fromkeys(events)),
            creation_timestamp=_now(),
            model_name=model_name,
            active=True,
            description=text,
        )
        with self.db.write() as conn:
            self._check_workspace(conn)
            conn.execute(
                insert(webhooks).values(
                    webhook_id=hook.id,
                    workspace=self.workspace,
                    url=url,
                    secret=secret,
                    events=orjson.dumps(hook.events).decode(),
                    model_name=model_name,
                    active=True,
                    description=text,
                    creation_time=hook.creation_timestamp,
                )
            )
        return hook

    def list_webhooks(self) -> list[Webhook]:
        with self.db.read() as conn:
            rows = conn.execute(
                select(webhooks)
                .where(webhooks.c.workspace == self.workspace)
                .order_by(webhooks.c.creation_time)
            ).fetchall()
        return [
            Webhook(
                id=r.webhook_id,
                url=r.url,
                events=orjson.loads(r.events),
                creation_timestamp=r.creation_time,
                model_name=r.model_name,
                active=r.active,
                description=r.description,
            )
            for r in rows
        ]

    def _webhook_row(self, conn: Connection, webhook_id: str) -> Any:
        if not isinstance(webhook_id, str):
            raise InvalidInput("webhook id must be a string")
        row = conn.execute(
            select(webhooks.c.webhook_id).where(
                webhooks.c.webhook_id == webhook_id, webhooks.c.workspace == self.workspace
            )
        ).first()
        if row is None:
            raise NotFound(f"webhook {webhook_id!r} does not exist")
        return row

    def delete_webhook(self, webhook_id: str) -> None:
        with self.db.write() as conn:
            self._webhook_row(conn, webhook_id)
            conn.execute(
                delete(webhook_deliveries).where(webhook_deliveries.c.webhook_id == webhook_id)
            )
            conn.execute(delete(webhooks).where(webhooks.c.webhook_id == webhook_id))

    def list_webhook_deliveries(
        self, webhook_id: str, *, max_results: int = 100
    ) -> list[WebhookDelivery]:
        limit, _ = _page_args(max_results, None)
        with self.db.read() as conn:
            self._webhook_row(conn, webhook_id)
            d = webhook_deliveries.c
            rows = conn.execute(
                select(webhook_deliveries)
                .where(d.webhook_id == webhook_id)
                .order_by(d.delivery_id.desc())
                .limit(limit)
            ).fetchall()
        return [
            WebhookDelivery(
                id=r.delivery_id,
                webhook_id=r.webhook_id,
                event=r.event,
                payload=orjson.loads(r.payload),
                status=r.status,
                attempts=r.attempts,
                created_timestamp=r.created_time,
                last_attempt_timestamp=r.last_attempt_time,
                response_status=r.response_status,
                error=r.error,
            )
            for r in rows
        ]

    def dispatch_webhooks(self, *, timeout: float = 30.0) -> int:
        return self._dispatcher.dispatch_due(timeout=timeout)

    def start_webhook_dispatcher(self, poll_interval: float = 1.0) -> None:
        """Deliver due webhooks from a background thread, also polling for deliveries other
        processes wrote (what ``loopml server`` runs)."""
        self._dispatcher.start(poll_interval=poll_interval)
