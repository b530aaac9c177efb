"""The ``loopml`` command line."""

from __future__ import annotations

from loopml.cli import _deploy, _models  # noqa: F401 - register `loopml deploy`, `models`
from loopml.cli._main import cli, main

__all__ = ["cli", "main"]
