"""Asynchronous, batched logging of metrics, params, tags and run ends.

Callers put items on a bounded queue and return at once; one background thread takes everything
waiting (up to ``batch_size`` items, lingering up to ``flush_interval_ms`` for more), groups it per
run in logging order and writes it with one ``TrackingStore.write_batches`` call. A full queue
makes the caller wait: nothing is dropped. ``flush()`` returns once every item queued before it is
written. A run's items are written in the order they were logged.

Errors belong to the run whose records caused them: ``flush(run_id)`` raises only that run's,
``flush()`` every run's. When a batch is refused, it is split down to single records so that one
bad record costs nothing else, and a run's end is always attempted last.

On SIGTERM (when the program has no handler of its own) the main thread raises ``SystemExit``;
interpreter exit then ends the active runs as KILLED and flushes. After ``fork()`` the child gets
a fresh queue and writer thread.
"""

from __future__ import annotations

import atexit
import logging
import os
import queue
import signal
import threading
import time
import weakref
from collections.abc import Sequence
from itertools import repeat
from typing import Any

from loopml.errors import (
    InvalidInput,
    LoopmlError,
    NotFound,
    Overloaded,
    ServerUnreachable,
    StoreError,
)
from loopml.store import paused_gc
from loopml.tracking._base import TrackingStore
from loopml.tracking._entities import Metric, Param, RunBatch, RunTag

__all__ = ["BatchLogger"]

_log = logging.getLogger("loopml.tracking")

_METRIC, _PARAM, _TAG, _END, _FLUSH, _STOP, _COLUMNS = range(7)
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
        self._queue_size = queue_size
        self._batch_size = batch_size
        self._linger = flush_interval_ms / 1000.0
        self._reset()
        _loggers.add(self)

    def _reset(self) -> None:
        """Fresh queue, error table and (lazily) thread: at creation and in a forked child."""
        self._queue: queue.Queue[tuple[int, str, Any]] = queue.Queue(maxsize=self._queue_size)
        self._errors: dict[str, list[LoopmlError]] = {}
        self._errors_lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._start_lock = threading.Lock()
        self._wake = threading.Event()
        self._waiting = 0  # records queued since the writer last drained (approximate)
        self._flushes = 0  # flush or stop markers queued and not yet handled
        self._counter_lock = threading.Lock()

    # -- producer side -------------------------------------------------------------------------
    def _put(self, item: tuple[int, str, Any]) -> None:
        if self._thread is None:
            self._start()
        self._queue.put(item)  # blocks while full: back-pressure, never loss
        # Wake the writer early once a whole batch is waiting, so writing overlaps logging.
        self._waiting += self._size(item)
        if self._waiting >= self._batch_size:
            self._wake.set()

    def log_metrics(self, run_id: str, metrics: Sequence[Metric]) -> None:
        """Queue metric points of one run."""
        self._put((_METRIC, run_id, metrics))

    def log_metric_columns(
        self, run_id: str, keys: list[str], values: list[float], timestamp: int, step: int
    ) -> None:
        """Queue points of one run at one step as two lists: no object per point is kept
        waiting in the queue, so a large call adds nothing for the garbage collector to scan."""
        self._put((_COLUMNS, run_id, (keys, values, timestamp, step)))

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
        return self._thread is not None and self._queue.unfinished_tasks > 0

    def _post_marker(self, kind: int) -> _FlushMarker:
        """Queue a flush or stop marker and cut the writer's linger short."""
        marker = _FlushMarker()
        with self._counter_lock:
            self._flushes += 1
        self._queue.put((kind, "", marker))
        self._wake.set()
        return marker

    def wait(self, timeout: float | None = None) -> None:
        """Wait until everything queued so far is written (errors stay with their runs)."""
        if self._thread is not None and self._thread.is_alive():
            marker = self._post_marker(_FLUSH)
            if not marker.done.wait(timeout):
                raise StoreError(f"logged data was not written within {timeout} s")

    def close(self, timeout: float | None = 30.0) -> None:
        """Write everything queued, then stop the writer thread (it restarts if used again)."""
        thread = self._thread
        if thread is not None and thread.is_alive():
            self._post_marker(_STOP)
            thread.join(timeout)
        with self._start_lock:
            if self._thread is thread:
                self._thread = None

    def flush(self, run_id: str | None = None, timeout: float | None = None) -> None:
        """Wait until everything queued is written; raise the write errors of ``run_id``
        (of every run when None) since the last time they were raised."""
        self.wait(timeout)
        self.raise_errors(run_id)

    def raise_errors(self, run_id: str | None = None) -> None:
        """Raise (and forget) the first write error of a run, or of any run."""
        with self._errors_lock:
            if run_id is None:
                errors = [e for errs in self._errors.values() for e in errs]
                self._errors.clear()
            else:
                errors = self._errors.pop(run_id, [])
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
            # Linger for more without waking on every put (that would bounce the GIL between
            # the caller and this thread on each log call); not when a flush or a whole batch
            # is already waiting. Clearing first means no later wake-up can be missed.
            self._wake.clear()
            if (
                items[0][0] not in (_FLUSH, _STOP)
                and self._linger > 0
                and not self._flushes
                and self._waiting < self._batch_size
            ):
                self._wake.wait(self._linger)
            size = self._size(items[0])
            while size < self._batch_size and items[-1][0] not in (_FLUSH, _STOP):
                try:
                    item = q.get_nowait()
                except queue.Empty:
                    break
                items.append(item)
                size += self._size(item)
            self._waiting = max(0, self._waiting - size)
            try:
                with paused_gc():  # the batch's records live only until they are written
                    self._write(items)
            except BaseException as exc:  # the writer must survive anything
                self._record("", StoreError(f"logging failed: {exc!r}"))
            finally:
                for item in items:
                    if item[0] in (_FLUSH, _STOP):
                        with self._counter_lock:
                            self._flushes -= 1
                        item[2].done.set()
                    q.task_done()
            if items[-1][0] == _STOP:
                return

    @staticmethod
    def _size(item: tuple[int, str, Any]) -> int:
        kind, _, payload = item
        if kind == _COLUMNS:
            return len(payload[0])
        return len(payload) if kind in (_METRIC, _PARAM, _TAG) else 1

    def _write(self, items: list[tuple[int, str, Any]]) -> None:
        batches: list[RunBatch] = []
        open_batch: dict[str, RunBatch] = {}
        for kind, run_id, payload in items:
            if kind in (_FLUSH, _STOP):
                continue
            batch = open_batch.get(run_id)
            if batch is None or batch.status is not None:
                batch = open_batch[run_id] = RunBatch(run_id)
                batches.append(batch)
            if kind == _METRIC:
                batch.metrics.extend(payload)
            elif kind == _COLUMNS:
                keys, values, ts, step = payload
                n = len(keys)
                batch.metrics.extend(map(Metric, keys, values, repeat(ts, n), repeat(step, n)))
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
        except Exception:  # noqa: BLE001 - isolate the failure below, run by run
            for batch in batches:
                self._write_isolated(batch)

    def _write_isolated(self, batch: RunBatch) -> None:
        """Write one run's batch; if refused, write every record that can be, the end last."""
        try:
            self._write_with_retry([batch])
            return
        except Exception as exc:  # noqa: BLE001 - recorded for the run, then narrowed down
            self._record(batch.run_id, exc)
            if isinstance(exc, NotFound):
                return  # no such run: nothing of it can be written
        rid = batch.run_id
        # Each kind on its own first; a kind refused for a bad value goes record by record.
        if batch.params and not self._try([RunBatch(rid, params=batch.params)]):
            for param in batch.params:
                self._try([RunBatch(rid, params=[param])])
        if batch.tags and not self._try([RunBatch(rid, tags=batch.tags)]):
            for tag in batch.tags:
                self._try([RunBatch(rid, tags=[tag])])
        self._bisect_metrics(rid, batch.metrics)
        if batch.status is not None or batch.end_time is not None:
            self._try([RunBatch(rid, status=batch.status, end_time=batch.end_time)], report=True)

    def _bisect_metrics(self, run_id: str, metrics: list[Metric]) -> None:
        if not metrics:
            return
        try:
            self._write_with_retry([RunBatch(run_id, metrics=metrics)])
        except InvalidInput:
            if len(metrics) > 1:  # one bad point among good ones: find it by halves
                mid = len(metrics) // 2
                self._bisect_metrics(run_id, metrics[:mid])
                self._bisect_metrics(run_id, metrics[mid:])
        except Exception:  # noqa: BLE001 - a run-level refusal, already recorded
            pass

    def _try(self, batches: list[RunBatch], *, report: bool = False) -> bool:
        try:
            self._write_with_retry(batches)
            return True
        except Exception as exc:  # noqa: BLE001 - the batch's own error was recorded already
            if report:
                self._record(batches[0].run_id, exc)
            return False

    def _write_with_retry(self, batches: list[RunBatch]) -> None:
        for delay in (*_RETRY_DELAYS, None):
            try:
                self.store.write_batches(batches)
                return
            except _RETRYABLE:
                if delay is None:
                    raise
                time.sleep(delay)

    def _record(self, run_id: str, exc: BaseException) -> None:
        error = exc if isinstance(exc, LoopmlError) else StoreError(f"logging failed: {exc!r}")
        _log.warning("loopml logging error (run %s): %s", run_id or "?", error)
        with self._errors_lock:
            self._errors.setdefault(run_id, []).append(error)


_loggers: weakref.WeakSet[BatchLogger] = weakref.WeakSet()


def flush_all(timeout: float | None = 30.0) -> None:
    """Flush every live logger (interpreter exit); errors are logged, not raised."""
    for logger in list(_loggers):
        try:
            logger.flush(timeout=timeout)
        except LoopmlError as exc:
            _log.error("loopml: logged data could not be written: %s", exc)


atexit.register(flush_all)


def _after_fork_in_child() -> None:
    global _sigterm_allowed
    for logger in list(_loggers):
        logger._reset()
    # Forked workers (multiprocessing pools) are stopped with SIGTERM by their parent and must
    # die at once, as they would without loopml: they get the default handler back.
    _sigterm_allowed = False
    if signal.getsignal(signal.SIGTERM) is _on_sigterm:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)


os.register_at_fork(after_in_child=_after_fork_in_child)

terminating = False  # set when SIGTERM ends the process: active runs end as KILLED
_sigterm_allowed = True


def _on_sigterm(signum: int, frame: Any) -> None:
    global terminating
    terminating = True
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    raise SystemExit(128 + signum)


def _install_sigterm_handler() -> None:
    """On SIGTERM, exit through ``SystemExit`` so exit hooks end runs and flush.

    The handler itself takes no lock: it may interrupt the main thread inside ``queue.put``.
    Installed only from the main thread, only when nobody else handles SIGTERM, and not in
    forked children.
    """
    if not _sigterm_allowed or threading.current_thread() is not threading.main_thread():
        return
    if signal.getsignal(signal.SIGTERM) is not signal.SIG_DFL:
        return
    signal.signal(signal.SIGTERM, _on_sigterm)
