"""Objectives importable by other processes (the CLI, Ray workers)."""

from __future__ import annotations

import os
from typing import Any


def quadratic(trial: Any) -> float:
    x = trial.suggest_float("x", -10, 10)
    y = trial.suggest_int("y", 0, 5)
    trial.set_user_attr("pid", os.getpid())
    return (x - 2) ** 2 + y
