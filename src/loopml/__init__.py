"""loopml: one pip install that runs the whole ML production loop.

``import loopml`` gives MLflow's tracking functions under the same names, so code written for
``mlflow`` ports by changing the import; ``loopml.Client`` addresses everything by id.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from loopml import errors

if TYPE_CHECKING:
    from loopml.client import Client
    from loopml.models import (
        LoadedModel,
        ModelInfo,
        PythonModel,
        Signature,
        infer_signature,
        load_model,
        log_model,
        register_model,
        save_model,
    )
    from loopml.tracking import (
        ActiveRun,
        Experiment,
        FileInfo,
        LifecycleStage,
        Metric,
        PagedList,
        Param,
        RestTrackingStore,
        Run,
        RunBatch,
        RunData,
        RunInfo,
        RunStatus,
        RunTag,
        SqlTrackingStore,
        TrackingStore,
        ViewType,
        active_run,
        create_experiment,
        delete_experiment,
        delete_run,
        delete_tag,
        end_run,
        flush,
        flush_async_logging,
        get_artifact_uri,
        get_experiment,
        get_experiment_by_name,
        get_parent_run,
        get_run,
        get_store,
        get_tracking_uri,
        last_active_run,
        log_artifact,
        log_artifacts,
        log_dict,
        log_figure,
        log_metric,
        log_metrics,
        log_param,
        log_params,
        log_text,
        search_experiments,
        search_runs,
        set_experiment,
        set_experiment_tag,
        set_experiment_tags,
        set_tag,
        set_tags,
        set_tracking_uri,
        start_run,
    )

    MlflowClient = Client

# Everything else loads on first use, so `loopml <command>` and `import loopml.data` do not pay
# for tracking, the registry and model flavors they do not touch.
_LAZY: dict[str, str] = {
    "ActiveRun": "loopml.tracking",
    "Client": "loopml.client",
    "Experiment": "loopml.tracking",
    "FileInfo": "loopml.tracking",
    "LifecycleStage": "loopml.tracking",
    "LoadedModel": "loopml.models",
    "Metric": "loopml.tracking",
    "MlflowClient": "loopml.client",
    "ModelInfo": "loopml.models",
    "PagedList": "loopml.tracking",
    "Param": "loopml.tracking",
    "PythonModel": "loopml.models",
    "RestTrackingStore": "loopml.tracking",
    "Run": "loopml.tracking",
    "RunBatch": "loopml.tracking",
    "RunData": "loopml.tracking",
    "RunInfo": "loopml.tracking",
    "RunStatus": "loopml.tracking",
    "RunTag": "loopml.tracking",
    "Signature": "loopml.models",
    "SqlTrackingStore": "loopml.tracking",
    "TrackingStore": "loopml.tracking",
    "ViewType": "loopml.tracking",
    "active_run": "loopml.tracking",
    "create_experiment": "loopml.tracking",
    "delete_experiment": "loopml.tracking",
    "delete_run": "loopml.tracking",
    "delete_tag": "loopml.tracking",
    "end_run": "loopml.tracking",
    "flush": "loopml.tracking",
    "flush_async_logging": "loopml.tracking",
    "get_artifact_uri": "loopml.tracking",
    "get_experiment": "loopml.tracking",
    "get_experiment_by_name": "loopml.tracking",
    "get_parent_run": "loopml.tracking",
    "get_run": "loopml.tracking",
    "get_store": "loopml.tracking",
    "get_tracking_uri": "loopml.tracking",
    "infer_signature": "loopml.models",
    "last_active_run": "loopml.tracking",
    "load_model": "loopml.models",
    "log_artifact": "loopml.tracking",
    "log_artifacts": "loopml.tracking",
    "log_dict": "loopml.tracking",
    "log_figure": "loopml.tracking",
    "log_metric": "loopml.tracking",
    "log_metrics": "loopml.tracking",
    "log_model": "loopml.models",
    "log_outcome": "loopml.monitoring",
    "log_outcomes": "loopml.monitoring",
    "log_param": "loopml.tracking",
    "log_params": "loopml.tracking",
    "log_text": "loopml.tracking",
    "register_model": "loopml.models",
    "save_model": "loopml.models",
    "search_experiments": "loopml.tracking",
    "search_runs": "loopml.tracking",
    "set_experiment": "loopml.tracking",
    "set_experiment_tag": "loopml.tracking",
    "set_experiment_tags": "loopml.tracking",
    "set_tag": "loopml.tracking",
    "set_tags": "loopml.tracking",
    "set_tracking_uri": "loopml.tracking",
    "start_run": "loopml.tracking",
    "tune": "loopml.tuning",
}

__version__ = "0.1.0"

__all__ = [
    "ActiveRun",
    "Client",
    "Experiment",
    "FileInfo",
    "LifecycleStage",
    "LoadedModel",
    "Metric",
    "MlflowClient",
    "ModelInfo",
    "PagedList",
    "Param",
    "PythonModel",
    "RestTrackingStore",
    "Run",
    "RunBatch",
    "RunData",
    "RunInfo",
    "RunStatus",
    "RunTag",
    "Signature",
    "SqlTrackingStore",
    "TrackingStore",
    "ViewType",
    "__version__",
    "active_run",
    "create_experiment",
    "delete_experiment",
    "delete_run",
    "delete_tag",
    "end_run",
    "errors",
    "flush",
    "flush_async_logging",
    "get_artifact_uri",
    "get_experiment",
    "get_experiment_by_name",
    "get_parent_run",
    "get_run",
    "get_store",
    "get_tracking_uri",
    "infer_signature",
    "last_active_run",
    "load_model",
    "log_artifact",
    "log_artifacts",
    "log_dict",
    "log_figure",
    "log_metric",
    "log_metrics",
    "log_model",
    "log_outcome",
    "log_outcomes",
    "log_param",
    "log_params",
    "log_text",
    "register_model",
    "save_model",
    "search_experiments",
    "search_runs",
    "set_experiment",
    "set_experiment_tag",
    "set_experiment_tags",
    "set_tag",
    "set_tags",
    "set_tracking_uri",
    "start_run",
    "tune",
]

# MLflow's per-flavor modules (``mlflow.sklearn.log_model`` ...), loaded on first use.
_FLAVOR_MODULES = ("lightgbm", "onnx", "pyfunc", "sklearn", "xgboost")


def __getattr__(name: str) -> object:
    module_name = _LAZY.get(name)
    if module_name is not None:
        import importlib

        value = getattr(
            importlib.import_module(module_name), "Client" if name == "MlflowClient" else name
        )
        globals()[name] = value
        return value
    if name in _FLAVOR_MODULES:
        import importlib

        module = importlib.import_module(f"loopml.models.{name}")
        globals()[name] = module
        return module
    if name == "data":  # ``loopml.data.log_dataset(...)`` after a bare ``import loopml``
        import importlib

        module = importlib.import_module("loopml.data")
        globals()[name] = module
        return module
    raise AttributeError(f"module 'loopml' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__, *_FLAVOR_MODULES, "data"})
