"""``tune``: an Optuna study whose every trial is a child run of one parent run.

Each trial costs two writes to the tracking store (the child run's creation, then one batch
with its params, its value, its state and its end), whatever the number of params. The parent
run gets the best trial's number, run id, value and params as tags and params, the parameter
importances as metrics (``importance.<param>``), and the optimisation history as the metric
``best_value`` by trial number. Studies can live in a shared Optuna storage (``storage=`` a
database URL, e.g. the PostgreSQL loopml uses) so several processes add trials to one study.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from loopml.errors import InvalidInput, MissingDependency

__all__ = ["SAMPLERS", "TuneResult", "tune"]

SAMPLERS = ("tpe", "random", "grid", "cmaes")


@dataclass
class TuneResult:
    """The study, its best trial and the parent run that holds the trials."""

    study: Any
    best_params: dict[str, Any]
    best_value: float | list[float]
    best_trial: int
    parent_run_id: str
    trial_run_ids: dict[int, str]


def _optuna() -> Any:
    try:
        import optuna
    except ImportError as exc:
        raise MissingDependency("tuning needs optuna (pip install 'loopml[tuning]')") from exc
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    return optuna


def _suggest(trial: Any, name: str, spec: Any) -> Any:
    """A value for ``name`` from a search-space entry."""
    if isinstance(spec, list):
        if not spec:
            raise InvalidInput(f"search_space.{name}: a choice needs at least one value")
        return trial.suggest_categorical(name, spec)
    if isinstance(spec, tuple) and len(spec) in (3, 4) and spec[0] in ("int", "float"):
        kind, low, high = spec[:3]
        options = dict(spec[3]) if len(spec) == 4 else {}
        unknown = set(options) - {"log", "step"}
        if unknown:
            raise InvalidInput(f"search_space.{name}: unknown option {sorted(unknown)[0]!r}")
        if not (isinstance(low, (int, float)) and isinstance(high, (int, float)) and low < high):
            raise InvalidInput(f"search_space.{name}: low must be below high")
        if kind == "int":
            return trial.suggest_int(name, int(low), int(high), **options)
        return trial.suggest_float(name, float(low), float(high), **options)
    raise InvalidInput(
        f"search_space.{name}: use [choices], ('int', low, high[, opts]) or "
        "('float', low, high[, {'log': True}])"
    )


def _sampler(optuna: Any, sampler: str | Any, seed: int | None, space: Mapping | None) -> Any:
    if not isinstance(sampler, str):
        return sampler  # an Optuna sampler object
    if sampler == "tpe":
        return optuna.samplers.TPESampler(seed=seed)
    if sampler == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    if sampler == "cmaes":
        return optuna.samplers.CmaEsSampler(seed=seed)
    if sampler == "grid":
        if not space or not all(isinstance(v, list) for v in space.values()):
            raise InvalidInput("the grid sampler needs a search_space of lists")
        return optuna.samplers.GridSampler(dict(space), seed=seed)
    raise InvalidInput(f"sampler must be one of {', '.join(SAMPLERS)} or an Optuna sampler")


def tune(
    objective: Callable[..., Any],
    *,
    search_space: Mapping[str, Any] | None = None,
    n_trials: int | None = None,
    timeout: float | None = None,
    sampler: str | Any = "tpe",
    direction: str = "minimize",
    directions: Sequence[str] | None = None,
    pruner: Any = None,
    n_jobs: int = 1,
    seed: int | None = None,
    study_name: str | None = None,
    storage: str | None = None,
    run_name: str | None = None,
    metric_name: str = "value",
    importances: bool = True,
) -> TuneResult:
    """Run an Optuna study with every trial tracked as a child run of one parent run.

    ``objective(trial)`` uses ``trial.suggest_*``; with ``search_space`` (``{"lr": ("float",
    1e-4, 1e-1, {"log": True}), "depth": ("int", 2, 8), "kernel": ["rbf", "linear"]}``) it is
    called as ``objective(params)``. It returns a number (or one per direction). The parent run
    is the active run if there is one, else a new run named ``run_name``. ``importances``:
    log Optuna's parameter importances on the parent (its first use in a process imports
    scikit-learn, about a second, once).
    """
    import loopml.tracking as lt
    from loopml.tracking import Metric, Param, RunBatch, RunTag

    optuna = _optuna()
    if n_trials is None and timeout is None:
        raise InvalidInput("give n_trials or timeout")
    if n_trials is not None and (
        isinstance(n_trials, bool) or not isinstance(n_trials, int) or n_trials < 1
    ):
        raise InvalidInput("n_trials must be a positive integer")
    if isinstance(n_jobs, bool) or not isinstance(n_jobs, int) or n_jobs == 0 or n_jobs < -1:
        raise InvalidInput("n_jobs must be a positive integer (or -1)")
    dirs = list(directions) if directions is not None else [direction]
    if not dirs or any(d not in ("minimize", "maximize") for d in dirs):
        raise InvalidInput("direction(s) must be 'minimize' or 'maximize'")
    if search_space is not None and not isinstance(search_space, Mapping):
        raise InvalidInput("search_space must map parameter names to ranges or choices")
    chosen = _sampler(optuna, sampler, seed, search_space)
    store = lt.get_store()
    own = lt.active_run() is None
    parent = lt.start_run(run_name=run_name or study_name) if own else lt.active_run()
    assert parent is not None
    parent_id = parent.info.run_id
    experiment_id = parent.info.experiment_id
    run_ids: dict[int, str] = {}

    def tracked(trial: Any) -> Any:
        child = store.create_run(
            experiment_id,
            run_name=f"trial-{trial.number}",
            parent_run_id=parent_id,
            tags={"mlflow.parentRunId": parent_id, "loopml.trial": str(trial.number)},
        )
        run_ids[trial.number] = child.info.run_id
        status, values = "FAILED", None
        try:
            if search_space is not None:
                params = {k: _suggest(trial, k, v) for k, v in search_space.items()}
                values = objective(params)
            else:
                values = objective(trial)
            status = "FINISHED"
            return values
        except optuna.TrialPruned:
            status = "KILLED"
            raise
        finally:
            now = int(time.time() * 1000)
            metrics = []
            if values is not None:
                seq = values if isinstance(values, (list, tuple)) else [values]
                names = (
                    [metric_name]
                    if len(seq) == 1
                    else [f"{metric_name}_{i}" for i in range(len(seq))]
                )
                metrics = [
                    Metric(n, float(v), now, trial.number)
                    for n, v in zip(names, seq, strict=True)
                    if isinstance(v, (int, float)) and math.isfinite(float(v))
                ]
            store.write_batches(
                [
                    RunBatch(
                        child.info.run_id,
                        metrics=metrics,
                        params=[Param(k, str(v)) for k, v in trial.params.items()],
                        tags=[RunTag("loopml.trial_state", status)],
                        status=status,
                        end_time=now,
                    )
                ]
            )

    try:
        study = optuna.create_study(
            study_name=study_name,
            storage=storage,
            sampler=chosen,
            pruner=pruner,
            directions=dirs,
            load_if_exists=storage is not None,
        )
        study.optimize(tracked, n_trials=n_trials, timeout=timeout, n_jobs=n_jobs)
        result = _summarise(optuna, study, parent_id, run_ids, metric_name, len(dirs), importances)
    except BaseException:
        if own:
            lt.end_run("FAILED")
        raise
    if own:
        lt.end_run()
    return result


def _summarise(
    optuna: Any,
    study: Any,
    parent_id: str,
    run_ids: dict[int, str],
    metric: str,
    n_dirs: int,
    importances: bool,
) -> TuneResult:
    import loopml.tracking as lt

    complete = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    if not complete:
        raise InvalidInput("no trial completed")
    client = lt.get_store()
    from loopml.tracking import Metric, Param, RunBatch, RunTag

    now = int(time.time() * 1000)
    metrics: list[Any] = []
    if n_dirs == 1:
        best = study.best_trial
        best_value: float | list[float] = float(best.value)
        sign = 1 if study.direction == optuna.study.StudyDirection.MINIMIZE else -1
        running = math.inf
        for t in sorted(complete, key=lambda t: t.number):
            running = min(running, sign * float(t.value))
            metrics.append(Metric(f"best_{metric}", sign * running, now, t.number))
        if importances and len(complete) > 1 and len(best.params) > 1:
            try:
                for name, share in optuna.importance.get_param_importances(study).items():
                    metrics.append(Metric(f"importance.{name}", float(share), now, 0))
            except (RuntimeError, ValueError):
                pass  # too few distinct trials to estimate importances
    else:
        best = min(study.best_trials, key=lambda t: t.number)
        best_value = [float(v) for v in best.values]
    tags = [
        RunTag("loopml.best_trial", str(best.number)),
        RunTag("loopml.best_trial_run_id", run_ids.get(best.number, "")),
        RunTag("loopml.study", study.study_name),
        RunTag("loopml.trials", str(len(study.trials))),
    ]
    params = [Param(f"best.{k}", str(v)) for k, v in best.params.items()]
    client.write_batches([RunBatch(parent_id, metrics=metrics, params=params, tags=tags)])
    return TuneResult(study, dict(best.params), best_value, best.number, parent_id, run_ids)
