"""Asynchronous, batched logging of metrics, params, tags and run ends.

Callers put items on a bounded queue and return at once; one background thread takes everything
waiting (up to ``batch_size`` items, lingering up to ``flush_interval_ms`` for more), groups it per
run in logging order and writes it with one ``TrackingStore.write_batches`` call. A full queue
makes the caller wait: nothing is dropped. ``flush()`` returns once every item queued before it is
written, and raises the first write error since the previous flush. A run's items are written in
the order they were logged.
"""

from __future__ import annotations

import atexit
import logging
import queue
import signal
import threading
import time
import weakref
from collections.abc import Sequence
from typing import Any

from loopml.errors import InvalidInput, LoopmlError, Overloaded, ServerUnreachable, StoreError
from loopml.tracking._base import TrackingStore
from loopml.tracking._entities import Metric, Param, RunBatch, RunTag

__all__ = ["BatchLogger"]

_log = logging.getLogger("loopml.tracking")

_METRIC, _PARAM, _TAG, _END, _FLUSH = range(5)
_RETRYABLE = (ServerUnreachable, Overloaded)
_RETRY_DELAYS = (0.1, 0.3, 1.0, 2.0, 4.0, 8.0)


class _FlushMarker:
    __slots__ = ("done",)

    def __init__(self) -> None:
        self.done = threading.Event()


class BatchLogger:
    """A per-store background writer with a bounded queue."""

    def __init__(
        self,
        store: TrackingStore,
        *,
        queue_size: int = 100_000,
        batch_size: int = 5_000,
        flush_interval_ms: int = 50,
    ) -> None:
        self.store = store
        self._queue: queue.Queue[tuple[int, str, Any]] = queue.Queue(maxsize=queue_size)
        self._batch_size = batch_size
        self._linger = flush_interval_ms / 1000.0
        self._errors: list[LoopmlError] = []
        self._errors_lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._start_lock = threading.Lock()
        _loggers.add(self)

    # -- producer side -------------------------------------------------------------------------
    def _put(self, item: tuple[int, str, Any]) -> None:
        if self._thread is None:
            self._start()
        self._queue.put(item)  # blocks while full: back-pressure, never loss

    def log_metrics(self, run_id: str, metrics: Sequence[Metric]) -> None:
        """Queue metric points of one run."""
        self._put((_METRIC, run_id, metrics))

    def log_params(self, run_id: str, params: Sequence[Param]) -> None:
        """Queue params of one run."""
        self._put((_PARAM, run_id, params))

    def set_tags(self, run_id: str, tags: Sequence[RunTag]) -> None:
        """Queue tags of one run."""
        self._put((_TAG, run_id, tags))

    def end_run(self, run_id: str, status: str, end_time: int | None) -> None:
        """Queue a run's end (its status and end time), written after its earlier items."""
        self._put((_END, run_id, (status, end_time)))

    def has_pending(self) -> bool:
        """Whether anything queued may not be written yet."""
        return self._thread is not None and (self._queue.unfinished_tasks > 0)

    def flush(self, timeout: float | None = None) -> None:
        """Wait until everything queued so far is written; raise the first error seen since."""
        if self._thread is not None and self._thread.is_alive():
            marker = _FlushMarker()
            self._queue.put((_FLUSH, "", marker))
            if not marker.done.wait(timeout):
                raise StoreError(f"logged data was not written within {timeout} s")
        self.raise_errors()

    def raise_errors(self) -> None:
        """Raise (and forget) the first write error since the last call."""
        with self._errors_lock:
            errors, self._errors = self._errors, []
        if errors:
            first = errors[0]
            if len(errors) > 1:
                first = type(first)(f"{first} (and {len(errors) - 1} more logging errors)")
            raise first

    # -- consumer side -------------------------------------------------------------------------
    def _start(self) -> None:
        with self._start_lock:
            if self._thread is None:
                thread = threading.Thread(target=self._run, name="loopml-logger", daemon=True)
                thread.start()
                self._thread = thread
                _install_sigterm_handler()

    def _run(self) -> None:
        q = self._queue
        while True:
            items = [q.get()]
            size = self._size(items[0])
            deadline = time.monotonic() + self._linger
            while size < self._batch_size and items[-1][0] != _FLUSH:
                try:
                    item = q.get_nowait()
                except queue.Empty:
                    remaining = deadline - time.monotonic()
                    if remaining <= 0:
                        break
                    try:
                        item = q.get(timeout=remaining)
                    except queue.Empty:
                        break
                items.append(item)
                size += self._size(item)
            try:
                self._write(items)
            except BaseException as exc:  # the writer must survive anything
                self._record(StoreError(f"logging failed: {exc!r}"))
            finally:
                for item in items:
                    if item[0] == _FLUSH:
                        item[2].done.set()
                    q.task_done()

    @staticmethod
    def _size(item: tuple[int, str, Any]) -> int:
        kind, _, payload = item
        return len(payload) if kind in (_METRIC, _PARAM, _TAG) else 1

    def _write(self, items: list[tuple[int, str, Any]]) -> None:
        batches: list[RunBatch] = []
        open_batch: dict[str, RunBatch] = {}
        for kind, run_id, payload in items:
            if kind == _FLUSH:
                continue
            batch = open_batch.get(run_id)
            if batch is None or batch.status is not None:
                batch = open_batch[run_id] = RunBatch(run_id)
                batches.append(batch)
            if kind == _METRIC:
                batch.metrics.extend(payload)
            elif kind == _PARAM:
                batch.params.extend(payload)
            elif kind == _TAG:
                batch.tags.extend(payload)
            else:
                batch.status, batch.end_time = payload
        if not batches:
            return
        try:
            self._write_with_retry(batches)
        except LoopmlError:
            # Isolate the failure: write each run's batch alone, then without its params.
            for batch in batches:
                self._write_one(batch)

    def _write_one(self, batch: RunBatch) -> None:
        try:
            self._write_with_retry([batch])
            return
        except LoopmlError as exc:
            self._record(exc)
            if not (isinstance(exc, InvalidInput) and batch.params):
                return
        # A bad param must not cost the run its other params, metrics and tags.
        for param in batch.params:
            try:
                self._write_with_retry([RunBatch(batch.run_id, params=[param])])
            except LoopmlError:
                pass  # reported with the batch error above
        rest = RunBatch(batch.run_id, batch.metrics, [], batch.tags, batch.status, batch.end_time)
        try:
            self._write_with_retry([rest])
        except LoopmlError as exc:
            self._record(exc)

    def _write_with_retry(self, batches: list[RunBatch]) -> None:
        for delay in (*_RETRY_DELAYS, None):
            try:
                self.store.write_batches(batches)
                return
            except _RETRYABLE:
                if delay is None:
                    raise
                time.sleep(delay)

    def _record(self, exc: LoopmlError) -> None:
        _log.warning("loopml logging error: %s", exc)
        with self._errors_lock:
            self._errors.append(exc)


_loggers: weakref.WeakSet[BatchLogger] = weakref.WeakSet()


def flush_all(timeout: float | None = 30.0) -> None:
    """Flush every live logger (interpreter exit, SIGTERM); errors are logged, not raised."""
    for logger in list(_loggers):
        try:
            logger.flush(timeout)
        except LoopmlError as exc:
            _log.error("loopml: logged data could not be written: %s", exc)


atexit.register(flush_all)


def _install_sigterm_handler() -> None:
    """Flush on SIGTERM when nobody else handles it, then terminate as before."""
    if threading.current_thread() is not threading.main_thread():
        return
    if signal.getsignal(signal.SIGTERM) is not signal.SIG_DFL:
        return

    def _on_sigterm(signum: int, frame: Any) -> None:
        flush_all(timeout=10.0)
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        signal.raise_signal(signal.SIGTERM)

    signal.signal(signal.SIGTERM, _on_sigterm)
