"""Running pipelines against the configured database and artifact store, finding them by name,
and the alert notifier that queues a run."""

from __future__ import annotations

import importlib.util
import sys
import threading
from collections.abc import Mapping
from pathlib import Path
from types import ModuleType
from typing import Any

from loopml.errors import InvalidInput, NotFound
from loopml.pipelines._dag import Pipeline, registered
from loopml.pipelines._entities import PipelineRun, RunStatus
from loopml.pipelines._executors import Executor, make_executor
from loopml.pipelines._runner import execute_dag
from loopml.pipelines._store import SqlPipelineStore

__all__ = [
    "enqueue_run",
    "get_pipeline_store",
    "get_run",
    "import_file",
    "list_pipelines",
    "list_runs",
    "load_pipeline",
    "register_pipeline",
    "run_pipeline",
]

_lock = threading.Lock()
_stores: dict[tuple[str, str, str], SqlPipelineStore] = {}


def get_pipeline_store() -> SqlPipelineStore:
    """The (cached) pipeline store of the configured database, workspace and artifact store."""
    from loopml.config import get_settings
    from loopml.tracking import get_tracking_uri

    settings = get_settings()
    uri = get_tracking_uri()
    if uri.startswith(("http://", "https://")):
        raise InvalidInput(
            "pipelines run where the database is; against a server, queue runs with its "
            "/api/v1/pipelines routes and run `loopml scheduler` next to the database"
        )
    key = (uri, settings.workspace, settings.resolved_artifact_uri)
    with _lock:
        store = _stores.get(key)
        if store is None:
            store = _stores[key] = SqlPipelineStore(
                uri, workspace=settings.workspace, artifact_uri=settings.resolved_artifact_uri
            )
        return store


def import_file(path: str | Path, *, what: str = "Python file") -> ModuleType:
    """Import a ``.py`` file as the module named after it, its folder on ``sys.path`` (so other
    processes import its functions the same way); a file imported before is not run again, and
    a module of that name from elsewhere is an ``InvalidInput``."""
    file = Path(path).resolve()
    if not file.is_file() or file.suffix != ".py":
        raise NotFound(f"no {what} {str(path)!r} (no such .py file)")
    name = file.stem
    module = sys.modules.get(name)
    if module is not None:
        known = getattr(module, "__file__", None)
        if known is None or Path(known).resolve() != file:
            raise InvalidInput(
                f"cannot import {str(path)!r} as module {name!r}: another module has that name"
            )
        return module
    spec = importlib.util.spec_from_file_location(name, file)
    if spec is None or spec.loader is None:
        raise InvalidInput(f"cannot import {str(path)!r}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    if str(file.parent) not in sys.path:
        sys.path.insert(0, str(file.parent))
    try:
        spec.loader.exec_module(module)
    except Exception:
        del sys.modules[name]
        raise
    return module


def _from_file(path: str, attr: str) -> Any:
    file = Path(path).resolve()
    module = import_file(path, what="pipeline file")
    found = getattr(module, attr, None)
    if isinstance(found, Pipeline):
        found.target = f"{file}:{attr}"  # found again from the file by the scheduler
    return found


def load_pipeline(ref: str | Pipeline, *, store: SqlPipelineStore | None = None) -> Pipeline:
    """A pipeline by object, by ``module:attr`` or ``path/file.py:attr``, or by the name of one
    defined in this process or recorded (with its import target) in the store."""
    if isinstance(ref, Pipeline):
        return ref
    if not isinstance(ref, str) or not ref:
        raise InvalidInput("a pipeline is named by its name, module:attr or file.py:attr")
    if ":" in ref:
        where, _, attr = ref.rpartition(":")
        if where.endswith(".py") or "/" in where:
            found = _from_file(where, attr)
        else:
            try:
                module = importlib.import_module(where)
            except ImportError as exc:
                raise NotFound(f"cannot import module {where!r}: {exc}") from None
            found = module
            for part in attr.split("."):
                found = getattr(found, part, None)
        if not isinstance(found, Pipeline):
            raise NotFound(f"{ref!r} is not a pipeline (decorate the function with @pipeline)")
        return found
    local = registered(ref)
    if local is not None:
        return local
    info = (store or get_pipeline_store()).get_pipeline(ref)
    if not info.target:
        raise NotFound(
            f"pipeline {ref!r} was defined in a script or notebook; run it there, or from an "
            "importable module so that it can be found by name"
        )
    return load_pipeline(info.target, store=store)


def register_pipeline(pipeline: Pipeline | str, params: Mapping[str, Any] | None = None) -> None:
    """Record a pipeline (and its DAG with default or given parameters) without running it."""
    pipe = load_pipeline(pipeline)
    try:
        dag = pipe.build(params).to_dict()
    except InvalidInput:
        dag = {}  # required parameters: the DAG is known once a run gives them
    get_pipeline_store().save_pipeline(
        pipe.name, target=pipe.target, description=pipe.description, dag=dag
    )


def run_pipeline(
    pipeline: Pipeline | str,
    params: Mapping[str, Any] | None = None,
    *,
    executor: str | Executor | None = None,
    cache: bool = True,
    resume: str | None = None,
    trigger: str = "manual",
    raise_on_failure: bool = True,
    max_workers: int | None = None,
    run_id: str | None = None,
    store: SqlPipelineStore | None = None,
    **kwargs: Any,
) -> PipelineRun:
    """Run a pipeline now and return the run.

    Args:
        pipeline: a ``@pipeline`` object, or its name or import target.
        params: the pipeline function's arguments (also accepted as keyword arguments).
        executor: "threads" (default; see ``LOOPML_PIPELINE_EXECUTOR``), "processes", "ray",
            "ray://host:port", or an executor object.
        cache: reuse outputs of earlier step runs with the same cache key.
        resume: a failed run's id: its succeeded steps are reused, the rest run again.
        trigger: what started the run (recorded).
        raise_on_failure: raise ``PipelineFailed`` (with ``.run``) when a step failed.
        max_workers: parallel steps (default: by CPU count).
        run_id: run a queued run with this id (the scheduler's way).

    Raises:
        InvalidInput: unknown parameters, non-JSON parameters, a bad executor.
        PipelineFailed: a step failed (after its retries) and ``raise_on_failure``.
    """
    from loopml.config import get_settings
    from loopml.store import resolve_artifact_store
    from loopml.tracking import get_tracking_uri

    pipe = load_pipeline(pipeline, store=store)
    store = store or get_pipeline_store()
    all_params = {**dict(params or {}), **kwargs}
    dag = pipe.build(all_params)
    bound = pipe.bind(all_params)
    reuse, reuse_from = {}, None
    if resume is not None:
        previous = store.get_run(resume)
        if previous.pipeline != pipe.name:
            raise InvalidInput(f"run {resume} is a run of pipeline {previous.pipeline!r}")
        if previous.status not in (RunStatus.FAILED,):
            raise InvalidInput(f"run {resume} is {previous.status}; only a failed run resumes")
        reuse, reuse_from = previous.steps, resume
    workers = max_workers or get_settings().pipeline_workers or None
    artifacts = resolve_artifact_store(store.artifact_uri)  # fail before a run is recorded
    runner = make_executor(executor, workers)
    dag_json = dag.to_dict()
    store.save_pipeline(pipe.name, target=pipe.target, description=pipe.description, dag=dag_json)
    if run_id is None:
        run_id = store.create_run(
            pipe.name,
            params=bound,
            dag=dag_json,
            trigger=trigger,
            executor=runner.name,
            resumed_from=resume,
        )
    else:
        store.start_queued(run_id, dag=dag_json, executor=runner.name, params=bound)
    try:
        execute_dag(
            pipeline=pipe.name,
            dag=dag,
            run_id=run_id,
            store=store,
            executor=runner,
            artifacts=artifacts,
            cache=cache,
            reuse=reuse,
            reuse_from=reuse_from,
            tracking_uri=get_tracking_uri(),
        )
    except Exception as exc:
        if store.get_run(run_id).status == RunStatus.RUNNING:  # never left half-recorded
            store.finish_run(run_id, RunStatus.FAILED, f"{type(exc).__name__}: {exc}")
        raise
    finally:
        if runner is not executor:
            runner.close()
    run = store.get_run(run_id)
    if raise_on_failure:
        run.raise_for_status()
    return run


def enqueue_run(
    pipeline: str,
    params: Mapping[str, Any] | None = None,
    *,
    trigger: str = "manual",
    store: SqlPipelineStore | None = None,
) -> str:
    """Queue a run of a recorded pipeline for ``loopml scheduler`` to start; returns its id."""
    from loopml.pipelines._dag import _json_param

    store = store or get_pipeline_store()
    if not isinstance(params or {}, Mapping):
        raise InvalidInput("params must be an object")
    clean = _json_param(dict(params or {}), "params")
    return store.create_run(
        pipeline, params=clean, dag={}, trigger=trigger, executor="", status=RunStatus.QUEUED
    )


def get_run(run_id: str) -> PipelineRun:
    """One pipeline run with its steps."""
    return get_pipeline_store().get_run(run_id)


def list_runs(
    pipeline: str | None = None, *, status: str | None = None, limit: int = 50
) -> list[PipelineRun]:
    """Pipeline runs, newest first."""
    return get_pipeline_store().list_runs(pipeline, status=status, limit=limit)


def list_pipelines() -> list[Any]:
    """Pipelines of the workspace."""
    return get_pipeline_store().list_pipelines()


def _on_alert(notifier: dict[str, Any], event: Any, rule: Any) -> dict[str, Any]:
    """The ``pipeline`` alert notifier: a fired alert queues a run of the named pipeline."""
    if event.state != "fired":
        return {"type": "pipeline", "ok": True, "skipped": "resolved"}
    params = dict(notifier.get("params") or {})
    run_id = enqueue_run(
        str(notifier["pipeline"]), params, trigger=f"alert:{rule.name}:{event.seq}"
    )
    return {"type": "pipeline", "ok": True, "pipeline": notifier["pipeline"], "run_id": run_id}


def install_alert_trigger() -> None:
    """Let alert rules start pipelines (``{"type": "pipeline", "pipeline": NAME}``)."""
    from loopml.monitoring import register_notifier

    register_notifier("pipeline", _on_alert)
