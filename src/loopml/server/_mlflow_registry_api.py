"""MLflow's model registry REST routes (``registered-models/*``, ``model-versions/*``)."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter()
