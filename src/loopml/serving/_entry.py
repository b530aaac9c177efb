"""Building and running the inference server for a model URI or a deployment name.

``serve`` runs uvicorn; with ``workers > 1`` each worker process builds its own app from the
same options (passed in an environment variable) and they share nothing but the metadata store
and the prediction log's folder.
"""

from __future__ import annotations

import gc
import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from loopml.errors import InvalidInput
from loopml.serving._app import create_serving_app
from loopml.serving._batcher import BatchingConfig
from loopml.serving._http import MAX_BODY_BYTES

__all__ = [
    "ServeOptions",
    "app_from_env",
    "build_app",
    "check_target",
    "is_model_uri",
    "serve",
    "settle",
]

_ENV = "LOOPML_SERVE_OPTIONS"


def is_model_uri(target: str) -> bool:
    """Whether ``target`` is a model URI or folder (else it names a deployment)."""
    return ":/" in target or target.startswith((".", "/", "~")) or Path(target).exists()


@dataclass
class ServeOptions:
    """What ``loopml serve`` was asked to serve, and how."""

    target: str
    runtime: str = "auto"
    trusted: bool = False
    max_batch_size: int | None = None
    max_latency_ms: float | None = None
    max_queue: int | None = None
    max_body_bytes: int = MAX_BODY_BYTES
    log_predictions: bool = True
    prediction_log_uri: str | None = None
    follow_interval: float = 2.0
    drive_rollouts: bool = True

    def batching_override(self) -> dict[str, Any]:
        """The batching settings given on the command line (they override a deployment's)."""
        given = {
            "max_batch_size": self.max_batch_size,
            "max_latency_ms": self.max_latency_ms,
            "max_queue": self.max_queue,
        }
        return {k: v for k, v in given.items() if v is not None}


def build_app(options: ServeOptions) -> Any:
    """Load the target (warming every model) and return its app."""
    from loopml.serving._runtime import ModelRuntime
    from loopml.serving._service import InferenceService

    log = None
    if options.log_predictions:
        from loopml.monitoring import PredictionLog

        log = PredictionLog(options.prediction_log_uri)
    if is_model_uri(options.target):
        runtime = ModelRuntime.load(
            options.target, runtime=options.runtime, trusted=options.trusted
        )
        service = InferenceService.for_runtime(
            runtime,
            batching=BatchingConfig(**options.batching_override()),
            prediction_log=log,
        )
    else:
        from loopml.serving._deployments import get_deployment_store
        from loopml.serving._follow import build_service, prediction_log_stats

        service = build_service(
            get_deployment_store(),
            options.target,
            runtime=options.runtime,
            trusted=options.trusted,
            prediction_log=log,
            interval=options.follow_interval,
            stats=prediction_log_stats(options.prediction_log_uri)
            if options.drive_rollouts and log is not None
            else None,
            batching=options.batching_override(),
        )
    app = create_serving_app(service, max_body_bytes=options.max_body_bytes)
    from loopml.config import get_settings

    token = get_settings().serving_token
    if token:
        from loopml.serving._token import PredictToken

        return PredictToken(app, token)
    return app


def check_target(target: str) -> None:
    """Raise ``NotFound`` now if the model or deployment (and its models) cannot be found."""
    from loopml.models import pin_model_uri

    if is_model_uri(target):
        pin_model_uri(target)
        return
    from loopml.serving._deployments import get_deployment_store

    for variant in get_deployment_store().get_deployment(target).variants:
        pin_model_uri(variant.model_uri)


def app_from_env() -> Any:
    """The app of one worker process, built from the options the parent put in the env."""
    raw = os.environ.get(_ENV)
    if not raw:
        raise InvalidInput(f"{_ENV} is not set: start workers with loopml serve")
    return settle(build_app(ServeOptions(**json.loads(raw))))


def settle(app: Any) -> Any:
    """Collect start-up garbage once, then move what is loaded (modules, models) out of the
    garbage collector's view: its full collections then scan only request-time objects, which
    keeps them from pausing the server for tens of milliseconds under load."""
    gc.collect()
    gc.freeze()
    return app


def serve(
    options: ServeOptions, *, host: str = "127.0.0.1", port: int = 8080, workers: int = 1
) -> None:
    """Serve until interrupted; ``workers`` processes share the port."""
    import uvicorn

    kwargs: dict[str, Any] = {
        "host": host,
        "port": port,
        "log_level": "warning",
        "loop": "auto",
        "http": "auto",
        "access_log": False,
    }
    if workers <= 1:
        uvicorn.run(settle(build_app(options)), **kwargs)
        return
    check_target(options.target)  # fail here once, not in workers uvicorn would restart
    os.environ[_ENV] = json.dumps(asdict(options))
    uvicorn.run("loopml.serving._entry:app_from_env", factory=True, workers=workers, **kwargs)
