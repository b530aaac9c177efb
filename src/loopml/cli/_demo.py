"""``loopml demo``: loopml's closed loop, embedded, in about a minute.

A simulated subscription service's churn problem goes through every capability: features and
a point-in-time training set saved as a dataset version, a tuning study of child runs, the
release gates, a deployment served over HTTP with its prediction log, delayed outcomes, a
challenger as a canary with an A/B test, a shift in the data that drift and quality monitoring
catch, an alert that queues the retraining pipeline, and the retrained version in production.
The stages are in ``_demo_loop``; this module names the run, shows each stage's progress and
timing, and prints what happened and the commands to look at it.

Every run in a ``LOOPML_HOME`` starts fresh under names of its own: the first uses ``churn``
(model, deployment, feature views ``churn_*``, dataset ``churn-training``, ...), the next
``churn2``, then ``churn3``; the tracking experiment (``--experiment``) is shared.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.table import Table

import loopml
from loopml.cli import _demo_loop as loop
from loopml.errors import InvalidInput, InvalidState, MissingDependency, NotFound

__all__ = ["STAGES", "free_prefix", "run_demo"]

Stage = Callable[[loop.Demo, Callable[[str], None]], dict[str, Any]]


def _data_line(r: dict[str, Any]) -> str:
    return (
        f"{r['customers']:,} customers, {r['events']:,} daily events -> views "
        f"{', '.join(r['views'])} -> {r['train_rows']:,} training rows "
        f"({r['churn_rate']:.1%} churn) saved as {r['dataset']}"
    )


def _train_line(r: dict[str, Any]) -> str:
    h = r["holdout"]
    return (
        f"{r['trials']} trials (child runs), best #{r['best_trial']} "
        f"(val ROC AUC {r['best_val_roc_auc']:.3f}); holdout accuracy {h['accuracy']:.3f}, "
        f"ROC AUC {h['roc_auc']:.3f}; registered version {r['version']}"
        + (" with an ONNX copy" if r["onnx"] else "")
    )


def _release_line(r: dict[str, Any]) -> str:
    passed = sum(1 for _, ok, _ in r["gates"] if ok)
    return (
        f"{passed}/{len(r['gates'])} gates passed; version {r['production']} is production; "
        f"serving on {r['url']}"
    )


def _ab_line(r: dict[str, Any]) -> str:
    v = r["verdict"]
    return (
        f"{r['requests']:,} requests ({r['ok']:,} answered), live accuracy "
        f"{r['live_accuracy']:.3f}; challenger v{r['challenger']} as a 50% canary; "
        f"A/B verdict: {v.get('decision')}"
    )


def _retrain_line(r: dict[str, Any]) -> str:
    fired = [name for name, state, _ in r["alerts"] if state == "firing"]
    return (
        f"accuracy {r['accuracy_after_shift']:.3f} after the shift; "
        f"{len(r['drifted_columns'])} columns drifted; alerts {', '.join(fired) or 'none'}; "
        f"pipeline {r['pipeline_status']}; version {r['new_version']} in production"
    )


STAGES: tuple[tuple[str, Stage, Callable[[dict[str, Any]], str]], ...] = (
    ("Data and features", loop.prepare_data, _data_line),
    ("Tuning and training", loop.tune_and_train, _train_line),
    ("Gates, release, serving", loop.release_and_serve, _release_line),
    ("Traffic, outcomes, A/B test", loop.serve_and_experiment, _ab_line),
    ("Shift, drift, alert, retraining", loop.shift_and_retrain, _retrain_line),
)


def free_prefix() -> str:
    """``churn``, or ``churn2``, ``churn3``... : the first whose model and deployment do not
    exist yet, so that a demo run never collides with an earlier one."""
    from loopml.serving import get_deployment_store

    client = loopml.Client()
    deployments = get_deployment_store()
    try:
        for n in range(1, 1000):
            prefix = "churn" if n == 1 else f"churn{n}"
            try:
                client.get_registered_model(prefix)
                continue
            except NotFound:
                pass
            try:
                deployments.get_deployment(prefix)
            except NotFound:
                return prefix
    finally:
        deployments.close()
    raise InvalidState("999 demo runs in this home already; use a new LOOPML_HOME")


def run_demo(
    *,
    tracking_uri: str | None,
    experiment: str,
    console: Console,
    prefix: str | None = None,
    trials: int = 12,
) -> dict[str, dict[str, Any]]:
    """Run the loop's stages with a progress line per stage and print a summary; returns
    each stage's figures by stage name.

    Raises:
        InvalidInput: the tracking URI is a server (the demo needs the database itself).
        MissingDependency: Optuna (the ``tuning`` extra) is not installed.
        InvalidState: the retraining pipeline did not put a new version in production.
    """
    import importlib.util

    from loopml.config import get_settings

    if importlib.util.find_spec("optuna") is None:  # before any stage has created anything
        raise MissingDependency("loopml demo tunes with Optuna: pip install 'loopml[tuning]'")
    if tracking_uri:
        loopml.set_tracking_uri(tracking_uri)
    if loopml.get_tracking_uri().startswith(("http://", "https://")):
        raise InvalidInput(
            "loopml demo runs embedded: its pipelines, monitoring and A/B tests read the "
            "database directly; give a database URI (--tracking-uri or LOOPML_TRACKING_URI) "
            "or none"
        )
    prefix = prefix or free_prefix()
    root = get_settings().home.expanduser().resolve() / "demo" / prefix
    demo = loop.Demo(prefix=prefix, root=root, experiment=experiment, trials=trials)
    console.print(
        f"[bold]loopml demo[/bold]: the whole loop on a simulated churn problem, embedded in "
        f"{escape(str(root.parent.parent))} (objects named [bold]{prefix}[/bold])"
    )
    results: dict[str, dict[str, Any]] = {}
    began = time.perf_counter()
    try:
        for i, (title, stage, line) in enumerate(STAGES, 1):
            head = f"[{i}/{len(STAGES)}] {title}"
            started = time.perf_counter()
            with console.status(escape(head)) as status:

                def say(text: str, status: Any = status, head: str = head) -> None:
                    status.update(escape(f"{head}: {text}"))

                try:
                    results[stage.__name__] = stage(demo, say)
                except BaseException:
                    console.print(
                        f"[red]✗[/red] {escape(head)} failed after "
                        f"{time.perf_counter() - started:.1f} s"
                    )
                    raise
            seconds = time.perf_counter() - started
            console.print(
                f"[green]✓[/green] {escape(head)} [dim]{seconds:5.1f} s[/dim]  "
                f"{escape(line(results[stage.__name__]))}"
            )
    finally:
        demo.close()
    _summary(console, demo, results, time.perf_counter() - began)
    last = results["shift_and_retrain"]
    if last["new_version"] is None:
        raise InvalidState(
            f"the retraining pipeline run {last['pipeline_run']} did not put a new version in "
            f"production ({last['pipeline_status']}: {last['pipeline_error']}); see "
            f"loopml pipelines show {last['pipeline_run']}"
        )
    return results


def _summary(
    console: Console, demo: loop.Demo, results: dict[str, dict[str, Any]], seconds: float
) -> None:
    data, tuned = results["prepare_data"], results["tune_and_train"]
    release, ab = results["release_and_serve"], results["serve_and_experiment"]
    shift = results["shift_and_retrain"]
    table = Table(title=f"loopml demo: what happened ({seconds:.0f} s)", show_lines=True)
    table.add_column("stage")
    table.add_column("result", overflow="fold")
    table.add_row(
        "data",
        f"{data['customers']:,} customers, {data['events']:,} daily activity events; "
        f"feature service {demo.service} ({', '.join(data['views'])}); point-in-time training "
        f"set of {data['train_rows']:,} rows, {data['churn_rate']:.1%} churned within 28 days; "
        f"dataset version {data['dataset']} linked to run {data['run_id']}",
    )
    params = ", ".join(f"{k}={_num(v)}" for k, v in sorted(tuned["best_params"].items()))
    table.add_row(
        "tuning",
        f"{tuned['trials']} trials as child runs; best trial #{tuned['best_trial']}: "
        f"val ROC AUC {tuned['best_val_roc_auc']:.3f} ({params}); holdout accuracy "
        f"{tuned['holdout']['accuracy']:.3f}; registered {demo.model} v{tuned['version']}",
    )
    table.add_row(
        "gates",
        "\n".join(
            f"{'PASS' if ok else 'FAIL'} {gate}: {detail}" for gate, ok, detail in release["gates"]
        ),
    )
    verdict = ab["verdict"]
    rows = ", ".join(
        f"{r['variant']} {r['mean']:.3f} vs {r['control_mean']:.3f} (p={r['p_value']:.3g})"
        for r in ab["ab_rows"]
    )
    table.add_row(
        "serving & A/B",
        f"{ab['requests']:,} requests over HTTP, every one in the prediction log; live "
        f"accuracy {ab['live_accuracy']:.3f} once outcomes arrived; challenger v{ab['challenger']}"
        f" (random forest) as a 50% canary; units {ab['ab_units']}; accuracy {rows}; verdict "
        f"[bold]{verdict.get('decision')}[/bold] ({verdict.get('reason')}); production: "
        f"v{ab['production']}",
    )
    baseline = shift["baselines"].get("champion", {}).get("accuracy")
    table.add_row(
        "shift & drift",
        f"{shift['requests']:,} requests after the shift; drifted "
        f"{len(shift['drifted_columns'])} columns ({', '.join(shift['drifted_columns'])}); "
        f"live accuracy {shift['accuracy_after_shift']:.3f} vs baseline "
        + (f"{baseline:.3f}" if baseline is not None else "-"),
    )
    table.add_row(
        "alerts & retraining",
        "; ".join(f"{name}: {state} ({_num(value)})" for name, state, value in shift["alerts"])
        + f"; pipeline run {shift['pipeline_run']} {shift['pipeline_status']}; "
        f"{demo.model} v{shift['new_version']} is production and the deployment serves "
        f"{', '.join(f'v{v}' for v in shift['served_versions']) or '-'}"
        + "".join(
            f"\nregression gate, recent holdout: {d}"
            for d in shift["retrain_gates"]
            if "baseline" in d
        ),
    )
    console.print(table)
    run = shift["pipeline_run"] or "<run id>"
    commands = [
        (f"loopml runs list -e {demo.experiment}", "the training run, its trials, the rest"),
        (f"loopml runs show {data['run_id']}", "best trial, metrics, the model"),
        (f"loopml data versions {demo.dataset}", "training sets, first and retrained"),
        (f"loopml data show {data['dataset']}", "schema, profile, the run it came from"),
        ("loopml features list", "entity, views, feature service"),
        (f"loopml features describe {demo.prefix}_activity", "a view and its versions"),
        (f"loopml models versions {demo.model}", "every version"),
        (f"loopml models history {demo.model} --alias production", "who served when, why"),
        (f"loopml deploy status {demo.deployment}", "variants and every change"),
        (f"loopml abtest analyze {demo.abtest}", "the A/B analysis"),
        (f"loopml monitor check {demo.deployment} --window 1h", "drift against training"),
        (f"loopml monitor quality {demo.deployment} --window 1h", "live quality by variant"),
        (f"loopml monitor alerts --deployment {demo.deployment}", "fired alerts"),
        (
            f"loopml monitor report {demo.deployment} --window 1h --out {demo.prefix}.html",
            "an HTML report",
        ),
        ("loopml pipelines runs", "pipeline runs and what started them"),
        (f"loopml pipelines show {run}", "the retraining run's steps"),
    ]
    console.print("[bold]Inspect what it created[/bold] (same LOOPML_HOME):")
    width = max(len(c) for c, _ in commands)
    for command, what in commands:
        console.print(f"  {escape(command.ljust(width))}  [dim]# {what}[/dim]", soft_wrap=True)
    console.print(f"tracking store: {loopml.get_tracking_uri()}   data: {demo.root}")


def _num(value: Any) -> str:
    if isinstance(value, float):
        return format(value, ".3g")
    return str(value)
