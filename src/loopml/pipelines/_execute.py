"""One attempt of one step, self-contained so that a thread, a process or a Ray worker can run
it: read the inputs from the artifact store, call the function with its prints and logs
captured and the tracking runs it starts tagged and collected, store the outputs."""

from __future__ import annotations

import contextvars
import importlib
import sys
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from loopml.store import ArtifactStore

__all__ = ["StepResult", "StepTask", "execute_step", "resolve_function"]


@dataclass
class StepTask:
    """What a worker needs to run one attempt of a step."""

    run_id: str
    step: str
    attempt: int
    function: str  # module:qualname
    params: dict[str, Any]
    inputs: dict[str, dict[str, Any]]  # argument -> output reference
    outputs: tuple[str, ...]
    artifact_uri: str
    prefix: str  # folder of this step's outputs in the artifact store
    tracking_uri: str | None = None
    search_path: str | None = None  # for a process that must import ``function``
    fn: Callable[..., Any] | None = None  # given directly to threads and Ray
    pipeline: str = ""

    def without_function(self) -> StepTask:
        """A copy for another process: the function travels by name."""
        return StepTask(**{**self.__dict__, "fn": None})


@dataclass
class StepResult:
    """How an attempt ended: output references, or the error; logs and tracking runs."""

    ok: bool
    outputs: dict[str, dict[str, Any]] = field(default_factory=dict)
    error: str | None = None
    logs: str = ""
    tracking_runs: list[str] = field(default_factory=list)
    seconds: float = 0.0


def resolve_function(ref: str, search_path: str | None = None) -> Callable[..., Any]:
    """Import ``module:qualname`` (a step's function; a ``Step`` gives its ``fn``)."""
    if search_path and search_path not in sys.path:
        sys.path.insert(0, search_path)
    module_name, _, qualname = ref.partition(":")
    target: Any = importlib.import_module(module_name)
    for part in qualname.split("."):
        target = getattr(target, part)
    return getattr(target, "fn", target)


def _split(value: Any, names: tuple[str, ...], step: str) -> dict[str, Any]:
    if len(names) == 1:
        return {names[0]: value}
    if isinstance(value, dict) and set(value) == set(names):
        return {n: value[n] for n in names}
    if isinstance(value, (tuple, list)) and len(value) == len(names):
        return dict(zip(names, value, strict=True))
    raise TypeError(
        f"step {step!r} declares outputs {list(names)} but returned a {type(value).__name__}"
        + (f" of length {len(value)}" if isinstance(value, (tuple, list)) else "")
    )


def execute_step(task: StepTask) -> StepResult:
    """Run one attempt in a fresh context (no tracking run of another step is active); never
    raises (an error, ``SystemExit`` included, is part of the result)."""
    return contextvars.Context().run(_attempt, task)


def _attempt(task: StepTask) -> StepResult:
    from loopml.pipelines._capture import capture
    from loopml.pipelines._values import load_value, save_value

    started = time.perf_counter()
    store = ArtifactStore(task.artifact_uri)
    runs: list[str] = []
    result = StepResult(ok=False)
    with capture() as logs:
        try:
            import loopml.tracking as tracking

            if task.tracking_uri and tracking.get_tracking_uri() != task.tracking_uri:
                tracking.set_tracking_uri(task.tracking_uri)
            fn = task.fn or resolve_function(task.function, task.search_path)
            kwargs = dict(task.params)
            for arg, ref in task.inputs.items():
                kwargs[arg] = load_value(ref, store)
            tags = {
                "loopml.pipeline": task.pipeline,
                "loopml.pipeline.run_id": task.run_id,
                "loopml.pipeline.step": task.step,
            }
            with tracking.collect_runs(tags) as runs:
                try:
                    value = fn(**kwargs)
                finally:
                    while tracking.active_run() is not None:  # runs the step left open
                        tracking.end_run("FAILED" if sys.exc_info()[0] else "FINISHED")
            outputs = _split(value, task.outputs, task.step)
            result.outputs = {
                name: save_value(v, store, f"{task.prefix}/{name}") for name, v in outputs.items()
            }
            result.ok = True
        except BaseException as exc:  # noqa: BLE001 - reported, and retried by the runner
            result.error = "".join(traceback.format_exception(exc)).rstrip()
            print(result.error, file=sys.stderr)
    result.logs = logs[0] if logs else ""
    result.tracking_runs = list(runs)
    result.seconds = time.perf_counter() - started
    return result
