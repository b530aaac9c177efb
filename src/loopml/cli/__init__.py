"""The ``loopml`` command line."""

from __future__ import annotations

from loopml.cli import _data, _deploy, _models  # noqa: F401 - register their commands
from loopml.cli._main import cli, main

__all__ = ["cli", "main"]
