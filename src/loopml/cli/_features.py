"""``loopml features``: plan and apply a feature repository, materialize, read online values,
the catalog, and the training-serving skew check."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import click
from rich.table import Table

from loopml.cli._main import _Group, _json_option, _ms, _print_json, cli, console
from loopml.errors import InvalidInput


def _store(repo: str | None = None) -> Any:
    from loopml.features import FeatureStore

    store = FeatureStore(repo)
    click.get_current_context().call_on_close(store.close)
    return store


def _plan_table(plan: Any, title: str) -> Table:
    table = Table(title=title)
    for col in ("action", "kind", "name", "version", "changes"):
        table.add_column(col)
    style = {"add": "green", "change": "yellow", "remove": "red", "unchanged": "dim"}
    for item in plan.items:
        table.add_row(
            f"[{style[item.action]}]{item.action}[/]",
            item.kind.replace("_", " "),
            item.name,
            "-" if item.version is None else str(item.version),
            "; ".join(item.changes),
        )
    return table


@cli.group(cls=_Group)
def features() -> None:
    """Feature store: repository plan/apply, materialize, online values, catalog."""


@features.command("plan")
@click.argument("repo", default=".")
@_json_option
def features_plan(repo: str, as_json: bool) -> None:
    """Show what applying the feature repository REPO would add, change and remove."""
    plan = _store(repo).plan_repo(repo)
    if as_json:
        _print_json(plan.to_dict())
        return
    console.print(_plan_table(plan, f"plan for {repo}"))
    if not plan.has_changes:
        console.print("no changes")


@features.command("apply")
@click.argument("repo", default=".")
@_json_option
def features_apply(repo: str, as_json: bool) -> None:
    """Register the definitions of the feature repository REPO (new versions for changes)."""
    plan = _store(repo).apply_repo(repo)
    if as_json:
        _print_json(plan.to_dict())
        return
    console.print(_plan_table(plan, f"applied {repo}"))
    n = sum(1 for i in plan.items if i.action != "unchanged")
    console.print(f"{n} change(s) applied")


def _progress(quiet: bool) -> Any:
    """A rich progress display of rows written per view (nothing for --json)."""
    import contextlib

    from rich.console import Console
    from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    err = Console(stderr=True)
    if quiet or not err.is_terminal:
        return contextlib.nullcontext(None)
    return Progress(
        SpinnerColumn(),
        TextColumn("{task.description}"),
        TextColumn("{task.completed:,} rows"),
        TimeElapsedColumn(),
        console=err,
    )


def _run_materialize(call: Any, as_json: bool) -> None:
    tasks: dict[str, Any] = {}
    with _progress(as_json) as progress:

        def tick(view: str, rows: int) -> None:
            if progress is None:
                return
            if view not in tasks:
                tasks[view] = progress.add_task(f"materializing {view}", total=None)
            progress.update(tasks[view], completed=rows)

        results = call(tick)
    if as_json:
        _print_json([r.to_dict() for r in results])
        return
    for r in results:
        resumed = " (resumed)" if r.resumed_from is not None else ""
        console.print(f"{r.view}: {r.rows:,} entities written online{resumed}")


def _views(values: tuple[str, ...]) -> list[str] | None:
    return list(values) or None


@features.command("materialize")
@click.argument("start")
@click.argument("end")
@click.option("--view", "views", multiple=True, help="Only this feature view (repeatable).")
@_json_option
def features_materialize(start: str, end: str, views: tuple[str, ...], as_json: bool) -> None:
    """Write the latest row per entity with event time in [START, END] (ISO 8601) online."""
    store = _store()
    _run_materialize(
        lambda tick: store.materialize(start, end, _views(views), progress=tick), as_json
    )


@features.command("materialize-incremental")
@click.argument("end", default="now")
@click.option("--view", "views", multiple=True, help="Only this feature view (repeatable).")
@_json_option
def features_materialize_incremental(end: str, views: tuple[str, ...], as_json: bool) -> None:
    """Materialize each view from its watermark up to END (ISO 8601, default now)."""
    store = _store()
    stop: Any = dt.datetime.now(dt.UTC) if end == "now" else end
    _run_materialize(
        lambda tick: store.materialize_incremental(stop, _views(views), progress=tick), as_json
    )


def _entity_value(text: str, kind: str | None, key: str) -> Any:
    """A command-line value as the type the key or request field has."""
    if kind is not None and kind.startswith("Int"):
        try:
            return int(text)
        except ValueError:
            raise InvalidInput(f"--entity {key}: {text!r} is not an integer") from None
    if kind is not None and kind.startswith("Float"):
        try:
            return float(text)
        except ValueError:
            raise InvalidInput(f"--entity {key}: {text!r} is not a number") from None
    if kind == "Bool":
        if text.lower() not in ("true", "false", "1", "0"):
            raise InvalidInput(f"--entity {key}: {text!r} is not true or false")
        return text.lower() in ("true", "1")
    return text


def _entity_args(values: tuple[str, ...]) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for item in values:
        key, sep, raw = item.partition("=")
        if not sep or not key:
            raise InvalidInput(f"--entity {item!r} is invalid: write KEY=VALUE[,VALUE...]")
        out.setdefault(key, []).extend(raw.split(","))
    if not out:
        raise InvalidInput("give at least one --entity KEY=VALUE")
    return out


def _entities(raw: dict[str, list[str]], types: dict[str, str]) -> dict[str, list[Any]]:
    return {k: [_entity_value(v, types.get(k), k) for v in vals] for k, vals in raw.items()}


@features.command("get")
@click.option("--feature", "refs", multiple=True, help="view:feature (repeatable).")
@click.option("--service", default=None, help="A feature service instead of --feature.")
@click.option(
    "--entity",
    "entity_args",
    multiple=True,
    help="KEY=VALUE[,VALUE...] entity keys or request fields (repeatable).",
)
@click.option("--full-feature-names", is_flag=True, help="Name columns view__feature.")
@_json_option
def features_get(
    refs: tuple[str, ...],
    service: str | None,
    entity_args: tuple[str, ...],
    full_feature_names: bool,
    as_json: bool,
) -> None:
    """Read the latest feature values of entities from the online store."""
    if bool(refs) == bool(service):
        raise InvalidInput("give --feature (repeatable) or --service")
    raw = _entity_args(entity_args)
    store = _store()
    features: Any = service or list(refs)
    entities = _entities(raw, store.entity_key_types(features))
    resp = store.get_online_features(features, entities, full_feature_names=full_feature_names)
    data = resp.to_dict()
    if as_json:
        _print_json({"values": data, "statuses": resp.statuses})
        return
    table = Table(title="online features")
    for col in data:
        table.add_column(col)
    for row in zip(*data.values(), strict=True):
        table.add_row(*("-" if v is None else str(v) for v in row))
    console.print(table)


def _read_entities(path: str) -> Any:
    import pandas as pd

    try:
        if path.endswith(".csv"):
            frame = pd.read_csv(path)
            if "event_timestamp" in frame:
                frame["event_timestamp"] = pd.to_datetime(
                    frame["event_timestamp"], utc=True, format="ISO8601"
                )
            return frame
        return pd.read_parquet(path)
    except FileNotFoundError:
        raise InvalidInput(f"entity file {path!r} does not exist") from None
    except (ValueError, TypeError, OSError) as exc:
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise InvalidInput(f"entity file {path!r} cannot be read: {first}") from None


@features.command("historical")
@click.option(
    "--entities",
    "entities_path",
    required=True,
    help="Entity rows: a Parquet or CSV file with the join keys and event_timestamp.",
)
@click.option("--feature", "refs", multiple=True, help="view:feature (repeatable).")
@click.option("--service", default=None, help="A feature service instead of --feature.")
@click.option("--full-feature-names", is_flag=True, help="Name columns view__feature.")
@click.option("--out", "out", default=None, help="Write the training set here (.parquet, .csv).")
@click.option("--dataset", default=None, help="Also save it as a version of this dataset.")
@_json_option
def features_historical(
    entities_path: str,
    refs: tuple[str, ...],
    service: str | None,
    full_feature_names: bool,
    out: str | None,
    dataset: str | None,
    as_json: bool,
) -> None:
    """Build a point-in-time correct training set for the entity rows."""
    if bool(refs) == bool(service):
        raise InvalidInput("give --feature (repeatable) or --service")
    if out is not None and not out.endswith((".parquet", ".csv")):
        raise InvalidInput("--out must name a .parquet or .csv file")
    entities = _read_entities(entities_path)
    features: Any = service or list(refs)
    job = _store().get_historical_features(
        entities, features, full_feature_names=full_feature_names
    )
    table = job.to_arrow()
    info: dict[str, Any] = {
        "rows": table.num_rows,
        "columns": table.column_names,
        "feature_views": job.feature_views,
    }
    if out is not None:
        try:
            if out.endswith(".csv"):
                Path(out).parent.mkdir(parents=True, exist_ok=True)
                job.to_df().to_csv(out, index=False)
            else:
                job.to_parquet(out)
        except OSError as exc:
            raise InvalidInput(f"cannot write {out!r}: {exc.strerror or exc}") from None
        info["out"] = out
    if dataset is not None:
        version = job.to_dataset(dataset)
        info["dataset"] = f"{version.name}@{version.version}"
    if as_json:
        _print_json(info)
        return
    if out is None and dataset is None:
        console.print(job.to_df().head(20).to_string(index=False))
    console.print(
        f"{info['rows']:,} rows, {len(info['columns'])} columns; "
        f"feature views {', '.join(info['feature_views'])}"
        + (f"; written to {out}" if out else "")
        + (f"; saved as {info['dataset']}" if dataset else "")
    )


@features.command("list")
@_json_option
def features_list(as_json: bool) -> None:
    """List feature views, on-demand views, entities and services."""
    store = _store()
    catalog = store.catalog
    views = [store.describe(n) for n in sorted([*catalog.views, *catalog.odfvs])]
    if as_json:
        _print_json(
            {
                "views": views,
                "entities": store.list_objects("entity"),
                "services": store.list_objects("feature_service"),
            }
        )
        return
    table = Table(title="feature views")
    for col in ("name", "kind", "version", "features", "materialized", "entities online"):
        table.add_column(col)
    for v in views:
        stats = v.get("stats") or {}
        table.add_row(
            v["name"],
            "on demand" if v["kind"] == "on_demand_feature_view" else "view",
            str(v["version"]),
            ", ".join(f["name"] for f in v["features"]),
            _ms(v.get("materialized_at")),
            str(stats.get("rows", "-")),
        )
    console.print(table)
    names = ", ".join(sorted(catalog.services)) or "-"
    console.print(f"entities: {', '.join(sorted(catalog.entities)) or '-'}; services: {names}")


@features.command("describe")
@click.argument("view")
@_json_option
def features_describe(view: str, as_json: bool) -> None:
    """Show a view: spec, versions, materialization state and feature statistics."""
    info = _store().describe(view, versions=True, online_rows=True)
    if as_json:
        _print_json(info)
        return
    spec = info["spec"]
    console.print(f"[bold]{view}[/] version {info['version']} ({info['kind'].replace('_', ' ')})")
    if info["kind"] == "feature_view":
        console.print(f"source: {spec['source']['path']}; ttl: {spec.get('ttl') or 'none'} s")
        console.print(f"join keys: {', '.join(spec['join_keys'])}")
        console.print(
            f"materialized: {_ms(info.get('materialized_at'))}; "
            f"entities online: {info.get('online_rows', '-')}"
        )
    stats = (info.get("stats") or {}).get("features", {})
    table = Table(title="features")
    for col in ("feature", "type", "count", "nulls", "mean", "std", "min", "max", "top"):
        table.add_column(col)

    def fmt(x: Any) -> str:
        return "-" if x is None else (f"{x:.4g}" if isinstance(x, float) else str(x))

    for f in info["features"]:
        s = stats.get(f["name"], {})
        top = ", ".join(f"{k} ({n})" for k, n in s.get("top", [])[:3])
        table.add_row(
            f["name"],
            f["dtype"],
            *(fmt(s.get(k)) for k in ("count", "nulls", "mean", "std", "min", "max")),
            top or "-",
        )
    console.print(table)
    console.print(
        "versions: "
        + ", ".join(f"{v['version']} ({_ms(v['created_at'])})" for v in info["versions"])
    )


@features.command("skew")
@click.argument("view")
@click.option("--sample", default=1000, show_default=True, help="Entities to compare.")
@click.option("--tolerance", default=1e-6, show_default=True, help="Relative tolerance.")
@_json_option
def features_skew(view: str, sample: int, tolerance: float, as_json: bool) -> None:
    """Compare online values with the offline values as of now for a sample of entities."""
    report = _store().skew(view, sample=sample, tolerance=tolerance)
    if as_json:
        _print_json(report.to_dict())
        return
    table = Table(title=f"training-serving skew: {view} ({report.entities} entities)")
    for col in ("feature", "compared", "mismatches", "online only", "offline only", "share"):
        table.add_column(col)
    for name, f in report.features.items():
        table.add_row(
            name,
            str(f["compared"]),
            str(f["mismatches"]),
            str(f["online_only"]),
            str(f["offline_only"]),
            f"{f['mismatch_share']:.2%}",
        )
    console.print(table)
    if report.ok:
        console.print("no skew")
    else:
        console.print(
            f"[red]skew in {len(report.skewed)} feature(s)[/]: {', '.join(report.skewed)}"
        )
