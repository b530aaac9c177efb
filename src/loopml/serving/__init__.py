"""Model serving: the inference server that loads a model by URI and answers predictions.

This first slice serves one model over the native JSON protocol (``/predict``,
``/predict/batch``) with ``/health``, ``/ready`` and ``/model/info``; ``loopml serve`` runs it.
"""

from __future__ import annotations

from loopml.serving._app import create_serving_app
from loopml.serving._batcher import BatchingConfig
from loopml.serving._runtime import ModelRuntime
from loopml.serving._service import InferenceService, Prediction, VariantSpec

__all__ = [
    "BatchingConfig",
    "InferenceService",
    "ModelRuntime",
    "Prediction",
    "VariantSpec",
    "create_serving_app",
    "serve",
]


def serve(
    model_uri: str,
    *,
    host: str = "127.0.0.1",
    port: int = 8080,
    runtime: str = "auto",
    trusted: bool = False,
) -> None:
    """Load ``model_uri``, warm it up, and serve it on ``host:port`` (blocking)."""
    import uvicorn

    app = create_serving_app(ModelRuntime.load(model_uri, runtime=runtime, trusted=trusted))
    uvicorn.run(app, host=host, port=port, log_level="warning")
