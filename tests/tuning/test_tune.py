"""Tuning on Optuna: every trial a child run with its params and value, the best trial and the
history on the parent run, samplers, pruning, failures, bad inputs, and two processes adding
trials to one study in shared storage."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import optuna
import pytest

import loopml
from loopml.errors import InvalidInput


def test_a_study_is_tracked_trial_by_trial() -> None:
    result = loopml.tune(
        lambda p: (p["x"] - 2) ** 2 + (0.5 if p["kind"] == "b" else 0.0),
        search_space={"x": ("float", -10, 10), "kind": ["a", "b"]},
        n_trials=40,
        seed=0,
        run_name="quad",
    )
    assert abs(result.best_params["x"] - 2) < 0.7 and result.best_params["kind"] == "a"
    parent = loopml.get_run(result.parent_run_id)
    assert parent.info.status == "FINISHED" and parent.info.run_name == "quad"
    assert parent.data.tags["loopml.best_trial"] == str(result.best_trial)
    assert parent.data.tags["loopml.best_trial_run_id"] == result.trial_run_ids[result.best_trial]
    assert float(parent.data.params["best.x"]) == pytest.approx(result.best_params["x"])
    assert len(result.trial_run_ids) == 40
    history = loopml.get_store().get_metric_history(result.parent_run_id, "best_value")
    values = [m.value for m in sorted(history, key=lambda m: m.step)]
    assert len(values) == 40 and values == sorted(values, reverse=True)
    assert values[-1] == pytest.approx(result.best_value)
    assert set(k for k in parent.data.metrics if k.startswith("importance.")) == {
        "importance.x",
        "importance.kind",
    }
    child = loopml.get_run(result.trial_run_ids[result.best_trial])
    assert child.data.tags["mlflow.parentRunId"] == result.parent_run_id
    assert child.info.status == "FINISHED" and child.data.metrics["value"] == pytest.approx(
        result.best_value
    )
    assert set(child.data.params) == {"x", "kind"}


def test_objective_with_trials_threads_pruning_and_grid() -> None:
    def objective(trial: optuna.Trial) -> float:
        x = trial.suggest_int("x", 0, 20)
        if x > 15:
            raise optuna.TrialPruned()
        return float(x)

    result = loopml.tune(
        objective, n_trials=20, n_jobs=2, sampler="random", seed=1, direction="maximize"
    )
    states = {loopml.get_run(r).info.status for r in result.trial_run_ids.values()}
    assert states <= {"FINISHED", "KILLED"} and result.best_value <= 15
    grid = loopml.tune(
        lambda p: p["a"] * p["b"],
        search_space={"a": [1, 2], "b": [3, 4]},
        sampler="grid",
        n_trials=4,
    )
    assert grid.best_params == {"a": 1, "b": 3}
    with loopml.start_run(run_name="outer") as outer:
        inside = loopml.tune(
            lambda p: p["x"] + p["y"],
            search_space={"x": ("int", 0, 3), "y": ("int", 0, 3)},
            n_trials=4,
            importances=False,
        )
    assert inside.parent_run_id == outer.info.run_id
    outer_metrics = loopml.get_run(outer.info.run_id).data.metrics
    assert "best_value" in outer_metrics and not any(
        k.startswith("importance.") for k in outer_metrics
    )


def test_a_failing_objective_fails_its_trial_and_the_parent() -> None:
    def boom(params: dict) -> float:
        raise ValueError("model exploded")

    with pytest.raises(ValueError, match="exploded"):
        loopml.tune(boom, search_space={"x": ("float", 0, 1)}, n_trials=3, run_name="bad")
    runs = loopml.search_runs(filter_string="attributes.run_name = 'bad'", output_format="list")
    assert [r.info.status for r in runs] == ["FAILED"]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({}, "n_trials or timeout"),
        ({"n_trials": 0}, "positive"),
        ({"n_trials": 2, "sampler": "annealing"}, "sampler"),
        ({"n_trials": 2, "direction": "up"}, "direction"),
        ({"n_trials": 2, "search_space": {"x": ("float", 5, 1)}}, "low must be below high"),
        ({"n_trials": 2, "search_space": {"x": {"low": 1}}}, "search_space.x"),
        ({"n_trials": 2, "sampler": "grid", "search_space": {"x": ("int", 0, 3)}}, "grid"),
        ({"n_trials": 2, "executor": "dask"}, "executor must be"),
    ],
)
def test_bad_inputs(kwargs: dict, message: str) -> None:
    kwargs.setdefault("search_space", {"x": ("int", 0, 3)})
    with pytest.raises(InvalidInput, match=message):
        loopml.tune(lambda p: 0.0, **kwargs)


def test_two_processes_share_one_study(tmp_path: Path) -> None:
    storage = f"sqlite:///{tmp_path / 'study.db'}"
    # Optuna's storage creates its schema on first use; two processes racing to do that on one
    # SQLite file collide, so the study exists first, as a shared PostgreSQL one would.
    optuna.create_study(study_name="shared", storage=storage)
    script = textwrap.dedent(
        f"""
        import loopml
        r = loopml.tune(lambda p: (p["x"] - 1) ** 2, search_space={{"x": ("float", -5, 5)}},
                        n_trials=8, study_name="shared", storage={storage!r})
        print(r.parent_run_id)
        """
    )
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", script],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    parents = []
    for proc in procs:
        out, err = proc.communicate(timeout=300)
        assert proc.returncode == 0, err
        parents.append(out.strip().splitlines()[-1])
    study = optuna.load_study(study_name="shared", storage=storage)
    assert len(study.trials) == 16
    assert len({loopml.get_run(p).info.run_id for p in parents}) == 2
