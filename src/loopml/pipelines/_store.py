"""Pipelines, runs, step runs and schedules of one workspace in the metadata database.

Queued runs and due schedules are claimed with a conditional update (``... WHERE status =
'QUEUED'``, ``... WHERE next_run_at = <seen>``): of several schedulers racing, exactly one
sees its update change a row, so each run starts once, on SQLite and PostgreSQL alike.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from typing import Any

import orjson
from sqlalchemy import and_, delete, func, insert, select, update
from sqlalchemy.exc import IntegrityError as SaIntegrityError

from loopml.errors import AlreadyExists, InvalidInput, NotFound
from loopml.pipelines._entities import (
    PipelineInfo,
    PipelineRun,
    RunStatus,
    Schedule,
    StepRun,
    StepStatus,
)
from loopml.store import Database, now_ms, open_database
from loopml.store.tables import (
    pipeline_runs,
    pipeline_schedules,
    pipeline_step_runs,
    pipelines,
    workspaces,
)

__all__ = ["SqlPipelineStore"]

_JSON_COLUMNS = ("inputs", "outputs", "tracking_runs")
_STEP_FIELDS = frozenset(
    {
        "status",
        "attempts",
        "cache_key",
        "cached_from",
        "inputs",
        "outputs",
        "logs",
        "error",
        "tracking_runs",
        "started_at",
        "ended_at",
    }
)


def _dumps(value: Any) -> str:
    return orjson.dumps(value, option=orjson.OPT_SERIALIZE_NUMPY).decode()


class SqlPipelineStore:
    """Pipeline definitions and run history of one workspace."""

    def __init__(
        self,
        database: Database | str,
        *,
        workspace: str = "default",
        artifact_uri: str | None = None,
    ) -> None:
        self.db = open_database(database) if isinstance(database, str) else database
        self.workspace = workspace
        self.artifact_uri = artifact_uri

    def for_workspace(self, workspace: str) -> SqlPipelineStore:
        """The same database seen from another workspace."""
        return SqlPipelineStore(self.db, workspace=workspace, artifact_uri=self.artifact_uri)

    # -- pipelines ------------------------------------------------------------------------------
    def _pipeline_id(self, conn: Any, name: str) -> int:
        row = conn.execute(
            select(pipelines.c.pipeline_id).where(
                pipelines.c.workspace == self.workspace, pipelines.c.name == name
            )
        ).first()
        if row is None:
            raise NotFound(f"pipeline {name!r} does not exist")
        return int(row.pipeline_id)

    def save_pipeline(
        self, name: str, *, target: str | None, description: str, dag: Mapping[str, Any]
    ) -> None:
        """Record a pipeline (or update its target, description and last DAG)."""
        try:
            self._save_pipeline(name, target=target, description=description, dag=dag)
        except (AlreadyExists, SaIntegrityError):  # another process recorded it first
            self._save_pipeline(name, target=target, description=description, dag=dag)

    def _save_pipeline(
        self, name: str, *, target: str | None, description: str, dag: Mapping[str, Any]
    ) -> None:
        now = now_ms()
        with self.db.write() as conn:
            if (
                conn.execute(
                    select(workspaces.c.name).where(workspaces.c.name == self.workspace)
                ).first()
                is None
            ):
                raise NotFound(f"workspace {self.workspace!r} does not exist")
            found = conn.execute(
                select(pipelines.c.pipeline_id, pipelines.c.target).where(
                    pipelines.c.workspace == self.workspace, pipelines.c.name == name
                )
            ).first()
            values = {"description": description, "dag": _dumps(dict(dag)), "updated_at": now}
            if found is None:
                conn.execute(
                    insert(pipelines).values(
                        workspace=self.workspace,
                        name=name,
                        target=target,
                        created_at=now,
                        **values,
                    )
                )
            else:
                if target:  # a run from a notebook does not forget where the code lives
                    values["target"] = target
                conn.execute(
                    update(pipelines)
                    .where(pipelines.c.pipeline_id == found.pipeline_id)
                    .values(**values)
                )

    @staticmethod
    def _last_run(conn: Any, pipeline_id: int) -> Any | None:
        return conn.execute(
            select(pipeline_runs.c.run_id, pipeline_runs.c.status, pipeline_runs.c.created_at)
            .where(pipeline_runs.c.pipeline_id == pipeline_id)
            .order_by(pipeline_runs.c.created_at.desc())
            .limit(1)
        ).first()

    def _info(self, row: Any, last: Any | None) -> PipelineInfo:
        return PipelineInfo(
            name=row.name,
            target=row.target,
            description=row.description,
            dag=orjson.loads(row.dag),
            created_at=row.created_at,
            updated_at=row.updated_at,
            last_run=None
            if last is None
            else {"run_id": last.run_id, "status": last.status, "created_at": last.created_at},
        )

    def get_pipeline(self, name: str) -> PipelineInfo:
        """One pipeline with its last run."""
        with self.db.read() as conn:
            row = conn.execute(
                select(pipelines).where(
                    pipelines.c.workspace == self.workspace, pipelines.c.name == name
                )
            ).first()
            if row is None:
                raise NotFound(f"pipeline {name!r} does not exist")
            return self._info(row, self._last_run(conn, row.pipeline_id))

    def list_pipelines(self) -> list[PipelineInfo]:
        """Every pipeline of the workspace, by name, with its last run."""
        with self.db.read() as conn:
            rows = conn.execute(
                select(pipelines)
                .where(pipelines.c.workspace == self.workspace)
                .order_by(pipelines.c.name)
            ).all()
            return [self._info(row, self._last_run(conn, row.pipeline_id)) for row in rows]

    # -- runs ---------------------------------------------------------------------------------
    def create_run(
        self,
        pipeline: str,
        *,
        params: Mapping[str, Any],
        dag: Mapping[str, Any],
        trigger: str,
        executor: str,
        status: str = RunStatus.RUNNING,
        resumed_from: str | None = None,
        run_id: str | None = None,
    ) -> str:
        """A new run (RUNNING with its steps PENDING, or QUEUED for a scheduler to start)."""
        run_id = run_id or uuid.uuid4().hex
        now = now_ms()
        steps = [s["name"] for s in dag.get("steps", [])]
        with self.db.write() as conn:
            pid = self._pipeline_id(conn, pipeline)
            conn.execute(
                insert(pipeline_runs).values(
                    run_id=run_id,
                    pipeline_id=pid,
                    status=status,
                    params=_dumps(dict(params)),
                    dag=_dumps(dict(dag)),
                    trigger=str(trigger)[:255],
                    executor=executor[:64],
                    resumed_from=resumed_from,
                    created_at=now,
                    started_at=now if status == RunStatus.RUNNING else None,
                    heartbeat_at=now if status == RunStatus.RUNNING else None,
                )
            )
            self._insert_steps(conn, run_id, steps)
        return run_id

    @staticmethod
    def _insert_steps(conn: Any, run_id: str, steps: Sequence[str]) -> None:
        if steps:
            conn.execute(
                insert(pipeline_step_runs),
                [
                    {
                        "run_id": run_id,
                        "step": s,
                        "status": StepStatus.PENDING,
                        "attempts": 0,
                        "inputs": "{}",
                        "outputs": "{}",
                        "logs": "",
                        "tracking_runs": "[]",
                    }
                    for s in steps
                ],
            )

    def start_queued(
        self, run_id: str, *, dag: Mapping[str, Any], executor: str, params: Mapping[str, Any]
    ) -> None:
        """Fill in a claimed queued run's DAG, steps and full parameters."""
        steps = [s["name"] for s in dag.get("steps", [])]
        with self.db.write() as conn:
            conn.execute(
                update(pipeline_runs)
                .where(pipeline_runs.c.run_id == run_id)
                .values(
                    dag=_dumps(dict(dag)),
                    executor=executor[:64],
                    params=_dumps(dict(params)),
                    started_at=now_ms(),
                )
            )
            self._insert_steps(conn, run_id, steps)

    def claim_queued(self, worker: str, *, limit: int = 10) -> list[tuple[str, str]]:
        """Claim queued runs for ``worker`` (each exactly once); returns (run id, pipeline)."""
        with self.db.read() as conn:
            rows = conn.execute(
                select(pipeline_runs.c.run_id, pipelines.c.name)
                .join(pipelines, pipelines.c.pipeline_id == pipeline_runs.c.pipeline_id)
                .where(
                    pipelines.c.workspace == self.workspace,
                    pipeline_runs.c.status == RunStatus.QUEUED,
                )
                .order_by(pipeline_runs.c.created_at)
                .limit(limit)
            ).all()
        claimed = []
        for row in rows:
            with self.db.write() as conn:
                changed = conn.execute(
                    update(pipeline_runs)
                    .where(
                        pipeline_runs.c.run_id == row.run_id,
                        pipeline_runs.c.status == RunStatus.QUEUED,
                    )
                    .values(
                        status=RunStatus.RUNNING,
                        worker=worker[:255],
                        started_at=now_ms(),
                        heartbeat_at=now_ms(),
                    )
                ).rowcount
            if changed == 1:
                claimed.append((row.run_id, row.name))
        return claimed

    def heartbeat(self, run_id: str) -> None:
        """Say that the run's worker is alive."""
        with self.db.write() as conn:
            conn.execute(
                update(pipeline_runs)
                .where(pipeline_runs.c.run_id == run_id)
                .values(heartbeat_at=now_ms())
            )

    def reap(self, older_than_ms: int) -> list[str]:
        """Fail RUNNING runs whose worker stopped (no heartbeat since ``older_than_ms``), and
        their unfinished steps, so that they can be resumed; returns their ids."""
        with self.db.read() as conn:
            rows = conn.execute(
                select(pipeline_runs.c.run_id, pipeline_runs.c.worker)
                .join(pipelines, pipelines.c.pipeline_id == pipeline_runs.c.pipeline_id)
                .where(
                    pipelines.c.workspace == self.workspace,
                    pipeline_runs.c.status == RunStatus.RUNNING,
                    func.coalesce(pipeline_runs.c.heartbeat_at, pipeline_runs.c.created_at)
                    < older_than_ms,
                )
            ).all()
        reaped = []
        for row in rows:
            error = f"abandoned: its worker ({row.worker or 'unknown'}) stopped"
            with self.db.write() as conn:
                changed = conn.execute(
                    update(pipeline_runs)
                    .where(
                        pipeline_runs.c.run_id == row.run_id,
                        pipeline_runs.c.status == RunStatus.RUNNING,
                        func.coalesce(pipeline_runs.c.heartbeat_at, pipeline_runs.c.created_at)
                        < older_than_ms,
                    )
                    .values(status=RunStatus.FAILED, error=error, ended_at=now_ms())
                ).rowcount
                if changed == 1:
                    conn.execute(
                        update(pipeline_step_runs)
                        .where(
                            pipeline_step_runs.c.run_id == row.run_id,
                            pipeline_step_runs.c.status.not_in(StepStatus.FINAL),
                        )
                        .values(status=StepStatus.FAILED, error=error, ended_at=now_ms())
                    )
                    reaped.append(row.run_id)
        return reaped

    def requeue(self, run_ids: Sequence[str]) -> None:
        """Put claimed runs that never started back in the queue."""
        with self.db.write() as conn:
            for run_id in run_ids:
                conn.execute(
                    update(pipeline_runs)
                    .where(pipeline_runs.c.run_id == run_id)
                    .values(status=RunStatus.QUEUED, worker=None, started_at=None)
                )

    def update_step(self, run_id: str, step: str, **fields: Any) -> None:
        """Change a step run's recorded state."""
        unknown = set(fields) - _STEP_FIELDS
        if unknown:
            raise InvalidInput(f"unknown step field {sorted(unknown)[0]!r}")
        values = {k: (_dumps(v) if k in _JSON_COLUMNS else v) for k, v in fields.items()}
        with self.db.write() as conn:
            conn.execute(
                update(pipeline_step_runs)
                .where(pipeline_step_runs.c.run_id == run_id, pipeline_step_runs.c.step == step)
                .values(**values)
            )

    def finish_run(self, run_id: str, status: str, error: str | None = None) -> None:
        """Record how a run ended."""
        with self.db.write() as conn:
            conn.execute(
                update(pipeline_runs)
                .where(pipeline_runs.c.run_id == run_id)
                .values(status=status, error=error, ended_at=now_ms())
            )

    def _run_row(self, conn: Any, run_id: str) -> Any:
        row = conn.execute(
            select(pipeline_runs, pipelines.c.name.label("pipeline"))
            .join(pipelines, pipelines.c.pipeline_id == pipeline_runs.c.pipeline_id)
            .where(pipeline_runs.c.run_id == run_id, pipelines.c.workspace == self.workspace)
        ).first()
        if row is None:
            raise NotFound(f"pipeline run {run_id!r} does not exist")
        return row

    def _run(self, row: Any, steps: Sequence[Any]) -> PipelineRun:
        dag = orjson.loads(row.dag)
        order = {s["name"]: i for i, s in enumerate(dag.get("steps", []))}
        step_runs = sorted(
            (
                StepRun(
                    step=s.step,
                    status=s.status,
                    attempts=s.attempts,
                    cache_key=s.cache_key,
                    cached_from=s.cached_from,
                    inputs=orjson.loads(s.inputs),
                    outputs=orjson.loads(s.outputs),
                    logs=s.logs,
                    error=s.error,
                    tracking_runs=orjson.loads(s.tracking_runs),
                    started_at=s.started_at,
                    ended_at=s.ended_at,
                )
                for s in steps
            ),
            key=lambda s: order.get(s.step, len(order)),
        )
        return PipelineRun(
            run_id=row.run_id,
            pipeline=row.pipeline,
            status=row.status,
            params=orjson.loads(row.params),
            dag=dag,
            trigger=row.trigger,
            executor=row.executor,
            created_at=row.created_at,
            started_at=row.started_at,
            ended_at=row.ended_at,
            error=row.error,
            resumed_from=row.resumed_from,
            steps={s.step: s for s in step_runs},
            artifact_uri=self.artifact_uri,
        )

    def get_run(self, run_id: str) -> PipelineRun:
        """One run with its steps."""
        with self.db.read() as conn:
            row = self._run_row(conn, run_id)
            steps = conn.execute(
                select(pipeline_step_runs).where(pipeline_step_runs.c.run_id == run_id)
            ).all()
        return self._run(row, steps)

    def list_runs(
        self, pipeline: str | None = None, *, status: str | None = None, limit: int = 50
    ) -> list[PipelineRun]:
        """Runs, newest first, with their steps (without logs)."""
        if status is not None and status not in RunStatus.ALL:
            raise InvalidInput(f"status must be one of {', '.join(RunStatus.ALL)}")
        if not 1 <= int(limit) <= 1000:
            raise InvalidInput("limit must be in [1, 1000]")
        query = (
            select(pipeline_runs, pipelines.c.name.label("pipeline"))
            .join(pipelines, pipelines.c.pipeline_id == pipeline_runs.c.pipeline_id)
            .where(pipelines.c.workspace == self.workspace)
        )
        with self.db.read() as conn:
            if pipeline is not None:
                query = query.where(
                    pipeline_runs.c.pipeline_id == self._pipeline_id(conn, pipeline)
                )
            if status is not None:
                query = query.where(pipeline_runs.c.status == status)
            rows = conn.execute(
                query.order_by(pipeline_runs.c.created_at.desc()).limit(int(limit))
            ).all()
            ids = [r.run_id for r in rows]
            steps = (
                conn.execute(
                    select(*[c for c in pipeline_step_runs.c if c.name != "logs"]).where(
                        pipeline_step_runs.c.run_id.in_(ids)
                    )
                ).all()
                if ids
                else []
            )
        by_run: dict[str, list[Any]] = {}
        for s in steps:
            by_run.setdefault(s.run_id, []).append(_WithLogs(s))
        return [self._run(r, by_run.get(r.run_id, [])) for r in rows]

    def find_cached(self, cache_key: str) -> tuple[str, dict[str, Any]] | None:
        """The newest succeeded step run with this cache key: (run id, outputs)."""
        with self.db.read() as conn:
            row = conn.execute(
                select(
                    func.coalesce(
                        pipeline_step_runs.c.cached_from, pipeline_step_runs.c.run_id
                    ).label("source"),
                    pipeline_step_runs.c.outputs,
                )
                .join(pipeline_runs, pipeline_runs.c.run_id == pipeline_step_runs.c.run_id)
                .join(pipelines, pipelines.c.pipeline_id == pipeline_runs.c.pipeline_id)
                .where(
                    pipelines.c.workspace == self.workspace,
                    pipeline_step_runs.c.cache_key == cache_key,
                    pipeline_step_runs.c.status.in_(StepStatus.DONE),
                )
                .order_by(pipeline_step_runs.c.ended_at.desc())
                .limit(1)
            ).first()
        if row is None:
            return None
        return row.source, orjson.loads(row.outputs)

    # -- schedules ----------------------------------------------------------------------------
    def add_schedule(
        self, pipeline: str, cron: str, *, params: Mapping[str, Any], next_run_at: int
    ) -> Schedule:
        """A new enabled schedule."""
        now = now_ms()
        with self.db.write() as conn:
            pid = self._pipeline_id(conn, pipeline)
            result = conn.execute(
                insert(pipeline_schedules).values(
                    pipeline_id=pid,
                    cron=cron,
                    params=_dumps(dict(params)),
                    enabled=True,
                    next_run_at=next_run_at,
                    created_at=now,
                )
            )
            schedule_id = int(result.inserted_primary_key[0])
        return self.get_schedule(schedule_id)

    def _schedules(self, *where: Any) -> list[Schedule]:
        with self.db.read() as conn:
            rows = conn.execute(
                select(pipeline_schedules, pipelines.c.name.label("pipeline"))
                .join(pipelines, pipelines.c.pipeline_id == pipeline_schedules.c.pipeline_id)
                .where(pipelines.c.workspace == self.workspace, *where)
                .order_by(pipeline_schedules.c.schedule_id)
            ).all()
        return [
            Schedule(
                schedule_id=r.schedule_id,
                pipeline=r.pipeline,
                cron=r.cron,
                params=orjson.loads(r.params),
                enabled=bool(r.enabled),
                next_run_at=r.next_run_at,
                last_run_at=r.last_run_at,
                last_run_id=r.last_run_id,
                created_at=r.created_at,
            )
            for r in rows
        ]

    def get_schedule(self, schedule_id: int) -> Schedule:
        """One schedule."""
        found = self._schedules(pipeline_schedules.c.schedule_id == int(schedule_id))
        if not found:
            raise NotFound(f"schedule {schedule_id} does not exist")
        return found[0]

    def list_schedules(self, pipeline: str | None = None) -> list[Schedule]:
        """Schedules of the workspace (or of one pipeline)."""
        if pipeline is None:
            return self._schedules()
        return self._schedules(pipelines.c.name == pipeline)

    def delete_schedule(self, schedule_id: int) -> None:
        """Remove a schedule."""
        self.get_schedule(schedule_id)
        with self.db.write() as conn:
            conn.execute(
                delete(pipeline_schedules).where(
                    pipeline_schedules.c.schedule_id == int(schedule_id)
                )
            )

    def set_schedule_enabled(self, schedule_id: int, enabled: bool) -> Schedule:
        """Pause or resume a schedule."""
        self.get_schedule(schedule_id)
        with self.db.write() as conn:
            conn.execute(
                update(pipeline_schedules)
                .where(pipeline_schedules.c.schedule_id == int(schedule_id))
                .values(enabled=bool(enabled))
            )
        return self.get_schedule(schedule_id)

    def due_schedules(self, now: int) -> list[Schedule]:
        """Enabled schedules whose next time has come."""
        return self._schedules(
            and_(
                pipeline_schedules.c.enabled.is_(True),
                pipeline_schedules.c.next_run_at <= now,
            )
        )

    def advance_schedule(
        self, schedule: Schedule, next_run_at: int, run_id: str, now: int
    ) -> bool:
        """Move a due schedule to its next time; False if another scheduler did it first."""
        with self.db.write() as conn:
            changed = conn.execute(
                update(pipeline_schedules)
                .where(
                    pipeline_schedules.c.schedule_id == schedule.schedule_id,
                    pipeline_schedules.c.next_run_at == schedule.next_run_at,
                )
                .values(next_run_at=next_run_at, last_run_at=now, last_run_id=run_id)
            ).rowcount
        return changed == 1


class _WithLogs:
    """A step row read without its (possibly large) logs column."""

    def __init__(self, row: Any) -> None:
        self._row = row

    def __getattr__(self, name: str) -> Any:
        if name == "logs":
            return ""
        return getattr(self._row, name)
