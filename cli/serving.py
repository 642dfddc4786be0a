"""``orderguard serve``: the HTTP service (``serving``)."""

from __future__ import annotations

from typing import Annotated

import typer

from cli.common import command_group, settings_of, user_errors

app = command_group()


@app.command()
@user_errors
def serve(
    ctx: typer.Context,
    host: Annotated[str | None, typer.Option(help="Bind address (default from settings: 127.0.0.1).")] = None,
    port: Annotated[int | None, typer.Option(help="Port (default from settings: 8000).")] = None,
) -> None:
    """Run the HTTP service (one worker; see "Running in production" in README.md)."""
    import uvicorn

    from serving.app import create_app

    settings = settings_of(ctx)
    bind = host or settings.api.host
    warning = settings.check_serving_on(bind)
    if warning is not None:
        typer.echo(f"warning: {warning}", err=True)
    uvicorn.run(create_app(settings), host=bind, port=port or settings.api.port, log_level="info",
                access_log=False)


@app.command("score-orders")
@user_errors
def score_orders(
    ctx: typer.Context,
    since: Annotated[str | None, typer.Option(
        help="Score orders created from this time on: YYYY-MM-DD (Beijing midnight) or an ISO time; default: all.")
    ] = None,
    until: Annotated[str | None, typer.Option(help="Only orders created before this time (default: no end).")] = None,
) -> None:
    """Score stored orders as the service would have when each came in (the champion model, features as of
    arrival) and record the decisions, so the review desk and its similar cases cover orders that arrived
    through files. Orders already scored keep their records; running it again stores nothing new."""
    from datetime import UTC, datetime

    from rich.console import Console

    from cli.common import open_log, progress_bar
    from orderguard.clock import parse_moment
    from orderguard.labels import LabelLog
    from scoring.registry import Registry
    from serving.backscore import backscore

    settings = settings_of(ctx)
    start = parse_moment(since, field="since") if since else datetime(1970, 1, 1, tzinfo=UTC)
    end = parse_moment(until, field="until") if until else None
    console = Console(stderr=True)
    with open_log(settings) as log, progress_bar(console) as bar:
        task = bar.add_task("scoring", total=None)
        done = backscore(settings, log, LabelLog(log.engine), champion=Registry.from_settings(settings),
                         since=start, until=end, progress=lambda n: bar.update(task, completed=n))
    decisions = ", ".join(f"{d} {n}" for d, n in sorted(done.decisions.items()))
    typer.echo(f"{done.scored} orders scored ({decisions or 'none'}), {done.stored} new records stored; "
               f"replayed {done.events} events and {done.labels} labels; model: {done.model}")


@app.command("settings")
@user_errors
def settings_reference() -> None:
    """Print the reference of every ORDERGUARD_* setting as Markdown (docs/settings.md is this output)."""
    from features.settings_reference import markdown

    typer.echo(markdown(), nl=False)
