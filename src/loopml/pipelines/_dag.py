"""Steps and pipelines in plain Python: ``@step`` functions called inside a ``@pipeline``
function build a DAG instead of running.

Calling a step while a pipeline is being built returns placeholders (``StepOutput``) for its
outputs; passing a placeholder to another step is an edge, anything else is a parameter (JSON
values only, so that it can be stored and hashed). A step called outside a pipeline simply runs.
"""

from __future__ import annotations

import functools
import hashlib
import inspect
import math
import os
import re
import sys
import textwrap
import threading
import types
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, overload

import orjson

from loopml.errors import InvalidInput

__all__ = ["DAG", "Pipeline", "Step", "StepNode", "StepOutput", "pipeline", "step"]

_NAME = re.compile(r"^[A-Za-z0-9][\w.-]{0,254}$")
_OUTPUT = re.compile(r"^[A-Za-z0-9][\w-]{0,254}$")  # no dots: outputs are named "step.output"
SINGLE = "output"  # the output name of a step with one output
_building = threading.local()
_registry: dict[str, Pipeline] = {}
_registry_lock = threading.Lock()


@dataclass(frozen=True)
class StepOutput:
    """A placeholder for one output of a step, while a pipeline is built."""

    step: str
    name: str = SINGLE

    def __repr__(self) -> str:
        return f"<output {self.step}.{self.name}>"


@dataclass
class StepNode:
    """One step of a DAG: its function, parameters, inputs (edges) and options."""

    name: str
    step: Step
    params: dict[str, Any] = field(default_factory=dict)
    inputs: dict[str, StepOutput] = field(default_factory=dict)

    @property
    def upstream(self) -> list[str]:
        """The steps this one reads from, in argument order, without repeats."""
        return list(dict.fromkeys(o.step for o in self.inputs.values()))

    def to_dict(self) -> dict[str, Any]:
        """JSON-able description (what the store keeps and the UI draws)."""
        s = self.step
        return {
            "name": self.name,
            "function": s.function_ref,
            "params": self.params,
            "inputs": {k: f"{v.step}.{v.name}" for k, v in self.inputs.items()},
            "outputs": list(s.outputs),
            "upstream": self.upstream,
            "cache": s.cache,
            "retries": s.retries,
            "timeout": s.timeout,
            "source_hash": s.source_hash,
        }


@dataclass
class DAG:
    """Steps in a valid execution order, and where the pipeline's result comes from."""

    nodes: dict[str, StepNode]
    result: Any = None  # a StepOutput, a list/dict of them, or None

    def downstream(self, name: str) -> set[str]:
        """Every step that depends on ``name``, directly or not."""
        found: set[str] = set()
        frontier = [name]
        while frontier:
            current = frontier.pop()
            for node in self.nodes.values():
                if current in node.upstream and node.name not in found:
                    found.add(node.name)
                    frontier.append(node.name)
        return found

    def to_dict(self) -> dict[str, Any]:
        """JSON-able form: the steps and the result's shape."""
        return {"steps": [n.to_dict() for n in self.nodes.values()], "result": _shape(self.result)}


def _shape(value: Any) -> Any:
    if isinstance(value, StepOutput):
        return {"$output": f"{value.step}.{value.name}"}
    if isinstance(value, (list, tuple)):
        return [_shape(v) for v in value]
    if isinstance(value, Mapping):
        return {str(k): _shape(v) for k, v in value.items()}
    return value


class _Builder:
    def __init__(self) -> None:
        self.nodes: dict[str, StepNode] = {}

    def add(self, step: Step, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        try:
            bound = step.signature.bind(*args, **kwargs)
        except TypeError as exc:
            raise InvalidInput(f"step {step.name!r}: {exc}") from None
        name, n = step.name, 1
        while name in self.nodes:
            n += 1
            name = f"{step.name}_{n}"
        node = StepNode(name=name, step=step)
        for arg, value in bound.arguments.items():
            kind = step.signature.parameters[arg].kind
            if kind in (inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD):
                raise InvalidInput(f"step {step.name!r}: *args and **kwargs cannot be wired")
            if isinstance(value, StepOutput):
                node.inputs[arg] = value
            else:
                node.params[arg] = _json_param(value, f"argument {arg!r} of step {name!r}")
        self.nodes[name] = node
        if len(step.outputs) == 1:
            return StepOutput(name)
        return tuple(StepOutput(name, o) for o in step.outputs)


def _json_param(value: Any, what: str) -> Any:
    try:
        text = orjson.dumps(value)
    except TypeError as exc:
        raise InvalidInput(
            f"{what} is not a JSON value ({exc}); pass data from a step's output instead"
        ) from None
    loaded = orjson.loads(text)
    if loaded != value:  # NaN, infinities (orjson writes null), tuples, subclasses
        raise InvalidInput(
            f"{what} must be made of JSON values (finite numbers, strings, lists, objects)"
        )
    return loaded


@contextmanager
def _building_dag() -> Iterator[_Builder]:
    if getattr(_building, "builder", None) is not None:
        raise InvalidInput("a pipeline cannot be built inside another pipeline")
    builder = _Builder()
    _building.builder = builder
    try:
        yield builder
    finally:
        _building.builder = None


class Step:
    """A function that runs as one step of a pipeline (``@step``)."""

    def __init__(
        self,
        fn: Callable[..., Any],
        *,
        name: str | None = None,
        outputs: tuple[str, ...] | list[str] | None = None,
        cache: bool = True,
        retries: int = 0,
        retry_delay: float = 1.0,
        backoff: float = 2.0,
        timeout: float | None = None,
        version: str | None = None,
    ) -> None:
        if not callable(fn):
            raise InvalidInput("@step decorates a function")
        self.fn = fn
        self.name = name or (re.sub(r"[^\w.-]", "", fn.__name__) or "step")
        if not _NAME.match(self.name):
            raise InvalidInput(f"step name {self.name!r} must be letters, digits, '_', '.', '-'")
        outs = tuple(outputs) if outputs else (SINGLE,)
        if len(set(outs)) != len(outs) or not all(
            isinstance(o, str) and _OUTPUT.match(o) for o in outs
        ):
            raise InvalidInput(f"step {self.name!r}: outputs must be distinct names")
        self.outputs = outs
        if isinstance(retries, bool) or not isinstance(retries, int) or not 0 <= retries <= 100:
            raise InvalidInput(f"step {self.name!r}: retries must be an integer in [0, 100]")
        for what, value in (("retry_delay", retry_delay), ("backoff", backoff)):
            if not isinstance(value, (int, float)) or not 0 <= value < math.inf:
                raise InvalidInput(f"step {self.name!r}: {what} must be a number >= 0")
        if timeout is not None and (
            not isinstance(timeout, (int, float)) or not 0 < timeout < math.inf
        ):
            raise InvalidInput(f"step {self.name!r}: timeout must be a positive number of seconds")
        if version is not None and not isinstance(version, str):
            raise InvalidInput(f"step {self.name!r}: version must be a string")
        self.cache = bool(cache)
        self.retries = retries
        self.retry_delay = float(retry_delay)
        self.backoff = float(backoff)
        self.timeout = None if timeout is None else float(timeout)
        self.version = version
        self.signature = inspect.signature(fn)
        functools.update_wrapper(self, fn)

    @functools.cached_property
    def function_ref(self) -> str:
        """``module:qualname`` of the function, how other processes import it."""
        return f"{self.fn.__module__}:{self.fn.__qualname__}"

    @functools.cached_property
    def source_hash(self) -> str:
        """SHA-256 of the function's source, its bytecode and its ``version``: what
        invalidates the step's cache when the code changes."""
        digest = hashlib.sha256()
        try:
            digest.update(textwrap.dedent(inspect.getsource(self.fn)).encode())
        except (OSError, TypeError):
            pass  # no source (an interactive session): the bytecode still tells versions apart
        code = getattr(self.fn, "__code__", None)
        if code is not None:
            _fingerprint(code, digest)
        # values the function closes over and its defaults change what it computes too
        for cell in getattr(self.fn, "__closure__", None) or ():
            try:
                _value_fingerprint(cell.cell_contents, digest)
            except ValueError:  # an empty cell
                digest.update(b"<empty>")
        _value_fingerprint(getattr(self.fn, "__defaults__", None), digest)
        _value_fingerprint(getattr(self.fn, "__kwdefaults__", None), digest)
        digest.update(b"\0" + (self.version or "").encode())
        return digest.hexdigest()

    def options(self, **changes: Any) -> Step:
        """A copy with other options (``name``, ``cache``, ``retries``, ``timeout``, ...)."""
        current = {
            "name": self.name,
            "outputs": self.outputs,
            "cache": self.cache,
            "retries": self.retries,
            "retry_delay": self.retry_delay,
            "backoff": self.backoff,
            "timeout": self.timeout,
            "version": self.version,
        }
        unknown = sorted(set(changes) - set(current))
        if unknown:
            raise InvalidInput(f"unknown step option {unknown[0]!r}")
        return Step(self.fn, **{**current, **changes})

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        builder: _Builder | None = getattr(_building, "builder", None)
        if builder is None:
            return self.fn(*args, **kwargs)
        return builder.add(self, args, kwargs)

    def __repr__(self) -> str:
        return f"<step {self.name}>"


@overload
def step(fn: Callable[..., Any], /) -> Step: ...


@overload
def step(
    *,
    name: str | None = None,
    outputs: tuple[str, ...] | list[str] | None = None,
    cache: bool = True,
    retries: int = 0,
    retry_delay: float = 1.0,
    backoff: float = 2.0,
    timeout: float | None = None,
    version: str | None = None,
) -> Callable[[Callable[..., Any]], Step]: ...


def step(fn: Callable[..., Any] | None = None, /, **options: Any) -> Any:
    """Make a function a pipeline step: ``@step`` or ``@step(retries=2, timeout=60, ...)``."""
    if fn is not None:
        return Step(fn, **options)
    return lambda f: Step(f, **options)


class Pipeline:
    """A named DAG of steps, built by calling its function with the run's parameters."""

    def __init__(
        self,
        fn: Callable[..., Any],
        *,
        name: str | None = None,
        description: str | None = None,
        target: str | None = None,
    ) -> None:
        if not callable(fn):
            raise InvalidInput("@pipeline decorates a function")
        self.fn = fn
        self.name = name or fn.__name__.replace("_", "-")
        if not _NAME.match(self.name):
            raise InvalidInput(f"pipeline name {self.name!r} must be letters, digits, _ . -")
        self.description = description if description is not None else (inspect.getdoc(fn) or "")
        self.signature = inspect.signature(fn)
        self.target = target or _target_of(fn)
        functools.update_wrapper(self, fn)
        with _registry_lock:
            _registry[self.name] = self

    def bind(self, params: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """The run's parameters: ``params`` over the function's defaults, checked."""
        params = dict(params or {})
        try:
            bound = self.signature.bind(**params)
        except TypeError as exc:
            raise InvalidInput(f"pipeline {self.name!r}: {exc}") from None
        bound.apply_defaults()
        return {
            k: _json_param(v, f"parameter {k!r} of pipeline {self.name!r}")
            for k, v in bound.arguments.items()
        }

    def build(self, params: Mapping[str, Any] | None = None) -> DAG:
        """Trace the pipeline function with ``params`` into a DAG."""
        bound = self.bind(params)
        with _building_dag() as builder:
            result = self.fn(**bound)
        if not builder.nodes:
            raise InvalidInput(f"pipeline {self.name!r} calls no step")
        for leaf in _leaves(result):
            if not isinstance(leaf, StepOutput):
                raise InvalidInput(
                    f"pipeline {self.name!r} must return step outputs (or None), not "
                    f"a {type(leaf).__name__}"
                )
        return DAG(builder.nodes, result)

    def run(self, **kwargs: Any) -> Any:
        """Run now (see ``loopml.pipelines.run_pipeline`` for the options)."""
        from loopml.pipelines._fluent import run_pipeline

        return run_pipeline(self, **kwargs)

    def resume(self, run_id: str, **kwargs: Any) -> Any:
        """Run again from the failed steps of ``run_id`` (its succeeded steps are reused)."""
        from loopml.pipelines._fluent import run_pipeline

        return run_pipeline(self, resume=run_id, **kwargs)

    def with_name(self, name: str) -> Pipeline:
        """The same pipeline under another name."""
        return Pipeline(self.fn, name=name, description=self.description, target=self.target)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        raise InvalidInput(
            f"pipeline {self.name!r} is run with .run(**params), not called; "
            "to nest it, call its steps"
        )

    def __repr__(self) -> str:
        return f"<pipeline {self.name}>"


def _fingerprint(code: types.CodeType, digest: Any) -> None:
    """Feed a code object's bytecode, names and constants (nested code too) to ``digest``."""
    digest.update(code.co_code)
    digest.update(repr(code.co_names).encode())
    for const in code.co_consts:
        if isinstance(const, types.CodeType):
            _fingerprint(const, digest)
        elif isinstance(const, frozenset):  # its repr's order depends on the hash seed
            digest.update(repr(sorted(repr(c) for c in const)).encode())
        else:
            digest.update(repr(const).encode())


def _value_fingerprint(value: Any, digest: Any) -> None:
    """Feed a closed-over value or default to ``digest``: JSON, code, or pickled bytes; a value
    that cannot be pickled gets a fresh random token (the step is then never a cache hit)."""
    import pickle
    import uuid

    code = getattr(value, "__code__", None)
    if isinstance(code, types.CodeType):
        _fingerprint(code, digest)
        return
    try:
        digest.update(orjson.dumps(value, option=orjson.OPT_SORT_KEYS))
        return
    except TypeError:
        pass
    try:
        digest.update(pickle.dumps(value, protocol=5))
    except Exception:  # noqa: BLE001 - unpicklable: never reuse a result computed with it
        digest.update(uuid.uuid4().bytes)


def _leaves(value: Any) -> Iterator[Any]:
    if value is None:
        return
    if isinstance(value, (list, tuple)):
        for v in value:
            yield from _leaves(v)
    elif isinstance(value, Mapping):
        for v in value.values():
            yield from _leaves(v)
    else:
        yield value


def _target_of(fn: Callable[..., Any]) -> str | None:
    module = getattr(fn, "__module__", None)
    if not module or module == "__main__" or "<locals>" in fn.__qualname__:
        return None
    return f"{module}:{fn.__qualname__}"


def pipeline(
    fn: Callable[..., Any] | None = None,
    /,
    *,
    name: str | None = None,
    description: str | None = None,
) -> Any:
    """Make a function a pipeline: ``@pipeline`` or ``@pipeline(name="churn-training")``."""
    if fn is not None:
        return Pipeline(fn, name=name, description=description)
    return lambda f: Pipeline(f, name=name, description=description)


def registered(name: str) -> Pipeline | None:
    """A pipeline defined in this process under ``name``."""
    with _registry_lock:
        return _registry.get(name)


def module_path(fn: Callable[..., Any]) -> str | None:
    """The directory to put on ``sys.path`` so that another process imports ``fn``'s module."""
    module = sys.modules.get(getattr(fn, "__module__", "") or "")
    path = getattr(module, "__file__", None)
    if not path:
        return None
    parts = (fn.__module__ or "").split(".")
    folder = os.path.dirname(os.path.abspath(path))
    for _ in parts[1:]:
        folder = os.path.dirname(folder)
    if os.path.basename(path) == "__init__.py":
        folder = os.path.dirname(folder)
    return folder
