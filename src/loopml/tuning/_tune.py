"""``tune``: an Optuna study whose every trial is a child run of one parent run.

Each trial costs two writes to the tracking store (the child run's creation, then one batch
with its params, its value, its state and its end), whatever the number of params. The parent
run gets the best trial's number, run id, value and params as tags and params, the parameter
importances as metrics (``importance.<param>``), and the optimisation history as the metric
``best_value`` by trial number. Studies can live in a shared Optuna storage (``storage=`` a
database URL, e.g. the PostgreSQL loopml uses) so several processes add trials to one study.
"""

from __future__ import annotations

import importlib
import math
import os
import sys
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
    executor: str | None = None,
) -> TuneResult:
    """Run an Optuna study with every trial tracked as a child run of one parent run.

    ``objective(trial)`` uses ``trial.suggest_*``; with ``search_space`` (``{"lr": ("float",
    1e-4, 1e-1, {"log": True}), "depth": ("int", 2, 8), "kernel": ["rbf", "linear"]}``) it is
    called as ``objective(params)``. It returns a number (or one per direction). The parent run
    is the active run if there is one, else a new run named ``run_name``. ``importances``:
    log Optuna's parameter importances on the parent (its first use in a process imports
    scikit-learn, about a second, once). ``executor="ray"`` (or ``"ray://host:port"``) runs
    the trials in ``n_jobs`` Ray tasks (``-1``: one per Ray CPU) sharing the study through
    ``storage`` (default: an Optuna journal file under the loopml home, which needs the
    workers on this machine or a shared folder).
    """
    import loopml.tracking as lt

    optuna = _optuna()
    if n_trials is None and timeout is None:
        raise InvalidInput("give n_trials or timeout")
    if n_trials is not None and (
        isinstance(n_trials, bool) or not isinstance(n_trials, int) or n_trials < 1
    ):
        raise InvalidInput("n_trials must be a positive integer")
    if isinstance(n_jobs, bool) or not isinstance(n_jobs, int) or n_jobs == 0 or n_jobs < -1:
        raise InvalidInput("n_jobs must be a positive integer (or -1)")
    if executor is not None and not (
        executor == "threads" or executor == "ray" or executor.startswith("ray://")
    ):
        raise InvalidInput("executor must be threads, ray or ray://host:port")
    dirs = list(directions) if directions is not None else [direction]
    if not dirs or any(d not in ("minimize", "maximize") for d in dirs):
        raise InvalidInput("direction(s) must be 'minimize' or 'maximize'")
    if search_space is not None and not isinstance(search_space, Mapping):
        raise InvalidInput("search_space must map parameter names to ranges or choices")
    chosen = _sampler(optuna, sampler, seed, search_space)
    own = lt.active_run() is None
    parent = lt.start_run(run_name=run_name or study_name) if own else lt.active_run()
    assert parent is not None
    parent_id = parent.info.run_id
    experiment_id = parent.info.experiment_id

    tracked = _Tracked(objective, search_space, experiment_id, parent_id, metric_name)
    try:
        if executor in (None, "threads"):
            study = optuna.create_study(
                study_name=study_name,
                storage=storage,
                sampler=chosen,
                pruner=pruner,
                directions=dirs,
                load_if_exists=storage is not None,
            )
            study.optimize(tracked, n_trials=n_trials, timeout=timeout, n_jobs=n_jobs)
            run_ids = tracked.run_ids
        else:
            study = _on_ray(
                optuna,
                executor,
                tracked,
                study_name=study_name or f"loopml-{parent_id}",
                storage=storage,
                sampler=sampler,
                seed=seed,
                space=search_space,
                pruner=pruner,
                directions=dirs,
                n_trials=n_trials,
                timeout=timeout,
                n_jobs=n_jobs,
            )
            run_ids = {
                t.number: str(t.user_attrs["loopml.run_id"])
                for t in study.trials
                if t.user_attrs.get("loopml.parent_run_id") == parent_id
            }
        result = _summarise(optuna, study, parent_id, run_ids, metric_name, len(dirs), importances)
    except BaseException:
        if own:
            lt.end_run("FAILED")
        raise
    if own:
        lt.end_run()
    return result


class _Tracked:
    """The objective wrapped so that every trial is a child run (picklable, for Ray)."""

    def __init__(
        self,
        objective: Callable[..., Any],
        search_space: Mapping[str, Any] | None,
        experiment_id: str,
        parent_id: str,
        metric_name: str,
        tracking_uri: str | None = None,
    ) -> None:
        self.objective, self.search_space = objective, search_space
        self.experiment_id, self.parent_id = experiment_id, parent_id
        self.metric_name = metric_name
        self.tracking_uri = tracking_uri
        self.run_ids: dict[int, str] = {}

    def __getstate__(self) -> dict[str, Any]:
        import loopml.tracking as lt

        state = {**self.__dict__, "run_ids": {}, "tracking_uri": lt.get_tracking_uri()}
        ref = _reference(self.objective)
        if ref is not None:  # a module function travels by name, imported where it runs
            state["objective"] = ref
        return state

    def __call__(self, trial: Any) -> Any:
        import loopml.tracking as lt
        from loopml.tracking import Metric, Param, RunBatch, RunTag

        optuna = _optuna()
        if isinstance(self.objective, tuple):
            self.objective = _resolve(*self.objective)
        if self.tracking_uri and lt.get_tracking_uri() != self.tracking_uri:
            lt.set_tracking_uri(self.tracking_uri)  # a Ray worker
        store = lt.get_store()
        parent_id = self.parent_id
        child = store.create_run(
            self.experiment_id,
            run_name=f"trial-{trial.number}",
            parent_run_id=parent_id,
            tags={"mlflow.parentRunId": parent_id, "loopml.trial": str(trial.number)},
        )
        self.run_ids[trial.number] = child.info.run_id
        trial.set_user_attr("loopml.run_id", child.info.run_id)
        trial.set_user_attr("loopml.parent_run_id", parent_id)
        status, values = "FAILED", None
        try:
            if self.search_space is not None:
                params = {k: _suggest(trial, k, v) for k, v in self.search_space.items()}
                values = self.objective(params)
            else:
                values = self.objective(trial)
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
                name = self.metric_name
                names = [name] if len(seq) == 1 else [f"{name}_{i}" for i in range(len(seq))]
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


def _reference(fn: Any) -> tuple[str, str, str] | None:
    """(module, qualname, folder to import it from) of a module-level function, else None."""
    module = sys.modules.get(getattr(fn, "__module__", "") or "")
    qualname = getattr(fn, "__qualname__", "")
    path = getattr(module, "__file__", None)
    if module is None or module.__name__ == "__main__" or "<" in qualname or not path:
        return None
    folder = os.path.dirname(os.path.abspath(path))
    for _ in range(module.__name__.count(".") + (os.path.basename(path) == "__init__.py")):
        folder = os.path.dirname(folder)
    return module.__name__, qualname, folder


def _resolve(module: str, qualname: str, folder: str) -> Any:
    if folder not in sys.path:
        sys.path.insert(0, folder)
    target: Any = importlib.import_module(module)
    for part in qualname.split("."):
        target = getattr(target, part)
    return target


def _storage(optuna: Any, spec: str) -> Any:
    """An Optuna storage from a database URL or ``journal:<path>``."""
    if spec.startswith("journal:"):
        from optuna.storages.journal import JournalFileBackend

        return optuna.storages.JournalStorage(JournalFileBackend(spec[len("journal:") :]))
    return spec


def _ray_share(spec: dict[str, Any]) -> int:
    """One Ray task's part of the study: load it and run its trials."""
    optuna = _optuna()
    sampler = _sampler(optuna, spec["sampler"], spec["seed"], spec["space"])
    if not isinstance(spec["sampler"], str):
        sampler.reseed_rng()  # a copied sampler object would repeat the others' points
    study = optuna.load_study(
        study_name=spec["study_name"],
        storage=_storage(optuna, spec["storage"]),
        sampler=sampler,
        pruner=spec["pruner"],
    )
    study.optimize(spec["tracked"], n_trials=spec["n_trials"], timeout=spec["timeout"])
    return spec["n_trials"] or 0


def _on_ray(
    optuna: Any,
    executor: str,
    tracked: _Tracked,
    *,
    study_name: str,
    storage: str | None,
    sampler: str | Any,
    seed: int | None,
    space: Mapping[str, Any] | None,
    pruner: Any,
    directions: list[str],
    n_trials: int | None,
    timeout: float | None,
    n_jobs: int,
) -> Any:
    try:
        import ray
    except ImportError as exc:
        raise MissingDependency("executor='ray' needs the [ray] extra") from exc
    if not ray.is_initialized():
        address = executor if executor.startswith("ray://") else None
        kwargs: dict[str, Any] = {"ignore_reinit_error": True, "log_to_driver": False}
        if address:
            kwargs["address"] = address
        else:
            kwargs["include_dashboard"] = False
        ray.init(**kwargs)
    if storage is None:
        from loopml.config import get_settings

        folder = get_settings().home.resolve() / "studies"
        folder.mkdir(parents=True, exist_ok=True)
        storage = f"journal:{folder / (study_name + '-' + tracked.parent_id + '.log')}"
    optuna.create_study(  # once, before the workers load it
        study_name=study_name,
        storage=_storage(optuna, storage),
        directions=directions,
        load_if_exists=True,
    )
    workers = n_jobs if n_jobs > 0 else max(1, int(ray.cluster_resources().get("CPU", 1)))
    if n_trials is not None:
        workers = min(workers, n_trials)
        shares = [n_trials // workers + (i < n_trials % workers) for i in range(workers)]
    else:
        shares = [None] * workers
    task = ray.remote(num_cpus=1, max_retries=0)(_ray_share)
    refs = [
        task.remote(
            {
                "tracked": tracked,
                "study_name": study_name,
                "storage": storage,
                "sampler": sampler,
                "seed": None if seed is None else seed + i,  # workers must not repeat each other
                "space": space,
                "pruner": pruner,
                "n_trials": share,
                "timeout": timeout,
            }
        )
        for i, share in enumerate(shares)
    ]
    pending = list(refs)
    while pending:  # the first failing task stops the others
        done, pending = ray.wait(pending, num_returns=1)
        try:
            ray.get(done[0])
        except Exception:
            for ref in pending:
                ray.cancel(ref, force=True)
            raise
    return optuna.load_study(study_name=study_name, storage=_storage(optuna, storage))


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
