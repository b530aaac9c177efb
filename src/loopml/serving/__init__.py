"""Model serving: the inference server, deployments with canary / A/B / shadow routing and
gradual rollouts, and batch prediction.

``loopml serve MODEL_URI | DEPLOYMENT`` runs the server: native JSON (``/predict``,
``/predict/batch``), TF Serving v1 and KServe v2 protocols on one port, with ``/health``,
``/ready``, ``/model/info`` and Prometheus ``/metrics``; concurrent requests are micro-batched.
A deployment's server follows its changes by hot swap and drives its rollout.
"""

from __future__ import annotations

from loopml.serving._app import create_serving_app
from loopml.serving._batch import BatchResult, predict_batch
from loopml.serving._batcher import BatchingConfig
from loopml.serving._deployments import (
    Deployment,
    DeploymentEvent,
    DeploymentStore,
    Guardrails,
    Rollout,
    get_deployment_store,
)
from loopml.serving._entry import ServeOptions, build_app, serve, settle
from loopml.serving._follow import build_service, tick_rollout
from loopml.serving._runtime import ModelRuntime
from loopml.serving._service import InferenceService, Prediction, VariantSpec

__all__ = [
    "BatchResult",
    "BatchingConfig",
    "Deployment",
    "DeploymentEvent",
    "DeploymentStore",
    "Guardrails",
    "InferenceService",
    "ModelRuntime",
    "Prediction",
    "Rollout",
    "ServeOptions",
    "VariantSpec",
    "build_app",
    "build_service",
    "create_serving_app",
    "get_deployment_store",
    "predict_batch",
    "serve",
    "settle",
    "tick_rollout",
]
