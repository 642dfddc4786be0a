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
