"""``loopml tune``: run an Optuna study of an objective function, every trial a tracked child
run, on threads or Ray."""

from __future__ import annotations

from typing import Any

import click
from rich.table import Table

from loopml.cli._main import _json_option, _print_json, cli, console
from loopml.errors import InvalidInput, NotFound


def _objective(ref: str) -> Any:
    """``module:function`` or ``path/file.py:function``."""
    import importlib

    where, sep, name = ref.rpartition(":")
    if not sep or not where or not name:
        raise InvalidInput(f"{ref!r}: name the objective as module:function or file.py:function")
    if where.endswith(".py"):
        from loopml.pipelines import import_file

        module = import_file(where, what="objective file")
    else:
        try:
            module = importlib.import_module(where)
        except ImportError as exc:
            raise NotFound(f"cannot import module {where!r}: {exc}") from None
    found = getattr(module, name, None)
    if not callable(found):
        raise NotFound(f"{ref!r} is not a function")
    return found


@cli.command("tune")
@click.argument("objective")
@click.option("--n-trials", type=int, default=None, help="Trials to run.")
@click.option("--timeout", type=float, default=None, help="Stop after this many seconds.")
@click.option(
    "--sampler", default="tpe", show_default=True, type=click.Choice(["tpe", "random", "cmaes"])
)
@click.option(
    "--direction",
    default="minimize",
    show_default=True,
    type=click.Choice(["minimize", "maximize"]),
)
@click.option("--n-jobs", type=int, default=1, show_default=True, help="Parallel trials.")
@click.option("--executor", default="threads", show_default=True, help="threads, ray or ray://…")
@click.option("--storage", default=None, help="A shared Optuna storage (database URL).")
@click.option("--study-name", default=None)
@click.option("--experiment", default=None, help="Experiment of the parent run.")
@click.option("--seed", type=int, default=None)
@_json_option
def tune_command(
    objective: str,
    n_trials: int | None,
    timeout: float | None,
    sampler: str,
    direction: str,
    n_jobs: int,
    executor: str,
    storage: str | None,
    study_name: str | None,
    experiment: str | None,
    seed: int | None,
    as_json: bool,
) -> None:
    """Tune OBJECTIVE (module:function or file.py:function taking an Optuna trial)."""
    import loopml

    fn = _objective(objective)
    if experiment:
        loopml.set_experiment(experiment)
    with console.status(f"tuning {objective}", spinner="dots"):
        result = loopml.tune(
            fn,
            n_trials=n_trials,
            timeout=timeout,
            sampler=sampler,
            direction=direction,
            n_jobs=n_jobs,
            executor=executor,
            storage=storage,
            study_name=study_name,
            seed=seed,
        )
    summary = {
        "parent_run_id": result.parent_run_id,
        "best_trial": result.best_trial,
        "best_value": result.best_value,
        "best_params": result.best_params,
        "trials": len(result.trial_run_ids),
    }
    if as_json:
        _print_json(summary)
        return
    table = Table(title=f"study of {objective}")
    table.add_column("what")
    table.add_column("value", overflow="fold")
    for key, value in summary.items():
        table.add_row(key, str(value))
    console.print(table)
