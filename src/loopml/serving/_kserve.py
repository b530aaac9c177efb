"""KServe's Open Inference Protocol (v2) routes: being written."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

__all__ = ["kserve_router"]


def kserve_router(service: Any) -> APIRouter:
    """The v2 routes for ``service``."""
    return APIRouter(tags=["kserve-v2"])
