"""``orderguard report``: the monthly or campaign report for the shop owner (HTML, optionally PDF)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from cli.common import command_group, open_log, parse_day, settings_of, user_errors

#: ``orderguard report`` (a top-level command).
app = command_group()


@app.command("report")
@user_errors
def report(
    ctx: typer.Context,
    month: Annotated[str | None, typer.Option(help="The month, YYYY-MM (Beijing calendar).")] = None,
    campaign: Annotated[str | None, typer.Option(help="A campaign of the policy settings, by name.")] = None,
    first: Annotated[str | None, typer.Option("--from", help="First day, YYYY-MM-DD (with --to).")] = None,
    last: Annotated[str | None, typer.Option("--to", help="Last day, YYYY-MM-DD, included (with --from).")] = None,
    lang: Annotated[str, typer.Option(help="zh (default) or en.")] = "zh",
    out: Annotated[Path | None, typer.Option(help="HTML file; default: <data dir>/reports/report-<period>.html.")
                   ] = None,
    pdf: Annotated[Path | None, typer.Option(help="Also write the report as a PDF to this file.")] = None,
) -> None:
    """Write the shop owner's report for a month, a campaign or dates: orders and flags per day and channel,
    decisions by band, verdicts and precision per rule (and the rules that lost weight in the champion's blend),
    losses avoided, the models' holdout metrics, the top patterns. Every decision, precision and amount comes
    from the backtest of the live policy for the period (``orderguard policy backtest``)."""
    from reports.build import report_period, write_report
    from reports.words import words

    settings = settings_of(ctx)
    words(lang)
    start, end = parse_day(first, "from"), parse_day(last, "to")
    period, name, is_campaign = report_period(settings, month=month, campaign=campaign, first=start, last=end)
    slug = name.replace(" – ", "_").replace(" ", "_")
    target = out or settings.data_dir / "reports" / f"report-{slug}.html"
    with open_log(settings) as log:
        written = write_report(settings, log, period=period, name=name, out=target, lang=lang, campaign=is_campaign,
                               pdf=pdf)
    typer.echo(f"report: {written.html} ({written.content.orders:,} orders, {written.content.served_line})")
    if written.pdf is not None:
        note = "" if written.pdf_lang == lang else " (English: no CJK font on this machine)"
        typer.echo(f"pdf: {written.pdf}{note}")
