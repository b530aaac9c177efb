"""The module-level tracking API with MLflow's names: ``start_run``, ``log_metric``, ...

The active run stack lives in a ``contextvars.ContextVar`` so threads and asyncio tasks each have
their own; the tracking URI and active experiment are process-wide, as in MLflow. Params, metrics
and tags are queued on the background logger; ``end_run`` and ``flush`` are durability points.
"""

from __future__ import annotations

import atexit
import contextlib
import contextvars
import functools
import getpass
import logging
import os
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any

from loopml.config import get_settings
from loopml.errors import AlreadyExists, InvalidInput, InvalidState, LoopmlError
from loopml.tracking._client import Client
from loopml.tracking._entities import (
    Experiment,
    LifecycleStage,
    Param,
    Run,
    RunStatus,
    RunTag,
    ViewType,
)
from loopml.tracking._resolve import (
    clear_cache,
    resolve_tracking_uri,
    set_process_tracking_uri,
)
from loopml.tracking._sql import now_ms
from loopml.tracking._validation import (
    validate_param,
)

_log = logging.getLogger("loopml.tracking")
_tracking_uri: str | None = None
_active_experiment_id: str | None = None
_run_stack: contextvars.ContextVar[tuple[ActiveRun, ...]] = contextvars.ContextVar(
    "loopml_run_stack", default=()
)
_run_scope: contextvars.ContextVar[tuple[dict[str, str], list[str]] | None] = (
    contextvars.ContextVar("loopml_run_scope", default=None)
)
_last_active_run_id: str | None = None
_client_cache: dict[str | None, Client] = {}


class ActiveRun(Run):
    """The run returned by ``start_run``: a ``Run`` that ends itself as a context manager."""

    def __init__(self, run: Run) -> None:
        super().__init__(run.info, run.data)
        object.__setattr__(self, "_params", dict(run.data.params))
        object.__setattr__(self, "_ended", False)

    def __enter__(self) -> ActiveRun:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc_type is None:
            status = RunStatus.FINISHED
        elif issubclass(exc_type, KeyboardInterrupt):
            status = RunStatus.KILLED
        else:
            status = RunStatus.FAILED
        if exc_type is None:
            _end_this(self, status)
            return
        try:
            _end_this(self, status)
        except LoopmlError as error:  # never hide the user's own exception behind ours
            _log.error("loopml: while ending run %s: %s", self.info.run_id, error)


# -- URI and client ----------------------------------------------------------------------------
def set_tracking_uri(uri: str | Path | None) -> None:
    """Point the SDK at a loopml server (``http://...``) or a database URI."""
    global _tracking_uri, _active_experiment_id
    flush()
    new = None if uri is None else str(uri)
    if new is not None and not new.startswith(("http://", "https://", "sqlite:", "postgres")):
        raise InvalidInput(
            f"tracking URI {new!r} is not supported: use http(s)://host:port or a database URI"
        )
    if new != _tracking_uri:
        _active_experiment_id = None
    _tracking_uri = new
    set_process_tracking_uri(new)


def get_tracking_uri() -> str:
    """The tracking URI in use (the embedded database's URI when none was set)."""
    return resolve_tracking_uri(_tracking_uri)


def _client() -> Client:
    key = _tracking_uri
    client = _client_cache.get(key)
    if client is None:
        client = _client_cache[key] = Client(_tracking_uri)
    return client


def reset() -> None:
    """Forget the tracking URI, active runs and cached stores (tests)."""
    global _tracking_uri, _active_experiment_id, _last_active_run_id
    for run in reversed(_run_stack.get()):
        try:
            _end_this(run, RunStatus.KILLED)
        except Exception:  # noqa: BLE001 - best effort while tearing down
            pass
    _run_stack.set(())
    _tracking_uri = None
    set_process_tracking_uri(None)
    _active_experiment_id = None
    _last_active_run_id = None
    _client_cache.clear()
    clear_cache()


# -- experiments -------------------------------------------------------------------------------
def set_experiment(
    experiment_name: str | None = None, experiment_id: str | None = None
) -> Experiment:
    """Make an experiment active for new runs, creating it by name if needed."""
    global _active_experiment_id
    if (experiment_name is None) == (experiment_id is None):
        raise InvalidInput("set_experiment takes exactly one of experiment_name or experiment_id")
    client = _client()
    if experiment_id is not None:
        exp = client.get_experiment(str(experiment_id))
    else:
        found = client.get_experiment_by_name(experiment_name)  # type: ignore[arg-type]
        if found is None:
            try:
                client.create_experiment(experiment_name)  # type: ignore[arg-type]
            except AlreadyExists:
                pass  # created concurrently by another process
            found = client.get_experiment_by_name(experiment_name)  # type: ignore[arg-type]
        assert found is not None
        exp = found
    if exp.lifecycle_stage == LifecycleStage.DELETED:
        raise InvalidState(
            f"experiment {exp.name!r} (id {exp.experiment_id}) is deleted; restore it with "
            "Client().restore_experiment, or purge it to reuse the name"
        )
    _active_experiment_id = exp.experiment_id
    return exp


def create_experiment(
    name: str, artifact_location: str | None = None, tags: dict[str, Any] | None = None
) -> str:
    """Create an experiment; returns its id."""
    return _client().create_experiment(name, artifact_location, tags)


def get_experiment(experiment_id: str) -> Experiment:
    """The experiment with this id."""
    return _client().get_experiment(experiment_id)


def get_experiment_by_name(name: str) -> Experiment | None:
    """The experiment with this name, or None."""
    return _client().get_experiment_by_name(name)


def delete_experiment(experiment_id: str) -> None:
    """Move an experiment to the trash."""
    _client().delete_experiment(experiment_id)


def search_experiments(
    view_type: str | int = ViewType.ACTIVE_ONLY,
    max_results: int | None = None,
    filter_string: str | None = None,
    order_by: Sequence[str] | None = None,
) -> list[Experiment]:
    """Every experiment (of the view type), following pages."""
    client = _client()
    out: list[Experiment] = []
    token = None
    while True:
        page = client.search_experiments(view_type, 1000, filter_string, order_by, token)
        out.extend(page)
        token = page.token
        if not token or (max_results is not None and len(out) >= max_results):
            return out[:max_results] if max_results is not None else out


def _experiment_id() -> str:
    if _active_experiment_id is not None:
        return _active_experiment_id
    settings_name = get_settings().experiment_name
    if settings_name:
        return set_experiment(settings_name).experiment_id
    return _client().store.get_default_experiment_id()


# -- runs --------------------------------------------------------------------------------------
@contextlib.contextmanager
def collect_runs(tags: dict[str, Any] | None = None) -> Iterator[list[str]]:
    """Tag every run started inside the block with ``tags`` and collect their ids (a pipeline
    step links the tracking runs it created this way)."""
    found: list[str] = []
    token = _run_scope.set(({k: str(v) for k, v in (tags or {}).items()}, found))
    try:
        yield found
    finally:
        _run_scope.reset(token)


def start_run(
    run_id: str | None = None,
    experiment_id: str | None = None,
    run_name: str | None = None,
    nested: bool = False,
    parent_run_id: str | None = None,
    tags: dict[str, Any] | None = None,
    description: str | None = None,
) -> ActiveRun:
    """Start (or resume, with ``run_id``) a run and make it active; use it as a context manager."""
    global _last_active_run_id
    stack = _run_stack.get()
    if stack and not nested:
        raise InvalidState(
            f"run {stack[-1].info.run_id} is already active; end it first, or pass "
            "nested=True to start a child run"
        )
    client = _client()
    if run_id is not None:
        run = client.get_run(run_id)
        if run.info.lifecycle_stage == LifecycleStage.DELETED:
            raise InvalidState(f"run {run_id} is deleted; restore it before resuming it")
        client.update_run(run_id, status=RunStatus.RUNNING, name=run_name)
        run = client.get_run(run_id)
    else:
        parent = parent_run_id or (stack[-1].info.run_id if stack and nested else None)
        scope = _run_scope.get()
        all_tags = {
            "mlflow.user": _user(),
            "mlflow.source.name": _source_name(),
            "mlflow.source.type": "LOCAL",
            **(scope[0] if scope else {}),
            **{k: str(v) for k, v in (tags or {}).items()},
        }
        if description is not None:
            all_tags["mlflow.note.content"] = description
        exp_id = str(experiment_id) if experiment_id is not None else _experiment_id()
        run = client.store.create_run(
            exp_id,
            tags=all_tags,
            run_name=run_name,
            parent_run_id=parent,
            user_id=all_tags["mlflow.user"],
        )
    active = ActiveRun(run)
    scope = _run_scope.get()
    if scope is not None and run_id is None:
        scope[1].append(run.info.run_id)
    _run_stack.set((*stack, active))
    _last_active_run_id = run.info.run_id
    return active


def _end_this(run: ActiveRun, status: str) -> None:
    stack = _run_stack.get()
    if run in stack:
        # Ending a run ends the runs nested inside it first.
        idx = stack.index(run)
        for child in reversed(stack[idx + 1 :]):
            _finish(child, status)
        _run_stack.set(stack[:idx])
    _finish(run, status)


def _finish(run: ActiveRun, status: str) -> None:
    if getattr(run, "_ended", False):
        return
    object.__setattr__(run, "_ended", True)
    client = _client()
    client.set_terminated(run.info.run_id, status, now_ms(), synchronous=False)
    client.flush(run.info.run_id)


def end_run(status: str = RunStatus.FINISHED) -> None:
    """End the active run (and flush what it logged); does nothing without one."""
    if status not in RunStatus.ALL:
        raise InvalidInput(f"status {status!r} is not one of {', '.join(RunStatus.ALL)}")
    stack = _run_stack.get()
    if stack:
        _end_this(stack[-1], status)


def active_run() -> ActiveRun | None:
    """The innermost active run of this thread or task, or None."""
    stack = _run_stack.get()
    return stack[-1] if stack else None


def last_active_run() -> Run | None:
    """The run that was active last (the active one, else the one most recently ended)."""
    run = active_run()
    if run is not None:
        return get_run(run.info.run_id)
    return get_run(_last_active_run_id) if _last_active_run_id else None


def _current() -> ActiveRun:
    stack = _run_stack.get()
    return stack[-1] if stack else start_run()


def get_run(run_id: str) -> Run:
    """The run with its latest metrics, params and tags."""
    return _client().get_run(run_id)


def delete_run(run_id: str) -> None:
    """Move a run to the trash."""
    _client().delete_run(run_id)


def flush() -> None:
    """Wait until everything logged so far is written; raise the first write error since."""
    client = _client_cache.get(_tracking_uri)
    if client is not None:
        client.flush()


flush_async_logging = flush  # MLflow's name for the same durability point


# -- logging -----------------------------------------------------------------------------------
def log_metric(
    key: str,
    value: float,
    step: int | None = None,
    synchronous: bool | None = None,
    timestamp: int | None = None,
    run_id: str | None = None,
) -> None:
    """Log one metric point to the active run (starting one if none is active)."""
    rid = run_id or _current().info.run_id
    client = _client()
    client.log_metric(rid, key, value, timestamp, step, synchronous=False)
    if synchronous:
        client.flush(rid)


def log_metrics(
    metrics: dict[str, float],
    step: int | None = None,
    synchronous: bool | None = None,
    run_id: str | None = None,
    timestamp: int | None = None,
) -> None:
    """Log several metrics at one step."""
    rid = run_id or _current().info.run_id
    client = _client()
    client.log_metrics(rid, metrics, step, timestamp, synchronous=False)
    if synchronous:
        client.flush(rid)


def log_param(key: str, value: Any, synchronous: bool | None = None) -> Any:
    """Log a param; another value for a key already logged is ``InvalidInput``."""
    log_params({key: value}, synchronous=synchronous)
    return value


def log_params(
    params: dict[str, Any], synchronous: bool | None = None, run_id: str | None = None
) -> None:
    """Log several params."""
    if not isinstance(params, dict):
        raise InvalidInput(f"log_params takes a dict, got {type(params).__name__}")
    run = _current() if run_id is None else None
    rid = run_id or run.info.run_id  # type: ignore[union-attr]
    checked = [validate_param(Param(k, v)) for k, v in params.items()]
    if run is not None:
        # Catch a changed value here, at the call, for params this process logged before.
        known: dict[str, str] = run._params  # type: ignore[attr-defined]
        for p in checked:
            if p.key in known and known[p.key] != p.value:
                raise InvalidInput(
                    f"param {p.key!r} of run {rid} is already {known[p.key]!r}; params cannot "
                    f"change (got {p.value!r}); log a new run or use a tag"
                )
        for p in checked:
            known[p.key] = p.value
    client = _client()
    client.log_batch(rid, params=checked, synchronous=False)
    if synchronous:
        client.flush(rid)


def set_tag(key: str, value: Any, synchronous: bool | None = None) -> None:
    """Set a tag on the active run."""
    set_tags({key: value}, synchronous=synchronous)


def set_tags(tags: dict[str, Any], synchronous: bool | None = None) -> None:
    """Set several tags on the active run."""
    if not isinstance(tags, dict):
        raise InvalidInput(f"set_tags takes a dict, got {type(tags).__name__}")
    rid = _current().info.run_id
    client = _client()
    client.log_batch(rid, tags=[RunTag(k, v) for k, v in tags.items()], synchronous=False)
    if synchronous:
        client.flush(rid)


def delete_tag(key: str) -> None:
    """Remove a tag from the active run."""
    rid = _current().info.run_id
    _client().delete_tag(rid, key)


def set_experiment_tag(key: str, value: Any) -> None:
    """Set a tag on the active experiment."""
    _client().set_experiment_tag(_experiment_id(), key, value)


def set_experiment_tags(tags: dict[str, Any]) -> None:
    """Set several tags on the active experiment."""
    if not isinstance(tags, dict):
        raise InvalidInput(f"set_experiment_tags takes a dict, got {type(tags).__name__}")
    for key, value in tags.items():
        set_experiment_tag(key, value)


def get_parent_run(run_id: str) -> Run | None:
    """The parent of a nested run, or None."""
    parent = get_run(run_id).info.parent_run_id
    return get_run(parent) if parent else None


def log_artifact(local_path: str | os.PathLike[str], artifact_path: str | None = None) -> None:
    """Upload a local file or folder to the active run's artifacts."""
    _client().log_artifact(_current().info.run_id, local_path, artifact_path)


def log_artifacts(local_dir: str | os.PathLike[str], artifact_path: str | None = None) -> None:
    """Upload the files under a local folder to the active run's artifacts."""
    _client().log_artifacts(_current().info.run_id, local_dir, artifact_path)


def log_text(text: str, artifact_file: str) -> None:
    """Store a string as an artifact of the active run."""
    _client().log_text(_current().info.run_id, text, artifact_file)


def log_dict(dictionary: Any, artifact_file: str) -> None:
    """Store a dict as JSON (or YAML) in the active run's artifacts."""
    _client().log_dict(_current().info.run_id, dictionary, artifact_file)


def log_figure(figure: Any, artifact_file: str) -> None:
    """Store a matplotlib or plotly figure in the active run's artifacts."""
    _client().log_figure(_current().info.run_id, figure, artifact_file)


def get_artifact_uri(artifact_path: str | None = None) -> str:
    """The URI of the active run's artifact root (or of a path under it)."""
    root = _current().info.artifact_uri
    return f"{root}/{artifact_path.strip('/')}" if artifact_path else root


# -- search ------------------------------------------------------------------------------------
def search_runs(
    experiment_ids: Sequence[str] | None = None,
    filter_string: str = "",
    run_view_type: str | int = ViewType.ACTIVE_ONLY,
    max_results: int = 100_000,
    order_by: Sequence[str] | None = None,
    output_format: str = "pandas",
    experiment_names: Sequence[str] | None = None,
) -> Any:
    """Runs matching an MLflow filter: a pandas DataFrame (``params.x`` ...) or a list of Runs."""
    client = _client()
    if output_format not in ("pandas", "list"):
        raise InvalidInput(f"output_format must be 'pandas' or 'list', got {output_format!r}")
    if experiment_ids is None and experiment_names is None:
        ids = [_experiment_id()]
    else:
        ids = [
            str(e)
            for e in (
                [experiment_ids] if isinstance(experiment_ids, str) else experiment_ids or []
            )
        ]
        for name in experiment_names or []:
            exp = client.get_experiment_by_name(name)
            if exp is not None:
                ids.append(exp.experiment_id)
        if not ids:
            return [] if output_format == "list" else _runs_frame([])
    runs: list[Run] = []
    token = None
    while len(runs) < max_results:
        page = client.search_runs(
            ids,
            filter_string,
            run_view_type,
            min(50_000, max_results - len(runs)),
            order_by,
            token,
        )
        runs.extend(page)
        token = page.token
        if not token:
            break
    return runs if output_format == "list" else _runs_frame(runs)


def _runs_frame(runs: list[Run]) -> Any:
    import numpy as np
    import pandas as pd

    infos = [r.info for r in runs]
    columns: dict[str, Any] = {
        "run_id": [i.run_id for i in infos],
        "experiment_id": [i.experiment_id for i in infos],
        "status": [i.status for i in infos],
        "artifact_uri": [i.artifact_uri for i in infos],
        "start_time": pd.to_datetime(
            np.array([i.start_time for i in infos], dtype="int64"), unit="ms", utc=True
        ),
        "end_time": pd.to_datetime(
            np.array([np.nan if i.end_time is None else i.end_time for i in infos]),
            unit="ms",
            utc=True,
        ),
    }
    nan = float("nan")
    metric_maps = [r.data.metrics for r in runs]
    for k in sorted({k for m in metric_maps for k in m}):
        columns[f"metrics.{k}"] = np.array([m.get(k, nan) for m in metric_maps], dtype="float64")
    for prefix, maps in (
        ("params", [r.data.params for r in runs]),
        ("tags", [r.data.tags for r in runs]),
    ):
        for k in sorted({k for m in maps for k in m}):
            columns[f"{prefix}.{k}"] = [m.get(k) for m in maps]
    return pd.DataFrame(columns)


# -- helpers -----------------------------------------------------------------------------------
@functools.cache
def _user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown"


def _source_name() -> str:
    return sys.argv[0] if sys.argv and sys.argv[0] else "<interactive>"


def _end_all_at_exit() -> None:
    from loopml.tracking import _logger

    status = RunStatus.KILLED if _logger.terminating else RunStatus.FINISHED
    for run in reversed(_run_stack.get()):
        try:
            _end_this(run, status)
        except Exception:  # noqa: BLE001 - interpreter is exiting; the logger reports errors
            pass


atexit.register(_end_all_at_exit)
os.register_at_fork(after_in_child=_client_cache.clear)
