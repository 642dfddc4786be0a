"""What every command group shares: the settings in the Typer context, one-line errors, progress, the order log.

Kept apart from ``cli/__init__.py`` so each group module imports it without importing the root app.
"""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable
from contextlib import closing
from datetime import date, datetime
from typing import TYPE_CHECKING, ParamSpec, TypeVar

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


def open_log(settings: Settings) -> closing[OrderLog]:
    """The configured order log, created under ``data_dir`` when embedded; close it with ``with``."""
    from orderguard.ingest.orderlog import OrderLog

    settings.data_dir.mkdir(parents=True, exist_ok=True)
    return closing(OrderLog.open(settings.database_url))


def parse_day(value: str | None, option: str) -> date | None:
    """``--<option>`` as a calendar date (``orderguard.clock.parse_day``), None when not given."""
    return None if value is None else clock.parse_day(value, field=f"--{option}")


def parse_moment(value: str | None, option: str) -> datetime | None:
    """``--<option>`` as aware UTC (``orderguard.clock.parse_moment``: naive = shop time), None when not given."""
    return None if value is None else clock.parse_moment(value, field=f"--{option}")
