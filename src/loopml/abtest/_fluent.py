"""Module-level experiment functions over the configured database (and prediction log)."""

from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from loopml.abtest._analyze import Analysis
from loopml.abtest._assign import assign as assign_by_salt
from loopml.abtest._experiments import Experiment, SqlExperimentStore
from loopml.errors import InvalidInput

__all__ = [
    "analyze_experiment",
    "assign",
    "create_experiment",
    "deployment_predictions",
    "get_experiment",
    "get_experiment_store",
    "list_experiments",
    "log_event",
    "log_events",
    "log_exposure",
    "log_exposures",
    "stop_experiment",
]

_lock = threading.Lock()
_stores: dict[tuple[str, str], SqlExperimentStore] = {}


def get_experiment_store() -> SqlExperimentStore:
    """The (cached) experiment store of the configured database and workspace."""
    import sys

    from loopml.config import get_settings

    settings = get_settings()
    tracking = sys.modules.get("loopml.tracking")
    uri = (
        tracking.resolve_tracking_uri(None)
        if tracking is not None
        else (settings.tracking_uri or settings.resolved_database_uri)
    )
    if uri.startswith(("http://", "https://")):
        raise InvalidInput(
            "experiments are read and written where the database is; against a server use its "
            "/api/v1/abtests routes"
        )
    key = (uri, settings.workspace)
    with _lock:
        store = _stores.get(key)
        if store is None:
            store = _stores[key] = SqlExperimentStore(uri, workspace=settings.workspace)
        return store


def create_experiment(name: str, **spec: Any) -> Experiment:
    """Define and start an experiment (``variants={"control": 50, "treatment": 50}``,
    ``metrics=[...]``, ``guardrails=[...]``, ``allocation=``, ``deployment=``, ...)."""
    return get_experiment_store().create(Experiment(name=name, **spec))


def get_experiment(name: str) -> Experiment:
    """One experiment by name."""
    return get_experiment_store().get(name)


def list_experiments() -> list[Experiment]:
    """Every experiment of the workspace."""
    return get_experiment_store().list()


def stop_experiment(name: str, reason: str = "") -> Experiment:
    """Stop an experiment (no more exposures or events)."""
    return get_experiment_store().stop(name, reason)


def assign(
    experiment: str | Experiment,
    unit_id: str,
    variants: Sequence[tuple[str, float]] | None = None,
) -> str | None:
    """The variant of ``unit_id`` in ``experiment`` (None outside its allocation). With
    ``variants``, ``experiment`` is the salt itself (what the inference server's router does)."""
    if variants is not None:
        if not isinstance(experiment, str):
            raise InvalidInput("with variants=, experiment is the salt (a string)")
        return assign_by_salt(experiment, unit_id, variants)
    exp = experiment if isinstance(experiment, Experiment) else get_experiment(experiment)
    return exp.assign(unit_id)


def log_exposures(experiment: str, records: Sequence[Mapping[str, Any]]) -> int:
    """Record units' first exposures; returns how many units were new."""
    return get_experiment_store().log_exposures(experiment, records)


def log_exposure(
    experiment: str, unit_id: str, variant: str | None = None, *, timestamp: Any = None
) -> str:
    """Record one unit's exposure (variant: its assignment) and return its variant."""
    exp = get_experiment(experiment)
    chosen = variant or exp.assign(unit_id)
    record: dict[str, Any] = {"unit_id": unit_id, "variant": chosen, "timestamp": timestamp}
    log_exposures(experiment, [record])
    assert chosen is not None
    return chosen


def log_events(experiment: str, records: Sequence[Mapping[str, Any]]) -> int:
    """Record metric events (``unit_id``, ``metric``, ``value`` default 1, ``timestamp``)."""
    return get_experiment_store().log_events(experiment, records)


def log_event(
    experiment: str, unit_id: str, metric: str, value: float = 1.0, *, timestamp: Any = None
) -> None:
    """Record one metric event of a unit."""
    log_events(
        experiment,
        [{"unit_id": unit_id, "metric": metric, "value": value, "timestamp": timestamp}],
    )


def deployment_predictions(experiment: Experiment, monitor: Any = None) -> Any:
    """The prediction log of the experiment's deployment from the experiment's start to its
    stop (traffic after a stop is not the experiment's), with each answered prediction's
    correctness where an outcome arrived (for ``accuracy``); ``monitor`` defaults to the
    configured one."""
    if experiment.deployment is None:
        return None
    from loopml.monitoring import get_monitor, read_predictions

    monitor = monitor or get_monitor()
    since = None if experiment.created_at is None else experiment.created_at / 1000
    until = None if experiment.stopped_at is None else experiment.stopped_at / 1000
    df = read_predictions(
        monitor.log_uri, deployment=experiment.deployment, since=since, until=until
    )
    if df.empty:
        return df.assign(correct=[])
    ok = df["status"] == "ok"
    labelled = monitor.labelled(df[ok].reset_index(drop=True))
    known = labelled["outcome"].notna()
    same = labelled["predicted"].map(_label) == labelled["outcome"].map(_label)
    correct = same.astype(float).where(known)
    # every logged request is an exposure (failed ones too); only answers can be right or wrong
    out = df.assign(correct=np.nan)
    out.loc[ok.to_numpy(), "correct"] = correct.to_numpy()
    return out


def _label(value: Any) -> str:
    """Class labels compared as text, with 1, 1.0 and True the same."""
    if isinstance(value, bool):
        return str(int(value))
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def analyze_experiment(name: str, *, method: str | None = None, **kwargs: Any) -> Analysis:
    """Analyse an experiment (its deployment's logged units and outcomes included)."""
    store = get_experiment_store()
    experiment = store.get(name)
    return store.analyze(
        name, method=method, predictions=deployment_predictions(experiment), **kwargs
    )
