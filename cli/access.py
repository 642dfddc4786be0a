"""``orderguard keys | users``: API keys for machines and users for people (``orderguard.access``)."""

from __future__ import annotations

import json
import os
from typing import Annotated

import typer
from rich.table import Table

from cli.common import command_group, open_log, settings_of, user_errors, wide_console
from orderguard.access import Directory, parse_roles
from orderguard.clock import SystemClock

keys_app = command_group(no_args_is_help=True, help="API keys for machines: create, list, revoke.")
users_app = command_group(no_args_is_help=True,
                          help="Users who sign in to the web pages: add, list, change, sign out.")

#: Where `users add` and `users change --new-password` read a password from, for scripts.
PASSWORD_ENV = "ORDERGUARD_NEW_PASSWORD"
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
                                          envvar=PASSWORD_ENV,
                                          help=f"At least 12 characters; asked for when not given (or read from "
                                               f"{PASSWORD_ENV}, which keeps it out of the process list).")],
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


@users_app.command("change")
@user_errors
def users_change(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="The user's sign-in name.")],
    role: Annotated[list[str] | None, typer.Option(help=f"{_ROLE_HELP} Replaces the user's roles.")] = None,
    disable: Annotated[bool, typer.Option("--disable", help="Refuse the user's sign-ins and sessions.")] = False,
    enable: Annotated[bool, typer.Option("--enable", help="Let a disabled user sign in again.")] = False,
    new_password: Annotated[bool, typer.Option(
        "--new-password", help=f"Ask for a new password, or read it from {PASSWORD_ENV} (ends the user's "
                               "sessions).")] = False,
) -> None:
    """Change a user's roles, password or whether they may sign in; a running service applies it within
    seconds (settings.access.refresh_s)."""
    if disable and enable:
        raise typer.BadParameter("give --disable or --enable, not both", param_hint="--disable")
    password = None
    if new_password:
        password = os.environ.get(PASSWORD_ENV) or typer.prompt("New password", hide_input=True,
                                                               confirmation_prompt=True)
    with open_log(settings_of(ctx)) as log:
        user = Directory(log.engine).set_user(name, now=SystemClock().now(), roles=parse_roles(role) if role else None,
                                              enabled=True if enable else False if disable else None,
                                              password=password)
    state = f"disabled since {_when(user.disabled_at)} UTC" if user.disabled_at else "enabled"
    typer.echo(f"user {user.name}: {', '.join(sorted(user.roles))}; {state}")


@users_app.command("sign-out")
@user_errors
def users_sign_out(ctx: typer.Context, name: Annotated[str, typer.Argument(help="The user's sign-in name.")]) -> None:
    """End every session of the user now (e.g. a lost laptop); they may sign in again."""
    with open_log(settings_of(ctx)) as log:
        directory = Directory(log.engine)
        directory.set_user(name, now=SystemClock().now())  # refuses an unknown name
        directory.end_sessions(name, now=SystemClock().now())
    typer.echo(f"user {name}: every session ended")
