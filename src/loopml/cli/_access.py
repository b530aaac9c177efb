"""``loopml users | tokens | workspaces | grants | audit``: administration against the database
directly (how the first admin is made), or through a server's HTTP API when
``LOOPML_TRACKING_URI`` names one (with an admin's ``LOOPML_TRACKING_TOKEN``)."""

from __future__ import annotations

import sys
from typing import Any

import click
from rich.table import Table

from loopml.cli._main import _Group, _json_option, _ms, _print_json, cli, console
from loopml.errors import InvalidInput


def _identities() -> Any:
    from loopml.config import get_settings
    from loopml.server import SqlIdentityStore

    settings = get_settings()
    uri = settings.tracking_uri or settings.resolved_database_uri
    if uri.startswith(("http://", "https://")):
        from loopml.server import RestIdentityStore

        return RestIdentityStore(uri, token=settings.tracking_token)
    return SqlIdentityStore(uri)


def _table(title: str, columns: list[str], rows: list[list[Any]]) -> None:
    table = Table(title=title)
    for col in columns:
        table.add_column(col, overflow="fold")
    for row in rows:
        table.add_row(*[str(v) for v in row])
    console.print(table)


# -- users --------------------------------------------------------------------------------------
@cli.group(cls=_Group)
def users() -> None:
    """Users and service accounts: create, list, disable, enable, password."""


@users.command("create")
@click.argument("name")
@click.option("--admin", is_flag=True, help="Administers everything.")
@click.option("--service", is_flag=True, help="A service account: tokens only, no password.")
@click.option("--password-stdin", is_flag=True, help="Read a password (web UI) from stdin.")
@_json_option
def users_create(
    name: str, admin: bool, service: bool, password_stdin: bool, as_json: bool
) -> None:
    """Create a user (the first one turns access control on for `loopml server`)."""
    password = sys.stdin.readline().rstrip("\n") if password_stdin else None
    user = _identities().create_user(name, password=password, admin=admin, service=service)
    if as_json:
        _print_json(user.to_dict())
    else:
        console.print(f"created {user.kind} {user.name}" + (" (admin)" if user.is_admin else ""))


@users.command("list")
@_json_option
def users_list(as_json: bool) -> None:
    """Users with their roles."""
    found = _identities().list_users()
    if as_json:
        _print_json([u.to_dict() for u in found])
        return
    _table(
        "users",
        ["name", "kind", "admin", "disabled", "grants", "created"],
        [
            [
                u.name,
                u.kind,
                "yes" if u.is_admin else "",
                "yes" if u.disabled else "",
                ", ".join(
                    f"{g['role']}@{g['workspace']}"
                    + (f"/{g['object_type']}:{g['object_name']}" if "object_type" in g else "")
                    for g in u.grants
                ),
                _ms(u.created_at),
            ]
            for u in found
        ],
    )


@users.command("disable")
@click.argument("name")
def users_disable(name: str) -> None:
    """Disable a user: its tokens stop working."""
    _identities().set_disabled(name, True)
    console.print(f"disabled {name}")


@users.command("enable")
@click.argument("name")
def users_enable(name: str) -> None:
    """Enable a disabled user."""
    _identities().set_disabled(name, False)
    console.print(f"enabled {name}")


@users.command("password")
@click.argument("name")
def users_password(name: str) -> None:
    """Set a user's password, read from stdin."""
    _identities().set_password(name, sys.stdin.readline().rstrip("\n"))
    console.print(f"password set for {name}")


# -- tokens -------------------------------------------------------------------------------------
@cli.group(cls=_Group)
def tokens() -> None:
    """API tokens: create (shown once), list, revoke."""


@tokens.command("create")
@click.argument("user")
@click.option("--name", default="token", show_default=True)
@click.option("--expires-days", default=90.0, show_default=True, help="0: never expires.")
@_json_option
def tokens_create(user: str, name: str, expires_days: float, as_json: bool) -> None:
    """Create a token for USER; the secret is printed once and never stored."""
    made = _identities().create_token(user, name, expires_in_days=expires_days or None)
    if as_json:
        _print_json(made.to_dict())
        return
    click.echo(made.secret)
    console.print(
        f"token {made.token_id} for {user}; expires {_ms(made.expires_at)}. "
        "Keep the secret above: it is not shown again.",
        style="dim",
    )


@tokens.command("list")
@click.option("--user", default=None)
@_json_option
def tokens_list(user: str | None, as_json: bool) -> None:
    """Tokens (without secrets)."""
    found = _identities().list_tokens(user)
    if as_json:
        _print_json([t.to_dict() for t in found])
        return
    _table(
        "tokens",
        ["id", "user", "name", "created", "expires", "revoked", "last used"],
        [
            [
                t.token_id,
                t.user,
                t.name,
                _ms(t.created_at),
                _ms(t.expires_at),
                _ms(t.revoked_at),
                _ms(t.last_used_at),
            ]
            for t in found
        ],
    )


@tokens.command("revoke")
@click.argument("token_id")
def tokens_revoke(token_id: str) -> None:
    """Revoke a token: it stops working at once."""
    _identities().revoke_token(token_id)
    console.print(f"revoked {token_id}")


# -- workspaces and grants ----------------------------------------------------------------------
@cli.group(cls=_Group)
def workspaces() -> None:
    """Workspaces: create, list."""


@workspaces.command("create")
@click.argument("name")
@click.option("--description", default="")
def workspaces_create(name: str, description: str) -> None:
    """Create a workspace."""
    _identities().create_workspace(name, description)
    console.print(f"created workspace {name}")


@workspaces.command("list")
@_json_option
def workspaces_list(as_json: bool) -> None:
    """Every workspace."""
    found = _identities().list_workspaces()
    if as_json:
        _print_json(found)
        return
    _table("workspaces", ["name", "description"], [[w["name"], w["description"]] for w in found])


@cli.group(cls=_Group)
def grants() -> None:
    """Roles in workspaces and on single models or deployments: add, remove, list."""


def _target(model: str | None, deployment: str | None) -> tuple[str, str]:
    if model and deployment:
        raise InvalidInput("give --model or --deployment, not both")
    if model:
        return "model", model
    if deployment:
        return "deployment", deployment
    return "", ""


@grants.command("add")
@click.argument("user")
@click.argument("role", type=click.Choice(["reader", "editor", "manager"]))
@click.option("--workspace", "-w", default="default", show_default=True)
@click.option("--model", default=None, help="Only on this registered model.")
@click.option("--deployment", default=None, help="Only on this deployment.")
def grants_add(
    user: str, role: str, workspace: str, model: str | None, deployment: str | None
) -> None:
    """Give USER a ROLE in a workspace (or on one model or deployment of it)."""
    kind, name = _target(model, deployment)
    _identities().add_grant(user, workspace, role, object_type=kind, object_name=name)
    console.print(f"{user} is {role} in {workspace}" + (f" on {kind} {name}" if kind else ""))


@grants.command("remove")
@click.argument("user")
@click.option("--workspace", "-w", default="default", show_default=True)
@click.option("--model", default=None)
@click.option("--deployment", default=None)
def grants_remove(user: str, workspace: str, model: str | None, deployment: str | None) -> None:
    """Take a grant back."""
    kind, name = _target(model, deployment)
    _identities().remove_grant(user, workspace, object_type=kind, object_name=name)
    console.print(f"removed {user}'s grant in {workspace}")


@grants.command("list")
@click.option("--workspace", "-w", default=None)
@_json_option
def grants_list(workspace: str | None, as_json: bool) -> None:
    """Grants (of one workspace)."""
    found = _identities().list_grants(workspace)
    if as_json:
        _print_json(found)
        return
    _table(
        "grants",
        ["user", "workspace", "role", "on"],
        [
            [g["user"], g["workspace"], g["role"], f"{g['object_type']} {g['object_name']}"]
            for g in found
        ],
    )


# -- audit --------------------------------------------------------------------------------------
@cli.command("audit")
@click.option("--user", "actor", default=None, help="Only this caller's changes.")
@click.option("--workspace", "-w", default=None)
@click.option("--model", default=None, help="Only changes to this registered model.")
@click.option("--deployment", default=None, help="Only changes to this deployment.")
@click.option("--limit", default=50, show_default=True)
@_json_option
def audit(
    actor: str | None,
    workspace: str | None,
    model: str | None,
    deployment: str | None,
    limit: int,
    as_json: bool,
) -> None:
    """The audit log: every change made through the server, newest first."""
    kind, name = _target(model, deployment)
    found = _identities().audit_log(
        actor=actor,
        workspace=workspace,
        object_type=kind or None,
        object_name=name or None,
        limit=limit,
    )
    if as_json:
        _print_json([e.to_dict() for e in found])
        return
    _table(
        "audit log",
        ["when", "who", "workspace", "what", "status", "from"],
        [[_ms(e.time), e.actor, e.workspace, e.action, e.status, e.remote] for e in found],
    )
