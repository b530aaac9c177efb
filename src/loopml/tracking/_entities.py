"""Tracking records: frozen dataclasses shaped like MLflow's entities, with JSON forms."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from loopml.store import FileInfo

__all__ = [
    "Experiment",
    "FileInfo",
    "LifecycleStage",
    "Metric",
    "PagedList",
    "Param",
    "Run",
    "RunBatch",
    "RunData",
    "RunInfo",
    "RunStatus",
    "RunTag",
    "ViewType",
]

T = TypeVar("T")


class RunStatus:
    """The states of a run, as MLflow names them."""

    RUNNING = "RUNNING"
    SCHEDULED = "SCHEDULED"
    FINISHED = "FINISHED"
    FAILED = "FAILED"
    KILLED = "KILLED"
    ALL = (RUNNING, SCHEDULED, FINISHED, FAILED, KILLED)
    TERMINAL = (FINISHED, FAILED, KILLED)


class LifecycleStage:
    """Whether an experiment or run is live or in the trash."""

    ACTIVE = "active"
    DELETED = "deleted"


class ViewType:
    """Which lifecycle stages a search returns (MLflow's names; its integers are accepted too)."""

    ACTIVE_ONLY = "ACTIVE_ONLY"
    DELETED_ONLY = "DELETED_ONLY"
    ALL = "ALL"

    @staticmethod
    def stages(view_type: str | int) -> list[str]:
        """The lifecycle stages a view type selects."""
        from loopml.errors import InvalidInput

        key: object = view_type
        if isinstance(view_type, int):
            key = {1: "ACTIVE_ONLY", 2: "DELETED_ONLY", 3: "ALL"}.get(view_type, view_type)
        elif isinstance(view_type, str):
            key = view_type.upper()
        if key == ViewType.ACTIVE_ONLY:
            return [LifecycleStage.ACTIVE]
        if key == ViewType.DELETED_ONLY:
            return [LifecycleStage.DELETED]
        if key == ViewType.ALL:
            return [LifecycleStage.ACTIVE, LifecycleStage.DELETED]
        raise InvalidInput(f"view_type {view_type!r} is not one of ACTIVE_ONLY, DELETED_ONLY, ALL")


def encode_float(value: float) -> float | str:
    """JSON has no NaN or infinity: send them as MLflow does, as strings."""
    if math.isfinite(value):
        return value
    if math.isnan(value):
        return "NaN"
    return "Infinity" if value > 0 else "-Infinity"


def decode_float(value: Any) -> float:
    """Inverse of ``encode_float``."""
    if isinstance(value, str):
        return float(value.replace("Infinity", "inf"))
    return float(value)


@dataclass(frozen=True, slots=True)
class Metric:
    """One point of a metric."""

    key: str
    value: float
    timestamp: int
    step: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "value": encode_float(self.value),
            "timestamp": self.timestamp,
            "step": self.step,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Metric:
        return cls(d["key"], decode_float(d["value"]), int(d["timestamp"]), int(d.get("step", 0)))


@dataclass(frozen=True, slots=True)
class Param:
    """A run parameter: a key with a string value, fixed once logged."""

    key: str
    value: str

    def to_dict(self) -> dict[str, Any]:
        return {"key": self.key, "value": self.value}


@dataclass(frozen=True, slots=True)
class RunTag:
    """A run tag: a key with a string value that may be overwritten."""

    key: str
    value: str

    def to_dict(self) -> dict[str, Any]:
        return {"key": self.key, "value": self.value}


@dataclass(frozen=True)
class Experiment:
    """A named group of runs."""

    experiment_id: str
    name: str
    artifact_location: str
    lifecycle_stage: str
    creation_time: int
    last_update_time: int
    tags: dict[str, str] = field(default_factory=dict)
    workspace: str = "default"

    def to_dict(self) -> dict[str, Any]:
        return {
            "experiment_id": self.experiment_id,
            "name": self.name,
            "artifact_location": self.artifact_location,
            "lifecycle_stage": self.lifecycle_stage,
            "creation_time": self.creation_time,
            "last_update_time": self.last_update_time,
            "tags": dict(self.tags),
            "workspace": self.workspace,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Experiment:
        return cls(**{**d, "tags": dict(d.get("tags") or {})})


@dataclass(frozen=True)
class RunInfo:
    """What a run is: its ids, name, status and times (milliseconds since the epoch)."""

    run_id: str
    experiment_id: str
    run_name: str
    user_id: str
    status: str
    start_time: int
    end_time: int | None
    lifecycle_stage: str
    artifact_uri: str
    parent_run_id: str | None = None

    @property
    def run_uuid(self) -> str:
        """MLflow's older name for ``run_id``."""
        return self.run_id

    def to_dict(self) -> dict[str, Any]:
        return {
            "run_id": self.run_id,
            "experiment_id": self.experiment_id,
            "run_name": self.run_name,
            "user_id": self.user_id,
            "status": self.status,
            "start_time": self.start_time,
            "end_time": self.end_time,
            "lifecycle_stage": self.lifecycle_stage,
            "artifact_uri": self.artifact_uri,
            "parent_run_id": self.parent_run_id,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> RunInfo:
        return cls(**d)


@dataclass(frozen=True)
class RunData:
    """What a run recorded: latest metric values, params and tags, each a key → value dict."""

    metrics: dict[str, float] = field(default_factory=dict)
    params: dict[str, str] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "metrics": {k: encode_float(v) for k, v in self.metrics.items()},
            "params": dict(self.params),
            "tags": dict(self.tags),
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> RunData:
        return cls(
            metrics={k: decode_float(v) for k, v in (d.get("metrics") or {}).items()},
            params=dict(d.get("params") or {}),
            tags=dict(d.get("tags") or {}),
        )


@dataclass(frozen=True)
class Run:
    """A run: ``info`` and ``data``, as MLflow's ``Run``."""

    info: RunInfo
    data: RunData

    def to_dict(self) -> dict[str, Any]:
        return {"info": self.info.to_dict(), "data": self.data.to_dict()}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Run:
        return cls(RunInfo.from_dict(d["info"]), RunData.from_dict(d.get("data") or {}))


@dataclass
class RunBatch:
    """Writes for one run, applied in one transaction: points, params, tags, then the end."""

    run_id: str
    metrics: list[Metric] = field(default_factory=list)
    params: list[Param] = field(default_factory=list)
    tags: list[RunTag] = field(default_factory=list)
    status: str | None = None
    end_time: int | None = None

    def to_dict(self) -> dict[str, Any]:
        """The wire form; metric points travel column-wise (keys, values, timestamps, steps)."""
        ms = self.metrics
        values = [m.value for m in ms]
        if not all(map(math.isfinite, values)):
            values = [encode_float(v) for v in values]  # type: ignore[misc]
        return {
            "run_id": self.run_id,
            "metrics": {
                "keys": [m.key for m in ms],
                "values": values,
                "timestamps": [m.timestamp for m in ms],
                "steps": [m.step for m in ms],
            },
            "params": [p.to_dict() for p in self.params],
            "tags": [t.to_dict() for t in self.tags],
            "status": self.status,
            "end_time": self.end_time,
        }

    def is_empty(self) -> bool:
        """Whether the batch writes nothing."""
        return not (
            self.metrics or self.params or self.tags or self.status or self.end_time is not None
        )


class PagedList(list[T], Generic[T]):
    """A page of results with the token of the next page (None on the last one)."""

    def __init__(self, items: list[T], token: str | None) -> None:
        super().__init__(items)
        self.token = token
