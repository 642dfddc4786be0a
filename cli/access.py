"""``orderguard keys | users``: API keys for machines and users for people (``orderguard.access``)."""

from __future__ import annotations

import json
from typing import Annotated

import typer
from rich.table import Table

from cli.common import command_group, open_log, settings_of, user_errors, wide_console
from orderguard.access import Directory, parse_roles
from orderguard.clock import SystemClock

keys_app = command_group(no_args_is_help=True, help="API keys for machines: create, list, revoke.")
users_app = command_group(no_args_is_help=True, help="Users who sign in to the web pages: add, list.")

_ROLE_HELP = "Role; repeat for several: order_system, reviewer, operations, data_scientist, marketing, admin."


def _when(value: object) -> str:
    return "-" if value is None else f"{value:%Y-%m-%d %H:%M}"


@keys_app.command("create")
@user_errors
def keys_create(
    ctx: typer.Context,
    name: Annotated[str, typer.Option(help="What the key is for, e.g. erp or the shop's order system.")],
    role: Annotated[list[str], typer.Option(help=_ROLE_HELP)],
) -> None:
    """Create an API key and print it once: only its hash is stored, it cannot be shown again."""
    with open_log(settings_of(ctx), create=True) as log:
        key, secret = Directory(log.engine).create_key(name, parse_roles(role), now=SystemClock().now())
    typer.echo(secret)
    typer.echo(f"key {key.prefix} for {key.name} ({', '.join(sorted(key.roles))}); send it as "
               "'Authorization: Bearer <key>'. It is not shown again.", err=True)


@keys_app.command("list")
@user_errors
def keys_list(ctx: typer.Context, as_json: Annotated[bool, typer.Option(
        "--json", help="Print one JSON object per key instead of a table (for scripts).")] = False) -> None:
    """Every key: prefix, name, roles, when created, last used and revoked (never the key itself)."""
    with open_log(settings_of(ctx)) as log:
        keys = Directory(log.engine).api_keys()
    if as_json:
        for k in keys:
            typer.echo(json.dumps({"prefix": k.prefix, "name": k.name, "roles": sorted(k.roles),
                                   "created_at": k.created_at.isoformat(),
                                   "last_used_at": k.last_used_at.isoformat() if k.last_used_at else None,
                                   "revoked_at": k.revoked_at.isoformat() if k.revoked_at else None},
                                  ensure_ascii=False))
        return
    table = Table("prefix", "name", "roles", "created (UTC)", "last used", "revoked")
    for k in keys:
        table.add_row(k.prefix, k.name, ", ".join(sorted(k.roles)), _when(k.created_at), _when(k.last_used_at),
                      _when(k.revoked_at))
    wide_console().print(table)


@keys_app.command("revoke")
@user_errors
def keys_revoke(ctx: typer.Context,
                prefix: Annotated[str, typer.Argument(help="The key's prefix, as `orderguard keys list` shows it.")],
                ) -> None:
    """Revoke a key: every request carrying it is refused from then on."""
    with open_log(settings_of(ctx)) as log:
        key = Directory(log.engine).revoke_key(prefix, now=SystemClock().now())
    typer.echo(f"key {key.prefix} ({key.name}) revoked at {_when(key.revoked_at)} UTC")


@users_app.command("add")
@user_errors
def users_add(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="Sign-in name: lower-case letters, digits, '.', '_' or '-'.")],
    role: Annotated[list[str], typer.Option(help=_ROLE_HELP)],
    password: Annotated[str, typer.Option(prompt=True, hide_input=True, confirmation_prompt=True,
                                          help="At least 12 characters; asked for when not given.")],
) -> None:
    """Add a user who signs in to the web pages; the password is stored as its argon2 hash."""
    with open_log(settings_of(ctx), create=True) as log:
        user = Directory(log.engine).add_user(name, password, parse_roles(role), now=SystemClock().now())
    typer.echo(f"user {user.name} added ({', '.join(sorted(user.roles))})")


@users_app.command("list")
@user_errors
def users_list(ctx: typer.Context) -> None:
    """Every user with their roles."""
    with open_log(settings_of(ctx)) as log:
        users = Directory(log.engine).users()
    table = Table("name", "roles", "created (UTC)", "disabled")
    for u in users:
        table.add_row(u.name, ", ".join(sorted(u.roles)), _when(u.created_at), _when(u.disabled_at))
    wide_console().print(table)
