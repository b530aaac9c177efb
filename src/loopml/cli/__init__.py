"""The ``loopml`` command line."""

from __future__ import annotations

from loopml.cli import _data, _deploy, _features, _models, _monitor  # noqa: F401 - register
from loopml.cli._main import cli, main

__all__ = ["cli", "main"]
