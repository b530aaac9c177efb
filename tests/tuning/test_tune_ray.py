"""Trials of one study on a local Ray instance started by the test, and ``loopml tune``."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import objectives_for_tests
import orjson
import pytest

import loopml


@pytest.fixture(scope="module")
def local_ray() -> Iterator[None]:
    import ray

    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield
    ray.shutdown()


def test_trials_run_on_ray_workers(local_ray: None) -> None:
    result = loopml.tune(
        objectives_for_tests.quadratic, n_trials=12, n_jobs=2, executor="ray", seed=1
    )
    trials = result.study.trials
    assert len(trials) == 12 and len(result.trial_run_ids) == 12
    assert os.getpid() not in {t.user_attrs["pid"] for t in trials}
    assert len({tuple(sorted(t.params.items())) for t in trials}) == 12  # workers do not repeat
    parent = loopml.get_run(result.parent_run_id)
    assert parent.data.tags["loopml.trials"] == "12"
    best = loopml.get_run(result.trial_run_ids[result.best_trial])
    assert best.data.tags["mlflow.parentRunId"] == result.parent_run_id
    assert best.data.metrics["value"] == pytest.approx(result.best_value)
    assert set(best.data.params) == {"x", "y"}
    # the same study name again starts afresh (the default journal is per call)
    again = loopml.tune(
        objectives_for_tests.quadratic, n_trials=4, n_jobs=2, executor="ray", study_name="s"
    )
    twice = loopml.tune(
        objectives_for_tests.quadratic, n_trials=4, n_jobs=2, executor="ray", study_name="s"
    )
    assert len(again.study.trials) == len(twice.study.trials) == 4
    assert not set(again.trial_run_ids.values()) & set(twice.trial_run_ids.values())


def test_the_tune_command(tmp_path: Path, loopml_cmd: list[str]) -> None:
    here = str(Path(__file__).parent)
    env = {**os.environ, "PYTHONPATH": here + os.pathsep + os.environ.get("PYTHONPATH", "")}

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*loopml_cmd, "tune", *args], capture_output=True, text=True, env=env, timeout=300
        )

    done = run("objectives_for_tests:quadratic", "--n-trials", "8", "--seed", "0", "--json")
    assert done.returncode == 0, done.stderr
    summary = orjson.loads(done.stdout)
    assert summary["trials"] == 8 and set(summary["best_params"]) == {"x", "y"}
    assert loopml.get_run(summary["parent_run_id"]).data.tags["loopml.trials"] == "8"
    for args, needle in [
        (("nothing",), "module:function"),
        (("objectives_for_tests:missing", "--n-trials", "2"), "is not a function"),
        (("no_module_here:f", "--n-trials", "2"), "cannot import module"),
        (("objectives_for_tests:quadratic",), "n_trials or timeout"),
        (("objectives_for_tests:quadratic", "--n-trials", "2", "--executor", "dask"), "executor"),
    ]:
        proc = run(*args)
        assert proc.returncode == 1, (args, proc.stderr)
        assert needle in proc.stderr and "Traceback" not in proc.stderr, (args, proc.stderr)
