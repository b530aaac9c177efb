"""``Gates``: choose the gates a release must pass, run them in order, get one report."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from loopml.errors import InvalidInput
from loopml.gates._data import validate_data
from loopml.gates._drift import check_drift
from loopml.gates._metrics import check_metrics, parse_condition
from loopml.gates._regression import check_regression
from loopml.gates._report import GateReport, GateResult
from loopml.gates._smoke import smoke_test

__all__ = ["Gates"]


class Gates:
    """A set of gates for one candidate model; each method adds a gate and returns ``self``.

    ```python
    report = (
        Gates("models:/churn@staging")
        .data(train, "rules.yaml")
        .drift(train, "models:/churn@production")
        .metrics("accuracy >= 0.85")
        .regression(holdout, "churned", baseline="models:/churn@production")
        .smoke(holdout)
        .run()
    )
    report.raise_for_failure()
    ```
    """

    def __init__(self, candidate: str | None = None) -> None:
        self.candidate = candidate
        self._steps: list[tuple[str, Callable[[], list[GateResult]]]] = []

    def _model(self, given: str | None, gate: str) -> str:
        model = given or self.candidate
        if not model:
            raise InvalidInput(f"the {gate} gate needs a model: pass one, or Gates(candidate)")
        return model

    def data(self, data: Any, rules: Any = None, *, model_uri: str | None = None) -> Gates:
        """Add ``validate_data(data, rules, model_uri=...)``."""
        self._steps.append(("data", lambda: [validate_data(data, rules, model_uri=model_uri)]))
        return self

    def drift(
        self,
        data: Any,
        model_uri: str | None = None,
        *,
        reference: Any = None,
        max_share: float = 0.5,
        columns: Sequence[str] | None = None,
    ) -> Gates:
        """Add ``check_drift`` of ``data`` against ``model_uri``'s training data (or
        ``reference``)."""
        if model_uri is None and reference is None:
            raise InvalidInput(
                "the drift gate needs the model whose training data is the "
                "reference (e.g. models:/churn@production), or reference="
            )

        def run() -> list[GateResult]:
            return [
                check_drift(
                    data, model_uri, reference=reference, max_share=max_share, columns=columns
                )
            ]

        self._steps.append(("drift", run))
        return self

    def metrics(self, *conditions: str, model: str | None = None) -> Gates:
        """Add ``check_metrics`` of the candidate (or ``model``) for the conditions."""
        uri = self._model(model, "metrics")
        if not conditions:
            raise InvalidInput("give at least one condition, such as 'accuracy >= 0.85'")
        for c in conditions:
            parse_condition(c)  # a malformed condition is refused now, before any gate runs
        self._steps.append(("metrics", lambda: check_metrics(uri, list(conditions))))
        return self

    def regression(
        self,
        data: Any,
        target: str,
        *,
        baseline: str,
        metric: str = "accuracy",
        tolerance: float = 0.0,
        candidate: str | None = None,
    ) -> Gates:
        """Add ``check_regression`` of the candidate against ``baseline`` on a holdout."""
        uri = self._model(candidate, "regression")

        def run() -> list[GateResult]:
            return [
                check_regression(uri, baseline, data, target, metric=metric, tolerance=tolerance)
            ]

        self._steps.append(("regression", run))
        return self

    def smoke(
        self,
        data: Any,
        *,
        rows: int = 5,
        timeout: float = 60.0,
        max_latency_ms: float | None = None,
        model_uri: str | None = None,
    ) -> Gates:
        """Add ``smoke_test`` of the candidate (or ``model_uri``), served over real HTTP."""
        uri = self._model(model_uri, "smoke")

        def run() -> list[GateResult]:
            return [
                smoke_test(uri, data, rows=rows, timeout=timeout, max_latency_ms=max_latency_ms)
            ]

        self._steps.append(("smoke", run))
        return self

    def run(self, *, fail_fast: bool = False) -> GateReport:
        """Run the gates in the order they were added.

        Args:
            fail_fast: stop at the first failed gate; the rest are listed as skipped.

        Raises:
            InvalidInput: no gate was added, or a gate's input is malformed (a gate's input
                error stops the run: it is not a verdict on the release).
        """
        if not self._steps:
            raise InvalidInput("no gate to run: add one with data, drift, metrics, ...")
        report = GateReport()
        for i, (_, step) in enumerate(self._steps):
            results = step()
            report.results.extend(results)
            if fail_fast and not all(r.passed for r in results):
                report.skipped = [name for name, _ in self._steps[i + 1 :]]
                break
        return report
