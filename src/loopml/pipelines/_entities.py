"""What the store returns: pipelines, their runs and step runs, and schedules."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from loopml.errors import InvalidInput, NotFound, PipelineFailed

__all__ = ["PipelineInfo", "PipelineRun", "RunStatus", "Schedule", "StepRun", "StepStatus"]


class RunStatus:
    """States of a pipeline run."""

    QUEUED = "QUEUED"
    RUNNING = "RUNNING"
    SUCCEEDED = "SUCCEEDED"
    FAILED = "FAILED"
    ALL = (QUEUED, RUNNING, SUCCEEDED, FAILED)


class StepStatus:
    """States of a step run; CACHED means its outputs came from an earlier run."""

    PENDING = "PENDING"
    RUNNING = "RUNNING"
    RETRYING = "RETRYING"
    SUCCEEDED = "SUCCEEDED"
    CACHED = "CACHED"
    FAILED = "FAILED"
    SKIPPED = "SKIPPED"
    DONE = (SUCCEEDED, CACHED)
    FINAL = (SUCCEEDED, CACHED, FAILED, SKIPPED)


@dataclass
class PipelineInfo:
    """A pipeline known to the store."""

    name: str
    target: str | None
    description: str
    dag: dict[str, Any]
    created_at: int
    updated_at: int
    last_run: dict[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON-able form."""
        return asdict(self)


@dataclass
class StepRun:
    """One step of a pipeline run."""

    step: str
    status: str
    attempts: int = 0
    cache_key: str | None = None
    cached_from: str | None = None
    inputs: dict[str, Any] = field(default_factory=dict)
    outputs: dict[str, Any] = field(default_factory=dict)
    logs: str = ""
    error: str | None = None
    tracking_runs: list[str] = field(default_factory=list)
    started_at: int | None = None
    ended_at: int | None = None

    @property
    def cache_hit(self) -> bool:
        """Whether the outputs were reused instead of computed."""
        return self.status == StepStatus.CACHED

    @property
    def seconds(self) -> float | None:
        """How long the step took (its last attempt included retries' waits)."""
        if self.started_at is None or self.ended_at is None:
            return None
        return (self.ended_at - self.started_at) / 1000

    def to_dict(self, *, logs: bool = True) -> dict[str, Any]:
        """JSON-able form (without the logs if ``logs`` is false)."""
        data = asdict(self)
        data["cache_hit"] = self.cache_hit
        if not logs:
            data.pop("logs")
        return data


@dataclass
class PipelineRun:
    """A run of a pipeline with its steps; ``output`` and ``result`` read the outputs back."""

    run_id: str
    pipeline: str
    status: str
    params: dict[str, Any]
    dag: dict[str, Any]
    trigger: str
    executor: str
    created_at: int
    started_at: int | None = None
    ended_at: int | None = None
    error: str | None = None
    resumed_from: str | None = None
    steps: dict[str, StepRun] = field(default_factory=dict)
    artifact_uri: str | None = None

    @property
    def cache_hits(self) -> list[str]:
        """Steps whose outputs were reused."""
        return [s.step for s in self.steps.values() if s.cache_hit]

    def output(self, step: str, name: str | None = None) -> Any:
        """The value a step returned (``name`` picks one of several outputs)."""
        from loopml.pipelines._values import load_value
        from loopml.store import resolve_artifact_store

        run = self.steps.get(step)
        if run is None:
            raise NotFound(f"pipeline run {self.run_id} has no step {step!r}")
        if run.status not in StepStatus.DONE:
            raise InvalidInput(f"step {step!r} has no outputs: it is {run.status}")
        if name is None:
            if len(run.outputs) != 1:
                raise InvalidInput(f"step {step!r} has outputs {sorted(run.outputs)}: name one")
            name = next(iter(run.outputs))
        if name not in run.outputs:
            raise NotFound(f"step {step!r} has no output {name!r}")
        return load_value(run.outputs[name], resolve_artifact_store(self.artifact_uri))

    @property
    def result(self) -> Any:
        """What the pipeline function returned, with its step outputs read back."""
        return self._resolve(self.dag.get("result"))

    def _resolve(self, shape: Any) -> Any:
        if isinstance(shape, dict) and set(shape) == {"$output"}:
            step, _, name = str(shape["$output"]).rpartition(".")
            return self.output(step, name)
        if isinstance(shape, list):
            return [self._resolve(v) for v in shape]
        if isinstance(shape, dict):
            return {k: self._resolve(v) for k, v in shape.items()}
        return shape

    def raise_for_status(self) -> PipelineRun:
        """Raise ``PipelineFailed`` when the run failed."""
        if self.status == RunStatus.FAILED:
            raise PipelineFailed(
                f"pipeline {self.pipeline!r} run {self.run_id} failed: {self.error}", run=self
            )
        return self

    def to_dict(self, *, logs: bool = False) -> dict[str, Any]:
        """JSON-able form (step logs only if ``logs``)."""
        data = {k: v for k, v in asdict(self).items() if k not in ("steps", "artifact_uri")}
        data["steps"] = [s.to_dict(logs=logs) for s in self.steps.values()]
        return data


@dataclass
class Schedule:
    """A cron schedule of a pipeline."""

    schedule_id: int
    pipeline: str
    cron: str
    params: dict[str, Any]
    enabled: bool
    next_run_at: int
    last_run_at: int | None = None
    last_run_id: str | None = None
    created_at: int = 0

    def to_dict(self) -> dict[str, Any]:
        """JSON-able form."""
        return asdict(self)
