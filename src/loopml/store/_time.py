"""Timestamps as the metadata tables keep them: milliseconds since the epoch, UTC."""

from __future__ import annotations

import math
import numbers
import time
from datetime import UTC, datetime
from typing import Any

from loopml.errors import InvalidInput

__all__ = ["epoch_ms", "now_ms"]


def now_ms() -> int:
    """Now, in milliseconds since the epoch."""
    return time.time_ns() // 1_000_000


def epoch_ms(value: Any, what: str) -> int:
    """A datetime (naive means UTC), ISO 8601 text or epoch seconds as epoch milliseconds;
    None is now. ``what`` names the field in the error."""
    if value is None:
        return now_ms()
    if isinstance(value, datetime):
        value = value if value.tzinfo else value.replace(tzinfo=UTC)
        return int(value.timestamp() * 1000)
    if isinstance(value, numbers.Real) and not isinstance(value, bool):
        seconds = float(value)
        if math.isfinite(seconds) and 0 <= seconds < 1e11:
            return int(seconds * 1000)
    if isinstance(value, str):
        try:
            return epoch_ms(datetime.fromisoformat(value.replace("Z", "+00:00")), what)
        except ValueError:
            pass
    raise InvalidInput(f"{what} must be a datetime, ISO 8601 text or epoch seconds")
