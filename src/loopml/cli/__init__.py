"""The ``loopml`` command line."""

from __future__ import annotations

from loopml.cli import _models  # noqa: F401 - registers `loopml models`
from loopml.cli._main import cli, main

__all__ = ["cli", "main"]
