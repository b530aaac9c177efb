"""The seeds' CI/CD pipeline (validate data, check drift, train, check thresholds such as
``--min-accuracy``, deploy to staging, smoke test, promote to production) with
``loopml.gates``: each step of the seed's GitHub workflow is one gate, and the candidate is
promoted only if every gate passes. In CI the same gates run as ``loopml gate ...`` commands.
"""

from __future__ import annotations

from pathlib import Path

from _util import FEATURES, churn_frame, split
from sklearn.ensemble import RandomForestClassifier

import loopml
import loopml.data
import loopml.gates as lg

NAME = "churn-ci"
client = loopml.Client()


def train_and_register(seed: int, alias: str) -> str:
    """scripts/train_model.py: train, log data, metrics and model; point ``alias`` at it."""
    train, test = split(churn_frame(2_000, seed=seed))
    with loopml.start_run(run_name=f"train-{alias}"):
        loopml.data.log_dataset(train, "churn-ci-train")
        model = RandomForestClassifier(n_estimators=40, max_depth=6, random_state=seed)
        model.fit(train[FEATURES], train["churned"])
        loopml.log_metric("accuracy", model.score(test[FEATURES], test["churned"]))
        info = loopml.log_model(
            model, "model", registered_model_name=NAME, input_example=train[FEATURES][:10]
        )
    client.set_registered_model_alias(NAME, alias, info.registered_model_version)
    return str(info.registered_model_version)


train_and_register(seed=22, alias="production")  # what production serves today
candidate = train_and_register(seed=21, alias="candidate")  # this commit's model

# scripts/validate_data.py: the rules the training data must meet, kept in the repository.
Path("rules.yaml").write_text(
    """\
min_rows: 500
columns:
  age: {dtype: float, nullable: false, min: 18, max: 100}
  tenure_months: {nullable: false, min: 0}
  monthly_charges: {nullable: false, min: 0}
  support_calls: {min: 0}
  churned: {allowed: [0, 1]}
"""
)
new_data = churn_frame(2_000, seed=21)
holdout = churn_frame(500, seed=23)

report = (
    lg.Gates(f"models:/{NAME}@candidate")
    .data(new_data, "rules.yaml")  # data validation
    .drift(new_data, f"models:/{NAME}@production", max_share=0.3)  # check drift
    .metrics("accuracy >= 0.8")  # check thresholds (the seed's --min-accuracy)
    .regression(holdout, "churned", baseline=f"models:/{NAME}@production", tolerance=0.02)
    .smoke(holdout)  # served on 127.0.0.1, a few rows over HTTP
    .run()
)
print(report.summary())

if report.passed:
    client.set_registered_model_alias(NAME, "staging", candidate, reason="gates passed")
    client.set_registered_model_alias(NAME, "production", candidate, reason="gates passed")
production = client.get_model_version_by_alias(NAME, "production")
print(f"{NAME}@production is version {production.version}")

# What a failing gate says: a batch with a broken export (negative charges, missing ages).
broken = new_data.copy()
broken.loc[:9, "monthly_charges"] = -1.0
broken.loc[10:19, "age"] = None
print(lg.validate_data(broken, "rules.yaml").line())
