"""Quality gates: the checks a model release must pass in CI before it is promoted.

```python
import loopml.gates as lg

report = lg.GateReport([
    lg.validate_data(train, "rules.yaml"),                       # loopml.data's rules
    lg.check_drift(train, "models:/churn@production"),           # vs its training data
    *lg.check_metrics("models:/churn@staging", ["accuracy >= 0.85"]),
    lg.check_regression("models:/churn@staging", "models:/churn@production", holdout, "churned"),
    lg.smoke_test("models:/churn@staging", holdout),             # served on 127.0.0.1
])
report.raise_for_failure()                                       # GateFailed names what missed
```

Each gate returns a ``GateResult`` whose ``detail`` says what was measured and by how much it
missed; ``Gates`` chains them for one candidate. ``loopml gate ...`` runs them from CI.
"""

from __future__ import annotations

from loopml.gates._data import read_frame, validate_data
from loopml.gates._drift import check_drift
from loopml.gates._gates import Gates
from loopml.gates._metrics import Condition, check_metrics, parse_condition
from loopml.gates._regression import METRICS, check_regression
from loopml.gates._report import GateReport, GateResult
from loopml.gates._smoke import smoke_test

__all__ = [
    "Condition",
    "GateReport",
    "GateResult",
    "Gates",
    "METRICS",
    "check_drift",
    "check_metrics",
    "check_regression",
    "parse_condition",
    "read_frame",
    "smoke_test",
    "validate_data",
]
