"""One measured process of ``pipelines.py``: the 20-step DAG of ``_pipelines_steps.py`` run by
loopml or by Prefect, cold and then fully cached.

Usage (run by ``pipelines.py``, in a fresh process and a fresh state folder each time)::

    python _pipelines_worker.py loopml  --home DIR --out r.json [--executor threads|processes]
    python _pipelines_worker.py prefect --home DIR --out r.json [--executor threads|processes]

In order, each timed on its own (wall and CPU seconds):

1. ``libraries``: import NumPy, pandas and the steps module.
2. ``floor``: the DAG as plain calls (``floor_run``), once to warm up, then ``--floor-runs``
   times; the median is the steps' own work, subtracted from each run to get the overhead.
3. ``import``: the tool (``loopml.pipelines``; ``prefect`` with ``flow``, ``task`` and the cache
   policies).
4. ``init``: the tool's store, before any run: loopml opens its embedded SQLite database in
   ``LOOPML_HOME`` (created and migrated; ``get_pipeline_store()``); Prefect, with no
   ``PREFECT_API_URL``, starts its temporary local server on a SQLite database in
   ``PREFECT_HOME`` (``get_client().api_healthcheck()``).
5. The runs (``--phases``): ``cold`` (seed 0, the first run in the process: every step runs),
   ``cached`` (seed 0 again: every step is a cache hit), ``cold_warm`` (seed 1: every step runs
   again, in a process that has run the pipeline once) and ``cached_warm`` (seed 1 again).
   loopml: ``pipeline.run(rows=, seed=, executor=)``. Prefect: the flow called with the same
   parameters; inside it every step is ``task.submit`` (futures passed on as inputs, so
   independent steps run at the same time, as loopml's do), on its ``ThreadPoolTaskRunner`` or,
   with ``--executor processes``, a ``ProcessPoolTaskRunner``; the flow returns
   ``report``'s result. Tasks have ``cache_policy=INPUTS + TASK_SOURCE`` and
   ``persist_result=True`` (Prefect 3 caches only persisted results), so a second flow run
   with the same inputs loads every result from ``PREFECT_HOME/storage``.

After the timers (untimed), every run's step states are read back from the tool's store and
the result is compared with the floor's. ``--profile F`` writes cProfile stats of each run to
``F.<phase>.pstats`` (a separate process: profiling slows everything down).
"""

from __future__ import annotations

import argparse
import collections
import os
import platform
import resource
import sys
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

T_START = time.perf_counter()
PIPELINE = "bench-20-steps"
SEEDS = {"cold": 0, "cached": 0, "cold_warm": 1, "cached_warm": 1}


class Clock:
    """Wall and CPU seconds (every thread of this process) of a block."""

    def __enter__(self) -> Clock:
        self.t0, self.c0 = time.perf_counter(), time.process_time()
        return self

    def __exit__(self, *exc: object) -> None:
        self.wall = time.perf_counter() - self.t0
        self.cpu = time.process_time() - self.c0

    def as_dict(self) -> dict[str, float]:
        return {"wall_seconds": self.wall, "cpu_seconds": self.cpu}


def quiet_environment(tool: str, home: Path) -> None:
    """Each tool at its defaults, in a fresh state folder, without usage telemetry."""
    for key in list(os.environ):
        if key.startswith(("LOOPML_", "PREFECT_")):
            del os.environ[key]
    os.environ["DO_NOT_TRACK"] = "1"
    if tool == "loopml":
        os.environ["LOOPML_HOME"] = str(home)
    else:
        os.environ["PREFECT_HOME"] = str(home)  # its database, results and settings
        os.environ["PREFECT_SERVER_ANALYTICS_ENABLED"] = "false"


# -- loopml --------------------------------------------------------------------------------------
class Loopml:
    """The DAG as a loopml pipeline."""

    def __init__(self, executor: str) -> None:
        import _pipelines_steps as steps

        import loopml
        from loopml.pipelines import pipeline, step

        self.version = loopml.__version__
        self.executor = executor
        namespace = SimpleNamespace(**{n: step(f) for n, f in steps.FUNCTIONS.items()})

        @pipeline(name=PIPELINE)
        def bench(rows: int = steps.ROWS, seed: int = 0) -> Any:
            return steps.wire(namespace, rows, seed)

        self.pipeline = bench

    def init(self) -> None:
        from loopml.pipelines import get_pipeline_store

        get_pipeline_store()

    def run(self, rows: int, seed: int) -> Any:
        return self.pipeline.run(rows=rows, seed=seed, executor=self.executor)

    def inspect(self, handle: Any) -> dict[str, Any]:
        """Status of the run and of each step, as the store recorded them."""
        from loopml.pipelines import get_run

        run = get_run(handle.run_id)
        return {
            "run_id": run.run_id,
            "status": str(run.status),
            "result": run.result,
            "step_states": dict(collections.Counter(str(s.status) for s in run.steps.values())),
            "steps": len(run.steps),
        }


# -- Prefect -------------------------------------------------------------------------------------
def content_key(context: Any, parameters: dict[str, Any]) -> str:
    """A task's inputs hashed by value, DataFrames by their content (``hash_pandas_object``,
    column names and dtypes), the rest as sorted JSON: what loopml's key does with its outputs'
    content hashes. Prefect's ``INPUTS`` hashes a pickle of the arguments instead, whose bytes
    depend on which sub-objects they share, so equal frames built from reloaded results can
    get another key (see ``pipelines.py``)."""
    import hashlib
    import json

    import pandas as pd

    digest = hashlib.sha256()
    for name in sorted(parameters):
        value = parameters[name]
        digest.update(name.encode() + b"\0")
        if isinstance(value, pd.DataFrame):
            layout = [list(map(str, value.columns)), list(map(str, value.dtypes))]
            digest.update(json.dumps(layout).encode())
            digest.update(pd.util.hash_pandas_object(value, index=True).to_numpy().tobytes())
        else:
            digest.update(json.dumps(value, sort_keys=True).encode())
    return digest.hexdigest()


class Prefect:
    """The DAG as a Prefect flow of tasks, each submitted to the flow's task runner."""

    def __init__(self, executor: str, policy: str = "content") -> None:
        import _pipelines_steps as steps
        import prefect
        from prefect import flow, task
        from prefect.cache_policies import INPUTS, TASK_SOURCE, CacheKeyFnPolicy
        from prefect.task_runners import ProcessPoolTaskRunner, ThreadPoolTaskRunner

        self.version = prefect.__version__
        self.executor = executor
        if policy == "inputs":
            cache_policy = INPUTS + TASK_SOURCE
        else:
            cache_policy = TASK_SOURCE + CacheKeyFnPolicy(cache_key_fn=content_key)
        tasks = {
            n: task(f, cache_policy=cache_policy, persist_result=True)
            for n, f in steps.FUNCTIONS.items()
        }
        namespace = SimpleNamespace(**{n: t.submit for n, t in tasks.items()})
        runner = ProcessPoolTaskRunner if executor == "processes" else ThreadPoolTaskRunner

        @flow(name=PIPELINE, task_runner=runner())
        def bench(rows: int = steps.ROWS, seed: int = 0) -> Any:
            return steps.wire(namespace, rows, seed).result()

        self.flow = bench

    def init(self) -> None:
        from prefect.client.orchestration import get_client

        with get_client(sync_client=True) as client:
            error = client.api_healthcheck()
            url = str(client.api_url)
        if error is not None:
            raise RuntimeError(f"Prefect's API is not healthy: {error!r}")
        if self.executor == "processes":
            # The pool's processes inherit the environment: point them at this temporary
            # server, or each starts one of its own (several seconds, a database each).
            os.environ["PREFECT_API_URL"] = url

    def run(self, rows: int, seed: int) -> Any:
        state = self.flow(rows=rows, seed=seed, return_state=True)
        if not state.is_completed():
            raise RuntimeError(f"flow run ended {state.name}: {state.message}")
        return state

    def inspect(self, state: Any, wait_seconds: float = 30.0) -> dict[str, Any]:
        """The flow run's task runs as the server recorded them (task states reach the server
        as events, so wait until all 20 are final)."""
        import _pipelines_steps as steps
        from prefect.client.orchestration import get_client
        from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId

        flow_run_id = state.state_details.flow_run_id
        deadline = time.monotonic() + wait_seconds
        with get_client(sync_client=True) as client:
            while True:
                runs = client.read_task_runs(
                    flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[flow_run_id]))
                )
                final = [r for r in runs if r.state is not None and r.state.is_final()]
                if len(final) >= steps.N_STEPS or time.monotonic() > deadline:
                    break
                time.sleep(0.2)
            flow_state = client.read_flow_run(flow_run_id).state
        return {
            "run_id": str(flow_run_id),
            "status": flow_state.name if flow_state else None,
            "result": state.result(),
            "step_states": dict(
                collections.Counter(r.state.name if r.state else "None" for r in runs)
            ),
            "steps": len(runs),
            "waited_for_states_seconds": wait_seconds - max(0.0, deadline - time.monotonic()),
        }


# -- main ----------------------------------------------------------------------------------------
def main() -> int:
    import json

    ap = argparse.ArgumentParser()
    ap.add_argument("tool", choices=["loopml", "prefect"])
    ap.add_argument("--home", type=Path, required=True, help="the tool's fresh state folder")
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--executor", default="threads", choices=["threads", "processes"])
    ap.add_argument(
        "--prefect-cache",
        default="content",
        choices=["content", "inputs"],
        help="Prefect's cache policy: TASK_SOURCE + a key of the inputs' content, or the "
        "documented INPUTS + TASK_SOURCE (a pickle's hash)",
    )
    ap.add_argument("--phases", default="cold,cached,cold_warm,cached_warm")
    ap.add_argument("--rows", type=int, default=None)
    ap.add_argument("--floor-runs", type=int, default=7)
    ap.add_argument("--profile", type=Path, help="cProfile each run to <this>.<phase>.pstats")
    args = ap.parse_args()
    phases = [p for p in args.phases.split(",") if p]
    if set(phases) - set(SEEDS):
        ap.error(f"--phases takes some of {','.join(SEEDS)}")
    args.home.mkdir(parents=True, exist_ok=True)
    quiet_environment(args.tool, args.home)
    res: dict[str, Any] = {"tool": args.tool, "executor": args.executor, "phases": {}}
    if args.tool == "prefect":
        res["prefect_cache"] = args.prefect_cache
    res["python"] = platform.python_version()

    with Clock() as c:
        import _pipelines_steps as steps
        import numpy as np
        import pandas as pd
    res["libraries"] = {**c.as_dict(), "numpy": np.__version__, "pandas": pd.__version__}
    rows = args.rows or steps.ROWS
    res["rows"], res["n_steps"] = rows, steps.N_STEPS

    # The steps' own work: the same DAG as plain calls, warmed up first.
    expected = {seed: steps.floor_run(rows, seed) for seed in sorted(set(SEEDS.values()))}
    floor = []
    for i in range(args.floor_runs):
        steps.CALLS.clear()
        with Clock() as c:
            steps.floor_run(rows, i % 2)
        floor.append({**c.as_dict(), "calls": len(steps.CALLS)})
    walls = sorted(f["wall_seconds"] for f in floor)
    res["floor"] = {"runs": floor, "median_wall_seconds": walls[len(walls) // 2]}
    res["expected"] = {str(k): v for k, v in expected.items()}

    with Clock() as c:
        if args.tool == "loopml":
            tool: Any = Loopml(args.executor)
        else:
            tool = Prefect(args.executor, args.prefect_cache)
    res["import"] = c.as_dict()
    res["version"] = tool.version
    with Clock() as c:
        tool.init()
    res["init"] = c.as_dict()

    handles = {}
    for phase in phases:
        seed = SEEDS[phase]
        steps.CALLS.clear()
        profiler = None
        if args.profile:
            import cProfile

            profiler = cProfile.Profile()
            profiler.enable()
        with Clock() as c:
            handles[phase] = tool.run(rows, seed)
        if profiler is not None:
            profiler.disable()
            profiler.dump_stats(f"{args.profile}.{phase}.pstats")
        own = sum(s for _, s in steps.CALLS)
        res["phases"][phase] = {
            **c.as_dict(),
            "seed": seed,
            # steps run in this process (not with a process executor): calls and their time
            "body_calls_in_process": len(steps.CALLS),
            "body_seconds_in_process": own,
        }
        print(f"{phase}: {c.wall:.3f} s", file=sys.stderr, flush=True)

    for phase, handle in handles.items():  # untimed: what the store recorded
        info = tool.inspect(handle)
        info["result_matches_floor"] = info["result"] == expected[SEEDS[phase]]
        res["phases"][phase].update(info)

    ru = resource.getrusage(resource.RUSAGE_SELF)
    res["process_cpu_seconds"] = ru.ru_utime + ru.ru_stime
    res["ru_maxrss_mb"] = ru.ru_maxrss / 1024
    res["seconds_in_python_before_exit"] = time.perf_counter() - T_START
    res["pid"] = os.getpid()
    args.out.write_text(json.dumps(res, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
