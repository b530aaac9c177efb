"""``loopml data``: dataset versions (add, get, diff, validate, aliases) and ``loopml gc``."""

from __future__ import annotations

from typing import Any

import click
from rich.table import Table

from loopml.cli._main import _Group, _json_option, _ms, _print_json, _uri_option, cli, console
from loopml.errors import InvalidInput


def _store(tracking_uri: str | None) -> Any:
    from loopml.data import get_dataset_store

    return get_dataset_store(tracking_uri)


def _pairs(values: tuple[str, ...], what: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for item in values:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise InvalidInput(f"{what} {item!r} is invalid: write KEY=VALUE")
        out[key] = value
    return out


def _size(n: int | None) -> str:
    if n is None:
        return "-"
    size = float(n)
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if size < 1024 or unit == "TB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{n} B"


def _busy(text: str, *, quiet: bool) -> Any:
    """A spinner on stderr while long work runs (nothing for --json or when not a terminal)."""
    import contextlib

    from rich.console import Console

    err = Console(stderr=True)
    if quiet or not err.is_terminal:
        return contextlib.nullcontext()
    return err.status(text)


@cli.group(cls=_Group)
def data() -> None:
    """Dataset versions: add, get, diff, validate, aliases."""


@data.command("add")
@click.argument("path")
@click.option("--name", required=True, help="Dataset name.")
@click.option("--reference", is_flag=True, help="Record hashes only; the data stays in place.")
@click.option("--description", default="", help="Description of this version.")
@click.option("--tag", "tags", multiple=True, help="KEY=VALUE tag on the version (repeatable).")
@click.option("--alias", "aliases", multiple=True, help="Alias to point here (repeatable).")
@click.option("--run-id", default=None, help="Link the version to this run.")
@click.option("--no-profile", is_flag=True, help="Skip the statistics of tabular files.")
@_uri_option
@_json_option
def data_add(
    path: str,
    name: str,
    reference: bool,
    description: str,
    tags: tuple[str, ...],
    aliases: tuple[str, ...],
    run_id: str | None,
    no_profile: bool,
    tracking_uri: str | None,
    as_json: bool,
) -> None:
    """Version the file, folder or s3:// prefix PATH as dataset NAME."""
    from loopml.data import add

    with _busy(f"versioning {path} as {name}", quiet=as_json):
        result = add(
            path,
            name,
            reference=reference,
            description=description,
            tags=_pairs(tags, "--tag"),
            aliases=aliases,
            run_id=run_id,
            profile=not no_profile,
            store=_store(tracking_uri),
        )
    if as_json:
        out = result.to_dict()
        out.pop("profile", None)
        _print_json(out)
        return
    v = result.version
    state = "new version" if result.created else "unchanged: existing version"
    console.print(
        f"{state} {v.ref}: {v.num_files} file(s), {_size(v.size_bytes)}, "
        f"uploaded {result.uploaded_blobs} blob(s) ({_size(result.uploaded_bytes)}) "
        f"in {result.seconds:.2f} s"
    )


@data.command("list")
@_uri_option
@_json_option
def data_list(tracking_uri: str | None, as_json: bool) -> None:
    """List datasets."""
    found = _store(tracking_uri).list_datasets()
    if as_json:
        _print_json([d.to_dict() for d in found])
        return
    table = Table(title="datasets")
    for col in ("name", "versions", "latest", "aliases", "updated"):
        table.add_column(col)
    for d in found:
        aliases = ", ".join(f"{a}→{v}" for a, v in d.aliases.items())
        table.add_row(
            d.name, str(d.num_versions), str(d.latest_version or "-"), aliases, _ms(d.updated_at)
        )
    console.print(table)


@data.command("versions")
@click.argument("name")
@_uri_option
@_json_option
def data_versions(name: str, tracking_uri: str | None, as_json: bool) -> None:
    """List the versions of dataset NAME."""
    found = _store(tracking_uri).list_versions(name)
    if as_json:
        _print_json([{k: v for k, v in x.to_dict().items() if k != "profile"} for x in found])
        return
    table = Table(title=f"dataset {name}")
    for col in ("version", "aliases", "files", "size", "rows", "mode", "run", "created", "hash"):
        table.add_column(col, overflow="fold")
    for v in found:
        table.add_row(
            str(v.version),
            ", ".join(v.aliases),
            str(v.num_files),
            _size(v.size_bytes),
            "-" if v.num_rows is None else str(v.num_rows),
            v.mode,
            v.run_id or "-",
            _ms(v.created_at),
            v.content_hash[:12],
        )
    console.print(table)


@data.command("show")
@click.argument("ref")
@click.option("--files", "with_files", is_flag=True, help="Also list the files.")
@_uri_option
@_json_option
def data_show(ref: str, with_files: bool, tracking_uri: str | None, as_json: bool) -> None:
    """Show version REF (NAME, NAME@3, NAME@alias): schema, sizes, lineage."""
    from loopml.data import get_version, list_files

    store = _store(tracking_uri)
    v = get_version(ref, store=store)
    files = list_files(v.ref, store=store) if with_files else []
    if as_json:
        out = v.to_dict()
        if with_files:
            out["files"] = [f.to_dict() for f in files]
        _print_json(out)
        return
    console.print(f"[bold]{v.ref}[/bold] {v.description}")
    rows = "-" if v.num_rows is None else str(v.num_rows)
    console.print(
        f"{v.num_files} file(s), {_size(v.size_bytes)}, rows: {rows}, "
        f"mode: {v.mode}, run: {v.run_id or '-'}, created {_ms(v.created_at)} by {v.created_by}"
    )
    console.print(f"content hash: {v.content_hash}")
    if v.aliases:
        console.print("aliases: " + ", ".join(v.aliases))
    if v.tags:
        console.print("tags: " + ", ".join(f"{k}={x}" for k, x in v.tags.items()))
    if v.schema:
        table = Table(title="schema")
        for col in ("column", "type", "nullable"):
            table.add_column(col)
        for c in v.schema:
            table.add_row(str(c.get("name")), str(c.get("type")), str(c.get("nullable")))
        console.print(table)
    for f in files:
        console.print(f"{f.digest[:12]}  {_size(f.size):>10}  {f.path}")


@data.command("get")
@click.argument("ref")
@click.option("--out", "out", required=True, help="Folder to restore into.")
@click.option("--force", is_flag=True, help="Write into a folder that is not empty.")
@_uri_option
@_json_option
def data_get(ref: str, out: str, force: bool, tracking_uri: str | None, as_json: bool) -> None:
    """Restore version REF into --out, every file checked against its hash."""
    import time

    from loopml.data import restore_version

    started = time.perf_counter()
    with _busy(f"restoring {ref}", quiet=as_json):
        v, target = restore_version(_store(tracking_uri), ref, out, force=force)
    seconds = time.perf_counter() - started
    if as_json:
        _print_json(
            {
                "ref": v.ref,
                "out": str(target),
                "num_files": v.num_files,
                "size_bytes": v.size_bytes,
                "seconds": round(seconds, 4),
            }
        )
        return
    console.print(f"restored {v.ref}: {v.num_files} file(s), {_size(v.size_bytes)} into {target}")


@data.command("diff")
@click.argument("name")
@click.argument("a")
@click.argument("b")
@_uri_option
@_json_option
def data_diff(name: str, a: str, b: str, tracking_uri: str | None, as_json: bool) -> None:
    """Compare versions A and B of NAME: files, rows, schema and drift."""
    from loopml.data import diff

    out = diff(f"{name}@{a}", f"{name}@{b}", store=_store(tracking_uri))
    if as_json:
        _print_json(out)
        return
    files = out["files"]
    console.print(f"[bold]{out['a']} → {out['b']}[/bold]")
    console.print(
        f"files: +{len(files['added'])} -{len(files['removed'])} ~{len(files['changed'])}"
        f" ={files['unchanged']}; size {_size(out['size_bytes']['a'])} → "
        f"{_size(out['size_bytes']['b'])}"
    )
    for key, sign in (("added", "+"), ("removed", "-"), ("changed", "~")):
        for p in files[key][:20]:
            console.print(f"  {sign} {p}")
        if len(files[key]) > 20:
            console.print(f"  ... {len(files[key]) - 20} more {key}")
    if out["rows"]:
        r = out["rows"]
        console.print(f"rows: {r['a']} → {r['b']} ({r['delta']:+d})")
    if out["schema"]:
        s = out["schema"]
        for c in s.get("added", []):
            console.print(f"  column added: {c}")
        for c in s.get("removed", []):
            console.print(f"  column removed: {c}")
        for c in s.get("type_changed", []):
            console.print(f"  column {c['name']}: {c['a']} → {c['b']}")
    drift = out["drift"]
    if drift:
        table = Table(title="drift (from stored profiles)")
        for col in ("column", "psi", "null share", "drifted"):
            table.add_column(col)
        for col_name, c in drift.get("columns", {}).items():
            psi = c.get("psi")
            table.add_row(
                col_name,
                "-" if psi is None else f"{psi:.3f}",
                f"{c.get('null_share_a', 0):.3f} → {c.get('null_share_b', 0):.3f}",
                "yes" if c.get("drifted") else "no",
            )
        console.print(table)


@data.command("validate")
@click.argument("ref")
@click.option("--rules", "rules_path", required=True, help="Rules YAML file.")
@click.option("--max-examples", default=5, show_default=True, help="Offending rows shown.")
@_uri_option
@_json_option
def data_validate(
    ref: str, rules_path: str, max_examples: int, tracking_uri: str | None, as_json: bool
) -> None:
    """Check version REF against a rules file; exit 1 when a rule fails."""
    import sys

    from loopml.data import Rules, validate_dataset

    rules = Rules.from_yaml(rules_path)
    result = validate_dataset(ref, rules, max_examples=max_examples, store=_store(tracking_uri))
    if as_json:
        _print_json(result.to_dict())
    else:
        click.echo(result.summary())
    if not result.ok:
        sys.exit(1)


@data.command("alias")
@click.argument("name")
@click.argument("alias")
@click.argument("version", type=int)
@_uri_option
def data_alias(name: str, alias: str, version: int, tracking_uri: str | None) -> None:
    """Point ALIAS of dataset NAME at VERSION."""
    _store(tracking_uri).set_alias(name, alias, version)
    console.print(f"{name}@{alias} → {version}")


@data.command("unalias")
@click.argument("name")
@click.argument("alias")
@_uri_option
def data_unalias(name: str, alias: str, tracking_uri: str | None) -> None:
    """Remove ALIAS of dataset NAME."""
    _store(tracking_uri).delete_alias(name, alias)
    console.print(f"removed {name}@{alias}")


@data.command("update")
@click.argument("ref")
@click.option("--description", default=None, help="New description.")
@click.option("--tag", "tags", multiple=True, help="KEY=VALUE to set, KEY= to delete.")
@_uri_option
def data_update(
    ref: str, description: str | None, tags: tuple[str, ...], tracking_uri: str | None
) -> None:
    """Change the description or tags of version REF."""
    from loopml.data import update_version

    values = {k: (v or None) for k, v in _pairs(tags, "--tag").items()}
    v = update_version(ref, description=description, tags=values, store=_store(tracking_uri))
    console.print(f"updated {v.ref}")


@data.command("delete")
@click.argument("ref")
@click.option("--yes", is_flag=True, help="Needed to delete a whole dataset (REF without @).")
@_uri_option
def data_delete(ref: str, yes: bool, tracking_uri: str | None) -> None:
    """Delete version NAME@N, or with --yes the whole dataset NAME; run `loopml gc` after."""
    from loopml.data import delete_dataset, delete_version

    store = _store(tracking_uri)
    if "@" in ref:
        delete_version(ref, store=store)
    elif not yes:
        raise InvalidInput(f"deleting the whole dataset {ref!r} needs --yes")
    else:
        delete_dataset(ref, store=store)
    console.print(f"deleted {ref}")


@cli.command("gc")
@click.option(
    "--grace", default="1h", show_default=True, help="Spare blobs touched this recently."
)
@click.option("--dry-run", is_flag=True, help="Count what would go; delete nothing.")
@_uri_option
@_json_option
def gc(grace: str, dry_run: bool, tracking_uri: str | None, as_json: bool) -> None:
    """Delete dataset blobs that no version references."""
    from loopml.cli._deploy import parse_duration

    report = _store(tracking_uri).collect_garbage(
        grace_seconds=parse_duration(grace), dry_run=dry_run
    )
    if as_json:
        _print_json(report.to_dict())
        return
    verb = "would delete" if dry_run else "deleted"
    console.print(
        f"{verb} {report.deleted_blobs} blob(s), {_size(report.deleted_bytes)};"
        f" {report.kept_blobs} kept"
    )
