"""``loopml monitor``: drift and quality checks of a deployment, reports, outcomes, alert rules
and the alert loop (with Prometheus gauges)."""

from __future__ import annotations

import csv
import json
import sys
import time
from pathlib import Path
from typing import Any

import click
from rich.table import Table

from loopml.cli._main import _Group, _json_option, _print_json, cli, console
from loopml.errors import InvalidInput, LoopmlError


def _monitor() -> Any:
    from loopml.monitoring import get_monitor

    return get_monitor()


def _num(value: Any) -> str:
    return "-" if value is None else f"{value:.4g}" if isinstance(value, float) else str(value)


@cli.group(cls=_Group)
def monitor() -> None:
    """Monitoring: drift, live quality, reports, outcomes, alert rules and the alert loop."""


@monitor.command("check")
@click.argument("deployment")
@click.option("--window", default="24h", show_default=True, help="e.g. 30m, 24h, 7d.")
@click.option("--variant", default=None, help="Only this variant's predictions.")
@click.option(
    "--reference",
    default=None,
    help="A dataset reference (name@version) instead of the serving version's training data.",
)
@_json_option
def monitor_check(
    deployment: str, window: str, variant: str | None, reference: str | None, as_json: bool
) -> None:
    """Drift of DEPLOYMENT's logged inputs and outputs against the training data."""
    report = _monitor().check(deployment, window, variant=variant, reference=reference)
    if as_json:
        _print_json(report.to_dict())
        return
    s = report.subject
    console.print(
        f"{deployment}: {s['model']} v{s['version']} ({s['variant']}), {s['n_predictions']} "
        f"predictions in {window}, reference {s['reference'] or '-'}"
    )
    table = Table()
    for col in (
        "column",
        "kind",
        "test",
        "statistic",
        "p-value",
        "effect",
        "threshold",
        "drifted",
    ):
        table.add_column(col)
    rows = list(report.columns.values())
    if report.prediction is not None:
        rows.append(report.prediction)
    for c in rows:
        table.add_row(
            "(prediction)" if c is report.prediction else c.column,
            c.kind,
            c.test,
            _num(c.statistic),
            _num(c.p_value),
            f"{c.effect_metric} {_num(c.effect_size)}",
            _num(c.threshold),
            "[red]yes[/]" if c.drifted else "no",
        )
    console.print(table)
    verdict = "[red]drift[/]" if report.dataset_drift else "[green]no dataset drift[/]"
    console.print(f"{verdict}: {len(report.drifted_columns)} of {len(report.columns)} columns")


@monitor.command("quality")
@click.argument("deployment")
@click.option("--window", default="24h", show_default=True)
@click.option("--bucket", default=None, help="Also per time bucket, e.g. 1h.")
@click.option(
    "--tolerance",
    default=0.05,
    show_default=True,
    help="Relative drop below the baseline that counts as a degradation.",
)
@_json_option
def monitor_quality(
    deployment: str, window: str, bucket: str | None, tolerance: float, as_json: bool
) -> None:
    """Live quality of DEPLOYMENT by variant, with labelled counts and baselines."""
    q = _monitor().quality(deployment, window, bucket=bucket, tolerance=tolerance)
    if as_json:
        _print_json(q.to_dict())
        return
    table = Table(title=f"{deployment}: {q.task}, {window}")
    metrics = sorted(
        {k for row in q.variants.values() for k in row}
        - {"n_predictions", "n_labelled", "model", "version"}
    )
    for col in ("variant", "predictions", "labelled", *metrics, "degraded"):
        table.add_column(col)
    for name, row in q.variants.items():
        table.add_row(
            name,
            str(row["n_predictions"]),
            str(row["n_labelled"]),
            *[_num(row.get(m)) for m in metrics],
            ", ".join(q.degraded.get(name, [])) or "-",
        )
    console.print(table)


@monitor.command("report")
@click.argument("deployment")
@click.option("--window", default="24h", show_default=True)
@click.option("--out", "out", default=None, help="Write the HTML report here.")
@_json_option
def monitor_report(deployment: str, window: str, out: str | None, as_json: bool) -> None:
    """A self-contained HTML report (or --json) of DEPLOYMENT's drift, quality and alerts."""
    from loopml.monitoring import report_data, save_report

    if not out and not as_json:
        raise InvalidInput("give --out report.html or --json")
    data = report_data(_monitor(), deployment, window)
    if out:
        path = save_report(data, out)
        if not as_json:
            console.print(f"wrote {path}")
    if as_json:
        _print_json(data)


def _records(path: str) -> list[dict[str, Any]]:
    text = sys.stdin.read() if path == "-" else Path(path).read_text()
    if path.endswith(".csv"):
        rows: list[dict[str, Any]] = []
        for line, row in enumerate(csv.DictReader(text.splitlines()), start=2):
            for key in ("prediction_id", "unit_id", "timestamp"):
                if not row.get(key):
                    row.pop(key, None)
            if row.get("value") in (None, ""):
                raise InvalidInput(f"{path}:{line}: value is missing")
            try:
                row["value"] = json.loads(row["value"])
            except ValueError:
                pass  # plain text: a class label
            rows.append(row)
        return rows
    try:
        return [json.loads(line) for line in text.splitlines() if line.strip()]
    except ValueError as exc:
        raise InvalidInput(f"{path}: not JSON lines ({exc})") from exc


@monitor.command("outcomes")
@click.argument("path", type=click.Path(exists=True, dir_okay=False, allow_dash=True))
def monitor_outcomes(path: str) -> None:
    """Log ground truth from PATH (.csv with prediction_id|unit_id,value[,timestamp], or JSON
    lines; - for stdin), all or nothing."""
    from loopml.monitoring import log_outcomes

    stored = log_outcomes(_records(path))
    console.print(f"stored {stored} outcomes")


@monitor.group("rules", cls=_Group)
def rules() -> None:
    """Alert rules."""


@rules.command("add")
@click.option("--name", required=True)
@click.option("--deployment", required=True)
@click.option(
    "--metric",
    required=True,
    help="drift_share, drift:<column>, prediction_drift, quality:<m>, "
    "quality_drop:<m>, error_rate, latency_p50_ms, latency_p99_ms, requests",
)
@click.option("--op", required=True, type=click.Choice([">", ">=", "<", "<="]))
@click.option("--threshold", required=True, type=float)
@click.option("--window", default="1h", show_default=True)
@click.option("--min-samples", default=100, show_default=True)
@click.option("--cooldown", default="1h", show_default=True)
@click.option("--variant", default=None)
@click.option("--webhook", "webhooks", multiple=True, help="POST alerts to this URL.")
@click.option("--secret", default=None, help="Sign webhook posts with this secret.")
@click.option("--log", "to_log", is_flag=True, help="Also log alerts.")
def rules_add(
    name: str,
    deployment: str,
    metric: str,
    op: str,
    threshold: float,
    window: str,
    min_samples: int,
    cooldown: str,
    variant: str | None,
    webhooks: tuple[str, ...],
    secret: str | None,
    to_log: bool,
) -> None:
    """Create or replace an alert rule."""
    from loopml.monitoring import AlertRule

    notifiers: list[dict[str, Any]] = [
        {"type": "webhook", "url": url, **({"secret": secret} if secret else {})}
        for url in webhooks
    ]
    if to_log:
        notifiers.append({"type": "log"})
    rule = AlertRule(
        name=name,
        deployment=deployment,
        metric=metric,
        op=op,
        threshold=threshold,
        window=window,
        min_samples=min_samples,
        cooldown=cooldown,
        variant=variant,
        notifiers=notifiers,
    )
    _monitor().store.put_rule(rule)
    console.print(f"rule {name}: {metric} {op} {threshold:g} over {window} on {deployment}")


@rules.command("list")
@_json_option
def rules_list(as_json: bool) -> None:
    """The workspace's alert rules."""
    found = _monitor().store.list_rules()
    if as_json:
        public = [
            {**r.to_dict(), "notifiers": [{"type": n["type"]} for n in r.notifiers]} for r in found
        ]
        _print_json(public)
        return
    table = Table()
    for col in ("name", "deployment", "condition", "window", "min samples", "notifiers"):
        table.add_column(col)
    for r in found:
        table.add_row(
            r.name,
            r.deployment,
            f"{r.metric} {r.op} {r.threshold:g}",
            r.window,
            str(r.min_samples),
            ", ".join(n["type"] for n in r.notifiers) or "-",
        )
    console.print(table)


@rules.command("delete")
@click.argument("name")
def rules_delete(name: str) -> None:
    """Delete an alert rule and its alert history."""
    _monitor().store.delete_rule(name)
    console.print(f"deleted rule {name}")


@monitor.command("alerts")
@click.option("--rule", default=None)
@click.option("--deployment", default=None)
@click.option("--limit", default=50, show_default=True)
@_json_option
def monitor_alerts(rule: str | None, deployment: str | None, limit: int, as_json: bool) -> None:
    """Fired and resolved alerts, newest first."""
    events = _monitor().store.events(rule=rule, deployment=deployment, limit=limit)
    if as_json:
        _print_json([e.to_dict() for e in events])
        return
    table = Table()
    for col in ("time", "rule", "deployment", "state", "value"):
        table.add_column(col)
    for e in events:
        when = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(e.time / 1000))
        table.add_row(when, e.rule, e.deployment, e.state, _num(e.value))
    console.print(table)


@monitor.command("run")
@click.option("--every", default=None, help="Evaluate every interval (e.g. 10m) until stopped.")
@click.option(
    "--metrics-port", default=None, type=int, help="Serve the gauges for Prometheus on this port."
)
@_json_option
def monitor_run(every: str | None, metrics_port: int | None, as_json: bool) -> None:
    """Evaluate every alert rule once (or --every interval), recording and notifying alerts
    (a ``pipeline`` notifier queues a run for ``loopml scheduler``)."""
    from loopml.monitoring import AlertEngine, parse_duration

    interval = parse_duration(every, "--every") if every else None
    engine = AlertEngine(_monitor())
    if metrics_port is not None:
        from prometheus_client import start_http_server

        start_http_server(metrics_port, addr="127.0.0.1", registry=engine.metrics_registry)
    while True:
        try:
            statuses = engine.run_once()
        except LoopmlError as exc:  # e.g. the database is briefly unreachable
            if interval is None:
                raise
            console.print(f"[red]evaluation failed:[/] {exc}")
            time.sleep(interval)
            continue
        if as_json:
            _print_json([s.to_dict() for s in statuses])
        else:
            for s in statuses:
                change = f" -> {s.event.state}" if s.event else ""
                console.print(
                    f"{s.rule}: {s.state}{change} (value {_num(s.value)}, "
                    f"{s.samples} samples){' ' + s.detail if s.detail else ''}"
                )
        if interval is None:
            return
        time.sleep(interval)
