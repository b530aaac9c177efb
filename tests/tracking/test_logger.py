"""The background logger: back-pressure, flush at exit and on SIGTERM, error isolation."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Sequence
from pathlib import Path

import pytest

from loopml.errors import ServerUnreachable
from loopml.tracking import Metric, RunBatch, SqlTrackingStore
from loopml.tracking._logger import BatchLogger


class _SlowStore(SqlTrackingStore):
    """A real SQLite store whose writes take a while, so the queue fills up."""

    def __init__(self, *args: object, fail_first: int = 0, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.calls = 0
        self.fail_first = fail_first

    def write_batches(self, batches: Sequence[RunBatch]) -> None:
        self.calls += 1
        if self.calls <= self.fail_first:
            raise ServerUnreachable("simulated outage")
        time.sleep(0.005)
        super().write_batches(batches)


def _store(tmp_path: Path, **kwargs: object) -> _SlowStore:
    return _SlowStore(f"sqlite:///{tmp_path / 'l.db'}", str(tmp_path / "a"), **kwargs)


def test_full_queue_blocks_instead_of_dropping(tmp_path: Path) -> None:
    store = _store(tmp_path)
    run_id = store.create_run(store.get_default_experiment_id()).info.run_id
    logger = BatchLogger(store, queue_size=3, batch_size=2, flush_interval_ms=0)
    for i in range(200):
        logger.log_metrics(run_id, [Metric("m", float(i), 1, i)])
    logger.flush()
    assert [p.value for p in store.get_metric_history(run_id, "m")] == [
        float(i) for i in range(200)
    ]
    assert store.calls >= 50  # it really did write in many small batches


def test_transient_errors_are_retried(tmp_path: Path) -> None:
    store = _store(tmp_path, fail_first=2)
    run_id = store.create_run(store.get_default_experiment_id()).info.run_id
    logger = BatchLogger(store, flush_interval_ms=0)
    logger.log_metrics(run_id, [Metric("m", 1.0, 1, 0)])
    logger.flush()
    assert len(store.get_metric_history(run_id, "m")) == 1


def test_flush_from_many_threads(tmp_path: Path) -> None:
    store = _store(tmp_path)
    run_id = store.create_run(store.get_default_experiment_id()).info.run_id
    logger = BatchLogger(store)

    def work(n: int) -> None:
        for i in range(50):
            logger.log_metrics(run_id, [Metric(f"t{n}", float(i), 1, i)])
        logger.flush()

    threads = [threading.Thread(target=work, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for n in range(4):
        assert len(store.get_metric_history(run_id, f"t{n}")) == 50


_CHILD = textwrap.dedent(
    """
    import os, signal, sys, time
    import loopml
    run = loopml.start_run()
    print(run.info.run_id, flush=True)
    for i in range(5000):
        loopml.log_metric("m", float(i), step=i)
    if sys.argv[1] == "sigterm":
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(30)
    """
)


@pytest.mark.parametrize("how", ["exit", "sigterm"])
def test_logged_points_survive_exit_and_sigterm(tmp_path: Path, how: str) -> None:
    home = tmp_path / "home"
    env = {**os.environ, "LOOPML_HOME": str(home), "LOOPML_TRACKING_FLUSH_INTERVAL_MS": "5000"}
    proc = subprocess.run(
        [sys.executable, "-c", _CHILD, how], env=env, capture_output=True, text=True, timeout=120
    )
    if how == "sigterm":
        assert proc.returncode == 128 + signal.SIGTERM, proc.stderr
    else:
        assert proc.returncode == 0, proc.stderr
    run_id = proc.stdout.split()[0]
    store = SqlTrackingStore(f"sqlite:///{home / 'loopml.db'}", str(home / "artifacts"))
    assert len(store.get_metric_history(run_id, "m")) == 5000
    expected = "KILLED" if how == "sigterm" else "FINISHED"
    assert store.get_run(run_id).info.status == expected


def test_queued_points_are_written_without_a_flush(tmp_path: Path) -> None:
    """The writer does not wait for a flush: points land within the linger interval."""
    store = _store(tmp_path)
    run_id = store.create_run(store.get_default_experiment_id()).info.run_id
    logger = BatchLogger(store, flush_interval_ms=20)
    logger.log_metrics(run_id, [Metric("m", 1.0, 1, 0)])
    deadline = time.monotonic() + 10
    while not store.get_metric_history(run_id, "m"):
        assert time.monotonic() < deadline, "the point was never written"
        time.sleep(0.01)


def test_close_writes_then_stops_and_restarts_on_use(tmp_path: Path) -> None:
    store = _store(tmp_path)
    run_id = store.create_run(store.get_default_experiment_id()).info.run_id
    logger = BatchLogger(store, flush_interval_ms=1000)
    logger.log_metrics(run_id, [Metric("m", 1.0, 1, 0)])
    thread = logger._thread
    logger.close()
    assert thread is not None and not thread.is_alive()
    assert len(store.get_metric_history(run_id, "m")) == 1
    logger.log_metrics(run_id, [Metric("m", 2.0, 1, 1)])
    logger.flush()
    assert len(store.get_metric_history(run_id, "m")) == 2
