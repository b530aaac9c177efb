"""Pipelines: ``@step`` functions wired in a ``@pipeline``, run with caching, retries, timeouts
and resume, on threads, processes or Ray; every run and step recorded; cron schedules and alert
triggers started by ``loopml scheduler``.

```python
from loopml.pipelines import pipeline, step

@step
def load(n: int) -> pd.DataFrame: ...

@step(retries=2, timeout=600)
def train(frame: pd.DataFrame, depth: int = 6): ...

@pipeline
def training(n: int = 10_000, depth: int = 6):
    return train(load(n), depth)

run = training.run(n=5_000)        # a PipelineRun; run.result is the trained model
```
"""

from __future__ import annotations

import sys

from loopml.pipelines._dag import DAG, Pipeline, Step, StepOutput, pipeline, step
from loopml.pipelines._entities import (
    PipelineInfo,
    PipelineRun,
    RunStatus,
    Schedule,
    StepRun,
    StepStatus,
)
from loopml.pipelines._executors import (
    Executor,
    ProcessExecutor,
    RayExecutor,
    ThreadExecutor,
    make_executor,
)
from loopml.pipelines._fluent import (
    enqueue_run,
    get_pipeline_store,
    get_run,
    import_file,
    install_alert_trigger,
    list_pipelines,
    list_runs,
    load_pipeline,
    register_pipeline,
    run_pipeline,
)
from loopml.pipelines._runner import CACHE_FORMAT, cache_key
from loopml.pipelines._schedule import Scheduler, add_schedule, next_time
from loopml.pipelines._store import SqlPipelineStore

__all__ = [
    "CACHE_FORMAT",
    "DAG",
    "Executor",
    "Pipeline",
    "PipelineInfo",
    "PipelineRun",
    "ProcessExecutor",
    "RayExecutor",
    "RunStatus",
    "Schedule",
    "Scheduler",
    "SqlPipelineStore",
    "Step",
    "StepOutput",
    "StepRun",
    "StepStatus",
    "ThreadExecutor",
    "add_schedule",
    "cache_key",
    "enqueue_run",
    "get_pipeline_store",
    "get_run",
    "import_file",
    "install_alert_trigger",
    "list_pipelines",
    "list_runs",
    "load_pipeline",
    "make_executor",
    "next_time",
    "pipeline",
    "register_pipeline",
    "run_pipeline",
    "step",
]

if "loopml.monitoring" in sys.modules:  # else monitoring loads us when a rule needs it
    install_alert_trigger()
