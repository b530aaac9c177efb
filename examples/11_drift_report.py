"""Seed 002's Evidently data-drift and target-drift dashboards, seed 001's ``DataDriftDetector``
and seed 004's PSI check, with ``loopml.monitoring.detect_drift``.

Each column gets a two-sample test (KS for numbers, chi-square for categories) and an effect
size; the report saves as one self-contained HTML page, like ``dashboard.save(...)``.
"""

from __future__ import annotations

from pathlib import Path

from _util import FEATURES, churn_frame
from sklearn.linear_model import LogisticRegression

from loopml.monitoring import detect_drift

# Reference: the training data. Current: production traffic where customers got older and pay
# more (shift=0.8), which also moves the model's predictions.
reference = churn_frame(1_000, seed=9)
current = churn_frame(600, seed=10, shift=0.8)
model = LogisticRegression(max_iter=500).fit(reference[FEATURES], reference["churned"])
reference["prediction"] = model.predict(reference[FEATURES])
current["prediction"] = model.predict(current[FEATURES])

# Features, the target ("churned", Evidently's target drift) and the predictions.
report = detect_drift(reference, current)
for name, column in report.columns.items():
    print(
        f"{name:<16} {column.test:<10} p={column.p_value:.3g} "
        f"{column.effect_metric}={column.effect_size:.3f} drifted={column.drifted}"
    )
print(
    f"dataset drift: {report.dataset_drift} ({report.share_drifted:.0%} of columns drifted: "
    f"{', '.join(report.drifted_columns)})"
)

Path("reports").mkdir(exist_ok=True)
html = Path("reports/data_drift_report.html")
report.save_html(html, title="Churn data drift")
print(f"report: {html} ({html.stat().st_size} bytes, opens offline in any browser)")

# Seed 004's Population Stability Index, column by column (drift when PSI >= 0.1 here).
psi = detect_drift(reference, current, columns=FEATURES, method="psi")
print("PSI:", {name: round(c.statistic, 3) for name, c in psi.columns.items()})
