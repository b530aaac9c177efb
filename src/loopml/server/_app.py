"""Assembles the control-plane ASGI app: routers, error handlers, health."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

import loopml
from loopml.config import Settings, get_settings
from loopml.errors import InvalidInput, LoopmlError
from loopml.registry import SqlRegistryStore
from loopml.server._mlflow_common import (
    COMPAT_PATH_PREFIXES,
    ArtifactUris,
    include_twice,
    mlflow_error,
)
from loopml.tracking import SqlTrackingStore

_log = logging.getLogger("loopml.server")

_STATUS_CODES = {
    400: "BAD_REQUEST",
    401: "UNAUTHENTICATED",
    403: "PERMISSION_DENIED",
    404: "ENDPOINT_NOT_FOUND",
    405: "METHOD_NOT_ALLOWED",
    409: "CONFLICT",
    413: "REQUEST_TOO_LARGE",
    415: "UNSUPPORTED_MEDIA_TYPE",
}


def create_app(
    settings: Settings | None = None,
    *,
    database_uri: str | None = None,
    artifact_uri: str | None = None,
    require_auth: bool = False,
) -> Any:
    """The loopml server app over the configured (or given) database and artifact root;
    requests need a token once a user exists (or always, with ``require_auth``)."""
    from loopml.abtest import SqlExperimentStore
    from loopml.data import SqlDatasetStore
    from loopml.monitoring import SqlMonitorStore
    from loopml.pipelines import SqlPipelineStore
    from loopml.server._abtest_api import router as abtest_router
    from loopml.server._admin_api import router as admin_router
    from loopml.server._auth import AccessControl
    from loopml.server._data_api import router as datasets_router
    from loopml.server._deploy_api import router as deployments_router
    from loopml.server._features_api import OnlineFastPath
    from loopml.server._features_api import router as features_router
    from loopml.server._identity import SqlIdentityStore
    from loopml.server._limits import BodyLimit, BodyTimeout
    from loopml.server._mlflow_api import artifacts_router as mlflow_artifacts_router
    from loopml.server._mlflow_api import router as mlflow_tracking_router
    from loopml.server._mlflow_registry_api import router as mlflow_registry_router
    from loopml.server._monitoring_api import router as monitoring_router
    from loopml.server._pipelines_api import router as pipelines_router
    from loopml.server._registry_api import router as registry_router
    from loopml.server._session_api import router as session_router
    from loopml.server._tracking_api import router as tracking_router
    from loopml.server._ui import mount_ui
    from loopml.serving import get_deployment_store

    settings = settings or get_settings()
    store = SqlTrackingStore(
        database_uri or settings.resolved_database_uri,
        artifact_uri or settings.resolved_artifact_uri,
        workspace=settings.workspace,
        confine_artifacts=True,
    )
    registry = SqlRegistryStore(
        store.db, store.artifact_root, workspace=settings.workspace, confine_artifacts=True
    )

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        registry.start_webhook_dispatcher()  # webhook deliveries written by any process
        yield
        registry.close()
        for feature_store in app.state.feature_stores.values():
            feature_store.close()

    app = FastAPI(
        lifespan=lifespan,
        title="loopml",
        version=loopml.__version__,
        description="The loopml control plane: experiment tracking and the model registry.",
    )
    app.router.redirect_slashes = False
    app.state.tracking_store = store
    app.state.registry_store = registry
    app.include_router(tracking_router)
    app.include_router(registry_router)
    # the tracking store's database: open_database gives the same one (opened once per process)
    app.state.deployment_store = get_deployment_store(store.db.uri, workspace=settings.workspace)
    app.include_router(deployments_router)
    app.state.dataset_store = SqlDatasetStore(
        store.db, store.artifact_root, workspace=settings.workspace
    )
    app.include_router(datasets_router)
    app.state.workspace = settings.workspace
    app.state.database_uri = store.db.uri
    app.state.feature_stores = {}
    app.include_router(features_router)
    app.state.monitor_store = SqlMonitorStore(store.db, workspace=settings.workspace)
    app.state.prediction_log_uri = settings.prediction_log_uri
    app.include_router(monitoring_router)
    app.state.experiment_store = SqlExperimentStore(store.db, workspace=settings.workspace)
    app.include_router(abtest_router)
    app.state.pipeline_store = SqlPipelineStore(
        store.db,
        workspace=settings.workspace,
        artifact_uri=artifact_uri or settings.resolved_artifact_uri,
    )
    app.include_router(pipelines_router)
    app.state.mlflow_artifacts = ArtifactUris(store.artifact_root)
    include_twice(app, mlflow_tracking_router, tag="mlflow")
    include_twice(app, mlflow_registry_router, tag="mlflow registry")
    app.include_router(mlflow_artifacts_router, tags=["mlflow artifacts"])

    @app.get("/health", tags=["health"])
    def health() -> dict[str, Any]:
        """Liveness and the database's schema revision."""
        return {"status": "ok", "version": loopml.__version__}

    app.add_exception_handler(LoopmlError, _loopml_error)  # type: ignore[arg-type]
    app.add_exception_handler(RequestValidationError, _validation_error)  # type: ignore[arg-type]
    app.add_exception_handler(StarletteHTTPException, _http_error)  # type: ignore[arg-type]
    app.add_exception_handler(Exception, _unexpected_error)
    app.state.identity_store = SqlIdentityStore(store.db)
    app.include_router(admin_router)
    app.include_router(session_router)
    mount_ui(app)
    # access control in front of everything (the online-features fast path included), and a
    # timeout on request bodies in front of that
    limited = BodyLimit(OnlineFastPath(app), settings.max_request_mb * 1024 * 1024)
    guarded = AccessControl(
        limited,
        app.state.identity_store,
        default_workspace=settings.workspace,
        require_auth=require_auth,
    )
    return BodyTimeout(guarded, settings.body_timeout_s)  # outermost: times every body read


def error_response(status: int, code: str, message: str) -> JSONResponse:
    """The one error body shape: ``{"error_code", "message"}``."""
    return JSONResponse({"error_code": code, "message": message}, status_code=status)


async def _loopml_error(request: Request, exc: LoopmlError) -> JSONResponse:
    if exc.http_status >= 500:
        _log.error("%s %s failed: %s", request.method, request.url.path, exc)
    if request.url.path.startswith(COMPAT_PATH_PREFIXES):  # MLflow's codes and statuses
        status, code = mlflow_error(exc)
        return error_response(status, code, str(exc))
    return error_response(exc.http_status, exc.code, str(exc))


async def _validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
    problems = []
    for err in exc.errors():
        loc = [str(p) for p in err.get("loc", ()) if p != "body"]
        where = ".".join(loc) or "body"
        problems.append(f"{where}: {err.get('msg', 'invalid')}")
    return error_response(400, InvalidInput.code, "invalid request: " + "; ".join(problems))


async def _http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
    code = _STATUS_CODES.get(exc.status_code, "HTTP_ERROR")
    detail = exc.detail if isinstance(exc.detail, str) else str(exc.detail)
    if exc.status_code == 404:
        detail = f"no route {request.method} {request.url.path}"
    return error_response(exc.status_code, code, detail)


async def _unexpected_error(request: Request, exc: Exception) -> JSONResponse:
    _log.exception("%s %s failed", request.method, request.url.path)
    return error_response(500, "INTERNAL_ERROR", f"internal error: {type(exc).__name__}")
