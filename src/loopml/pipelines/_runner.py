"""Running a DAG: start each step when its inputs are ready (independent steps in parallel),
reuse cached outputs, retry with backoff, enforce timeouts, skip what a failure cuts off, and
record every transition in the store.

The cache key of a step is the SHA-256 of: the cache format version, the function's
``module:qualname``, the hash of its source (and ``version=``), its parameters, the content
hashes of its inputs and its output names. The step's name is not part of it: the same function
on the same inputs is the same computation in any pipeline of the workspace.
"""

from __future__ import annotations

import hashlib
import time
from concurrent.futures import FIRST_COMPLETED, Future, wait
from typing import Any

import orjson

from loopml.pipelines._capture import LOG_LIMIT
from loopml.pipelines._dag import DAG, StepNode, module_path
from loopml.pipelines._entities import RunStatus, StepRun, StepStatus
from loopml.pipelines._execute import StepResult, StepTask
from loopml.pipelines._executors import Executor
from loopml.pipelines._store import SqlPipelineStore
from loopml.pipelines._values import ref_exists
from loopml.store import ArtifactStore, now_ms

__all__ = ["CACHE_FORMAT", "cache_key", "execute_dag"]

CACHE_FORMAT = 1
HEARTBEAT_SECONDS = 10.0  # a running run touches its row this often; see Scheduler.reap


def cache_key(node: StepNode, inputs: dict[str, dict[str, Any]]) -> str:
    """The step's cache key (see the module docstring for what goes in)."""
    payload = {
        "format": CACHE_FORMAT,
        "function": node.step.function_ref,
        "source": node.step.source_hash,
        "params": node.params,
        "inputs": {arg: ref["hash"] for arg, ref in inputs.items()},
        "outputs": list(node.step.outputs),
    }
    return hashlib.sha256(orjson.dumps(payload, option=orjson.OPT_SORT_KEYS)).hexdigest()


def _last_line(error: str | None) -> str:
    lines = [ln for ln in (error or "").strip().splitlines() if ln.strip()]
    return lines[-1].strip() if lines else "unknown error"


class _Run:
    def __init__(
        self,
        *,
        pipeline: str,
        dag: DAG,
        run_id: str,
        store: SqlPipelineStore,
        executor: Executor,
        artifacts: ArtifactStore,
        cache: bool,
        reuse: dict[str, StepRun],
        reuse_from: str | None,
        tracking_uri: str | None,
    ) -> None:
        self.pipeline, self.dag, self.run_id = pipeline, dag, run_id
        self.store, self.executor, self.artifacts = store, executor, artifacts
        self.cache, self.reuse, self.reuse_from = cache, reuse, reuse_from
        self.tracking_uri = tracking_uri
        self.status = {name: StepStatus.PENDING for name in dag.nodes}
        self.results: dict[str, dict[str, dict[str, Any]]] = {}
        self.attempts = dict.fromkeys(dag.nodes, 0)
        self.logs: dict[str, list[str]] = {name: [] for name in dag.nodes}
        self.errors: dict[str, str] = {}
        self.keys: dict[str, str] = {}
        self.inputs: dict[str, dict[str, dict[str, Any]]] = {}
        self.running: dict[Future[StepResult], tuple[str, float | None]] = {}  # -> timeout
        self.beat = time.monotonic()
        self.waiting: dict[str, float] = {}  # retries: step -> when

    # -- steps --------------------------------------------------------------------------------
    def _ready(self, node: StepNode) -> None:
        inputs = {arg: self.results[out.step][out.name] for arg, out in node.inputs.items()}
        key = cache_key(node, inputs)
        self.keys[node.name], self.inputs[node.name] = key, inputs
        recorded_inputs = {
            arg: {**ref, "from": f"{node.inputs[arg].step}.{node.inputs[arg].name}"}
            for arg, ref in inputs.items()
        }
        hit = self._reusable(node, key)
        if hit is not None:
            source, outputs = hit
            now = now_ms()
            self.status[node.name] = StepStatus.CACHED
            self.results[node.name] = outputs
            self.store.update_step(
                self.run_id,
                node.name,
                status=StepStatus.CACHED,
                cache_key=key,
                cached_from=source,
                inputs=recorded_inputs,
                outputs=outputs,
                started_at=now,
                ended_at=now,
            )
            return
        self._submit(node.name, cache_key=key, inputs=recorded_inputs, started_at=now_ms())

    def _reusable(self, node: StepNode, key: str) -> tuple[str, dict[str, Any]] | None:
        prior = self.reuse.get(node.name)
        if (
            prior is not None
            and prior.status in StepStatus.DONE
            and prior.cache_key == key
            and self._exists(prior.outputs)
        ):
            return prior.cached_from or str(self.reuse_from), prior.outputs
        if self.cache and node.step.cache:
            found = self.store.find_cached(key)
            if found is not None and self._exists(found[1]):
                return found
        return None

    def _exists(self, outputs: dict[str, Any]) -> bool:
        return bool(outputs) and all(ref_exists(ref, self.artifacts) for ref in outputs.values())

    def _submit(self, name: str, **first: Any) -> None:
        node = self.dag.nodes[name]
        self.attempts[name] += 1
        attempt = self.attempts[name]
        task = StepTask(
            run_id=self.run_id,
            step=name,
            attempt=attempt,
            function=node.step.function_ref,
            params=node.params,
            inputs=self.inputs[name],
            outputs=node.step.outputs,
            artifact_uri=self.artifacts.root,
            prefix=f"pipelines/{self.pipeline}/{self.run_id}/{name}/attempt-{attempt}",
            tracking_uri=self.tracking_uri,
            search_path=module_path(node.step.fn),
            fn=node.step.fn,
            pipeline=self.pipeline,
        )
        self.status[name] = StepStatus.RUNNING
        self.store.update_step(
            self.run_id, name, status=StepStatus.RUNNING, attempts=attempt, **first
        )
        try:
            future = self.executor.submit(task)
        except Exception as exc:  # noqa: BLE001 - a step that cannot start has failed
            self.attempts[name] = node.step.retries + 1  # retrying cannot help
            self._finished(name, StepResult(ok=False, error=f"{type(exc).__name__}: {exc}"))
            return
        self.running[future] = (name, node.step.timeout)

    def _finished(self, name: str, result: StepResult) -> None:
        node = self.dag.nodes[name]
        attempt = self.attempts[name]
        if result.logs or not result.ok:
            header = f"--- attempt {attempt} ---\n" if node.step.retries else ""
            self.logs[name].append(header + result.logs)
        logs = "".join(self.logs[name])[-LOG_LIMIT:]
        if result.ok:
            self.status[name] = StepStatus.SUCCEEDED
            self.results[name] = result.outputs
            self.store.update_step(
                self.run_id,
                name,
                status=StepStatus.SUCCEEDED,
                outputs=result.outputs,
                logs=logs,
                error=None,
                tracking_runs=result.tracking_runs,
                ended_at=now_ms(),
            )
            return
        self.errors[name] = result.error or "unknown error"
        if attempt <= node.step.retries:
            delay = node.step.retry_delay * node.step.backoff ** (attempt - 1)
            self.waiting[name] = time.monotonic() + delay
            self.status[name] = StepStatus.RETRYING
            self.store.update_step(
                self.run_id, name, status=StepStatus.RETRYING, logs=logs, error=result.error
            )
            return
        self.status[name] = StepStatus.FAILED
        self.store.update_step(
            self.run_id,
            name,
            status=StepStatus.FAILED,
            logs=logs,
            error=result.error,
            tracking_runs=result.tracking_runs,
            ended_at=now_ms(),
        )

    def _skip(self, name: str, because: str) -> None:
        self.status[name] = StepStatus.SKIPPED
        self.store.update_step(
            self.run_id,
            name,
            status=StepStatus.SKIPPED,
            error=f"not run: upstream step {because!r} failed",
            ended_at=now_ms(),
        )

    # -- the loop -----------------------------------------------------------------------------
    def _schedule_ready(self) -> None:
        for name, node in self.dag.nodes.items():  # in build order: upstream first
            if self.status[name] != StepStatus.PENDING:
                continue
            ups = node.upstream
            broken = [u for u in ups if self.status[u] in (StepStatus.FAILED, StepStatus.SKIPPED)]
            if broken:
                self._skip(name, broken[0])
            elif all(self.status[u] in StepStatus.DONE for u in ups):
                self._ready(node)
        now = time.monotonic()
        for name, when in list(self.waiting.items()):
            if when <= now:
                del self.waiting[name]
                self._submit(name)

    @staticmethod
    def _deadline(future: Future[StepResult], timeout: float | None) -> float | None:
        started = getattr(future, "loopml_started", None)  # set when the attempt really began
        return None if timeout is None or started is None else started + timeout

    def _wait(self) -> None:
        now = time.monotonic()
        moments = [self._deadline(f, t) for f, (_, t) in self.running.items()]
        moments = [m for m in moments if m is not None] + list(self.waiting.values())
        pending_start = any(
            t is not None and getattr(f, "loopml_started", None) is None
            for f, (_, t) in self.running.items()
        )
        limit = now + (0.05 if pending_start else 1.0)  # look again soon for a clock to start
        timeout = max(0.0, min([*moments, limit]) - now)
        if not self.running:
            time.sleep(timeout)  # only retries are waiting: wait([]) would return at once
            return
        done, _ = wait(list(self.running), timeout=timeout, return_when=FIRST_COMPLETED)
        for future in done:
            name, _ = self.running.pop(future)
            try:
                result = future.result()
            except Exception as exc:  # noqa: BLE001 - a worker that died is a failed attempt
                result = StepResult(ok=False, error=f"the worker failed: {exc!r}")
            self._finished(name, result)
        now = time.monotonic()
        for future, (name, limit_s) in list(self.running.items()):
            deadline = self._deadline(future, limit_s)
            if deadline is not None and deadline <= now and not future.done():
                del self.running[future]
                self.executor.cancel(future)
                error = f"TimeoutError: timed out after {limit_s:g} s"
                self._finished(name, StepResult(ok=False, error=error))
        if now - self.beat >= HEARTBEAT_SECONDS:
            self.beat = now
            self.store.heartbeat(self.run_id)

    def execute(self) -> tuple[str, str | None]:
        """Run to the end; returns the run's status and error."""
        try:
            while True:
                before = dict(self.status)
                self._schedule_ready()
                if not self.running and not self.waiting:
                    if all(s in StepStatus.FINAL for s in self.status.values()):
                        break
                    if self.status == before:  # cannot happen in a DAG; never spin
                        raise RuntimeError("pipeline run made no progress")
                    continue  # newly ready steps (after cache hits) start on the next pass
                self._wait()
        except BaseException:
            for future in list(self.running):
                self.executor.cancel(future)
            for name, s in self.status.items():
                if s not in StepStatus.FINAL:
                    self.store.update_step(
                        self.run_id,
                        name,
                        status=StepStatus.FAILED,
                        error="interrupted",
                        ended_at=now_ms(),
                    )
            self.store.finish_run(self.run_id, RunStatus.FAILED, "interrupted")
            raise
        failed = [n for n, s in self.status.items() if s == StepStatus.FAILED]
        if failed:
            error = f"step {failed[0]!r} failed: {_last_line(self.errors.get(failed[0]))}"
            self.store.finish_run(self.run_id, RunStatus.FAILED, error)
            return RunStatus.FAILED, error
        self.store.finish_run(self.run_id, RunStatus.SUCCEEDED)
        return RunStatus.SUCCEEDED, None


def execute_dag(
    *,
    pipeline: str,
    dag: DAG,
    run_id: str,
    store: SqlPipelineStore,
    executor: Executor,
    artifacts: ArtifactStore,
    cache: bool = True,
    reuse: dict[str, StepRun] | None = None,
    reuse_from: str | None = None,
    tracking_uri: str | None = None,
) -> tuple[str, str | None]:
    """Run every step of ``dag`` as run ``run_id`` (already created in ``store``)."""
    return _Run(
        pipeline=pipeline,
        dag=dag,
        run_id=run_id,
        store=store,
        executor=executor,
        artifacts=artifacts,
        cache=cache,
        reuse=reuse or {},
        reuse_from=reuse_from,
        tracking_uri=tracking_uri,
    ).execute()
