"""The ``orderguard`` command line: the composition root.

Each package contributes one Typer group (``cli/<package>.py``) and this module merges
them; it builds the one :class:`Settings` in the callback and every command reads it
from the context. Only ``cli`` imports across all packages -- the arrows point down
(``docs/architecture.md``) -- and commands import their package inside the body so
``orderguard --help`` stays fast. Every user error prints one line
``error[code]: message`` and exits with code 2.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from pydantic import ValidationError

from cli import (
    access,
    features,
    handbook,
    health,
    ingest,
    labels,
    policy,
    report,
    rules,
    segments,
    serving,
    simulate,
    training,
)
from cli.common import command_group
from features.settings import Settings
from orderguard.errors import CLI_EXIT_CODE

app = command_group(add_completion=False, no_args_is_help=True,
                  help="orderguard: order-risk service for multi-channel shops.")
for group in (ingest.app, simulate.app, features.app, serving.app, rules.report_app, training.app, report.app):
    app.add_typer(group)  # no name: the group's commands become top-level commands
app.add_typer(handbook.app, name="handbook")
app.add_typer(labels.app, name="label")
app.add_typer(rules.app, name="rules")
app.add_typer(policy.app, name="policy")
app.add_typer(segments.app, name="trust-pool")
app.add_typer(health.app, name="health")
app.add_typer(access.keys_app, name="keys")
app.add_typer(access.users_app, name="users")


@app.callback()
def main_callback(
    ctx: typer.Context,
    data_dir: Annotated[Path | None, typer.Option(help="Where embedded databases live (default: ./var).")] = None,
    database_url: Annotated[str | None, typer.Option(
        help="Order log URL, e.g. postgresql+psycopg://user@127.0.0.1/orderguard (default: SQLite in data dir).")
    ] = None,
) -> None:
    """Build the settings once (environment ORDERGUARD_*, then these options)."""
    try:
        settings = Settings()
    except ValidationError as e:
        # A bad environment variable is a user error like a bad option: one line per field, exit 2.
        for err in e.errors():
            field = "ORDERGUARD_" + "__".join(str(p) for p in err["loc"] if p != "[key]").upper()
            typer.echo(f"error[settings]: {field}: {err['msg']}", err=True)
        raise typer.Exit(CLI_EXIT_CODE) from e
    if data_dir is not None:
        settings = settings.model_copy(update={"data_dir": data_dir})
    if database_url is not None:
        settings = settings.model_copy(
            update={"database": settings.database.model_copy(update={"url": database_url})})
    ctx.obj = settings


def main() -> None:
    """Console entry point (errors are rendered by each command)."""
    app()


if __name__ == "__main__":
    main()
