"""``loopml pipelines``: list pipelines, run one (now or queued), its runs and steps, cron
schedules; ``loopml scheduler`` starts scheduled, queued and alert-triggered runs."""

from __future__ import annotations

import json
import sys
from typing import Any

import click
from rich.table import Table

from loopml.cli._main import _Group, _json_option, _ms, _print_json, cli, console
from loopml.errors import InvalidInput


def _params(pairs: tuple[str, ...]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for pair in pairs:
        key, sep, raw = pair.partition("=")
        if not sep or not key:
            raise InvalidInput(f"--param {pair!r}: use KEY=VALUE")
        try:
            out[key] = json.loads(raw)  # numbers, true/false, lists; anything else is a string
        except ValueError:
            out[key] = raw
    return out


def _seconds(step: Any) -> str:
    return "-" if step.seconds is None else f"{step.seconds:.2f}"


def _steps_table(run: Any) -> Table:
    table = Table(title=f"{run.pipeline} run {run.run_id}: {run.status}")
    for col in ("step", "status", "attempts", "seconds", "cached from", "outputs", "error"):
        table.add_column(col, overflow="fold")
    for s in run.steps.values():
        outputs = ", ".join(f"{k}:{v.get('kind')}" for k, v in s.outputs.items())
        error = (s.error or "").strip().splitlines()[-1:] or [""]
        table.add_row(
            s.step,
            s.status,
            str(s.attempts),
            _seconds(s),
            s.cached_from or "",
            outputs,
            error[0][:120],
        )
    return table


@cli.group(cls=_Group)
def pipelines() -> None:
    """Pipelines: list, run, runs, show, schedule."""


@pipelines.command("list")
@_json_option
def pipelines_list(as_json: bool) -> None:
    """Pipelines of the workspace with their last run."""
    from loopml.pipelines import list_pipelines

    found = list_pipelines()
    if as_json:
        _print_json([p.to_dict() for p in found])
        return
    table = Table(title="pipelines")
    for col in ("name", "steps", "target", "last run", "status", "when"):
        table.add_column(col, overflow="fold")
    for p in found:
        last = p.last_run or {}
        table.add_row(
            p.name,
            str(len(p.dag.get("steps", []))),
            p.target or "-",
            last.get("run_id", "-"),
            last.get("status", "-"),
            _ms(last.get("created_at")),
        )
    console.print(table)


@pipelines.command("run")
@click.argument("pipeline")
@click.option("--param", "-p", "params", multiple=True, help="KEY=VALUE (JSON or text; repeat).")
@click.option("--executor", default=None, help="threads, processes, ray or ray://host:port.")
@click.option("--no-cache", is_flag=True, help="Run every step even if its inputs are unchanged.")
@click.option("--resume", default=None, help="A failed run's id: re-run from its failed steps.")
@click.option("--queue", is_flag=True, help="Queue the run for `loopml scheduler` instead.")
@_json_option
def pipelines_run(
    pipeline: str,
    params: tuple[str, ...],
    executor: str | None,
    no_cache: bool,
    resume: str | None,
    queue: bool,
    as_json: bool,
) -> None:
    """Run PIPELINE (a name, module:attr or file.py:attr); exit 1 if a step failed."""
    from loopml.pipelines import enqueue_run, get_pipeline_store, load_pipeline, run_pipeline

    values = _params(params)
    pipe = load_pipeline(pipeline)
    if queue:
        get_pipeline_store().save_pipeline(
            pipe.name, target=pipe.target, description=pipe.description, dag={}
        )
        run_id = enqueue_run(pipe.name, values, trigger="cli")
        if as_json:
            _print_json({"run_id": run_id, "status": "QUEUED"})
        else:
            console.print(f"queued {pipe.name} run {run_id}")
        return
    with console.status(f"running {pipe.name}", spinner="dots"):
        run = run_pipeline(
            pipe,
            values,
            executor=executor,
            cache=not no_cache,
            resume=resume,
            trigger="cli",
            raise_on_failure=False,
        )
    if as_json:
        _print_json(run.to_dict())
    else:
        console.print(_steps_table(run))
    if run.status != "SUCCEEDED":
        click.echo(f"error: {run.error}", err=True)
        sys.exit(1)


@pipelines.command("runs")
@click.argument("pipeline", required=False)
@click.option("--status", default=None, help="QUEUED, RUNNING, SUCCEEDED or FAILED.")
@click.option("--limit", default=20, show_default=True)
@_json_option
def pipelines_runs(pipeline: str | None, status: str | None, limit: int, as_json: bool) -> None:
    """Runs (of one pipeline, or all), newest first."""
    from loopml.pipelines import list_runs

    runs = list_runs(pipeline, status=status, limit=limit)
    if as_json:
        _print_json([r.to_dict() for r in runs])
        return
    table = Table(title="pipeline runs")
    for col in ("run", "pipeline", "status", "trigger", "started", "steps", "cache hits", "error"):
        table.add_column(col, overflow="fold")
    for r in runs:
        table.add_row(
            r.run_id,
            r.pipeline,
            r.status,
            r.trigger,
            _ms(r.started_at or r.created_at),
            str(len(r.steps)),
            str(len(r.cache_hits)),
            (r.error or "")[:100],
        )
    console.print(table)


@pipelines.command("show")
@click.argument("run_id")
@click.option("--logs", "logs_of", default=None, help="Print the logs of this step.")
@_json_option
def pipelines_show(run_id: str, logs_of: str | None, as_json: bool) -> None:
    """A run's steps: status, attempts, time, cache hits, outputs (or one step's logs)."""
    from loopml.pipelines import get_run

    run = get_run(run_id)
    if logs_of is not None:
        if logs_of not in run.steps:
            raise InvalidInput(f"run {run_id} has no step {logs_of!r}")
        click.echo(run.steps[logs_of].logs, nl=False)
        return
    if as_json:
        _print_json(run.to_dict())
        return
    console.print(_steps_table(run))
    console.print(f"params: {json.dumps(run.params)}  trigger: {run.trigger}")
    for s in run.steps.values():
        if s.tracking_runs:
            console.print(f"{s.step} tracked runs: {', '.join(s.tracking_runs)}")


@pipelines.group("schedule", cls=_Group)
def pipelines_schedule() -> None:
    """Cron schedules: add, list, delete, pause, resume."""


@pipelines_schedule.command("add")
@click.argument("pipeline")
@click.option("--cron", required=True, help='Five fields in UTC, e.g. "0 3 * * *", or @daily.')
@click.option("--param", "-p", "params", multiple=True, help="KEY=VALUE (repeat).")
@_json_option
def schedule_add(pipeline: str, cron: str, params: tuple[str, ...], as_json: bool) -> None:
    """Run PIPELINE (a name, module:attr or file.py:attr) on a cron schedule."""
    from loopml.pipelines import add_schedule, get_pipeline_store, register_pipeline

    store = get_pipeline_store()
    name = pipeline
    if ":" in pipeline:
        from loopml.pipelines import load_pipeline

        pipe = load_pipeline(pipeline)
        register_pipeline(pipe)
        name = pipe.name
    schedule = add_schedule(store, name, cron, _params(params))
    if as_json:
        _print_json(schedule.to_dict())
    else:
        when = _ms(schedule.next_run_at)
        console.print(f"schedule {schedule.schedule_id}: {name} at {cron!r}, next {when}")


@pipelines_schedule.command("list")
@click.argument("pipeline", required=False)
@_json_option
def schedule_list(pipeline: str | None, as_json: bool) -> None:
    """Schedules with their next and last runs."""
    from loopml.pipelines import get_pipeline_store

    found = get_pipeline_store().list_schedules(pipeline)
    if as_json:
        _print_json([s.to_dict() for s in found])
        return
    table = Table(title="schedules")
    for col in ("id", "pipeline", "cron", "params", "enabled", "next", "last run"):
        table.add_column(col, overflow="fold")
    for s in found:
        table.add_row(
            str(s.schedule_id),
            s.pipeline,
            s.cron,
            json.dumps(s.params),
            "yes" if s.enabled else "no",
            _ms(s.next_run_at),
            s.last_run_id or "-",
        )
    console.print(table)


@pipelines_schedule.command("delete")
@click.argument("schedule_id", type=int)
def schedule_delete(schedule_id: int) -> None:
    """Remove a schedule."""
    from loopml.pipelines import get_pipeline_store

    get_pipeline_store().delete_schedule(schedule_id)
    console.print(f"deleted schedule {schedule_id}")


@pipelines_schedule.command("pause")
@click.argument("schedule_id", type=int)
def schedule_pause(schedule_id: int) -> None:
    """Stop a schedule from queueing runs."""
    from loopml.pipelines import get_pipeline_store

    get_pipeline_store().set_schedule_enabled(schedule_id, False)
    console.print(f"paused schedule {schedule_id}")


@pipelines_schedule.command("resume")
@click.argument("schedule_id", type=int)
def schedule_resume(schedule_id: int) -> None:
    """Let a paused schedule queue runs again."""
    from loopml.pipelines import get_pipeline_store

    get_pipeline_store().set_schedule_enabled(schedule_id, True)
    console.print(f"resumed schedule {schedule_id}")


@cli.command("scheduler")
@click.option("--once", is_flag=True, help="One tick: queue due schedules, run the queue, exit.")
@click.option("--interval", default=10.0, show_default=True, help="Seconds between ticks.")
@click.option("--executor", default=None, help="threads, processes, ray or ray://host:port.")
@click.option(
    "--import",
    "imports",
    multiple=True,
    help="module or file.py to import first (defines pipelines, alert actions; repeat).",
)
def scheduler(once: bool, interval: float, executor: str | None, imports: tuple[str, ...]) -> None:
    """Start scheduled, queued and alert-triggered pipeline runs."""
    import importlib
    import time

    from loopml.pipelines import Scheduler, get_pipeline_store, import_file

    for target in imports:
        if target.endswith(".py"):
            import_file(target, what="--import file")
        else:
            importlib.import_module(target)
    if interval <= 0:
        raise InvalidInput("--interval must be positive")
    engine = Scheduler(get_pipeline_store(), executor=executor)
    if not once:
        console.print(f"scheduler {engine.worker}: ticking every {interval:g} s (Ctrl+C stops)")
    try:
        while True:
            try:
                for run in engine.tick():
                    console.print(f"{run.pipeline} run {run.run_id} ({run.trigger}): {run.status}")
            except Exception as exc:  # noqa: BLE001 - a database outage must not stop the loop
                click.echo(f"error: tick failed: {exc}", err=True)
                if once:
                    sys.exit(1)
            if once:
                return
            time.sleep(interval)
    except KeyboardInterrupt:
        console.print("scheduler stopped")
        sys.exit(130)
