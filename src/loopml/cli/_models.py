"""``loopml models``: the registry from the command line."""

from __future__ import annotations

from typing import Any

import click
from rich.table import Table

from loopml.cli._main import _Group, _json_option, _ms, _print_json, _uri_option, cli, console


def _client(tracking_uri: str | None) -> Any:
    from loopml.client import Client

    return Client(tracking_uri)


def _versions_table(versions: list[Any], title: str) -> Table:
    table = Table(title=title)
    for col in ("version", "aliases", "stage", "status", "created", "run"):
        table.add_column(col, overflow="fold")
    for v in versions:
        table.add_row(
            v.version,
            ", ".join(v.aliases),
            v.current_stage,
            v.status,
            _ms(v.creation_timestamp),
            v.run_id or v.source,
        )
    return table


def _event_line(e: Any) -> str:
    if e.kind in ("alias", "rollback"):
        what = f"alias {e.alias}: {e.from_version or '-'} -> {e.to_version}"
        if e.kind == "rollback":
            what += " (rollback)"
    elif e.kind == "alias_deleted":
        what = f"alias {e.alias}: {e.from_version} -> deleted"
    elif e.kind == "stage":
        what = f"version {e.version}: {e.from_stage} -> {e.to_stage}"
    else:
        what = f"version {e.version} {e.kind.split('_')[1]}"
    return what


@cli.group(cls=_Group)
def models() -> None:
    """The model registry: models, versions, aliases, history."""


@models.command("list")
@click.option("--filter", "filter_string", default=None, help="e.g. \"name LIKE 'fraud%'\".")
@click.option("--max-results", default=100, show_default=True, type=click.IntRange(1, 50_000))
@_uri_option
@_json_option
def models_list(
    filter_string: str | None, max_results: int, tracking_uri: str | None, as_json: bool
) -> None:
    """List registered models."""
    found = _client(tracking_uri).search_registered_models(filter_string, max_results)
    if as_json:
        _print_json({"registered_models": [m.to_dict() for m in found]})
        return
    table = Table(title=f"Registered models ({len(found)})")
    for col in ("name", "aliases", "latest version", "updated", "description"):
        table.add_column(col, overflow="fold")
    for m in found:
        latest = max((int(v.version) for v in m.latest_versions), default=None)
        aliases = ", ".join(f"{a}=v{v}" for a, v in sorted(m.aliases.items()))
        table.add_row(
            m.name, aliases, str(latest or "-"), _ms(m.last_updated_timestamp), m.description
        )
    console.print(table)


@models.command("show")
@click.argument("name")
@_uri_option
@_json_option
def models_show(name: str, tracking_uri: str | None, as_json: bool) -> None:
    """Show a registered model: aliases, tags, latest versions."""
    model = _client(tracking_uri).get_registered_model(name)
    if as_json:
        _print_json(model.to_dict())
        return
    console.print(f"[bold]{model.name}[/bold]  updated {_ms(model.last_updated_timestamp)}")
    if model.description:
        console.print(model.description)
    for alias, version in sorted(model.aliases.items()):
        console.print(f"  @{alias} -> version {version}")
    for k, v in sorted(model.tags.items()):
        console.print(f"  tag {k} = {v}")
    console.print(_versions_table(model.latest_versions, "Latest version per stage"))


@models.command("versions")
@click.argument("name")
@click.option("--max-results", default=100, show_default=True, type=click.IntRange(1, 50_000))
@_uri_option
@_json_option
def models_versions(name: str, max_results: int, tracking_uri: str | None, as_json: bool) -> None:
    """List a model's versions, newest first."""
    client = _client(tracking_uri)
    client.get_registered_model(name)  # a missing model is an error, not an empty list
    quoted = name.replace("'", "''")
    found = client.search_model_versions(
        f"name = '{quoted}'", max_results, order_by=["version_number DESC"]
    )
    if as_json:
        _print_json({"model_versions": [v.to_dict() for v in found]})
        return
    console.print(_versions_table(list(found), f"Versions of {name} ({len(found)})"))


@models.command("alias")
@click.argument("name")
@click.argument("alias")
@click.argument("version", required=False)
@click.option("--delete", is_flag=True, help="Remove the alias instead of setting it.")
@click.option("--reason", default=None, help="Why; recorded in the history.")
@_uri_option
@_json_option
def models_alias(
    name: str,
    alias: str,
    version: str | None,
    delete: bool,
    reason: str | None,
    tracking_uri: str | None,
    as_json: bool,
) -> None:
    """Point ALIAS at VERSION (or --delete it)."""
    client = _client(tracking_uri)
    if delete:
        if version is not None:
            raise click.UsageError("--delete takes no VERSION")
        client.delete_registered_model_alias(name, alias, reason=reason)
        if as_json:
            _print_json({"deleted": alias})
        else:
            click.echo(f"{name}: alias {alias} deleted")
        return
    if version is None:
        found = client.get_model_version_by_alias(name, alias)
        if as_json:
            _print_json(found.to_dict())
        else:
            click.echo(f"{name}@{alias} -> version {found.version}")
        return
    event = client.set_registered_model_alias(name, alias, version, reason=reason)
    if as_json:
        _print_json(event.to_dict())
    else:
        click.echo(f"{name}: {_event_line(event)}")


@models.command("promote")
@click.argument("name")
@click.argument("version")
@click.option("--alias", default="production", show_default=True, help="The alias to move.")
@click.option(
    "--stage",
    default=None,
    type=click.Choice(["Staging", "Production", "Archived", "None"], case_sensitive=False),
    help="Also transition the version to this stage (MLflow compatibility).",
)
@click.option("--archive-existing", is_flag=True, help="With --stage: archive the others there.")
@click.option("--reason", default=None, help="Why; recorded in the history.")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@_uri_option
@_json_option
def models_promote(
    name: str,
    version: str,
    alias: str,
    stage: str | None,
    archive_existing: bool,
    reason: str | None,
    yes: bool,
    tracking_uri: str | None,
    as_json: bool,
) -> None:
    """Make VERSION the holder of an alias (production by default)."""
    client = _client(tracking_uri)
    target = client.get_model_version(name, version)
    if not yes and not as_json:
        click.confirm(f"Point {name}@{alias} at version {target.version}?", abort=True)
    event = client.set_registered_model_alias(name, alias, target.version, reason=reason)
    moved = None
    if stage is not None:
        moved = client.transition_model_version_stage(
            name, target.version, stage, archive_existing, reason=reason
        )
    if as_json:
        _print_json({"event": event.to_dict(), "model_version": moved and moved.to_dict()})
        return
    click.echo(f"{name}: {_event_line(event)}")
    if moved is not None:
        click.echo(f"{name}: version {moved.version} is in stage {moved.current_stage}")


@models.command("rollback")
@click.argument("name")
@click.option("--alias", default="production", show_default=True, help="The alias to move back.")
@click.option("--reason", default=None, help="Why; recorded in the history.")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@_uri_option
@_json_option
def models_rollback(
    name: str, alias: str, reason: str | None, yes: bool, tracking_uri: str | None, as_json: bool
) -> None:
    """Move an alias back to the version it pointed at before its last move."""
    client = _client(tracking_uri)
    current = client.get_model_version_by_alias(name, alias)
    if not yes and not as_json:
        click.confirm(f"Roll {name}@{alias} back from version {current.version}?", abort=True)
    event = client.rollback(name, alias, reason=reason)
    if as_json:
        _print_json(event.to_dict())
    else:
        click.echo(f"{name}: {_event_line(event)}")


@models.command("compare")
@click.argument("name")
@click.argument("version_a")
@click.argument("version_b")
@click.option("--all", "show_all", is_flag=True, help="Show equal values too.")
@_uri_option
@_json_option
def models_compare(
    name: str,
    version_a: str,
    version_b: str,
    show_all: bool,
    tracking_uri: str | None,
    as_json: bool,
) -> None:
    """Compare two versions: params, metrics and signature, differences first."""
    cmp = _client(tracking_uri).compare_versions(name, version_a, version_b)
    if as_json:
        _print_json(cmp.to_dict())
        return
    table = Table(title=f"{name}: version {cmp.version_a} vs {cmp.version_b}")
    for col in ("", f"v{cmp.version_a}", f"v{cmp.version_b}"):
        table.add_column(col, overflow="fold")
    diff = set(cmp.differences)
    for section, pairs in (
        ("params", cmp.params),
        ("metrics", cmp.metrics),
        ("signature", cmp.signature),
    ):
        for key, (a, b) in pairs.items():
            full = f"{section}.{key}"
            if full in diff or show_all:
                style = "bold yellow" if full in diff else ""
                table.add_row(full, str(a), str(b), style=style)
    console.print(table)
    if not diff:
        click.echo("no differences in params, metrics or signature")


@models.command("history")
@click.argument("name")
@click.option("--alias", default=None, help="Only this alias's moves.")
@click.option(
    "--at",
    "at",
    default=None,
    help="Which version held --alias at this moment (ISO 8601, UTC unless it has a zone).",
)
@click.option("--max-results", default=100, show_default=True, type=click.IntRange(1, 50_000))
@_uri_option
@_json_option
def models_history(
    name: str,
    alias: str | None,
    at: str | None,
    max_results: int,
    tracking_uri: str | None,
    as_json: bool,
) -> None:
    """A model's history: alias moves, stage changes, versions created and deleted."""
    client = _client(tracking_uri)
    if at is not None:
        if alias is None:
            raise click.UsageError("--at needs --alias")
        found = client.get_alias_at(name, alias, at)
        if as_json:
            _print_json({"model_version": found and found.to_dict()})
        elif found is None:
            click.echo(f"{name}@{alias} pointed at no version at {at}")
        else:
            click.echo(f"{name}@{alias} pointed at version {found.version} at {at}")
        return
    events = client.get_model_history(name, alias=alias, max_results=max_results)
    if as_json:
        _print_json({"events": [e.to_dict() for e in events]})
        return
    table = Table(title=f"History of {name}")
    for col in ("when", "change", "who", "reason"):
        table.add_column(col, overflow="fold")
    for e in events:
        table.add_row(_ms(e.timestamp), _event_line(e), e.user_id, e.reason)
    console.print(table)


@models.command("register")
@click.argument("model_uri")
@click.argument("name")
@click.option("--tag", "tags", multiple=True, help="key=value; repeatable.")
@_uri_option
@_json_option
def models_register(
    model_uri: str, name: str, tags: tuple[str, ...], tracking_uri: str | None, as_json: bool
) -> None:
    """Register a logged model (runs:/<run_id>/<path>) or a saved model folder as NAME's next
    version."""
    import loopml

    parsed: dict[str, str] = {}
    for item in tags:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise click.UsageError(f"--tag {item!r} is not key=value")
        parsed[key] = value
    if tracking_uri:
        loopml.set_tracking_uri(tracking_uri)
    version = loopml.register_model(model_uri, name, tags=parsed or None)
    if as_json:
        _print_json(version.to_dict())
    else:
        click.echo(f"{name}: version {version.version} registered from {version.source}")
