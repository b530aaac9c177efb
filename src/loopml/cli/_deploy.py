"""``loopml deploy``: deployments, traffic, promotion, rollback and gradual rollouts."""

from __future__ import annotations

import re
import time
from typing import Any

import click
from rich.table import Table

from loopml.cli._main import _Group, _json_option, _ms, _print_json, _uri_option, cli, console
from loopml.errors import InvalidInput

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?\s*$")
_UNITS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, None: 1}


def parse_duration(text: str) -> float:
    """Seconds in ``90``, ``30s``, ``10m``, ``2h`` or ``1d``."""
    m = _DURATION.match(text)
    if m is None:
        raise InvalidInput(f"duration {text!r} is invalid: write e.g. 30s, 10m, 2h")
    return float(m.group(1)) * _UNITS[m.group(2)]


def _variant(text: str) -> Any:
    """``NAME=URI[:WEIGHT[:ROLE]]`` (the URI may itself hold colons: split from the right)."""
    from loopml.serving import VariantSpec

    name, sep, rest = text.partition("=")
    if not sep or not name or not rest:
        raise InvalidInput(f"--variant {text!r} is invalid: write NAME=URI[:WEIGHT[:ROLE]]")
    parts = rest.rsplit(":", 2)
    role, weight = "primary", 100.0
    if len(parts) >= 2 and parts[-1] in ("primary", "canary", "shadow"):
        role = parts.pop()
    if len(parts) >= 2 and re.fullmatch(r"\d+(\.\d+)?", parts[-1]):
        weight = float(parts.pop())
    return VariantSpec(name, ":".join(parts), weight, role)


def _store(tracking_uri: str | None) -> Any:
    from loopml.serving import get_deployment_store

    return get_deployment_store(tracking_uri)


def _show(dep: Any, events: list[Any] | None = None) -> None:
    table = Table(title=f"deployment {dep.name} (revision {dep.revision})")
    for col in ("variant", "role", "weight", "model"):
        table.add_column(col, overflow="fold")
    for v in dep.variants:
        table.add_row(v.name, v.role, f"{v.weight:g}", v.model_uri)
    console.print(table)
    if dep.unit_key:
        console.print(f"units assigned by: {dep.unit_key}")
    r = dep.rollout
    if r is not None:
        steps = ", ".join(
            f"[b]{s:g}%[/b]" if i == r.step else f"{s:g}%" for i, s in enumerate(r.steps)
        )
        console.print(
            f"rollout of {r.target_uri}: {r.status}, step {r.step + 1}/{len(r.steps)} ({steps}), "
            f"every {r.interval_seconds:g} s" + (f"; {r.reason}" if r.reason else "")
        )
    if events:
        history = Table(title="history")
        for col in ("revision", "time", "event", "by", "detail"):
            history.add_column(col, overflow="fold")
        for e in events[-20:]:
            detail = {k: v for k, v in e.detail.items() if k != "variants"}
            history.add_row(str(e.revision), _ms(e.time), e.kind, e.user_id, _brief(detail))
        console.print(history)


def _brief(detail: dict[str, Any]) -> str:
    parts = []
    for k, v in detail.items():
        if isinstance(v, dict):
            v = ", ".join(
                f"{a}={b:.4g}" if isinstance(b, float) else f"{a}={b}" for a, b in v.items()
            )
        parts.append(f"{k}: {v}")
    return "; ".join(parts)


@cli.group(cls=_Group)
def deploy() -> None:
    """Deployments: variants, traffic, promotion, rollback, gradual rollouts."""


@deploy.command("create")
@click.argument("name")
@click.option("--model", "model_uri", default=None, help="The primary variant's model URI.")
@click.option(
    "--variant",
    "variants",
    multiple=True,
    help="NAME=URI[:WEIGHT[:ROLE]] (role primary, canary or shadow); repeatable.",
)
@click.option("--unit-key", default=None, help="Request field or header that assigns units.")
@click.option("--max-batch-size", type=click.IntRange(1, 100_000), default=64, show_default=True)
@click.option("--max-latency-ms", type=click.FloatRange(0, 10_000), default=0, show_default=True)
@click.option("--max-queue", type=click.IntRange(1, 1_000_000), default=1024, show_default=True)
@click.option("--description", default="")
@_uri_option
@_json_option
def deploy_create(
    name: str,
    model_uri: str | None,
    variants: tuple[str, ...],
    unit_key: str | None,
    max_batch_size: int,
    max_latency_ms: float,
    max_queue: int,
    description: str,
    tracking_uri: str | None,
    as_json: bool,
) -> None:
    """Create a deployment: --model URI, or several --variant."""
    from loopml.serving import BatchingConfig, VariantSpec

    specs = [_variant(v) for v in variants]
    if model_uri is not None:
        specs.insert(0, VariantSpec("primary", model_uri, 100.0, "primary"))
    if not specs:
        raise InvalidInput("give --model URI or at least one --variant")
    batching = BatchingConfig(max_batch_size, max_latency_ms, max_queue)
    dep = _store(tracking_uri).create_deployment(
        name, specs, unit_key=unit_key, batching=batching, description=description
    )
    if as_json:
        _print_json(dep.to_dict())
    else:
        _show(dep)


@deploy.command("list")
@_uri_option
@_json_option
def deploy_list(tracking_uri: str | None, as_json: bool) -> None:
    """List deployments."""
    deps = _store(tracking_uri).list_deployments()
    if as_json:
        _print_json([d.to_dict() for d in deps])
        return
    table = Table(title="deployments")
    for col in ("name", "revision", "variants", "rollout", "updated"):
        table.add_column(col, overflow="fold")
    for d in deps:
        variants = ", ".join(f"{v.name} {v.weight:g}% {v.model_uri}" for v in d.variants)
        rollout = "-" if d.rollout is None else f"{d.rollout.status} {d.rollout.percent:g}%"
        table.add_row(d.name, str(d.revision), variants, rollout, _ms(d.updated_at))
    console.print(table)


@deploy.command("status")
@click.argument("name")
@_uri_option
@_json_option
def deploy_status(name: str, tracking_uri: str | None, as_json: bool) -> None:
    """A deployment's variants, rollout and history of changes and decisions."""
    store = _store(tracking_uri)
    dep = store.get_deployment(name)
    events = store.list_events(name)
    if as_json:
        _print_json({**dep.to_dict(), "events": [e.to_dict() for e in events]})
    else:
        _show(dep, events)


@deploy.command("set-traffic")
@click.argument("name")
@click.argument("weights", nargs=-1, required=True)
@_uri_option
@_json_option
def deploy_set_traffic(
    name: str, weights: tuple[str, ...], tracking_uri: str | None, as_json: bool
) -> None:
    """Set variant weights: VARIANT=WEIGHT ... (e.g. primary=90 challenger=10)."""
    parsed: dict[str, float] = {}
    for item in weights:
        key, sep, value = item.partition("=")
        try:
            parsed[key] = float(value)
        except ValueError:
            sep = ""
        if not sep or not key:
            raise InvalidInput(f"{item!r} is invalid: write VARIANT=WEIGHT")
    dep = _store(tracking_uri).set_traffic(name, parsed)
    _print_json(dep.to_dict()) if as_json else _show(dep)


@deploy.command("promote")
@click.argument("name")
@click.argument("variant", default="canary")
@_uri_option
@_json_option
def deploy_promote(name: str, variant: str, tracking_uri: str | None, as_json: bool) -> None:
    """Make VARIANT's model (default: canary) the primary one with all the traffic."""
    dep = _store(tracking_uri).promote(name, variant)
    _print_json(dep.to_dict()) if as_json else _show(dep)


@deploy.command("rollback")
@click.argument("name")
@_uri_option
@_json_option
def deploy_rollback(name: str, tracking_uri: str | None, as_json: bool) -> None:
    """Stop a running rollout, or restore the variants before the last change."""
    dep = _store(tracking_uri).rollback(name)
    _print_json(dep.to_dict()) if as_json else _show(dep)


@deploy.command("delete")
@click.argument("name")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@_uri_option
def deploy_delete(name: str, yes: bool, tracking_uri: str | None) -> None:
    """Delete a deployment and its history."""
    if not yes:
        click.confirm(f"delete deployment {name!r} and its history?", abort=True)
    _store(tracking_uri).delete_deployment(name)
    click.echo(f"deleted deployment {name}")


@deploy.command("rollout")
@click.argument("name")
@click.option("--to", "target_uri", required=True, help="Model URI to roll out.")
@click.option("--steps", default="5,25,50,100", show_default=True, help="Traffic percentages.")
@click.option("--interval", default="10m", show_default=True, help="Time per step: 30s, 10m…")
@click.option("--max-error-rate", default=0.05, show_default=True, type=click.FloatRange(0, 1))
@click.option("--max-p99-ms", default=None, type=click.FloatRange(min=0, min_open=True))
@click.option("--min-requests", default=20, show_default=True, type=click.IntRange(0))
@click.option(
    "--rule", "rules", multiple=True, help="Extra guardrail, e.g. 'p50_ms < 20'; repeatable."
)
@click.option(
    "--experiment", default=None, help="Roll back when this A/B experiment's verdict is stop."
)
@click.option("--wait", is_flag=True, help="Follow the rollout until it ends.")
@_uri_option
@_json_option
def deploy_rollout(
    name: str,
    target_uri: str,
    steps: str,
    interval: str,
    max_error_rate: float,
    max_p99_ms: float | None,
    min_requests: int,
    rules: tuple[str, ...],
    experiment: str | None,
    wait: bool,
    tracking_uri: str | None,
    as_json: bool,
) -> None:
    """Roll a model out step by step while guardrails hold; roll back when one breaks.

    The servers of the deployment (loopml serve NAME) take the decisions from the prediction
    log; every step and decision is in `loopml deploy status NAME`.
    """
    from loopml.serving import Guardrails

    try:
        percents = [float(s) for s in steps.split(",") if s.strip()]
    except ValueError as exc:
        raise InvalidInput(f"--steps {steps!r} is invalid: write e.g. 5,25,50,100") from exc
    store = _store(tracking_uri)
    dep = store.start_rollout(
        name,
        target_uri,
        steps=percents,
        interval_seconds=parse_duration(interval),
        guardrails=Guardrails(
            max_error_rate, max_p99_ms, min_requests, tuple(rules), experiment=experiment
        ),
    )
    if not wait:
        _print_json(dep.to_dict()) if as_json else _show(dep)
        return
    seen = dep.revision
    _show(dep)
    while dep.rollout is not None and dep.rollout.status == "running":
        time.sleep(1.0)
        dep = store.get_deployment(name)
        if dep.revision != seen:
            seen = dep.revision
            r = dep.rollout
            assert r is not None
            console.print(f"revision {dep.revision}: {r.status} at {r.percent:g}% {r.reason}")
    if as_json:
        _print_json(dep.to_dict())
    else:
        _show(dep, store.list_events(name))
    if dep.rollout is not None and dep.rollout.status != "succeeded":
        raise SystemExit(2)
