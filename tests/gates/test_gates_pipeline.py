"""A failed gate stops a pipeline: the gate step fails with the report, promotion never runs."""

from __future__ import annotations

from typing import Any

import pandas as pd
import pytest

import loopml
import loopml.gates as lg
from loopml.errors import PipelineFailed
from loopml.pipelines import pipeline, step


@step
def gate(candidate: str, holdout: list[dict[str, Any]]) -> str:
    frame = pd.DataFrame(holdout)
    report = lg.GateReport(
        [
            *lg.check_metrics(candidate, ["accuracy >= 0.8"]),
            lg.check_regression(candidate, "models:/churn@production", frame, "y"),
        ]
    )
    report.raise_for_failure()
    return candidate


@step
def promote(candidate: str) -> str:
    version = loopml.Client().get_model_version_by_alias("churn", candidate.rsplit("@", 1)[1])
    loopml.Client().set_registered_model_alias("churn", "production", version.version)
    return version.version


@pipeline
def release(candidate: str, holdout: list[dict[str, Any]]):
    return promote(gate(candidate, holdout))


def test_a_failed_gate_stops_the_pipeline(churn: dict[str, Any]) -> None:
    holdout = churn["holdout"].head(200).to_dict("records")
    with pytest.raises(PipelineFailed) as caught:
        release.run(candidate="models:/churn@challenger", holdout=holdout)
    run = caught.value.run
    assert run.steps["gate"].status == "FAILED" and run.steps["promote"].status == "SKIPPED"
    error = run.error
    assert "step 'gate' failed: loopml.errors.GateFailed: 2 of 2 gates failed" in error
    assert "metrics: accuracy" in error and "short by" in error
    assert "regression" in error
    production = loopml.Client().get_model_version_by_alias("churn", "production")
    assert production.version == "1"  # nothing was promoted
    # the good candidate passes the same gates and is promoted
    loopml.Client().set_registered_model_alias("churn", "challenger", "1")
    assert release.run(candidate="models:/churn@challenger", holdout=holdout).result == "1"
