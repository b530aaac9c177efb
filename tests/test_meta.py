"""Meta-tests: the public surface is pinned, layering holds, every error is well-formed."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import loopml
import loopml.cli
import loopml.data
import loopml.features
import loopml.gates
import loopml.models
import loopml.registry
import loopml.server
import loopml.store
import loopml.tracking
from loopml import errors

SRC = Path(loopml.__file__).parent

# Lower layers may not import higher ones (DESIGN.md "Dependencies point one way").
LAYERS = {
    "config": 0,
    "errors": 0,
    "store": 1,
    "tracking": 2,
    "registry": 2,
    "models": 2,
    "monitoring": 2,
    "data": 2,
    "features": 2,
    "abtest": 2,
    "tuning": 3,
    "pipelines": 3,
    "gates": 3,
    "client": 3,
    "serving": 3,
    "server": 4,
    "cli": 5,
}


@pytest.mark.parametrize(
    "module",
    [
        loopml,
        loopml.tracking,
        loopml.data,
        loopml.features,
        loopml.gates,
        loopml.registry,
        loopml.models,
        loopml.store,
        loopml.server,
        loopml.cli,
        errors,
    ],
)
def test_all_is_sorted_and_complete(module: object) -> None:
    names = module.__all__  # type: ignore[attr-defined]
    assert list(names) == sorted(names)
    for name in names:
        assert hasattr(module, name), name


def test_sdk_surface_is_pinned() -> None:
    """Adding or removing a public name is a decision: update this list with it."""
    assert loopml.__all__ == [
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


def test_sdk_has_mlflow_names() -> None:
    for name in (
        "set_tracking_uri",
        "get_tracking_uri",
        "set_experiment",
        "start_run",
        "end_run",
        "active_run",
        "log_param",
        "log_params",
        "log_metric",
        "log_metrics",
        "set_tag",
        "set_tags",
        "log_artifact",
        "log_artifacts",
        "log_text",
        "log_dict",
        "log_figure",
        "get_run",
        "search_runs",
        "search_experiments",
        "Client",
        "flush",
    ):
        assert callable(getattr(loopml, name)), name


def _imports(path: Path) -> list[str]:
    tree = ast.parse(path.read_text())
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            out.append(node.module)
        elif isinstance(node, ast.Import):
            out.extend(a.name for a in node.names)
    return out


def _package(path: Path) -> str:
    rel = path.relative_to(SRC).with_suffix("")
    return rel.parts[0]


def test_layering() -> None:
    problems = []
    for path in SRC.rglob("*.py"):
        if (
            "_migrations" in path.parts
            or path.name in ("__init__.py", "__main__.py")
            and path.parent == SRC
        ):
            continue
        own = _package(path)
        own_layer = LAYERS.get(own)
        for mod in _imports(path):
            parts = mod.split(".")
            if parts[0] != "loopml" or len(parts) < 2:
                sql_users = (
                    "store",
                    "tracking",
                    "registry",
                    "serving",
                    "data",
                    "features",
                    "monitoring",
                    "abtest",
                    "pipelines",
                )
                # the server's identity store (users, tokens, grants, audit) is a SQL store
                sql_store = own in sql_users or path.relative_to(SRC).as_posix() == (
                    "server/_identity.py"
                )
                if parts[0] == "sqlalchemy" and not sql_store:
                    problems.append(f"{path.name}: only store/ and the SQL stores use SQLAlchemy")
                continue
            target = parts[1]
            if target == own:
                continue
            if own_layer is not None and LAYERS.get(target, 0) > own_layer:
                problems.append(f"{path.relative_to(SRC)} imports higher layer {mod}")
            if len(parts) > 2 and parts[2].startswith("_"):
                problems.append(f"{path.relative_to(SRC)} imports private {mod}")
    assert problems == []


@pytest.mark.parametrize(
    "cls", sorted(set(errors.ERRORS_BY_CODE.values()), key=lambda c: c.__name__)
)
def test_errors_have_code_and_status(cls: type[errors.LoopmlError]) -> None:
    assert cls.code and cls.code.isupper()
    assert 400 <= cls.http_status < 600
    assert errors.error_from_code(cls.code, "m", cls.http_status).__class__ is cls


def test_error_tree() -> None:
    assert issubclass(errors.InvalidInput, ValueError)
    assert issubclass(errors.NotFound, LookupError)
    assert not issubclass(errors.NotFound, KeyError)
    assert issubclass(errors.InvalidState, RuntimeError)
    assert issubclass(errors.MissingDependency, ImportError)
    assert errors.error_from_code("SOMETHING_NEW", "m", 404).__class__ is errors.NotFound


def test_test_module_names_are_unique() -> None:
    """Test folders have no __init__.py, so two test files with one name break collection."""
    tests = Path(__file__).parent
    names = [p.name for p in tests.rglob("test_*.py")]
    assert sorted({n for n in names if names.count(n) > 1}) == []
