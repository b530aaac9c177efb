"""Where step attempts run: threads (the default), processes, or Ray.

Every executor takes a ``StepTask`` and returns a ``concurrent.futures.Future`` of its
``StepResult``; ``cancel`` stops an attempt that ran out of time where the executor can (a
process is terminated, a Ray task cancelled; a thread cannot be stopped, so its result is
discarded when it finishes).
"""

from __future__ import annotations

import multiprocessing
import os
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, Protocol

from loopml.errors import InvalidInput, MissingDependency
from loopml.pipelines._execute import StepResult, StepTask, execute_step

__all__ = ["Executor", "ProcessExecutor", "RayExecutor", "ThreadExecutor", "make_executor"]


class Executor(Protocol):
    """Runs step attempts."""

    name: str

    def submit(self, task: StepTask) -> Future[StepResult]:
        """Start an attempt."""
        ...

    def cancel(self, future: Future[StepResult]) -> None:
        """Stop an attempt (if the executor can)."""
        ...

    def close(self) -> None:
        """Release workers."""
        ...


def _default_workers(threads: bool = False) -> int:
    cores = os.cpu_count() or 2
    return min(32, cores + 4) if threads else cores


def mark_started(future: Future[StepResult]) -> None:
    """Record when an attempt really began (its timeout counts from there)."""
    future.loopml_started = time.monotonic()  # type: ignore[attr-defined]


class ThreadExecutor:
    """Attempts on daemon threads of this process, at most ``max_workers`` at a time (a
    timed-out step that never returns does not keep the process from exiting)."""

    name = "threads"

    def __init__(self, max_workers: int | None = None) -> None:
        self._slots = threading.Semaphore(max_workers or _default_workers(threads=True))

    def submit(self, task: StepTask) -> Future[StepResult]:
        """Run ``task`` on a new daemon thread once a slot is free."""
        future: Future[StepResult] = Future()

        def work() -> None:
            with self._slots:
                if not future.set_running_or_notify_cancel():
                    return
                mark_started(future)
                future.set_result(execute_step(task))

        threading.Thread(target=work, name=f"loopml-step-{task.step}", daemon=True).start()
        return future

    def cancel(self, future: Future[StepResult]) -> None:
        """Threads cannot be stopped: a waiting attempt is dropped, a running one abandoned."""
        future.cancel()

    def close(self) -> None:
        """Nothing to release: attempts still running finish in the background."""


def _child(task: StepTask, conn: Any) -> None:
    try:
        conn.send("started")
        conn.send(execute_step(task))
    finally:
        conn.close()


class ProcessExecutor:
    """Each attempt in its own fresh process (``spawn``): isolated, and killable on timeout.

    The step's function travels by its module and name, so it must be importable (a module
    file, not a lambda or a function defined inside another function)."""

    name = "processes"

    def __init__(self, max_workers: int | None = None) -> None:
        self._ctx = multiprocessing.get_context("spawn")
        self._slots = threading.Semaphore(max_workers or _default_workers())
        self._waiters = ThreadPoolExecutor(64, thread_name_prefix="loopml-proc")
        self._procs: dict[int, Any] = {}
        self._lock = threading.Lock()

    def submit(self, task: StepTask) -> Future[StepResult]:
        """Start a process for ``task``."""
        if "<locals>" in task.function or "<lambda>" in task.function:
            raise InvalidInput(
                f"step {task.step!r} ({task.function}) cannot run in another process: define "
                "it at the top level of a module"
            )
        future: Future[StepResult] = Future()
        self._waiters.submit(self._run, task.without_function(), future)
        return future

    def _run(self, task: StepTask, future: Future[StepResult]) -> None:
        with self._slots:
            if not future.set_running_or_notify_cancel():
                return
            try:
                result = self._attempt(task, future)
            except BaseException as exc:  # noqa: BLE001 - the runner must always hear back
                result = StepResult(
                    ok=False,
                    error=f"the step's process could not run: {type(exc).__name__}: "
                    f"{exc} (a script that runs pipelines on processes needs "
                    "`if __name__ == '__main__':`)",
                )
            if not future.done():
                future.set_result(result)

    def _attempt(self, task: StepTask, future: Future[StepResult]) -> StepResult:
        parent, child = self._ctx.Pipe(duplex=False)
        proc = self._ctx.Process(target=_child, args=(task, child), daemon=True)
        try:
            proc.start()
        finally:
            child.close()
        with self._lock:
            self._procs[id(future)] = proc
        result: StepResult | None = None
        try:
            if parent.recv() == "started":  # imported and about to run: the clock starts
                mark_started(future)
            result = parent.recv()
        except (EOFError, OSError):
            result = None
        finally:
            proc.join()
            parent.close()
            with self._lock:
                self._procs.pop(id(future), None)
        if result is None:
            return StepResult(
                ok=False, error=f"the step's process ended with exit code {proc.exitcode}"
            )
        return result

    def cancel(self, future: Future[StepResult]) -> None:
        """Terminate the attempt's process."""
        if future.cancel():
            return
        with self._lock:
            proc = self._procs.get(id(future))
        if proc is not None and proc.is_alive():
            proc.terminate()

    def close(self) -> None:
        """Terminate what still runs."""
        with self._lock:
            procs = list(self._procs.values())
        for proc in procs:
            if proc.is_alive():
                proc.terminate()
        self._waiters.shutdown(wait=False, cancel_futures=True)


class RayExecutor:
    """Attempts as Ray tasks: on a local Ray started on first use, or the cluster at
    ``address`` (``ray://host:10001``, ``auto``). Workers need the same artifact store and
    database (shared paths, S3, PostgreSQL) and the steps' code."""

    name = "ray"

    def __init__(self, address: str | None = None, *, num_cpus: float = 1.0) -> None:
        try:
            import ray
        except ImportError as exc:
            raise MissingDependency(
                "the Ray executor needs the [ray] extra: pip install 'loopml[ray]'"
            ) from exc
        self._ray = ray
        if not ray.is_initialized():
            kwargs: dict[str, Any] = {"ignore_reinit_error": True, "log_to_driver": False}
            if address:
                kwargs["address"] = address
            else:
                kwargs["include_dashboard"] = False
            ray.init(**kwargs)
        self._remote = ray.remote(num_cpus=num_cpus, max_retries=0)(execute_step)
        self._refs: dict[int, Any] = {}

    def submit(self, task: StepTask) -> Future[StepResult]:
        """Submit ``task`` as a Ray task."""
        # by name (with the folder to import it from), unless only this process knows it
        if not task.function.startswith("__main__:") and "<locals>" not in task.function:
            task = task.without_function()
        ref = self._remote.remote(task)
        future: Future[StepResult] = ref.future()
        mark_started(future)  # Ray does not say when a task starts: its clock starts here
        self._refs[id(future)] = ref
        future.add_done_callback(lambda f: self._refs.pop(id(f), None))
        return future

    def cancel(self, future: Future[StepResult]) -> None:
        """Cancel the Ray task (its worker is killed)."""
        ref = self._refs.get(id(future))
        if ref is not None:
            self._ray.cancel(ref, force=True)

    def close(self) -> None:
        """Leave Ray running (it may serve the next run)."""


def make_executor(spec: str | Executor | None, max_workers: int | None = None) -> Executor:
    """An executor from its name: ``threads``, ``processes``, ``ray`` or ``ray://...``."""
    if spec is None:
        from loopml.config import get_settings

        spec = get_settings().pipeline_executor
    if not isinstance(spec, str):
        return spec
    if spec == "threads":
        return ThreadExecutor(max_workers)
    if spec == "processes":
        return ProcessExecutor(max_workers)
    if spec == "ray":
        return RayExecutor()
    if spec.startswith(("ray://", "ray:")):
        address = spec[len("ray://") :] if spec.startswith("ray://") else spec[len("ray:") :]
        return RayExecutor("ray://" + address if spec.startswith("ray://") else address)
    raise InvalidInput(
        f"executor must be threads, processes, ray or ray://host:port, not {spec!r}"
    )
