"""Deployments: what a name serves (variants with weights and roles), how it changes, and its
gradual rollouts.

The records are frozen; every change is a pure function from the current deployment to the next
one (``set_traffic``, ``promote``, ``rollback``, ``start_rollout``, ``advance_rollout``,
``stop_rollout``), which the stores apply under a row lock and record as an event with the new
revision, so the history says what served when and why.
"""

from __future__ import annotations

import abc
import math
import numbers
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from loopml.errors import InvalidInput, InvalidState
from loopml.serving._batcher import BatchingConfig
from loopml.serving._service import ROLES, VariantSpec

__all__ = [
    "Deployment",
    "DeploymentEvent",
    "DeploymentStore",
    "Guardrails",
    "Rollout",
    "get_deployment_store",
    "validate_deployment_name",
]

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,254}$")
_RULE = re.compile(
    r"^\s*(requests|errors|error_rate|p50_ms|p99_ms)\s*(<=|>=|<|>)\s*([0-9.eE+-]+)\s*$"
)
ROLLOUT_VARIANT = "canary"
RUNNING = "running"


def validate_deployment_name(name: Any) -> str:
    """A deployment name: letters, digits, ``_ . -``, up to 255 characters."""
    if not isinstance(name, str) or not _NAME.match(name):
        raise InvalidInput(
            f"deployment name {name!r} is invalid: use letters, digits, '_', '.', '-' "
            "(up to 255 characters, starting with a letter or digit)"
        )
    return name


def validate_variants(variants: Sequence[VariantSpec]) -> tuple[VariantSpec, ...]:
    """Variants as a deployment may hold them: unique names, one primary, some traffic."""
    variants = tuple(variants)
    for v in variants:
        if not isinstance(v, VariantSpec):
            raise InvalidInput(f"variants must be VariantSpec objects, not {type(v).__name__}")
        if not isinstance(v.model_uri, str) or not v.model_uri:
            raise InvalidInput(f"variant {v.name!r}: model_uri must be a model URI")
    names = [v.name for v in variants]
    if len(set(names)) != len(names):
        raise InvalidInput(f"variant names must be unique: {', '.join(names)}")
    primaries = [v for v in variants if v.role == "primary"]
    if len(primaries) != 1:
        raise InvalidInput(f"a deployment needs exactly one primary variant, not {len(primaries)}")
    if not any(v.role != "shadow" and v.weight > 0 for v in variants):
        raise InvalidInput("a deployment needs a primary or canary variant with weight > 0")
    return variants


def variants_from_json(items: Any, what: str = "variants") -> tuple[VariantSpec, ...]:
    """Variants from their JSON form (a list of objects), validated."""
    if not isinstance(items, list) or not items:
        raise InvalidInput(f"{what} must be a non-empty list of variants")
    out = []
    for i, item in enumerate(items):
        if not isinstance(item, dict):
            raise InvalidInput(f"{what}[{i}] must be an object")
        unknown = set(item) - {"name", "model_uri", "weight", "role"}
        if unknown:
            raise InvalidInput(f"{what}[{i}] has unknown fields: {', '.join(sorted(unknown))}")
        name, uri = item.get("name"), item.get("model_uri")
        if not isinstance(name, str):
            raise InvalidInput(f"{what}[{i}].name must be a string")
        if not isinstance(uri, str) or not uri:
            raise InvalidInput(f"{what}[{i}].model_uri must be a model URI")
        weight = item.get("weight", 100.0)
        if isinstance(weight, bool) or not isinstance(weight, int | float):
            raise InvalidInput(f"{what}[{i}].weight must be a number")
        role = item.get("role", "primary")
        if role not in ROLES:
            raise InvalidInput(f"{what}[{i}].role must be one of {', '.join(ROLES)}")
        out.append(VariantSpec(name, uri, float(weight), role))
    return validate_variants(out)


@dataclass(frozen=True)
class Guardrails:
    """What a rollout's canary must hold at every step, else it is rolled back.

    ``rules`` are extra bounds on the canary's statistics since the step began, written
    ``<stat> <op> <number>`` with stat one of requests, errors, error_rate, p50_ms, p99_ms.
    No verdict is taken before the canary has ``min_requests`` requests in the step.
    ``experiment`` names an A/B experiment on the deployment: a step advances only if its
    analysis does not say stop (a guardrail metric degraded, a sample ratio mismatch, every
    treatment worse); if it does, the rollout is rolled back.
    """

    max_error_rate: float = 0.05
    max_p99_ms: float | None = None
    min_requests: int = 20
    rules: tuple[str, ...] = ()
    experiment: str | None = None

    def __post_init__(self) -> None:
        if not 0 <= self.max_error_rate <= 1:
            raise InvalidInput("max_error_rate must be between 0 and 1")
        if self.max_p99_ms is not None and not (0 < self.max_p99_ms < math.inf):
            raise InvalidInput("max_p99_ms must be a positive number")
        if self.min_requests < 0:
            raise InvalidInput("min_requests must be 0 or more")
        for rule in self.rules:
            m = _RULE.match(rule) if isinstance(rule, str) else None
            try:
                bound = float(m.group(3)) if m else math.nan
            except ValueError:
                bound = math.nan
            if not math.isfinite(bound):
                raise InvalidInput(
                    f"guardrail rule {rule!r} is invalid: write '<stat> <op> <number>' with stat "
                    "requests, errors, error_rate, p50_ms or p99_ms and op <, <=, > or >="
                )

    def broken(self, stats: Mapping[str, float]) -> str | None:
        """Why ``stats`` (requests, errors, error_rate, p50_ms, p99_ms) break a guardrail."""
        if stats.get("requests", 0) < max(self.min_requests, 1):
            return None
        if stats["error_rate"] > self.max_error_rate:
            return (
                f"error rate {stats['error_rate']:.3f} is above {self.max_error_rate} "
                f"({int(stats['errors'])} of {int(stats['requests'])} requests)"
            )
        if self.max_p99_ms is not None and stats["p99_ms"] > self.max_p99_ms:
            return f"p99 latency {stats['p99_ms']:.1f} ms is above {self.max_p99_ms} ms"
        for rule in self.rules:
            m = _RULE.match(rule)
            assert m is not None
            stat, op, bound = m.group(1), m.group(2), float(m.group(3))
            value = float(stats.get(stat, 0.0))
            ok = {
                "<": value < bound,
                "<=": value <= bound,
                ">": value > bound,
                ">=": value >= bound,
            }[op]
            if not ok:
                return f"rule {rule.strip()!r} broken: {stat} is {value:.4g}"
        return None

    def to_dict(self) -> dict[str, Any]:
        """JSON form."""
        return {
            "max_error_rate": self.max_error_rate,
            "max_p99_ms": self.max_p99_ms,
            "min_requests": self.min_requests,
            "rules": list(self.rules),
            "experiment": self.experiment,
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Guardrails:
        """From the JSON form."""
        unknown = set(d) - {"max_error_rate", "max_p99_ms", "min_requests", "rules", "experiment"}
        if unknown:
            raise InvalidInput(f"guardrails have unknown fields: {', '.join(sorted(unknown))}")
        try:
            return cls(
                max_error_rate=float(d.get("max_error_rate", 0.05)),
                max_p99_ms=None if d.get("max_p99_ms") is None else float(d["max_p99_ms"]),
                min_requests=int(d.get("min_requests", 20)),
                rules=tuple(str(r) for r in d.get("rules", ())),
                experiment=None if d.get("experiment") is None else str(d["experiment"]),
            )
        except (TypeError, ValueError) as exc:
            raise InvalidInput(f"guardrails are invalid: {exc}") from exc


@dataclass(frozen=True)
class Rollout:
    """A gradual rollout of ``target_uri`` through traffic ``steps`` (percent)."""

    target_uri: str
    steps: tuple[float, ...]
    interval_seconds: float
    guardrails: Guardrails
    previous_variants: tuple[VariantSpec, ...]
    started_at: int
    step_started_at: int
    step: int = 0
    status: str = RUNNING
    finished_at: int | None = None
    reason: str = ""

    @property
    def percent(self) -> float:
        """The canary's share of traffic at this step."""
        return self.steps[self.step]

    def to_dict(self) -> dict[str, Any]:
        """JSON form."""
        return {
            "target_uri": self.target_uri,
            "steps": list(self.steps),
            "interval_seconds": self.interval_seconds,
            "guardrails": self.guardrails.to_dict(),
            "previous_variants": [v.to_dict() for v in self.previous_variants],
            "started_at": self.started_at,
            "step_started_at": self.step_started_at,
            "step": self.step,
            "status": self.status,
            "finished_at": self.finished_at,
            "reason": self.reason,
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Rollout:
        """From the JSON form."""
        return cls(
            target_uri=d["target_uri"],
            steps=tuple(float(s) for s in d["steps"]),
            interval_seconds=float(d["interval_seconds"]),
            guardrails=Guardrails.from_dict(d["guardrails"]),
            previous_variants=tuple(
                VariantSpec(v["name"], v["model_uri"], v["weight"], v["role"])
                for v in d["previous_variants"]
            ),
            started_at=int(d["started_at"]),
            step_started_at=int(d["step_started_at"]),
            step=int(d["step"]),
            status=d["status"],
            finished_at=d.get("finished_at"),
            reason=d.get("reason", ""),
        )


@dataclass(frozen=True)
class Deployment:
    """What a name serves: variants, the unit of assignment, batching, and a rollout."""

    name: str
    variants: tuple[VariantSpec, ...]
    unit_key: str | None = None
    batching: BatchingConfig = field(default_factory=BatchingConfig)
    description: str = ""
    revision: int = 1
    rollout: Rollout | None = None
    created_at: int = 0
    updated_at: int = 0

    @property
    def primary(self) -> VariantSpec:
        """The primary variant."""
        return next(v for v in self.variants if v.role == "primary")

    def to_dict(self) -> dict[str, Any]:
        """JSON form."""
        return {
            "name": self.name,
            "variants": [v.to_dict() for v in self.variants],
            "unit_key": self.unit_key,
            "batching": batching_to_dict(self.batching),
            "description": self.description,
            "revision": self.revision,
            "rollout": None if self.rollout is None else self.rollout.to_dict(),
            "created_at": self.created_at,
            "updated_at": self.updated_at,
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Deployment:
        """From the JSON form."""
        return cls(
            name=d["name"],
            variants=variants_from_json(d["variants"]),
            unit_key=d.get("unit_key"),
            batching=batching_from_dict(d.get("batching") or {}),
            description=d.get("description") or "",
            revision=int(d["revision"]),
            rollout=None if d.get("rollout") is None else Rollout.from_dict(d["rollout"]),
            created_at=int(d.get("created_at", 0)),
            updated_at=int(d.get("updated_at", 0)),
        )


@dataclass(frozen=True)
class DeploymentEvent:
    """One change of a deployment: ``kind`` (created, updated, traffic, promoted, rolled_back,
    rollout_started, rollout_step, rollout_succeeded, rollout_rolled_back), the revision it made,
    when, who, and details (the variants after it, the rollout decision and its statistics)."""

    revision: int
    kind: str
    time: int
    user_id: str
    detail: dict[str, Any]

    def to_dict(self) -> dict[str, Any]:
        """JSON form."""
        return {
            "revision": self.revision,
            "kind": self.kind,
            "time": self.time,
            "user_id": self.user_id,
            "detail": self.detail,
        }


def batching_to_dict(config: BatchingConfig) -> dict[str, Any]:
    """JSON form of a batching config."""
    return {
        "max_batch_size": config.max_batch_size,
        "max_latency_ms": config.max_latency_ms,
        "max_queue": config.max_queue,
    }


def batching_from_dict(d: Mapping[str, Any]) -> BatchingConfig:
    """A batching config from its JSON form."""
    if not isinstance(d, Mapping):
        raise InvalidInput("batching must be an object")
    unknown = set(d) - {"max_batch_size", "max_latency_ms", "max_queue"}
    if unknown:
        raise InvalidInput(f"batching has unknown fields: {', '.join(sorted(unknown))}")
    try:
        return BatchingConfig(
            max_batch_size=int(d.get("max_batch_size", 64)),
            max_latency_ms=float(d.get("max_latency_ms", 0.0)),
            max_queue=int(d.get("max_queue", 1024)),
        )
    except (TypeError, ValueError) as exc:
        raise InvalidInput(f"batching is invalid: {exc}") from exc


# -- changes: pure functions from one deployment to the next ---------------------------------
@dataclass(frozen=True)
class Change:
    """A change to apply: the next variants and rollout, and the event that records it."""

    variants: tuple[VariantSpec, ...]
    rollout: Rollout | None
    kind: str
    detail: dict[str, Any]


def _no_rollout(dep: Deployment, what: str) -> None:
    if dep.rollout is not None and dep.rollout.status == RUNNING:
        raise InvalidState(
            f"deployment {dep.name!r} has a rollout in progress; {what} would fight it: "
            "roll it back or let it finish first"
        )


def set_traffic(dep: Deployment, weights: Mapping[str, float]) -> Change:
    """New weights for some variants (others keep theirs)."""
    _no_rollout(dep, "changing traffic by hand")
    if not weights:
        raise InvalidInput("give at least one variant=weight")
    names = {v.name for v in dep.variants}
    unknown = sorted(set(weights) - names)
    if unknown:
        raise InvalidInput(
            f"deployment {dep.name!r} has no variant {', '.join(unknown)} "
            f"(it has {', '.join(sorted(names))})"
        )
    variants = validate_variants(
        [
            replace(v, weight=float(weights[v.name])) if v.name in weights else v
            for v in dep.variants
        ]
    )
    return Change(variants, dep.rollout, "traffic", {"weights": dict(weights)})


def promote(dep: Deployment, variant: str, now: int | None = None) -> Change:
    """Make ``variant``'s model the primary one, with all the traffic; it leaves the list."""
    found = next((v for v in dep.variants if v.name == variant), None)
    if found is None:
        raise InvalidInput(f"deployment {dep.name!r} has no variant {variant!r}")
    if found.role == "primary":
        raise InvalidState(f"variant {variant!r} is already the primary")
    rollout = dep.rollout
    if rollout is not None and rollout.status == RUNNING:
        reason = f"promoted {variant} by hand"
        rollout = replace(rollout, status="succeeded", finished_at=now, reason=reason)
    primary = replace(dep.primary, model_uri=found.model_uri, weight=100.0)
    rest = [v for v in dep.variants if v.role == "shadow" and v.name != variant]
    detail = {"variant": variant, "model_uri": found.model_uri}
    return Change(validate_variants([primary, *rest]), rollout, "promoted", detail)


def rollback(dep: Deployment, previous: tuple[VariantSpec, ...] | None, now: int) -> Change:
    """Undo: stop a running rollout (back to the variants before it), or restore ``previous``
    (the variants of the revision before the last change)."""
    rollout = dep.rollout
    if rollout is not None and rollout.status == RUNNING:
        stopped = replace(
            rollout, status="rolled_back", finished_at=now, reason="rolled back by hand"
        )
        detail = {"reason": stopped.reason, "target_uri": rollout.target_uri}
        return Change(rollout.previous_variants, stopped, "rolled_back", detail)
    if previous is None:
        raise InvalidState(f"deployment {dep.name!r} has no earlier revision to roll back to")
    return Change(validate_variants(previous), rollout, "rolled_back", {"reason": "by hand"})


def start_rollout(
    dep: Deployment,
    target_uri: str,
    *,
    steps: Sequence[float],
    interval_seconds: float,
    guardrails: Guardrails,
    now: int,
) -> Change:
    """Begin moving traffic to ``target_uri``: a canary at the first step's share."""
    _no_rollout(dep, "a second rollout")
    if isinstance(steps, str | bytes) or not all(_is_number(s) for s in steps):
        raise InvalidInput("rollout steps must be a list of numbers, e.g. 5,25,50,100")
    if not _is_number(interval_seconds):
        raise InvalidInput("rollout interval_seconds must be a number")
    steps = tuple(float(s) for s in steps)
    if not steps or any(not 0 < s <= 100 for s in steps):
        raise InvalidInput("rollout steps must be percentages in (0, 100], e.g. 5,25,50,100")
    if list(steps) != sorted(set(steps)):
        raise InvalidInput("rollout steps must increase")
    if steps[-1] != 100:
        raise InvalidInput("the last rollout step must be 100")
    if not 0 <= interval_seconds <= 7 * 86400:
        raise InvalidInput("rollout interval must be between 0 s and 7 days")
    if any(v.name == ROLLOUT_VARIANT for v in dep.variants):
        raise InvalidState(
            f"deployment {dep.name!r} already has a variant named {ROLLOUT_VARIANT!r}; "
            "promote or remove it first"
        )
    previous = dep.variants
    rollout = Rollout(
        target_uri=target_uri,
        steps=steps,
        interval_seconds=float(interval_seconds),
        guardrails=guardrails,
        previous_variants=previous,
        started_at=now,
        step_started_at=now,
    )
    variants = _at_step(previous, target_uri, steps[0])
    detail = {"target_uri": target_uri, "steps": list(steps), "percent": steps[0]}
    if steps[0] >= 100:  # one step of 100: done at once (there is no next step to advance to)
        done = replace(rollout, status="succeeded", finished_at=now)
        return Change(variants, done, "rollout_succeeded", detail)
    return Change(variants, rollout, "rollout_started", detail)


def _is_number(value: Any) -> bool:
    return not isinstance(value, bool) and isinstance(value, numbers.Real)


def _at_step(
    previous: tuple[VariantSpec, ...], target_uri: str, percent: float
) -> tuple[VariantSpec, ...]:
    primary = next(v for v in previous if v.role == "primary")
    shadows = [v for v in previous if v.role == "shadow"]
    if percent >= 100:
        return validate_variants([replace(primary, model_uri=target_uri, weight=100.0), *shadows])
    canary = VariantSpec(ROLLOUT_VARIANT, target_uri, percent, "canary")
    return validate_variants([replace(primary, weight=100.0 - percent), canary, *shadows])


def advance_rollout(dep: Deployment, stats: Mapping[str, Any], now: int) -> Change:
    """The next step of the running rollout; at 100% the target becomes the primary."""
    rollout = _running(dep)
    step = rollout.step + 1
    percent = rollout.steps[step]
    variants = _at_step(rollout.previous_variants, rollout.target_uri, percent)
    detail = {"step": step, "percent": percent, "stats": dict(stats)}
    if percent >= 100:
        done = replace(
            rollout, step=step, step_started_at=now, status="succeeded", finished_at=now
        )
        return Change(variants, done, "rollout_succeeded", detail)
    return Change(
        variants, replace(rollout, step=step, step_started_at=now), "rollout_step", detail
    )


def stop_rollout(dep: Deployment, reason: str, stats: Mapping[str, Any], now: int) -> Change:
    """Roll the running rollout back automatically (a guardrail broke)."""
    rollout = _running(dep)
    stopped = replace(rollout, status="rolled_back", finished_at=now, reason=reason)
    detail = {"reason": reason, "step": rollout.step, "stats": dict(stats)}
    return Change(rollout.previous_variants, stopped, "rollout_rolled_back", detail)


def _running(dep: Deployment) -> Rollout:
    if dep.rollout is None or dep.rollout.status != RUNNING:
        raise InvalidState(f"deployment {dep.name!r} has no rollout in progress")
    return dep.rollout


# -- the store interface --------------------------------------------------------------------
class DeploymentStore(abc.ABC):
    """Deployments and their history in one workspace (SQL or REST).

    Every change bumps the revision and records an event in the same transaction; passing
    ``expected_revision`` makes a change conditional (``InvalidState`` if another won the race).
    """

    workspace: str

    @abc.abstractmethod
    def for_workspace(self, workspace: str) -> DeploymentStore:
        """The same backend, scoped to another workspace."""

    @abc.abstractmethod
    def create_deployment(
        self,
        name: str,
        variants: Sequence[VariantSpec],
        *,
        unit_key: str | None = None,
        batching: BatchingConfig | None = None,
        description: str = "",
        user_id: str | None = None,
    ) -> Deployment:
        """Create a deployment (``AlreadyExists`` if the name is taken)."""

    @abc.abstractmethod
    def get_deployment(self, name: str) -> Deployment:
        """One deployment (``NotFound`` if there is none)."""

    @abc.abstractmethod
    def list_deployments(self) -> list[Deployment]:
        """Every deployment, by name."""

    @abc.abstractmethod
    def delete_deployment(self, name: str) -> None:
        """Delete a deployment and its history."""

    @abc.abstractmethod
    def update_deployment(
        self,
        name: str,
        *,
        variants: Sequence[VariantSpec] | None = None,
        unit_key: str | None = None,
        batching: BatchingConfig | None = None,
        description: str | None = None,
        user_id: str | None = None,
    ) -> Deployment:
        """Replace the variants, unit key, batching or description."""

    @abc.abstractmethod
    def set_traffic(
        self, name: str, weights: Mapping[str, float], *, user_id: str | None = None
    ) -> Deployment:
        """New weights for some variants."""

    @abc.abstractmethod
    def promote(self, name: str, variant: str, *, user_id: str | None = None) -> Deployment:
        """Make a variant's model the primary one."""

    @abc.abstractmethod
    def rollback(self, name: str, *, user_id: str | None = None) -> Deployment:
        """Stop a running rollout, or go back to the previous revision's variants."""

    @abc.abstractmethod
    def start_rollout(
        self,
        name: str,
        target_uri: str,
        *,
        steps: Sequence[float] = (5, 25, 50, 100),
        interval_seconds: float = 600.0,
        guardrails: Guardrails | None = None,
        user_id: str | None = None,
    ) -> Deployment:
        """Begin a gradual rollout of ``target_uri``."""

    @abc.abstractmethod
    def decide_rollout(
        self,
        name: str,
        decision: str,
        *,
        expected_revision: int,
        reason: str = "",
        stats: Mapping[str, Any] | None = None,
    ) -> Deployment:
        """Advance (``decision="advance"``) or roll back (``"rollback"``) the running rollout,
        if the deployment is still at ``expected_revision``."""

    @abc.abstractmethod
    def list_events(self, name: str) -> list[DeploymentEvent]:
        """The deployment's history, oldest first."""

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release connections."""


def get_deployment_store(
    uri: str | None = None, *, workspace: str | None = None
) -> DeploymentStore:
    """The deployment store for a tracking URI: ``http(s)://`` → REST, else SQL."""
    from loopml.config import get_settings
    from loopml.tracking import resolve_tracking_uri

    settings = get_settings()
    resolved = resolve_tracking_uri(uri)
    workspace = workspace or settings.workspace
    if resolved.startswith(("http://", "https://")):
        from loopml.serving._deploy_rest import RestDeploymentStore
        from loopml.tracking import RestTrackingStore, get_store

        # the cached tracking store's connection pool: a store per call leaks no sockets
        http = get_store(resolved, workspace=workspace)
        return RestDeploymentStore(
            resolved,
            workspace=workspace,
            token=settings.tracking_token,
            timeout=settings.http_timeout_seconds,
            _http=http if isinstance(http, RestTrackingStore) else None,
        )
    from loopml.serving._deploy_sql import SqlDeploymentStore

    return SqlDeploymentStore(resolved, workspace=workspace)
