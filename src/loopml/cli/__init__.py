"""The ``loopml`` command line."""

from __future__ import annotations

from loopml.cli import (  # noqa: F401
    _abtest,
    _access,
    _data,
    _deploy,
    _features,
    _gates,
    _models,
    _monitor,
    _pipelines,
    _tuning,
)
from loopml.cli._main import cli, main

__all__ = ["cli", "main"]
