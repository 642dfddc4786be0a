"""What every command group shares: the settings in the Typer context, one-line errors, progress, the order log.

Kept apart from ``cli/__init__.py`` so each group module imports it without importing the root app.
"""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable
from contextlib import closing
from datetime import date, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, ParamSpec, TypeVar

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from orderguard import clock
from orderguard.errors import CLI_EXIT_CODE, OrderGuardError

if TYPE_CHECKING:
    from features.settings import Settings
    from orderguard.ingest.orderlog import OrderLog

P = ParamSpec("P")
R = TypeVar("R")


def command_group(**options: Any) -> typer.Typer:
    """A Typer app with plain (click) help: on/off flags read ``--promote / --no-promote`` and options carry no
    ``<bool>`` type column or box drawing, so help stays legible in a pipe, a log or a narrow terminal."""
    return typer.Typer(rich_markup_mode=None, **options)


def user_errors(command: Callable[P, R]) -> Callable[P, R]:
    """Render any domain error as one line on stderr and exit 2 (wraps every command)."""

    @functools.wraps(command)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return command(*args, **kwargs)
        except OrderGuardError as e:
            typer.echo(e.one_line(), err=True)
            raise typer.Exit(CLI_EXIT_CODE) from e

    return wrapper


def settings_of(ctx: typer.Context) -> Settings:
    """The settings the root callback built for this invocation."""
    settings: Settings = ctx.find_root().obj
    return settings


#: Width of a console whose output is piped or redirected: wide enough that no table cuts a file name or an id.
PIPED_WIDTH = 1000


def wide_console(*, stderr: bool = False) -> Console:
    """A console for reports: a terminal's own width; piped or redirected, :data:`PIPED_WIDTH`, so tables
    never cut identifiers (rich would otherwise assume 80 columns and shorten cells with "…")."""
    stream = sys.stderr if stderr else sys.stdout
    return Console(stderr=stderr, width=None if stream.isatty() else PIPED_WIDTH)


def progress_bar(console: Console) -> Progress:
    """A transient progress bar on ``console`` (stderr for commands whose stdout is a report)."""
    return Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                    TimeRemainingColumn(), console=console, transient=True)


def open_log(settings: Settings, *, create: bool = False, remembered_states: int = 0) -> closing[OrderLog]:
    """The configured order log; close it with ``with`` (``remembered_states``: see ``OrderLog.__init__``).

    Only a command that stores orders (``create=True``: ``ingest``) makes a SQLite order
    log that is not there yet (``OrderLog.open`` creates the file and its folder); any
    other command pointed at one that does not exist says so instead of leaving an empty
    database behind.
    """
    from sqlalchemy.engine import make_url

    from orderguard.errors import NotFoundError
    from orderguard.ingest.orderlog import OrderLog

    url = make_url(settings.database_url)
    if not create and url.get_backend_name() == "sqlite" and url.database not in (None, "", ":memory:"):
        path = Path(url.database)
        if not path.exists():
            raise NotFoundError(f"no order log at {path}: ingest orders first (orderguard ingest <files>), or point "
                                "--data-dir / ORDERGUARD_DATA_DIR at the folder that holds one", field="data_dir")
    return closing(OrderLog.open(settings.database_url, remembered_states=remembered_states))


def parse_day(value: str | None, option: str) -> date | None:
    """``--<option>`` as a calendar date (``orderguard.clock.parse_day``), None when not given."""
    return None if value is None else clock.parse_day(value, field=f"--{option}")


def parse_moment(value: str | None, option: str) -> datetime | None:
    """``--<option>`` as aware UTC (``orderguard.clock.parse_moment``: naive = shop time), None when not given."""
    return None if value is None else clock.parse_moment(value, field=f"--{option}")
