"""Every script in ``examples/`` runs as a user would run it (its own process, the test's
LOOPML_HOME, the test's folder as working directory), exits 0 and prints its key lines; for
several, what they recorded is then read back through the SDK."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

import loopml

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def example_files() -> list[str]:
    """The example scripts (helpers such as ``_util.py`` start with an underscore)."""
    return sorted(p.name for p in EXAMPLES.glob("*.py") if not p.name.startswith("_"))


# -- what each example must print (regular expressions, searched line by line) ----------------
EXPECTED: dict[str, list[str]] = {
    "01_pipeline_schedule.py": [
        r"^step deploy +SUCCEEDED",
        r"^manual run \w+: SUCCEEDED, deployed version 1$",
        r"^schedule \d+: @daily, next run at ",
        r"^scheduled run \w+ \(schedule:\d+\): SUCCEEDED$",
        r"^churn-daily@production is version 2$",
    ],
    "02_experiment_tracking.py": [
        r"^run \w+ rf_60_8: logged$",
        r"^the broken run failed as expected",
        r"^best run: rf_\d+_\d accuracy 0\.\d+$",
        r"^failed runs: 1$",
    ],
    "03_model_registry.py": [
        r"^Version: 2, Status: READY$",
        r"^stages: \{'2': 'Production', '1': 'Archived'\}$",
        r"^models:/customer-churn-rf/Production is version 2",
        r"^differences: .*params\.max_depth",
        r"^after rollback customer-churn-rf@production is version 1$",
    ],
    "04_tf_serving.py": [
        r"^exported my_model version 1",
        r"^predictions: \[2\.\d+\]$",  # 1.5 - 4 + 1.5 + 3 = 2
        r"^outputs: \[(2\.9|3\.0)\d*, (2\.9|3\.0)\d*\]$",
        r"^model status: AVAILABLE$",
        r"^server stopped$",
    ],
    "05_model_service.py": [
        r"^health: \{'status': 'ok'\}$",
        r"^predict: [01] probability 0\.\d+ confidence (low|medium|high|very_high)",
        r"^batch: \[[01], [01], [01], [01]\]$",
        r"^bad input: 400 .*'age'",
        r"^model info: churn-service v1 \(pyfunc\)$",
        r'loopml_requests_total\{.*status="200".*\} 2\.0$',
    ],
    "06_kserve_v2_batch.py": [
        r"^server live: True, model ready: True$",
        r"^v2 infer: \[([01], ){7}[01]\]$",
        r"^matches the local model: True$",
        r"^batch job: 20000 of 20000 rows predicted, 0 failed$",
    ],
    "07_onnx_runtime.py": [
        r"^ONNX copy kept: True$",
        r"^runtimes: onnx and native$",
        r"^same labels on 500 rows: True$",
        r"^onnxruntime session: labels \[([01], ){4}[01]\]$",
    ],
    "08_abtest.py": [
        r"^user-42 -> [AB] \(bucket \d+ of 10000\)$",
        r"^conversion: A 0\.\d+, B 0\.\d+, lift \+\d+\.\d%, p-value ",
        r"^verdict: ship ",
        r"^scipy chi2_contingency p-value: ",
        r"^bayesian: P\(B beats A on conversion\) = 0\.9\d+$",
    ],
    "09_canary_rollout.py": [
        r"^sticky routing: True$",
        r"^router agrees with loopml\.abtest\.assign: True$",
        r"^  rollout_succeeded +-> 100%",
        r"^rollout succeeded: primary is now models:/churn-model/2$",
        r"^after rollback: primary is models:/churn-model/1$",
    ],
    "10_feature_store.py": [
        r"^applied: \['item_features', 'user_stats'\]$",
        r"^online features: \{'user_id': \[1001\], 'item_id': \[2001\], 'age': \[21\], "
        r"'city': \['shenzhen'\], 'category': \['books'\]\}$",
        r"^user_stats version 2: ttl 7 days$",
    ],
    "11_drift_report.py": [
        r"^age +ks .* drifted=True$",
        r"^tenure_months +ks .* drifted=False$",
        r"^dataset drift: True .*age, monthly_charges",
        r"^report: reports/data_drift_report\.html",
    ],
    "12_monitoring_loop.py": [
        r"^served 600 predictions",
        r"^live accuracy 0\.\d+ on 600 labels, baseline 0\.\d+, degraded: \['accuracy'\]$",
        r"^drift against churn-train@1: .*monthly_charges",
        r"^alert churn-drift: firing",
        r'^prometheus: loopml_alert_firing\{deployment="churn-live",rule="churn-drift"\} 1\.0$',
        r"^retraining run \(alert:churn-drift:\d+\): SUCCEEDED, version 2$",
    ],
    "13_ci_quality_gates.py": [
        r"^PASS data: ",
        r"^PASS drift: ",
        r"^PASS metrics: accuracy",
        r"^PASS regression: ",
        r"^PASS smoke: 5 rows predicted over HTTP",
        r"^churn-ci@production is version 2$",
        r"^FAIL data: 2 of \d+ rules failed",
    ],
    "14_data_versioning.py": [
        r"^version 1: 3 files, 6000 rows",
        r"^version 2: 4 files, uploaded 2 blobs",
        r"^same content again: new version created = False$",
        r"^restored v1\.0 into .*: identical = True$",
    ],
    "15_hyperparameter_tuning.py": [
        r"^best trial \d+: validation_score 0\.\d+$",
        r"^parent run \w+ with 12 trial runs$",
        r"^param importances: \{",
    ],
    "16_mlflow_client.py": [
        r"^mlflow client: Version: 1, Status: READY$",
        r"^mlflow client loaded Production: predicts \[",
        r"^loopml sees run \w+: accuracy 0\.\d+$",
        r"^loopml sees customer-churn-rf version 1 in stage Production$",
    ],
}


# -- what the SDK finds afterwards in the example's LOOPML_HOME --------------------------------
def _pipeline_runs() -> None:
    from loopml.pipelines import list_runs

    runs = list_runs("ml_pipeline")
    assert [r.status for r in runs] == ["SUCCEEDED", "SUCCEEDED"]
    assert sorted(r.trigger.split(":")[0] for r in runs) == ["manual", "schedule"]
    assert runs[0].steps["deploy"].status == "SUCCEEDED"
    assert loopml.Client().get_model_version_by_alias("churn-daily", "production").version == "2"


def _tracked_runs() -> None:
    runs = loopml.search_runs(experiment_names=["classification_experiment"])
    assert sorted(runs["status"]) == ["FAILED"] + ["FINISHED"] * 4
    finished = runs[runs["status"] == "FINISHED"]
    assert finished["metrics.accuracy"].between(0.6, 1.0).all()
    run_id = finished["run_id"].iloc[0]
    assert {"feature_importance.png", "random_forest_model"} <= {
        f.path for f in loopml.Client().list_artifacts(run_id)
    }
    assert len(loopml.Client().get_metric_history(run_id, "accuracy_by_trees")) >= 4


def _registry() -> None:
    client = loopml.Client()
    assert client.get_model_version_by_alias("customer-churn-rf", "production").version == "1"
    stages = {v.version: v.current_stage for v in client.search_model_versions()}
    assert stages == {"1": "Archived", "2": "Production"}


def _deployment() -> None:
    from loopml.serving import get_deployment_store

    store = get_deployment_store()
    dep = store.get_deployment("churn")
    assert dep.primary.model_uri == "models:/churn-model/1"
    kinds = [e.kind for e in store.list_events("churn")]
    assert kinds.index("rollout_started") < kinds.index("rollout_succeeded")
    assert kinds[-1] == "rolled_back"


def _monitoring_loop() -> None:
    from loopml.monitoring import get_monitor
    from loopml.pipelines import list_runs

    client = loopml.Client()
    assert client.get_model_version_by_alias("churn-live", "production").version == "1"
    assert client.get_model_version_by_alias("churn-live", "challenger").version == "2"
    assert client.get_model_version("churn-live", "1").dataset_versions == ["churn-train@1"]
    (alert,) = get_monitor().store.events(rule="churn-drift")
    assert alert.state == "fired"
    (run,) = list_runs("retrain-churn")
    assert run.status == "SUCCEEDED" and run.trigger.startswith("alert:churn-drift:")


def _gates() -> None:
    client = loopml.Client()
    for alias in ("candidate", "staging", "production"):
        assert client.get_model_version_by_alias("churn-ci", alias).version == "2"


def _datasets() -> None:
    import loopml.data as ld

    assert [v.version for v in ld.list_versions("training-data")] == [2, 1]
    assert ld.get_version("training-data@v1.0").version == 1
    assert len(ld.load("training-data@v2.0")) == 8_000


def _tuning() -> None:
    (parent,) = loopml.search_runs(
        experiment_names=["hyperparameter-optimization"],
        filter_string="tags.mlflow.runName = 'hyperparameter-optimization'",
        output_format="list",
    )
    assert parent.data.tags["loopml.trials"] == "12"
    children = loopml.search_runs(
        experiment_names=["hyperparameter-optimization"],
        filter_string=f"tags.mlflow.parentRunId = '{parent.info.run_id}'",
    )
    assert len(children) == 12 and set(children["status"]) == {"FINISHED"}


def _mlflow_client() -> None:
    version = loopml.Client().get_model_version("customer-churn-rf", "1")
    assert version.current_stage == "Production"


CHECKS: dict[str, Callable[[], None]] = {
    "01_pipeline_schedule.py": _pipeline_runs,
    "02_experiment_tracking.py": _tracked_runs,
    "03_model_registry.py": _registry,
    "09_canary_rollout.py": _deployment,
    "12_monitoring_loop.py": _monitoring_loop,
    "13_ci_quality_gates.py": _gates,
    "14_data_versioning.py": _datasets,
    "15_hyperparameter_tuning.py": _tuning,
    "16_mlflow_client.py": _mlflow_client,
}


def test_every_example_is_run_and_checked() -> None:
    assert example_files(), f"no examples found in {EXAMPLES}"
    assert example_files() == sorted(EXPECTED), (
        "every examples/*.py needs its expected output in EXPECTED (and every entry a file)"
    )
    assert set(CHECKS) <= set(EXPECTED)


@pytest.mark.parametrize("name", example_files())
def test_example(name: str, tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}  # LOOPML_HOME: the autouse fixture's
    assert env["LOOPML_HOME"].startswith(str(tmp_path))
    done = subprocess.run(
        [sys.executable, str(EXAMPLES / name)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert done.returncode == 0, f"{name} exited {done.returncode}\n{done.stdout}\n{done.stderr}"
    if name not in EXPECTED:
        pytest.fail(f"{name} has no expected output in EXPECTED: add its key lines")
    missing = [p for p in EXPECTED[name] if not re.search(p, done.stdout, re.MULTILINE)]
    assert not missing, f"{name} did not print {missing}; it printed:\n{done.stdout}"
    check = CHECKS.get(name)
    if check is not None:
        check()
