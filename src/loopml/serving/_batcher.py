"""Adaptive micro-batching: concurrent requests to one model run as one model call.

Requests queue in a bounded queue; one worker task per model takes everything that is waiting
(up to ``max_batch_size`` rows) and runs it as one call in the model's own thread. While a batch
runs, new requests gather for the next one, so the batch size follows the load: one row when the
server is idle (no added latency), many under load (one call instead of many). With
``max_latency_ms`` above zero the worker also waits up to that long for a batch to fill, as
Triton's dynamic batcher does with its queue delay. A full queue refuses at once with
``Overloaded`` (503 with ``Retry-After``) instead of growing memory and latency without bound.

A batch that fails on bad input is retried one request at a time, so one client's bad row is that
client's 400 and not its neighbours'.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from loopml.errors import InvalidInput, LoopmlError, Overloaded, PredictionFailed

__all__ = ["Batcher", "BatchingConfig"]

_log = logging.getLogger("loopml.serving")


@dataclass(frozen=True)
class BatchingConfig:
    """How a model's requests are batched and how many may wait."""

    max_batch_size: int = 64
    max_latency_ms: float = 0.0
    max_queue: int = 1024

    def __post_init__(self) -> None:
        if self.max_batch_size < 1:
            raise InvalidInput("max_batch_size must be at least 1")
        if not 0 <= self.max_latency_ms <= 10_000:
            raise InvalidInput("max_latency_ms must be between 0 and 10000")
        if self.max_queue < 1:
            raise InvalidInput("max_queue must be at least 1")


class _Item:
    __slots__ = ("future", "records")

    def __init__(self, records: list[Any], future: asyncio.Future[list[Any]]) -> None:
        self.records = records
        self.future = future


class Batcher:
    """Gathers concurrent requests for one model and runs them as batched calls.

    ``predict`` takes a list of records and returns one output per record; it runs in a
    dedicated thread, one batch at a time.
    """

    def __init__(
        self,
        predict: Callable[[list[Any]], list[Any]],
        config: BatchingConfig | None = None,
        *,
        name: str = "model",
        on_batch: Callable[[int], None] | None = None,
    ) -> None:
        self._predict = predict
        self.config = config or BatchingConfig()
        self._on_batch = on_batch
        self._queue: deque[_Item] = deque()
        self._wakeup: asyncio.Event | None = None
        self._task: asyncio.Task[None] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._executor = ThreadPoolExecutor(1, thread_name_prefix=f"loopml-predict-{name}")
        self._current: list[_Item] = []  # the batch being filled or run
        self._closing = False

    @property
    def depth(self) -> int:
        """Requests waiting for a batch."""
        return len(self._queue)

    @property
    def idle(self) -> bool:
        """Nothing is queued or running."""
        return not self._queue and not self._current

    async def submit(self, records: list[Any]) -> list[Any]:
        """Predict ``records`` in the next batch; one output per record.

        Raises:
            Overloaded: the queue is full (the client should retry later).
            InvalidInput: the records do not fit the model.
        """
        if self._closing:
            raise Overloaded("this model is being replaced; retry")
        if len(self._queue) >= self.config.max_queue:
            raise Overloaded(
                f"the server is at capacity ({self.config.max_queue} requests waiting); retry"
            )
        loop = asyncio.get_running_loop()
        if self._loop is not loop or self._task is None or self._task.done():
            self._start(loop)
        future: asyncio.Future[list[Any]] = loop.create_future()
        self._queue.append(_Item(records, future))
        assert self._wakeup is not None
        self._wakeup.set()
        return await future

    def _start(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._wakeup = asyncio.Event()
        self._task = loop.create_task(self._run())

    async def drain(self, timeout: float = 30.0) -> None:
        """Refuse new requests, finish the queued ones, and stop the model thread."""
        self._closing = True
        deadline = time.monotonic() + timeout
        while not self.idle and time.monotonic() < deadline:
            await asyncio.sleep(0.005)
        self.close()

    def close(self) -> None:
        """Stop the worker; requests still queued fail with ``Overloaded``."""
        self._closing = True
        if self._task is not None and not self._task.done():
            self._task.cancel()
        _fail([*self._current, *self._queue])
        self._current = []
        self._queue.clear()
        self._executor.shutdown(wait=False)

    async def _run(self) -> None:
        assert self._wakeup is not None and self._loop is not None
        wakeup, loop = self._wakeup, self._loop
        while True:
            await wakeup.wait()
            wakeup.clear()
            while self._queue:
                batch = self._current = self._take()
                if not batch:
                    continue
                try:
                    if self.config.max_latency_ms > 0:
                        await self._fill(batch, wakeup)
                    results = await loop.run_in_executor(self._executor, self._call, batch)
                except BaseException:  # cancelled (closed) or the thread pool is gone
                    _fail(batch)
                    raise
                finally:
                    self._current = []
                for item, result in zip(batch, results, strict=True):
                    if item.future.done():  # the client went away
                        continue
                    if isinstance(result, BaseException):
                        item.future.set_exception(result)
                    else:
                        item.future.set_result(result)

    def _take(self, batch: list[_Item] | None = None) -> list[_Item]:
        batch = [] if batch is None else batch
        rows = sum(len(item.records) for item in batch)
        limit = self.config.max_batch_size
        while self._queue:
            nxt = len(self._queue[0].records)
            if batch and rows + nxt > limit:
                break
            item = self._queue.popleft()
            if item.future.done():
                continue
            batch.append(item)
            rows += nxt
        return batch

    async def _fill(self, batch: list[_Item], wakeup: asyncio.Event) -> None:
        deadline = time.monotonic() + self.config.max_latency_ms / 1000
        while sum(len(i.records) for i in batch) < self.config.max_batch_size:
            left = deadline - time.monotonic()
            if left <= 0:
                return
            wakeup.clear()
            try:
                await asyncio.wait_for(wakeup.wait(), left)
            except TimeoutError:
                return
            self._take(batch)

    def _call(self, batch: list[_Item]) -> list[Any]:
        """Run one batch in the model thread; a result or an exception per request."""
        records = [r for item in batch for r in item.records]
        if self._on_batch is not None:
            self._on_batch(len(records))
        try:
            outputs = self._predict(records)
        except InvalidInput as exc:
            if len(batch) == 1:
                return [exc]
            return [self._one(item.records) for item in batch]
        except LoopmlError as exc:
            return [exc] * len(batch)
        except Exception as exc:  # a model failure: every request in the batch gets it
            _log.error("the model failed on a batch of %d rows: %r", len(records), exc)
            failed = PredictionFailed(f"the model failed: {type(exc).__name__}: {exc}")
            return [failed] * len(batch)
        if len(outputs) != len(records):
            n, m = len(outputs), len(records)
            err = PredictionFailed(f"the model gave {n} outputs for {m} rows")
            return [err] * len(batch)
        results: list[Any] = []
        start = 0
        for item in batch:
            end = start + len(item.records)
            results.append(outputs[start:end])
            start = end
        return results

    def _one(self, records: list[Any]) -> Any:
        try:
            return self._predict(records)
        except LoopmlError as exc:
            return exc
        except Exception as exc:
            return PredictionFailed(f"the model failed: {type(exc).__name__}: {exc}")


def _fail(items: list[_Item]) -> None:
    """Answer every unanswered request with ``Overloaded`` (the client may retry)."""
    for item in items:
        if not item.future.done():
            item.future.set_exception(Overloaded("the model was unloaded; retry"))
