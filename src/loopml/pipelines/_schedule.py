"""Cron schedules and the scheduler process (``loopml scheduler``).

Each tick queues a run for every due schedule (claimed once, see the store) and then starts
the queued runs — those of schedules, of alerts and of the HTTP API — one after another.
Cron expressions have five fields (minute hour day month weekday) in UTC, or a shortcut like
``@hourly`` / ``@daily``; croniter computes the next times.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import socket
import threading
import time
import uuid
from collections.abc import Mapping
from typing import Any

from loopml.errors import InvalidInput, LoopmlError
from loopml.pipelines._dag import Pipeline, _json_param
from loopml.pipelines._entities import PipelineRun, RunStatus, Schedule
from loopml.pipelines._executors import Executor
from loopml.pipelines._store import SqlPipelineStore

__all__ = ["Scheduler", "add_schedule", "next_time"]

_log = logging.getLogger("loopml.pipelines.scheduler")
STALE_SECONDS = 120.0  # a RUNNING run whose heartbeat is older than this was abandoned


def next_time(cron: str, after_ms: int) -> int:
    """The first time (ms since the epoch, UTC) strictly after ``after_ms`` matching ``cron``."""
    from croniter import CroniterError, croniter

    bad = InvalidInput(f"{cron!r} is not a cron expression (minute hour day month weekday)")
    if not isinstance(cron, str) or len(cron) > 255:
        raise bad
    fields = cron.split()
    if not (len(fields) == 5 or (len(fields) == 1 and cron.startswith("@"))):
        raise bad
    if not croniter.is_valid(cron):
        raise bad
    start = dt.datetime.fromtimestamp(after_ms / 1000, tz=dt.UTC)
    try:
        when = croniter(cron, start).get_next(dt.datetime)
    except (CroniterError, ValueError):  # valid fields that never match, e.g. 30 February
        raise InvalidInput(f"{cron!r} never matches a date") from None
    return int(when.timestamp() * 1000)


def add_schedule(
    store: SqlPipelineStore,
    pipeline: str,
    cron: str,
    params: Mapping[str, Any] | None = None,
    *,
    now_ms: int | None = None,
) -> Schedule:
    """Schedule a recorded pipeline: a run with ``params`` at every time ``cron`` matches."""
    if not isinstance(params or {}, Mapping):
        raise InvalidInput("params must be an object")
    now = int(time.time() * 1000) if now_ms is None else now_ms
    first = next_time(cron, now)
    return store.add_schedule(
        pipeline, cron, params=_json_param(dict(params or {}), "params"), next_run_at=first
    )


class Scheduler:
    """Queues due scheduled runs and starts queued runs."""

    def __init__(
        self,
        store: SqlPipelineStore,
        *,
        executor: str | Executor | None = None,
        pipelines: Mapping[str, Pipeline] | None = None,
        worker: str | None = None,
    ) -> None:
        self.store = store
        self.executor = executor
        self.pipelines = dict(pipelines or {})
        self.worker = worker or f"{socket.gethostname()}:{os.getpid()}"

    def queue_due(self, now_ms: int | None = None) -> list[str]:
        """Queue one run per due schedule; returns the queued run ids."""
        now = int(time.time() * 1000) if now_ms is None else now_ms
        queued = []
        for schedule in self.store.due_schedules(now):
            run_id = uuid.uuid4().hex
            try:
                following = next_time(schedule.cron, now)
            except InvalidInput:
                _log.error("schedule %s has a bad cron %r", schedule.schedule_id, schedule.cron)
                continue
            if not self.store.advance_schedule(schedule, following, run_id, now):
                continue  # another scheduler took it
            self.store.create_run(
                schedule.pipeline,
                params=schedule.params,
                dag={},
                trigger=f"schedule:{schedule.schedule_id}",
                executor="",
                status=RunStatus.QUEUED,
                run_id=run_id,
            )
            queued.append(run_id)
        return queued

    def start_queued(self) -> list[PipelineRun]:
        """Run every queued run this scheduler can claim; returns them as they ended."""
        from loopml.pipelines._fluent import load_pipeline, run_pipeline

        finished = []
        while True:
            claimed = self.store.claim_queued(self.worker, limit=1)  # one at a time: the rest
            if not claimed:  # stay queued for other schedulers if this one stops
                break
            run_id, name = claimed[0]
            params = self.store.get_run(run_id).params
            try:
                pipe = self.pipelines.get(name) or load_pipeline(name, store=self.store)
                run = run_pipeline(
                    pipe,
                    params,
                    executor=self.executor,
                    run_id=run_id,
                    store=self.store,
                    raise_on_failure=False,
                )
            except LoopmlError as exc:  # could not even start: record why
                self.store.finish_run(run_id, RunStatus.FAILED, f"could not start: {exc}")
                run = self.store.get_run(run_id)
            except Exception as exc:  # noqa: BLE001 - one bad pipeline must not stop the rest
                _log.exception("pipeline run %s could not start", run_id)
                self.store.finish_run(
                    run_id, RunStatus.FAILED, f"could not start: {type(exc).__name__}: {exc}"
                )
                run = self.store.get_run(run_id)
            finished.append(run)
        return finished

    def reap(self, now_ms: int | None = None) -> list[str]:
        """Fail runs whose worker stopped beating (they can then be resumed)."""
        now = int(time.time() * 1000) if now_ms is None else now_ms
        return self.store.reap(now - int(STALE_SECONDS * 1000))

    def tick(self, now_ms: int | None = None) -> list[PipelineRun]:
        """Fail abandoned runs, queue due schedules, then run what is queued."""
        self.reap()
        self.queue_due(now_ms)
        return self.start_queued()

    def run_forever(self, interval: float = 10.0, stop: threading.Event | None = None) -> None:
        """Tick every ``interval`` seconds until ``stop`` is set."""
        stop = stop or threading.Event()
        while not stop.is_set():
            try:
                for run in self.tick():
                    _log.info("pipeline %s run %s: %s", run.pipeline, run.run_id, run.status)
            except Exception:  # noqa: BLE001 - the scheduler outlives a failing database call
                _log.exception("scheduler tick failed")
            stop.wait(interval)
