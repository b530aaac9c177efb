"""``loopml gate``: the quality gates a release must pass in CI — data validation, drift,
metric conditions, regression against the current model, and a served smoke test. Each
command prints a table (or ``--json``) and exits 0 when every gate passed, 1 when one failed."""

from __future__ import annotations

import sys
from typing import Any

import click
from rich.markup import escape
from rich.table import Table

from loopml.cli._main import _Group, _json_option, _print_json, cli, console
from loopml.errors import InvalidInput

# loopml.gates.METRICS, written out so that `loopml --help` does not import pandas
_METRICS = ("accuracy", "f1", "roc_auc", "log_loss", "rmse", "mae", "r2")


def _num(value: Any) -> str:
    if isinstance(value, float):
        return format(value, ".4g")
    return "-" if value is None else str(value)


def _finish(report: Any, as_json: bool) -> None:
    """Print the report; exit 1 naming each failed gate (and by how much) if any failed."""
    if as_json:
        _print_json(report.to_dict())
    else:
        table = Table(title="Quality gates")
        for col in ("gate", "result", "measured", "threshold", "detail"):
            table.add_column(col)
        for r in report.results:
            verdict = "[green]PASS[/green]" if r.passed else "[red]FAIL[/red]"
            table.add_row(r.gate, verdict, _num(r.measured), _num(r.threshold), escape(r.detail))
        for name in report.skipped:
            table.add_row(name, "SKIP", "-", "-", "not run after an earlier gate failed")
        console.print(table)
    if report.passed:
        return
    for r in report.failed:
        click.echo(f"gate failed: {r.gate}: {r.detail}", err=True)
    sys.exit(1)


def _report(*results: Any) -> Any:
    from loopml.gates import GateReport

    return GateReport(list(results))


def _frame(path: str) -> Any:
    from loopml.gates import read_frame

    return read_frame(path)


@cli.group(cls=_Group)
def gate() -> None:
    """Quality gates for CI: data, drift, metrics, regression, smoke (exit 1 on a failure)."""


@gate.command("data")
@click.argument("file")
@click.option("--rules", default=None, help="Validation rules: a .yaml/.yml or .json file.")
@click.option("--model", "model_uri", default=None, help="Also check against its signature.")
@_json_option
def gate_data(file: str, rules: str | None, model_uri: str | None, as_json: bool) -> None:
    """Validate FILE (.parquet or .csv) with rules, a model's signature, or basic checks."""
    from loopml.gates import validate_data

    _finish(_report(validate_data(_frame(file), rules, model_uri=model_uri)), as_json)


@gate.command("drift")
@click.argument("file")
@click.option("--model", "model_uri", required=True, help="Its training data is the reference.")
@click.option(
    "--max-share",
    default=0.5,
    show_default=True,
    type=click.FloatRange(0, 1),
    help="The largest share of columns that may drift.",
)
@click.option("--column", "columns", multiple=True, help="Compare only this column (repeat).")
@_json_option
def gate_drift(
    file: str, model_uri: str, max_share: float, columns: tuple[str, ...], as_json: bool
) -> None:
    """Compare FILE with the training data of --model (from lineage)."""
    from loopml.gates import check_drift

    result = check_drift(
        _frame(file), model_uri, max_share=max_share, columns=list(columns) or None
    )
    _finish(_report(result), as_json)


@gate.command("metrics")
@click.argument("model")
@click.argument("conditions", nargs=-1, required=True)
@_json_option
def gate_metrics(model: str, conditions: tuple[str, ...], as_json: bool) -> None:
    """Check CONDITIONS such as "accuracy >= 0.85" on the metrics of the run behind MODEL
    (a models:/ or runs:/ URI, or a run id)."""
    from loopml.gates import check_metrics

    _finish(_report(*check_metrics(model, list(conditions))), as_json)


@gate.command("regression")
@click.argument("candidate")
@click.option("--baseline", required=True, help="The model it replaces (models:/x@production).")
@click.option("--data", "data", required=True, help="The holdout: a .parquet or .csv file.")
@click.option("--target", required=True, help="The column of true values.")
@click.option("--metric", default="accuracy", show_default=True, type=click.Choice(_METRICS))
@click.option(
    "--tolerance",
    default=0.0,
    show_default=True,
    type=click.FloatRange(0),
    help="How much worse the candidate may be.",
)
@_json_option
def gate_regression(
    candidate: str,
    baseline: str,
    data: str,
    target: str,
    metric: str,
    tolerance: float,
    as_json: bool,
) -> None:
    """Score CANDIDATE and --baseline on one holdout; fail if the candidate is worse."""
    from loopml.gates import check_regression

    result = check_regression(
        candidate, baseline, _frame(data), target, metric=metric, tolerance=tolerance
    )
    _finish(_report(result), as_json)


@gate.command("smoke")
@click.argument("model")
@click.option("--data", "data", required=True, help="Rows to send: a .parquet or .csv file.")
@click.option("--rows", default=5, show_default=True, type=click.IntRange(1, 10_000))
@click.option("--timeout", default=60.0, show_default=True, type=click.FloatRange(0.1))
@click.option("--max-latency-ms", default=None, type=click.FloatRange(0.001), help="Per row.")
@_json_option
def gate_smoke(
    model: str,
    data: str,
    rows: int,
    timeout: float,
    max_latency_ms: float | None,
    as_json: bool,
) -> None:
    """Serve MODEL on a free 127.0.0.1 port, predict a few rows over HTTP, stop it."""
    from loopml.gates import smoke_test

    result = smoke_test(
        model, _frame(data), rows=rows, timeout=timeout, max_latency_ms=max_latency_ms
    )
    _finish(_report(result), as_json)


@gate.command("all")
@click.argument("candidate")
@click.option("--data", "data", default=None, help="New training data: data and drift gates.")
@click.option("--rules", default=None, help="Validation rules for --data (.yaml or .json).")
@click.option("--baseline", default=None, help="The current model, e.g. models:/x@production.")
@click.option("--max-share", default=0.5, show_default=True, type=click.FloatRange(0, 1))
@click.option("--require", "conditions", multiple=True, help='A condition: "accuracy >= 0.85".')
@click.option("--holdout", default=None, help="Holdout rows: regression and smoke gates.")
@click.option("--target", default=None, help="The holdout's column of true values.")
@click.option("--metric", default="accuracy", show_default=True, type=click.Choice(_METRICS))
@click.option("--tolerance", default=0.0, show_default=True, type=click.FloatRange(0))
@click.option("--smoke/--no-smoke", default=True, show_default=True, help="Serve and predict.")
@click.option("--fail-fast", is_flag=True, help="Stop at the first failed gate.")
@_json_option
def gate_all(
    candidate: str,
    data: str | None,
    rules: str | None,
    baseline: str | None,
    max_share: float,
    conditions: tuple[str, ...],
    holdout: str | None,
    target: str | None,
    metric: str,
    tolerance: float,
    smoke: bool,
    fail_fast: bool,
    as_json: bool,
) -> None:
    """Run every gate the options call for on CANDIDATE: data (--data), drift (--data and
    --baseline), metrics (--require), regression (--holdout, --target and --baseline) and
    smoke (--holdout)."""
    from loopml.gates import Gates

    gates = Gates(candidate)
    train = _frame(data) if data is not None else None
    rows = _frame(holdout) if holdout is not None else None
    if train is not None:
        gates.data(train, rules)
        if baseline is not None:
            gates.drift(train, baseline, max_share=max_share)
    if conditions:
        gates.metrics(*conditions)
    if rows is not None and baseline is not None:
        if target is None:
            raise InvalidInput("--holdout with --baseline needs --target (the regression gate)")
        gates.regression(rows, target, baseline=baseline, metric=metric, tolerance=tolerance)
    if rows is not None and smoke:
        gates.smoke(rows)
    _finish(gates.run(fail_fast=fail_fast), as_json)
