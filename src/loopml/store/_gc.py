"""Pausing the cyclic garbage collector around bulk work.

Reading or writing tens of thousands of rows allocates tens of thousands of tuples at once.
Each burst makes CPython run full collections that walk every object in the process (pandas,
SQLAlchemy and the user's own data): measured here at 50-80 ms per collection, more than the
database work itself. None of these rows form reference cycles, so the collector has nothing to
find in them; pausing it for the burst and restoring it after is safe. Nested and concurrent
pauses are counted, so the collector comes back on only when the last one ends, and only if it
was on before the first began.
"""

from __future__ import annotations

import contextlib
import gc
import os
import threading
from collections.abc import Iterator

_lock = threading.Lock()
_depth = 0
_was_enabled = False


@contextlib.contextmanager
def paused_gc() -> Iterator[None]:
    """Disable cyclic garbage collection for the duration of the block."""
    global _depth, _was_enabled
    with _lock:
        if _depth == 0:
            _was_enabled = gc.isenabled()
            gc.disable()
        _depth += 1
    try:
        yield
    finally:
        with _lock:
            _depth -= 1
            if _depth == 0 and _was_enabled:
                gc.enable()


def _reset_in_child() -> None:
    # A pause held by another thread at fork time would never end in the child.
    global _lock, _depth
    if _depth and _was_enabled:
        gc.enable()
    _lock = threading.Lock()
    _depth = 0


os.register_at_fork(after_in_child=_reset_in_child)
