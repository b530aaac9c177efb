"""The tracking store on the metadata database (SQLite embedded, PostgreSQL shared)."""

from __future__ import annotations

import base64
import functools
import logging
import math
import time
import uuid
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

import orjson
from sqlalchemy import Connection, delete, func, insert, select, update
from sqlalchemy.dialects import postgresql, sqlite

from loopml.errors import (
    AlreadyExists,
    ExperimentNotFound,
    InvalidInput,
    InvalidState,
    LoopmlError,
    NotFound,
    RunNotFound,
)
from loopml.store import ArtifactStore, Database, open_database, paused_gc
from loopml.store.tables import (
    experiment_tags,
    experiments,
    latest_metrics,
    logged_models,
    metrics,
    params,
    runs,
    workspaces,
)
from loopml.store.tables import tags as run_tags
from loopml.tracking._base import TrackingStore
from loopml.tracking._entities import (
    Experiment,
    FileInfo,
    LifecycleStage,
    Metric,
    PagedList,
    Param,
    Run,
    RunBatch,
    RunData,
    RunInfo,
    RunStatus,
    RunTag,
    ViewType,
)
from loopml.tracking._experiment_filter import experiment_filter, experiment_order
from loopml.tracking._filter import parse_filter, parse_order_by
from loopml.tracking._names import random_run_name
from loopml.tracking._search_plan import search_run_ids
from loopml.tracking._validation import (
    MAX_EXPERIMENT_NAME_LENGTH,
    MAX_RUN_NAME_LENGTH,
    int_field,
    validate_batch,
    validate_experiment_id,
    validate_name,
    validate_run_id,
    validate_tag,
)

__all__ = ["SqlTrackingStore"]

_log = logging.getLogger("loopml.tracking")

RUN_NAME_TAG = "mlflow.runName"
PARENT_RUN_TAG = "mlflow.parentRunId"
DEFAULT_EXPERIMENT_NAME = "Default"
MAX_RESULTS_LIMIT = 50_000
_IN_CHUNK = 900  # stay well under SQLite's bound-parameter limit


def now_ms() -> int:
    """Milliseconds since the epoch."""
    return time.time_ns() // 1_000_000


def encode_page_token(offset: int) -> str:
    """An opaque page token (MLflow's form: base64 of a JSON offset)."""
    return base64.b64encode(orjson.dumps({"offset": offset})).decode()


def decode_page_token(token: str | None) -> int:
    """The offset inside a page token; a malformed token is ``InvalidInput``."""
    if not token:
        return 0
    try:
        offset = orjson.loads(base64.b64decode(token, validate=True))["offset"]
    except (ValueError, KeyError, TypeError) as exc:
        raise InvalidInput(f"page_token {token!r:.60} is not a token this server issued") from exc
    if not isinstance(offset, int) or offset < 0:
        raise InvalidInput(f"page_token {token!r:.60} is not a token this server issued")
    return offset


def check_max_results(max_results: Any) -> int:
    """Page sizes are 1 .. 50,000, as MLflow's server allows."""
    if isinstance(max_results, bool) or not isinstance(max_results, int):
        raise InvalidInput(f"max_results must be an integer, got {max_results!r}")
    if not 1 <= max_results <= MAX_RESULTS_LIMIT:
        raise InvalidInput(f"max_results must be between 1 and {MAX_RESULTS_LIMIT}")
    return max_results


def _write_sql(mark: str) -> dict[str, str]:
    """SQL text of the hot writes, valid on SQLite and PostgreSQL alike."""

    def values(n: int) -> str:
        return ", ".join([mark] * n)

    cols = 'run_uuid, "key", value, is_nan, timestamp, step'
    run_cols = (
        "run_uuid, experiment_id, workspace, name, user_id, status, start_time, "
        "lifecycle_stage, artifact_uri, parent_run_id"
    )
    return {
        "run": f"INSERT INTO runs ({run_cols}) VALUES ({values(10)})",
        # {marks} is filled with one placeholder per id of the chunk.
        "load_runs": (
            "SELECT run_uuid, experiment_id, name, user_id, status, start_time, end_time, "
            "lifecycle_stage, artifact_uri, parent_run_id FROM runs WHERE run_uuid IN ({marks})"
        ),
        "load_latest": (
            'SELECT run_uuid, "key", value, is_nan FROM latest_metrics WHERE run_uuid IN ({marks})'
        ),
        "load_params": 'SELECT run_uuid, "key", value FROM params WHERE run_uuid IN ({marks})',
        "load_tags": 'SELECT run_uuid, "key", value FROM tags WHERE run_uuid IN ({marks})',
        "end": f"UPDATE runs SET status = {mark}, end_time = {mark} WHERE run_uuid = {mark}",
        "history": (
            "SELECT value, is_nan, timestamp, step FROM metrics "
            f'WHERE run_uuid = {mark} AND "key" = {mark} ORDER BY step, timestamp, seq'
        ),
        "params": f'INSERT INTO params (run_uuid, "key", value) VALUES ({values(3)})',
        "tags": (
            f'INSERT INTO tags (run_uuid, "key", value) VALUES ({values(3)}) '
            'ON CONFLICT (run_uuid, "key") DO UPDATE SET value = excluded.value'
        ),
        "metrics": f"INSERT INTO metrics ({cols}) VALUES ({values(6)})",
        "latest": (
            f"INSERT INTO latest_metrics ({cols}) VALUES ({values(6)}) "
            'ON CONFLICT (run_uuid, "key") DO UPDATE SET value = excluded.value, '
            "is_nan = excluded.is_nan, timestamp = excluded.timestamp, step = excluded.step "
            "WHERE excluded.step > latest_metrics.step OR (excluded.step = latest_metrics.step "
            "AND excluded.timestamp >= latest_metrics.timestamp)"
        ),
    }


# A loose index scan: each step seeks the next key in the table's (key, value) index; it
# stops after {limit} keys.
_DISTINCT_KEYS = (
    'WITH RECURSIVE k("key") AS ('
    'SELECT MIN("key") FROM {table} UNION ALL '
    'SELECT (SELECT MIN(t."key") FROM {table} t WHERE t."key" > k."key") FROM k '
    'WHERE k."key" IS NOT NULL'
    ') SELECT "key" FROM k LIMIT {limit}'
)
_KEY_PROBES = 300  # beyond this many distinct keys in a table, one set-based query instead
_KEY_TABLES = {"metrics": latest_metrics, "params": params, "tags": run_tags}


def _check_columns(columns: Any) -> dict[str, list[str]] | None:
    if columns is None:
        return None
    if not isinstance(columns, dict):
        raise InvalidInput("columns must be an object of metrics, params and tags key lists")
    for kind, keys in columns.items():
        if kind not in ("metrics", "params", "tags"):
            raise InvalidInput(f"columns: unknown kind {kind!r} (metrics, params or tags)")
        if not isinstance(keys, list) or not all(isinstance(k, str) for k in keys):
            raise InvalidInput(f"columns.{kind} must be a list of key names")
        if len(keys) > 1000:
            raise InvalidInput(f"columns.{kind}: at most 1000 keys")
    return columns


def _chunks(items: Sequence[Any], size: int = _IN_CHUNK) -> Iterable[Sequence[Any]]:
    for i in range(0, len(items), size):
        yield items[i : i + size]


class SqlTrackingStore(TrackingStore):
    """Tracking on SQLAlchemy Core; artifacts in an ``ArtifactStore`` under ``artifact_root``."""

    def __init__(
        self,
        database: Database | str,
        artifact_root: str,
        *,
        workspace: str = "default",
        confine_artifacts: bool = False,
    ) -> None:
        self.db = open_database(database) if isinstance(database, str) else database
        self.artifact_root = artifact_root.rstrip("/")
        # A shared server must not let clients choose where it writes (confine_artifacts).
        self.confine_artifacts = confine_artifacts
        self.workspace = workspace
        self._upsert = (sqlite if self.db.is_sqlite else postgresql).insert
        self._checked_workspaces: set[str] = set()
        self._mark = "?" if self.db.is_sqlite else "%s"
        self._sql = _write_sql(self._mark)

    def for_workspace(self, workspace: str) -> SqlTrackingStore:
        store = SqlTrackingStore(
            self.db,
            self.artifact_root,
            workspace=workspace,
            confine_artifacts=self.confine_artifacts,
        )
        store._checked_workspaces = self._checked_workspaces
        return store

    # -- helpers -------------------------------------------------------------------------------
    def _check_workspace(self, conn: Connection) -> None:
        if self.workspace in self._checked_workspaces:
            return
        found = conn.execute(
            select(workspaces.c.name).where(workspaces.c.name == self.workspace)
        ).first()
        if found is None:
            raise NotFound(f"workspace {self.workspace!r} does not exist")
        self._checked_workspaces.add(self.workspace)

    def _experiment_row(self, conn: Connection, experiment_id: str) -> Any:
        eid = validate_experiment_id(experiment_id)
        row = conn.execute(
            select(experiments).where(
                experiments.c.experiment_id == eid, experiments.c.workspace == self.workspace
            )
        ).first()
        if row is None:
            raise ExperimentNotFound(f"experiment {experiment_id} does not exist")
        return row

    def _to_experiment(self, conn: Connection, row: Any) -> Experiment:
        tag_rows = conn.execute(
            select(experiment_tags.c.key, experiment_tags.c.value).where(
                experiment_tags.c.experiment_id == row.experiment_id
            )
        )
        return Experiment(
            experiment_id=str(row.experiment_id),
            name=row.name,
            artifact_location=row.artifact_location,
            lifecycle_stage=row.lifecycle_stage,
            creation_time=row.creation_time,
            last_update_time=row.last_update_time,
            tags={k: v for k, v in tag_rows},
            workspace=row.workspace,
        )

    def _run_row(self, conn: Connection, run_id: str) -> Any:
        validate_run_id(run_id)
        row = conn.execute(
            select(runs).where(runs.c.run_uuid == run_id, runs.c.workspace == self.workspace)
        ).first()
        if row is None:
            raise RunNotFound(f"run {run_id} does not exist")
        return row

    @staticmethod
    def _to_run_info(row: Any) -> RunInfo:
        return RunInfo(
            run_id=row.run_uuid,
            experiment_id=str(row.experiment_id),
            run_name=row.name,
            user_id=row.user_id,
            status=row.status,
            start_time=row.start_time,
            end_time=row.end_time,
            lifecycle_stage=row.lifecycle_stage,
            artifact_uri=row.artifact_uri,
            parent_run_id=row.parent_run_id,
        )

    def _load_runs(
        self,
        conn: Connection,
        run_ids: Sequence[str],
        columns: dict[str, list[str]] | None = None,
    ) -> list[Run]:
        """Runs for ids, in the order given, with four set-based queries per chunk; with
        ``columns``, only those metric, param and tag keys (what a table shows)."""
        infos: dict[str, RunInfo] = {}
        data: dict[str, tuple[dict[str, float], dict[str, str], dict[str, str]]] = {
            r: ({}, {}, {}) for r in run_ids
        }
        nan = math.nan
        for chunk in _chunks(list(run_ids)):
            ids = tuple(chunk)
            marks = ", ".join([self._mark] * len(ids))

            def fetch(
                sql: str, kind: str = "", ids: tuple[str, ...] = ids, marks: str = marks
            ) -> list[Any]:
                sql, args = sql.format(marks=marks), ids
                wanted = None if columns is None else columns.get(kind)
                if wanted is not None:
                    if not wanted:
                        return []
                    sql += ' AND "key" IN ({})'.format(", ".join([self._mark] * len(wanted)))
                    args = ids + tuple(wanted)
                # Driver-level fetchall: SQLAlchemy's row-by-row iteration costs more here.
                return conn.exec_driver_sql(sql, args).fetchall()

            for r in fetch(self._sql["load_runs"]):
                infos[r[0]] = RunInfo(
                    r[0], str(r[1]), r[2], r[3], r[4], r[5], r[6], r[7], r[8], r[9]
                )
            for rid, key, value, is_nan in fetch(self._sql["load_latest"], "metrics"):
                data[rid][0][key] = nan if is_nan else value
            for rid, key, value in fetch(self._sql["load_params"], "params"):
                data[rid][1][key] = value
            for rid, key, value in fetch(self._sql["load_tags"], "tags"):
                data[rid][2][key] = value
        out = []
        for rid in run_ids:
            info = infos.get(rid)
            if info is not None:
                m, p, t = data[rid]
                out.append(Run(info, RunData(m, p, t)))
        return out

    # -- experiments ---------------------------------------------------------------------------
    def create_experiment(
        self,
        name: str,
        *,
        artifact_location: str | None = None,
        tags: dict[str, str] | None = None,
    ) -> str:
        validate_name(name, "experiment", MAX_EXPERIMENT_NAME_LENGTH)
        tag_list = [validate_tag(RunTag(k, v)) for k, v in (tags or {}).items()]
        if artifact_location:
            self._check_artifact_location(artifact_location)
        now = now_ms()
        with self.db.write() as conn:
            self._check_workspace(conn)
            existing = conn.execute(
                select(experiments.c.experiment_id, experiments.c.lifecycle_stage).where(
                    experiments.c.workspace == self.workspace, experiments.c.name == name
                )
            ).first()
            if existing is not None:
                hint = (
                    "; it is deleted: restore it, or purge it to reuse the name"
                    if existing.lifecycle_stage == LifecycleStage.DELETED
                    else ""
                )
                raise AlreadyExists(
                    f"experiment {name!r} already exists (id {existing.experiment_id}){hint}"
                )
            values: dict[str, Any] = {
                "workspace": self.workspace,
                "name": name,
                "artifact_location": artifact_location or "",
                "lifecycle_stage": LifecycleStage.ACTIVE,
                "creation_time": now,
                "last_update_time": now,
            }
            if name == DEFAULT_EXPERIMENT_NAME and self.workspace == "default":
                taken = conn.execute(
                    select(experiments.c.experiment_id).where(experiments.c.experiment_id == 0)
                ).first()
                if taken is None:
                    values["experiment_id"] = 0
            result = conn.execute(insert(experiments).values(**values))
            eid = values.get("experiment_id", result.inserted_primary_key[0])  # type: ignore[index]
            if not artifact_location:
                conn.execute(
                    update(experiments)
                    .where(experiments.c.experiment_id == eid)
                    .values(artifact_location=f"{self.artifact_root}/{eid}")
                )
            if tag_list:
                conn.execute(
                    insert(experiment_tags),
                    [{"experiment_id": eid, "key": t.key, "value": t.value} for t in tag_list],
                )
        return str(eid)

    def _check_artifact_location(self, location: str) -> None:
        if not isinstance(location, str) or any(ord(c) < 32 for c in location):
            raise InvalidInput(f"artifact_location {location!r:.200} is not a valid location")
        try:
            chosen = ArtifactStore(location).root.rstrip("/")
        except LoopmlError as exc:
            raise InvalidInput(f"artifact_location {location!r:.200}: {exc}") from exc
        if self.confine_artifacts:
            root = self._artifact_store(self.artifact_root).root.rstrip("/")
            if not chosen.startswith(root + "/"):
                raise InvalidInput(
                    f"artifact_location {location!r:.200} is outside this server's artifact root "
                    f"{self.artifact_root}; leave it unset, or choose a folder under the root"
                )
            first = chosen[len(root) + 1 :].split("/", 1)[0]
            if first.isdigit() or first == "registry":
                raise InvalidInput(
                    f"artifact_location {location!r:.200} is inside the folder loopml keeps for "
                    f"{'the registry' if first == 'registry' else 'experiment ' + first}; "
                    "choose another folder under the root"
                )

    def get_experiment(self, experiment_id: str) -> Experiment:
        with self.db.read() as conn:
            return self._to_experiment(conn, self._experiment_row(conn, experiment_id))

    def find_experiment_by_name(self, name: str) -> Experiment | None:
        if not isinstance(name, str):
            raise InvalidInput(f"experiment name must be a string, got {name!r}")
        with self.db.read() as conn:
            row = conn.execute(
                select(experiments).where(
                    experiments.c.workspace == self.workspace, experiments.c.name == name
                )
            ).first()
            return None if row is None else self._to_experiment(conn, row)

    def get_default_experiment_id(self) -> str:
        found = self.find_experiment_by_name(DEFAULT_EXPERIMENT_NAME)
        if found is not None:
            return found.experiment_id
        try:
            return self.create_experiment(DEFAULT_EXPERIMENT_NAME)
        except AlreadyExists:  # another process made it first
            again = self.find_experiment_by_name(DEFAULT_EXPERIMENT_NAME)
            assert again is not None
            return again.experiment_id

    def search_experiments(
        self,
        *,
        view_type: str | int = ViewType.ACTIVE_ONLY,
        max_results: int = 1000,
        filter_string: str | None = None,
        order_by: Sequence[str] | None = None,
        page_token: str | None = None,
    ) -> PagedList[Experiment]:
        stages = ViewType.stages(view_type)
        check_max_results(max_results)
        offset = decode_page_token(page_token)
        query = select(experiments).where(
            experiments.c.workspace == self.workspace,
            experiments.c.lifecycle_stage.in_(stages),
        )
        query = query.where(*experiment_filter(filter_string))
        query = query.order_by(*experiment_order(order_by)).offset(offset).limit(max_results + 1)
        with self.db.read() as conn:
            rows = conn.execute(query).all()
            items = [self._to_experiment(conn, r) for r in rows[:max_results]]
        token = encode_page_token(offset + max_results) if len(rows) > max_results else None
        return PagedList(items, token)

    def rename_experiment(self, experiment_id: str, new_name: str) -> None:
        validate_name(new_name, "experiment", MAX_EXPERIMENT_NAME_LENGTH)
        with self.db.write() as conn:
            row = self._experiment_row(conn, experiment_id)
            if row.name == new_name:
                return
            clash = conn.execute(
                select(experiments.c.experiment_id).where(
                    experiments.c.workspace == self.workspace, experiments.c.name == new_name
                )
            ).first()
            if clash is not None:
                raise AlreadyExists(f"experiment {new_name!r} already exists (id {clash[0]})")
            conn.execute(
                update(experiments)
                .where(experiments.c.experiment_id == row.experiment_id)
                .values(name=new_name, last_update_time=now_ms())
            )

    def _set_experiment_stage(self, experiment_id: str, stage: str) -> None:
        now = now_ms()
        with self.db.write() as conn:
            row = self._experiment_row(conn, experiment_id)
            if row.lifecycle_stage == stage:
                what = "deleted" if stage == LifecycleStage.DELETED else "active"
                raise InvalidState(f"experiment {experiment_id} is already {what}")
            conn.execute(
                update(experiments)
                .where(experiments.c.experiment_id == row.experiment_id)
                .values(lifecycle_stage=stage, last_update_time=now)
            )
            # Runs deleted with the experiment share its deletion; restore brings back only them.
            other = (
                LifecycleStage.ACTIVE
                if stage == LifecycleStage.DELETED
                else LifecycleStage.DELETED
            )
            runs_update = update(runs).where(
                runs.c.experiment_id == row.experiment_id, runs.c.lifecycle_stage == other
            )
            if stage == LifecycleStage.DELETED:
                conn.execute(
                    runs_update.values(
                        lifecycle_stage=stage, deleted_time=now, deleted_with_experiment=True
                    )
                )
            else:
                conn.execute(
                    runs_update.where(runs.c.deleted_with_experiment.is_(True)).values(
                        lifecycle_stage=stage, deleted_time=None, deleted_with_experiment=False
                    )
                )

    def delete_experiment(self, experiment_id: str) -> None:
        self._set_experiment_stage(experiment_id, LifecycleStage.DELETED)

    def restore_experiment(self, experiment_id: str) -> None:
        self._set_experiment_stage(experiment_id, LifecycleStage.ACTIVE)

    def purge_experiment(self, experiment_id: str) -> None:
        with self.db.write() as conn:
            row = self._experiment_row(conn, experiment_id)
            if row.lifecycle_stage != LifecycleStage.DELETED:
                raise InvalidState(
                    f"experiment {experiment_id} is active; delete it before purging it"
                )
            eid = row.experiment_id
            run_ids = select(runs.c.run_uuid).where(runs.c.experiment_id == eid)
            for table in (metrics, latest_metrics, params, run_tags):
                conn.execute(delete(table).where(table.c.run_uuid.in_(run_ids)))
            conn.execute(delete(runs).where(runs.c.experiment_id == eid))
            conn.execute(delete(logged_models).where(logged_models.c.experiment_id == eid))
            conn.execute(delete(experiment_tags).where(experiment_tags.c.experiment_id == eid))
            conn.execute(delete(experiments).where(experiments.c.experiment_id == eid))
        # Only the folder loopml made for the experiment under its own root is removed; a
        # location the user chose is theirs to clean up.
        if row.artifact_location == f"{self.artifact_root}/{eid}":
            root = self._artifact_store(self.artifact_root)
            try:
                if root.exists(str(eid)):
                    root.delete(str(eid))
            except LoopmlError as exc:
                _log.warning("experiment %s purged; its artifacts were not removed: %s", eid, exc)

    def set_experiment_tag(self, experiment_id: str, key: str, value: str) -> None:
        tag = validate_tag(RunTag(key, value))
        with self.db.write() as conn:
            row = self._experiment_row(conn, experiment_id)
            if row.lifecycle_stage != LifecycleStage.ACTIVE:
                raise InvalidState(f"experiment {experiment_id} is deleted; restore it first")
            stmt = self._upsert(experiment_tags).values(
                experiment_id=row.experiment_id, key=tag.key, value=tag.value
            )
            conn.execute(
                stmt.on_conflict_do_update(
                    index_elements=["experiment_id", "key"], set_={"value": tag.value}
                )
            )

    # -- runs ----------------------------------------------------------------------------------
    def create_run(
        self,
        experiment_id: str,
        *,
        start_time: int | None = None,
        tags: dict[str, str] | None = None,
        run_name: str | None = None,
        parent_run_id: str | None = None,
        user_id: str | None = None,
    ) -> Run:
        tag_map = {
            t.key: t.value for t in (validate_tag(RunTag(k, v)) for k, v in (tags or {}).items())
        }
        name = run_name or tag_map.get(RUN_NAME_TAG) or random_run_name()
        validate_name(name, "run", MAX_RUN_NAME_LENGTH)
        tag_map[RUN_NAME_TAG] = name
        parent = parent_run_id or tag_map.get(PARENT_RUN_TAG)
        if parent:
            validate_run_id(parent)
            tag_map[PARENT_RUN_TAG] = parent
        run_id = uuid.uuid4().hex
        start = now_ms() if start_time is None else int_field(start_time, "start_time")
        with self.db.write() as conn:
            exp = self._experiment_row(conn, experiment_id)
            if exp.lifecycle_stage != LifecycleStage.ACTIVE:
                raise InvalidState(
                    f"experiment {experiment_id} is deleted; restore it to start runs in it"
                )
            if parent:
                self._run_row(conn, parent)
            info = RunInfo(
                run_id=run_id,
                experiment_id=str(exp.experiment_id),
                run_name=name,
                user_id=user_id or tag_map.get("mlflow.user", ""),
                status=RunStatus.RUNNING,
                start_time=start,
                end_time=None,
                lifecycle_stage=LifecycleStage.ACTIVE,
                artifact_uri=f"{exp.artifact_location.rstrip('/')}/{run_id}/artifacts",
                parent_run_id=parent,
            )
            conn.exec_driver_sql(
                self._sql["run"],
                (
                    run_id,
                    exp.experiment_id,
                    self.workspace,
                    name,
                    info.user_id,
                    info.status,
                    start,
                    info.lifecycle_stage,
                    info.artifact_uri,
                    parent,
                ),
            )
            conn.exec_driver_sql(self._sql["tags"], [(run_id, k, v) for k, v in tag_map.items()])
        return Run(info, RunData(tags=tag_map))

    def get_run(self, run_id: str) -> Run:
        with self.db.read() as conn:
            self._run_row(conn, run_id)
            return self._load_runs(conn, [run_id])[0]

    def update_run(
        self,
        run_id: str,
        *,
        status: str | None = None,
        end_time: int | None = None,
        run_name: str | None = None,
    ) -> RunInfo:
        with self.db.write() as conn:
            self._run_row(conn, run_id)
            self._apply_run_update(conn, run_id, status, end_time, run_name)
            return self._to_run_info(self._run_row(conn, run_id))

    def _apply_run_update(
        self,
        conn: Connection,
        run_id: str,
        status: str | None,
        end_time: int | None,
        run_name: str | None,
    ) -> None:
        values: dict[str, Any] = {}
        if status is not None:
            if status not in RunStatus.ALL:
                raise InvalidInput(f"status {status!r} is not one of {', '.join(RunStatus.ALL)}")
            values["status"] = status
            if status in RunStatus.TERMINAL:
                values["end_time"] = (
                    now_ms() if end_time is None else int_field(end_time, "end_time")
                )
            else:
                values["end_time"] = None
        elif end_time is not None:
            values["end_time"] = int_field(end_time, "end_time")
        if run_name is not None:
            validate_name(run_name, "run", MAX_RUN_NAME_LENGTH)
            values["name"] = run_name
            self._upsert_tags(conn, run_id, [RunTag(RUN_NAME_TAG, run_name)])
        if values.keys() == {"status", "end_time"}:  # the common case: a run ends
            conn.exec_driver_sql(self._sql["end"], (values["status"], values["end_time"], run_id))
        elif values:
            conn.execute(update(runs).where(runs.c.run_uuid == run_id).values(**values))

    def _set_run_stage(self, run_id: str, stage: str) -> None:
        with self.db.write() as conn:
            row = self._run_row(conn, run_id)
            if row.lifecycle_stage == stage:
                what = "deleted" if stage == LifecycleStage.DELETED else "active"
                raise InvalidState(f"run {run_id} is already {what}")
            if stage == LifecycleStage.ACTIVE:
                exp = self._experiment_row(conn, str(row.experiment_id))
                if exp.lifecycle_stage != LifecycleStage.ACTIVE:
                    raise InvalidState(
                        f"run {run_id} belongs to deleted experiment {exp.experiment_id}; "
                        "restore the experiment"
                    )
            conn.execute(
                update(runs)
                .where(runs.c.run_uuid == run_id)
                .values(
                    lifecycle_stage=stage,
                    deleted_time=now_ms() if stage == LifecycleStage.DELETED else None,
                )
            )

    def delete_run(self, run_id: str) -> None:
        self._set_run_stage(run_id, LifecycleStage.DELETED)

    def restore_run(self, run_id: str) -> None:
        self._set_run_stage(run_id, LifecycleStage.ACTIVE)

    # -- logging -------------------------------------------------------------------------------
    def write_batches(self, batches: Sequence[RunBatch]) -> None:
        batches = [b for b in batches if not b.is_empty()]
        if not batches:
            return
        with paused_gc():
            self._write_clean([validate_batch(b) for b in batches])

    def _write_clean(self, clean: list[RunBatch]) -> None:
        with self.db.write() as conn:
            states = self._run_states(conn, {b.run_id for b in clean})
            for batch in clean:
                self._write_batch(conn, batch, states)

    def _run_states(self, conn: Connection, run_ids: set[str]) -> dict[str, list[str]]:
        out: dict[str, list[str]] = {}
        for chunk in _chunks(sorted(run_ids)):
            marks = ", ".join([self._mark] * len(chunk))
            for rid, status, stage in conn.exec_driver_sql(
                "SELECT run_uuid, status, lifecycle_stage FROM runs "
                f"WHERE workspace = {self._mark} AND run_uuid IN ({marks})",
                (self.workspace, *chunk),
            ):
                out[rid] = [status, stage]
        missing = run_ids - out.keys()
        if missing:
            raise RunNotFound(f"run {sorted(missing)[0]} does not exist")
        return out

    def _write_batch(self, conn: Connection, b: RunBatch, states: dict[str, list[str]]) -> None:
        status, stage = states[b.run_id]
        if stage != LifecycleStage.ACTIVE:
            raise InvalidState(f"run {b.run_id} is deleted; restore it before logging to it")
        if (b.metrics or b.params) and status in RunStatus.TERMINAL:
            raise InvalidState(
                f"run {b.run_id} is {status}; start a new run to log more metrics or params"
            )
        if b.params:
            self._insert_params(conn, b.run_id, b.params)
        if b.tags:
            self._upsert_tags(conn, b.run_id, b.tags)
        if b.metrics:
            self._insert_metrics(conn, b.run_id, b.metrics)
        if b.status is not None or b.end_time is not None:
            self._apply_run_update(conn, b.run_id, b.status, b.end_time, None)
            if b.status is not None:
                states[b.run_id][0] = b.status

    # The three writers below go straight to the driver's executemany with prepared SQL text:
    # on large batches SQLAlchemy's per-row parameter handling costs more than the insert.
    def _insert_params(self, conn: Connection, run_id: str, plist: Sequence[Param]) -> None:
        wanted: dict[str, str] = {}
        for p in plist:
            if wanted.setdefault(p.key, p.value) != p.value:
                raise InvalidInput(
                    f"param {p.key!r} given twice with different values "
                    f"({wanted[p.key]!r} and {p.value!r}) in one batch"
                )
        existing: dict[str, str] = {}
        for keys in _chunks(list(wanted)):
            existing.update(
                conn.execute(
                    select(params.c.key, params.c.value).where(
                        params.c.run_uuid == run_id, params.c.key.in_(list(keys))
                    )
                ).all()
            )
        for key, value in wanted.items():
            if key in existing and existing[key] != value:
                raise InvalidInput(
                    f"param {key!r} of run {run_id} is already {existing[key]!r}; params cannot "
                    f"change (got {value!r}); log a new run or use a tag"
                )
        new = [(run_id, k, v) for k, v in wanted.items() if k not in existing]
        if new:
            conn.exec_driver_sql(self._sql["params"], new)

    def _upsert_tags(self, conn: Connection, run_id: str, tlist: Sequence[RunTag]) -> None:
        final = {t.key: t.value for t in tlist}
        conn.exec_driver_sql(self._sql["tags"], [(run_id, k, v) for k, v in final.items()])
        if RUN_NAME_TAG in final:
            conn.execute(
                update(runs).where(runs.c.run_uuid == run_id).values(name=final[RUN_NAME_TAG])
            )

    def _insert_metrics(self, conn: Connection, run_id: str, mlist: Sequence[Metric]) -> None:
        rows = [
            (run_id, m.key, 0.0, True, m.timestamp, m.step)
            if m.value != m.value  # NaN is stored as a flag; SQLite would turn it into NULL
            else (run_id, m.key, m.value, False, m.timestamp, m.step)
            for m in mlist
        ]
        # The batch's candidate for each key's latest point; the database keeps it only if it
        # is not older (by step, then timestamp) than the one it has.
        latest: dict[str, tuple[Any, ...]] = {}
        for row in rows:
            prev = latest.get(row[1])
            if prev is None or row[5] > prev[5] or (row[5] == prev[5] and row[4] >= prev[4]):
                latest[row[1]] = row
        conn.exec_driver_sql(self._sql["metrics"], rows)
        conn.exec_driver_sql(self._sql["latest"], list(latest.values()))

    def delete_tag(self, run_id: str, key: str) -> None:
        with self.db.write() as conn:
            row = self._run_row(conn, run_id)
            if row.lifecycle_stage != LifecycleStage.ACTIVE:
                raise InvalidState(f"run {run_id} is deleted; restore it first")
            result = conn.execute(
                delete(run_tags).where(run_tags.c.run_uuid == run_id, run_tags.c.key == key)
            )
            if result.rowcount == 0:
                raise NotFound(f"run {run_id} has no tag {key!r}")

    def get_metric_history(self, run_id: str, key: str) -> list[Metric]:
        values, timestamps, steps = self.get_metric_history_columns(run_id, key)
        with paused_gc():
            return list(map(Metric, [key] * len(values), values, timestamps, steps))

    def latest_metric_points(self, run_ids: Sequence[str]) -> dict[str, list[Metric]]:
        """The latest point (value, timestamp, step) of every metric of each run."""
        out: dict[str, list[Metric]] = {r: [] for r in run_ids}
        lm = latest_metrics.c
        with self.db.read() as conn:
            for chunk in _chunks(list(run_ids)):
                rows = conn.execute(
                    select(lm.run_uuid, lm.key, lm.value, lm.is_nan, lm.timestamp, lm.step).where(
                        lm.run_uuid.in_(list(chunk))
                    )
                )
                for rid, key, value, is_nan, ts, step in rows:
                    out[rid].append(Metric(key, math.nan if is_nan else value, ts, step))
        return out

    def get_metric_history_columns(
        self, run_id: str, key: str
    ) -> tuple[list[float], list[int], list[int]]:
        """A metric's history as three columns (values, timestamps, steps), without records."""
        with self.db.read() as conn, paused_gc():
            self._run_row(conn, run_id)
            rows = conn.exec_driver_sql(self._sql["history"], (run_id, key)).fetchall()
        if not rows:
            return [], [], []
        values, nans, timestamps, steps = map(list, zip(*rows, strict=True))
        if any(nans):
            values = [math.nan if n else v for v, n in zip(values, nans, strict=True)]
        return values, timestamps, steps

    def search_runs(
        self,
        experiment_ids: Sequence[str],
        *,
        filter_string: str | None = None,
        view_type: str | int = ViewType.ACTIVE_ONLY,
        max_results: int = 1000,
        order_by: Sequence[str] | None = None,
        page_token: str | None = None,
        columns: dict[str, list[str]] | None = None,
    ) -> PagedList[Run]:
        """Runs matching an MLflow filter string, in the requested order, one page at a time;
        ``columns`` (``{"metrics": [...], "params": [...], "tags": [...]}``) limits the keys
        loaded per kind (a kind left out is loaded whole)."""
        if isinstance(experiment_ids, str):
            experiment_ids = [experiment_ids]
        columns = _check_columns(columns)
        ids = [validate_experiment_id(e) for e in experiment_ids]
        stages = ViewType.stages(view_type)
        check_max_results(max_results)
        offset = decode_page_token(page_token)
        expr = parse_filter(filter_string)
        keys = parse_order_by(list(order_by) if order_by else None)
        with self.db.read() as conn, paused_gc():
            found = search_run_ids(
                conn,
                workspace=self.workspace,
                experiment_ids=ids,
                expr=expr,
                order_by=keys,
                lifecycle_stages=stages,
                offset=offset,
                limit=max_results + 1,
            )
            page = self._load_runs(conn, found[:max_results], columns)
        token = encode_page_token(offset + max_results) if len(found) > max_results else None
        return PagedList(page, token)

    def run_keys(self, experiment_ids: Sequence[str]) -> dict[str, list[str]]:
        """The metric, param and tag keys used by the active runs of experiments, sorted (for
        a table's column chooser and a filter's autocompletion).

        A table's distinct keys come from a loose scan of its ``(key, value)`` index (one seek
        per key, not one read per row); each is kept if an active run of the experiments uses
        it, a probe that stops at the first such row. When the database holds more distinct
        keys than ``_KEY_PROBES`` (other experiments' keys included), one set-based query over
        the experiments' runs is cheaper, and is used instead.
        """
        ids = [int(validate_experiment_id(e)) for e in experiment_ids]
        out: dict[str, list[str]] = {}
        with self.db.read() as conn:
            for kind, table in _KEY_TABLES.items():
                out[kind] = self._keys_of(conn, table, ids)
        return out

    def _keys_of(self, conn: Connection, table: Any, ids: list[int]) -> list[str]:
        of_runs = (
            select(table.c.key)
            .select_from(table.join(runs, runs.c.run_uuid == table.c.run_uuid))
            .join(experiments, experiments.c.experiment_id == runs.c.experiment_id)
            .where(
                runs.c.experiment_id.in_(ids),
                runs.c.lifecycle_stage == LifecycleStage.ACTIVE,
                experiments.c.workspace == self.workspace,
            )
        )
        sql = _DISTINCT_KEYS.format(table=table.name, limit=_KEY_PROBES + 1)
        candidates = [r[0] for r in conn.exec_driver_sql(sql).fetchall() if r[0] is not None]
        if len(candidates) > _KEY_PROBES:
            runs_of = (
                select(runs.c.run_uuid)
                .join(experiments, experiments.c.experiment_id == runs.c.experiment_id)
                .where(
                    runs.c.experiment_id.in_(ids),
                    runs.c.lifecycle_stage == LifecycleStage.ACTIVE,
                    experiments.c.workspace == self.workspace,
                )
            )
            found = select(table.c.key).where(table.c.run_uuid.in_(runs_of)).distinct()
            return sorted(conn.execute(found).scalars())
        return sorted(
            key
            for key in candidates
            if conn.execute(of_runs.where(table.c.key == key).limit(1)).first() is not None
        )

    def experiment_stats(self, experiment_ids: Sequence[str]) -> dict[str, dict[str, Any]]:
        """Per experiment: how many active runs it has and when the last one started."""
        ids = [int(validate_experiment_id(e)) for e in experiment_ids]
        if not ids:
            return {}
        with self.db.read() as conn:
            rows = conn.execute(
                select(
                    runs.c.experiment_id,
                    func.count().label("runs"),
                    func.max(runs.c.start_time).label("last"),
                )
                .join(experiments, experiments.c.experiment_id == runs.c.experiment_id)
                .where(
                    runs.c.experiment_id.in_(ids),
                    runs.c.lifecycle_stage == LifecycleStage.ACTIVE,
                    experiments.c.workspace == self.workspace,
                )
                .group_by(runs.c.experiment_id)
            ).all()
        found = {str(r.experiment_id): {"runs": r.runs, "last_run_time": r.last} for r in rows}
        return {str(i): found.get(str(i), {"runs": 0, "last_run_time": None}) for i in ids}

    # -- artifacts -----------------------------------------------------------------------------
    @functools.lru_cache(maxsize=64)  # noqa: B019 - a store lives as long as the process
    def _artifact_store(self, root: str) -> ArtifactStore:
        return ArtifactStore(root)

    def _run_artifacts(self, run_id: str, *, for_write: bool = False) -> ArtifactStore:
        with self.db.read() as conn:
            row = self._run_row(conn, run_id)
        if for_write and row.lifecycle_stage != LifecycleStage.ACTIVE:
            raise InvalidState(f"run {run_id} is deleted; restore it before logging artifacts")
        return self._artifact_store(row.artifact_uri)

    def upload_artifact(self, run_id: str, local_file: Path, artifact_path: str) -> None:
        self._run_artifacts(run_id, for_write=True).put_file(local_file, artifact_path)

    def put_artifact_stream(
        self, run_id: str, chunks: Iterable[bytes], artifact_path: str
    ) -> None:
        """Store an artifact from a stream of chunks (what the server's upload route uses)."""
        self._run_artifacts(run_id, for_write=True).put_stream(chunks, artifact_path)

    def list_artifacts(self, run_id: str, path: str | None = None) -> list[FileInfo]:
        return self._run_artifacts(run_id).list(path or "")

    def iter_artifact(self, run_id: str, path: str) -> Iterator[bytes]:
        return self._run_artifacts(run_id).iter_chunks(path)

    def delete_artifact(self, run_id: str, path: str) -> None:
        self._run_artifacts(run_id, for_write=True).delete(path)
