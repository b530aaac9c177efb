"""loopml: one pip install that runs the whole ML production loop.

``import loopml`` gives MLflow's tracking functions under the same names, so code written for
``mlflow`` ports by changing the import; ``loopml.Client`` addresses everything by id.
"""

from __future__ import annotations

from loopml import errors
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

MlflowClient = Client  # MLflow's name, so `MlflowClient()` code ports unchanged

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
]

# MLflow's per-flavor modules (``mlflow.sklearn.log_model`` ...), loaded on first use.
_FLAVOR_MODULES = ("lightgbm", "onnx", "pyfunc", "sklearn", "xgboost")


def __getattr__(name: str) -> object:
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
