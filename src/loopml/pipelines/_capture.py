"""Per-thread capture of what a step prints and logs, so that steps running side by side in
threads each keep their own log.

While any capture is active, ``sys.stdout`` and ``sys.stderr`` are routers: a write from a thread
that is capturing goes to that thread's buffer, any other write to the original stream. A
logging handler on the root logger does the same for log records.
"""

from __future__ import annotations

import io
import logging
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, TextIO

__all__ = ["LOG_LIMIT", "capture"]

LOG_LIMIT = 64 * 1024  # characters kept per step (the end, where failures are)
_local = threading.local()
_lock = threading.Lock()
_users = 0
_saved: tuple[TextIO, TextIO] | None = None


class _Router(io.TextIOBase):
    def __init__(self, original: TextIO) -> None:
        self.original = original

    def write(self, text: str) -> int:
        buffer: io.StringIO | None = getattr(_local, "buffer", None)
        if buffer is None:
            return self.original.write(text)
        return buffer.write(text)

    def flush(self) -> None:
        if getattr(_local, "buffer", None) is None:
            self.original.flush()

    def isatty(self) -> bool:
        return False

    def fileno(self) -> int:
        """The real stream's descriptor (a subprocess given it writes there, uncaptured)."""
        return self.original.fileno()

    @property
    def buffer(self) -> Any:
        return getattr(self.original, "buffer", None)

    @property
    def encoding(self) -> str:  # type: ignore[override]
        return getattr(self.original, "encoding", "utf-8")


class _Handler(logging.Handler):
    def emit(self, record: logging.LogRecord) -> None:
        buffer: io.StringIO | None = getattr(_local, "buffer", None)
        if buffer is None:
            # our handler on the root logger switches off logging's last resort: stand in for
            # it when nothing else would print the record
            root = logging.getLogger()
            last = logging.lastResort
            if last is not None and record.levelno >= last.level and root.handlers == [self]:
                last.handle(record)
            return
        try:
            buffer.write(self.format(record) + "\n")
        except Exception:  # noqa: BLE001 - logging must never break the step
            self.handleError(record)


_handler = _Handler()
_handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))


def _install() -> None:
    global _users, _saved
    with _lock:
        if _users == 0:
            _saved = (sys.stdout, sys.stderr)
            sys.stdout = _Router(sys.stdout)  # type: ignore[assignment]
            sys.stderr = _Router(sys.stderr)  # type: ignore[assignment]
            logging.getLogger().addHandler(_handler)
        _users += 1


def _uninstall() -> None:
    global _users, _saved
    with _lock:
        _users -= 1
        if _users == 0 and _saved is not None:
            # only undo our own routers: someone may have replaced the streams meanwhile
            if isinstance(sys.stdout, _Router):
                sys.stdout = _saved[0]
            if isinstance(sys.stderr, _Router):
                sys.stderr = _saved[1]
            logging.getLogger().removeHandler(_handler)
            _saved = None


@contextmanager
def capture() -> Iterator[list[str]]:
    """Capture this thread's prints and log records; the text is in the list on exit."""
    out: list[str] = []
    _install()
    previous: Any = getattr(_local, "buffer", None)
    buffer = io.StringIO()
    _local.buffer = buffer
    try:
        yield out
    finally:
        _local.buffer = previous
        _uninstall()
        text = buffer.getvalue()
        if len(text) > LOG_LIMIT:
            text = f"[... {len(text) - LOG_LIMIT} characters cut ...]\n" + text[-LOG_LIMIT:]
        out.append(text)
