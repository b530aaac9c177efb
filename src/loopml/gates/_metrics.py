"""The metrics gate: conditions such as ``accuracy >= 0.85`` on the metrics of the run that
produced a model version (the latest value of each metric)."""

from __future__ import annotations

import math
import operator
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from loopml.errors import InvalidInput
from loopml.gates._refs import run_id_of
from loopml.gates._report import GateResult, fmt

__all__ = ["Condition", "check_metrics", "parse_condition"]

_OPS: dict[str, Callable[[float, float], bool]] = {
    ">=": operator.ge,
    ">": operator.gt,
    "<=": operator.le,
    "<": operator.lt,
    "==": lambda a, b: math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-12),
}
_NEGATED = {">=": "<", ">": "<=", "<=": ">", "<": ">=", "==": "!="}
_CONDITION = re.compile(
    r"^\s*(?P<metric>\S(?:.*?\S)?)\s*(?P<op>>=|<=|==|>|<)\s*(?P<value>\S+)\s*$"
)


@dataclass(frozen=True)
class Condition:
    """One metric condition: ``metric op value``."""

    metric: str
    op: str
    value: float

    def __str__(self) -> str:
        return f"{self.metric} {self.op} {fmt(self.value)}"

    def holds(self, measured: float) -> bool:
        """Whether ``measured`` meets the condition (NaN never does)."""
        return not math.isnan(measured) and _OPS[self.op](measured, self.value)

    def gap(self, measured: float) -> float:
        """How far ``measured`` is from the threshold: the shortfall when it misses, the
        margin when it passes (always >= 0)."""
        return abs(measured - self.value)


def parse_condition(text: str) -> Condition:
    """``"accuracy >= 0.85"`` as a ``Condition`` (operators >=, >, <=, <, ==).

    Raises:
        InvalidInput: naming the condition that is malformed.
    """
    if not isinstance(text, str):
        raise InvalidInput(f"condition {text!r} must be a string such as 'accuracy >= 0.85'")
    m = _CONDITION.match(text)
    value = None
    if m is not None:
        try:
            value = float(m["value"])
        except ValueError:
            value = None
    if m is None or value is None or math.isnan(value) or re.search(r"[<>=!]", m["metric"]):
        raise InvalidInput(
            f"condition {text!r} is malformed: write METRIC OP NUMBER with OP one of "
            ">=, >, <=, <, == (e.g. 'accuracy >= 0.85')"
        )
    return Condition(m["metric"], m["op"], value)


def _judge(condition: Condition, metrics: dict[str, float], run_id: str) -> GateResult:
    name = condition.metric
    evidence = {"condition": str(condition), "metric": name, "run_id": run_id}
    measured = metrics.get(name)
    if measured is None:
        logged = ", ".join(sorted(metrics)[:20]) or "none"
        detail = f"{name} was not logged by run {run_id} (logged: {logged})"
        return GateResult("metrics", False, detail, None, condition.value, evidence)
    if condition.holds(measured):
        how = f" (margin {fmt(condition.gap(measured))})" if condition.op != "==" else ""
        detail = f"{name} {fmt(measured)} {condition.op} {fmt(condition.value)}{how}"
        return GateResult("metrics", True, detail, measured, condition.value, evidence)
    gap = condition.gap(measured)
    if math.isnan(measured):
        how = "it is NaN"
    elif condition.op in (">=", ">"):
        how = f"short by {fmt(gap)}"
    elif condition.op in ("<=", "<"):
        how = f"over by {fmt(gap)}"
    else:
        how = f"off by {fmt(gap)}"
    detail = f"{name} {fmt(measured)} {_NEGATED[condition.op]} {fmt(condition.value)} ({how})"
    return GateResult("metrics", False, detail, measured, condition.value, evidence)


def check_metrics(model: str, conditions: str | Sequence[str]) -> list[GateResult]:
    """Check conditions on the metrics of the run that produced a model version.

    Args:
        model: ``models:/<name>@<alias>`` or ``models:/<name>/<version>`` (the registry knows
            the version's run), ``runs:/<run_id>/<path>``, or a run id.
        conditions: ``"accuracy >= 0.85"``, ``"rmse <= 3"``, ... (one string or several).

    Returns:
        One ``GateResult`` named ``metrics`` per condition, in order; a metric the run did not
        log fails.

    Raises:
        InvalidInput: a malformed condition (named), or no condition. NotFound: an unknown
        model, version, alias or run.
    """
    from loopml.tracking import get_store

    texts = [conditions] if isinstance(conditions, str) else list(conditions)
    if not texts:
        raise InvalidInput("give at least one condition, such as 'accuracy >= 0.85'")
    parsed = [parse_condition(t) for t in texts]  # every condition checked before any lookup
    run_id = run_id_of(model)
    metrics = dict(get_store().get_run(run_id).data.metrics)
    return [_judge(c, metrics, run_id) for c in parsed]
