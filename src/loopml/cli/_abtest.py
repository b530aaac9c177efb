"""``loopml abtest``: define experiments, their status, analyses (of an experiment or of a
Parquet/CSV file of unit rows), stop them, and plan sample sizes."""

from __future__ import annotations

from typing import Any

import click
from rich.table import Table

from loopml.cli._main import _Group, _json_option, _print_json, cli, console
from loopml.errors import InvalidInput


def _num(value: Any, spec: str = ".4g") -> str:
    return "-" if value is None else format(value, spec)


def _weights(pairs: tuple[str, ...]) -> dict[str, float]:
    out = {}
    for pair in pairs:
        name, sep, weight = pair.partition("=")
        try:
            out[name] = float(weight) if sep else 1.0
        except ValueError:
            raise InvalidInput(f"--variant {pair!r}: use NAME=WEIGHT") from None
    return out


def _metrics(specs: tuple[str, ...]) -> list[dict[str, Any]]:
    out = []
    for spec in specs:
        name, _, kind = spec.partition(":")
        out.append({"name": name, **({"kind": kind} if kind else {})})
    return out


@cli.group(cls=_Group)
def abtest() -> None:
    """A/B experiments: define, status, analyze, stop, plan."""


@abtest.command("create")
@click.argument("name")
@click.option("--variant", "variants", multiple=True, help="NAME=WEIGHT (repeat).")
@click.option("--deployment", default=None, help="Test the deployment's live variants.")
@click.option(
    "--metric",
    "metrics",
    multiple=True,
    required=True,
    help="NAME[:binomial|continuous] (repeat).",
)
@click.option("--guardrail", "guardrails", multiple=True, help="A metric that must not degrade.")
@click.option("--control", default=None)
@click.option("--allocation", default=1.0, show_default=True, help="Share of units included.")
@click.option(
    "--method",
    default="frequentist",
    show_default=True,
    type=click.Choice(["frequentist", "sequential", "bayesian"]),
)
def abtest_create(
    name: str,
    variants: tuple[str, ...],
    deployment: str | None,
    metrics: tuple[str, ...],
    guardrails: tuple[str, ...],
    control: str | None,
    allocation: float,
    method: str,
) -> None:
    """Define and start experiment NAME."""
    import loopml.abtest as ab

    weights = _weights(variants)
    if deployment and not weights:
        from loopml.serving import get_deployment_store

        dep = get_deployment_store().get_deployment(deployment)
        weights = {
            v.name: float(v.weight) for v in dep.variants if v.role != "shadow" and v.weight > 0
        }
    exp = ab.create_experiment(
        name,
        variants=weights,
        metrics=_metrics(metrics),
        guardrails=list(guardrails),
        control=control,
        deployment=deployment,
        allocation=allocation,
        method=method,
    )
    split = ", ".join(f"{k} {v:g}" for k, v in exp.variants.items())
    console.print(f"experiment {name}: {split} (control {exp.control}, salt {exp.salt})")


@abtest.command("list")
@_json_option
def abtest_list(as_json: bool) -> None:
    """The workspace's experiments."""
    import loopml.abtest as ab

    found = ab.list_experiments()
    if as_json:
        _print_json([e.to_dict() for e in found])
        return
    table = Table()
    for col in ("name", "status", "variants", "metrics", "deployment"):
        table.add_column(col)
    for e in found:
        table.add_row(
            e.name,
            e.status,
            ", ".join(e.variants),
            ", ".join(m["name"] for m in e.metrics),
            e.deployment or "-",
        )
    console.print(table)


@abtest.command("status")
@click.argument("name")
@_json_option
def abtest_status(name: str, as_json: bool) -> None:
    """An experiment's definition and exposed units per variant."""
    import loopml.abtest as ab

    exp = ab.get_experiment(name)
    counts = ab.get_experiment_store().counts(name)
    if as_json:
        _print_json({"experiment": exp.to_dict(), "exposed": counts})
        return
    console.print(f"{name}: {exp.status}{' (' + exp.stop_reason + ')' if exp.stop_reason else ''}")
    for v, w in exp.variants.items():
        console.print(f"  {v}: weight {w:g}, {counts.get(v, 0)} units exposed")


def _print_analysis(result: Any) -> None:
    table = Table(title=f"{result.method}, control {result.control}")
    bayes = result.method == "bayesian"
    cols = ["metric", "variant", "n", "control", "mean", "lift", "interval", "relative"]
    cols += ["P(better)", "exp. loss"] if bayes else ["p", "p adj."]
    for col in cols:
        table.add_column(col)
    for r in result.rows:
        tail = (
            [_num(r["prob_better"], ".3f"), _num(r["expected_loss"])]
            if bayes
            else [_num(r["p_value"]), _num(r.get("p_adjusted"))]
        )
        table.add_row(
            r["metric"] + (" (guardrail)" if r["guardrail"] else ""),
            r["variant"],
            str(r["n"]),
            _num(r["control_mean"]),
            _num(r["mean"]),
            _num(r["lift"]),
            f"[{_num(r['lift_low'])}, {_num(r['lift_high'])}]",
            "-" if r.get("relative") is None else f"{r['relative']:+.2%}",
            *tail,
        )
    console.print(table)
    srm = result.srm
    flag = "[red]MISMATCH[/]" if srm["flagged"] else "ok"
    console.print(f"sample ratio: {flag} (p = {srm['p_value']:.3g})")
    v = result.verdict
    console.print(f"verdict: [bold]{v['decision']}[/] — {v['reason']}")


@abtest.command("analyze")
@click.argument("name", required=False)
@click.option("--data", default=None, help="Unit rows (Parquet) instead of an experiment.")
@click.option(
    "--weight",
    "weights",
    multiple=True,
    help="With --data: the configured split, NAME=WEIGHT (default: equal).",
)
@click.option("--metric", "metrics", multiple=True, help="With --data: the metric columns.")
@click.option("--variant-column", default="variant", show_default=True)
@click.option("--control", default=None)
@click.option("--covariate", "covariates", multiple=True, help="METRIC=COLUMN for CUPED.")
@click.option(
    "--method", default=None, type=click.Choice(["frequentist", "sequential", "bayesian"])
)
@_json_option
def abtest_analyze(
    name: str | None,
    data: str | None,
    weights: tuple[str, ...],
    metrics: tuple[str, ...],
    variant_column: str,
    control: str | None,
    covariates: tuple[str, ...],
    method: str | None,
    as_json: bool,
) -> None:
    """Analyse experiment NAME, or the unit rows in --data."""
    import loopml.abtest as ab

    cov = dict(c.split("=", 1) for c in covariates if "=" in c)
    if len(cov) != len(covariates):
        raise InvalidInput("--covariate takes METRIC=COLUMN")
    if data:
        if not metrics:
            raise InvalidInput("--data needs --metric")
        result = ab.analyze(
            data,
            variant=variant_column,
            metrics=list(metrics),
            control=control,
            method=method or "frequentist",
            covariates=cov,
        )
    elif name:
        result = ab.analyze_experiment(name, method=method, **({"covariates": cov} if cov else {}))
    else:
        raise InvalidInput("give an experiment NAME or --data")
    if as_json:
        _print_json(result.to_dict())
    else:
        _print_analysis(result)


@abtest.command("stop")
@click.argument("name")
@click.option("--reason", default="")
def abtest_stop(name: str, reason: str) -> None:
    """Stop experiment NAME."""
    import loopml.abtest as ab

    ab.stop_experiment(name, reason)
    console.print(f"stopped {name}")


@abtest.command("plan")
@click.option("--baseline", type=float, required=True, help="A rate (binomial) or a mean.")
@click.option("--mde", type=float, required=True, help="Relative effect, e.g. 0.05.")
@click.option("--std", type=float, default=None, help="Standard deviation (continuous).")
@click.option("--alpha", type=float, default=0.05, show_default=True)
@click.option("--power", type=float, default=0.8, show_default=True)
def abtest_plan(
    baseline: float, mde: float, std: float | None, alpha: float, power: float
) -> None:
    """Units per variant to detect a relative effect of --mde."""
    from loopml.abtest import sample_size

    n = sample_size(baseline, mde, std=std, alpha=alpha, power=power)
    console.print(f"{n:,} units per variant (alpha {alpha:g}, power {power:g})")
