"""The ``loopml`` command line."""

from __future__ import annotations

from loopml.cli import _data, _deploy, _features, _models  # noqa: F401 - register commands
from loopml.cli._main import cli, main

__all__ = ["cli", "main"]
