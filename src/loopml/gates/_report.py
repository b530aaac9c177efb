"""What a gate found: one ``GateResult`` per gate, gathered in a ``GateReport``."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from loopml.errors import GateFailed

__all__ = ["GateReport", "GateResult", "fmt"]


def fmt(value: float | None) -> str:
    """A measured number as people read it: four significant digits, no float noise."""
    if value is None:
        return "-"
    if isinstance(value, bool) or not isinstance(value, float):
        return str(value)
    return format(value, ".4g") if math.isfinite(value) else str(value)


def _plain(value: Any) -> Any:
    """JSON-able: NaN and infinities as None, NumPy scalars as Python ones."""
    if hasattr(value, "item") and not isinstance(value, str | bytes):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


@dataclass(frozen=True)
class GateResult:
    """One gate's verdict: what it measured, the threshold, and a one-line ``detail`` saying by
    how much it missed (``evidence`` holds the rest: drifted columns, failed rules, latencies)."""

    gate: str
    passed: bool
    detail: str
    measured: float | None = None
    threshold: float | None = None
    evidence: dict[str, Any] = field(default_factory=dict, repr=False)

    def to_dict(self) -> dict[str, Any]:
        """This result as JSON-able values."""
        return {
            "gate": self.gate,
            "passed": self.passed,
            "detail": self.detail,
            "measured": _plain(self.measured),
            "threshold": _plain(self.threshold),
            "evidence": _plain(self.evidence),
        }

    def line(self) -> str:
        """``PASS data: ...`` or ``FAIL drift: ...``, for a log."""
        return f"{'PASS' if self.passed else 'FAIL'} {self.gate}: {self.detail}"


@dataclass
class GateReport:
    """The results of the gates that ran, in order, and the names of any skipped after a
    failure (``Gates.run(fail_fast=True)``)."""

    results: list[GateResult] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        """True when every gate that ran passed and none was skipped."""
        return not self.failed and not self.skipped

    @property
    def failed(self) -> list[GateResult]:
        """The results that failed, in order."""
        return [r for r in self.results if not r.passed]

    def to_dict(self) -> dict[str, Any]:
        """This report as JSON-able values."""
        return {
            "passed": self.passed,
            "results": [r.to_dict() for r in self.results],
            "failed": [r.gate for r in self.failed],
            "skipped": list(self.skipped),
        }

    def summary(self) -> str:
        """One line per gate, PASS or FAIL, then the skipped ones."""
        lines = [r.line() for r in self.results]
        lines += [f"SKIP {name}: not run after an earlier gate failed" for name in self.skipped]
        return "\n".join(lines) if lines else "no gate ran"

    def raise_for_failure(self) -> None:
        """Raise ``GateFailed`` (carrying this report) naming each failed gate and by how much."""
        if self.passed:
            return
        failed = "; ".join(f"{r.gate}: {r.detail}" for r in self.failed)
        skipped = ""
        if self.skipped:
            skipped = f" ({len(self.skipped)} skipped: {', '.join(self.skipped)})"
        n, ran = len(self.failed), len(self.results)
        raise GateFailed(
            f"{n} of {ran} gate{'' if ran == 1 else 's'} failed: {failed}{skipped}",
            report=self,
        )
