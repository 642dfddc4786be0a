"""``orderguard policy ...``: what a rule pack or band change would do, before and beside the live one.

``backtest`` replays labelled history point in time through the live and a candidate
policy; ``shadow-report`` (``cli.shadow``) compares the live decisions with those a shadow
candidate recorded beside them.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from cli import shadow
from cli.common import command_group, open_log, parse_day, settings_of, user_errors, wide_console

if TYPE_CHECKING:
    from rich.console import Console

    from training.backtest import Backtest, BandFigures

#: ``orderguard policy ...``.
app = command_group(no_args_is_help=True,
                    help="Policy lab: backtest a candidate rule pack or bands; compare a shadow candidate.")
app.add_typer(shadow.app)  # no name: its commands join this group


def _pct(value: float) -> str:
    return "-" if value != value else f"{value:.1%}"


def _yuan(fen: int) -> str:
    return f"¥{fen / 100:,.0f}"


def _band_cells(b: BandFigures) -> list[str]:
    return [f"{b.per_day:,.1f}", f"{b.flagged:,}", _pct(b.precision), _pct(b.recall), _pct(b.false_positive_rate),
            _yuan(b.money_caught_fen)]


def _print(console: Console, result: Backtest) -> None:
    from rich.table import Table

    h = result.history
    frauds = int((h.outcome == 1).sum())
    console.print(f"{h.period.first_day} .. {h.period.last_day} ({h.period.days} days): {len(h):,} orders, "
                  f"{frauds:,} confirmed fraud; model: {h.model.version if h.model else 'none (rules only)'}")
    table = Table("policy", "band", "queue/day (this band)", "at or above", "precision", "recall", "FPR",
                  "money caught", title="decision bands (precision on labelled orders; FPR counts unlabelled "
                                        "as honest)")
    policies = [result.live] + ([result.candidate] if result.candidate is not None else [])
    for figures in policies:
        for b in figures.bands:
            table.add_row(figures.name, b.decision.value, *_band_cells(b))
    if result.candidate is not None:
        for a, b in zip(result.live.bands, result.candidate.bands, strict=True):
            table.add_row("difference", a.decision.value, f"{b.per_day - a.per_day:+,.1f}",
                          f"{b.flagged - a.flagged:+,}",
                          f"{(b.precision - a.precision) * 100:+.1f} pt", f"{(b.recall - a.recall) * 100:+.1f} pt",
                          f"{(b.false_positive_rate - a.false_positive_rate) * 100:+.2f} pt",
                          f"{(b.money_caught_fen - a.money_caught_fen) / 100:+,.0f}")
    console.print(table)
    sweep = Table("cut-off", *[f"{f.name} {m}" for f in policies for m in ("queue/day", "precision", "recall", "FPR")],
                  title="threshold sweep")
    for i in range(0, 101, 5):
        cells = []
        for f in policies:
            p = f.sweep[i]
            cells += [f"{p.per_day:,.1f}", _pct(p.precision), _pct(p.recall), _pct(p.false_positive_rate)]
        sweep.add_row(str(i), *cells)
    console.print(sweep)
    if result.candidate is not None:
        changed = result.changed()
        console.print(f"{len(changed):,} orders decided differently by the candidate")
        for c in changed[:10]:
            console.print(f"  {c.order_key}: live {c.live.value} ({c.live_score:.1f}) -> candidate "
                          f"{c.candidate.value} ({c.candidate_score:.1f}){'; ' + c.verdict if c.verdict else ''}")
    if result.served is not None:
        console.print(result.served.line())
        for m in result.served.examples:
            why = f"features: {', '.join(m.features)}" if m.cause == "features" else "policy"
            console.print(f"  {m.order_key}: served {m.served} ({m.served_score:.2f}), backtest {m.replayed} "
                          f"({m.replay_score:.2f}); {why}")


@app.command("backtest")
@user_errors
def backtest(
    ctx: typer.Context,
    pack: Annotated[Path | None, typer.Option(help="Candidate rule pack (YAML); default: the live pack.")] = None,
    bands: Annotated[str | None, typer.Option(help="Candidate bands verify,review,hold, e.g. 35,55,80.")] = None,
    first: Annotated[str | None, typer.Option("--from", help="First day (Beijing), YYYY-MM-DD; default: 90 days "
                                                             "before --to.")] = None,
    last: Annotated[str | None, typer.Option("--to", help="Last day (Beijing), YYYY-MM-DD, included; default: the "
                                                          "newest order's day.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object (for scripts).")] = False,
    chart: Annotated[Path | None, typer.Option(help="Write the threshold sweep chart (.svg or .png).")] = None,
) -> None:
    """Replay labelled history point in time through the live policy (rules, champion, bands, campaigns) and
    a candidate pack and/or bands: queue per day, precision, recall, FPR and money caught per band, a threshold
    sweep, and the live replay checked against the decisions serving recorded. Without --pack or --bands the
    live policy alone."""
    from training.backtest_chart import FORMATS, save_chart, sweep_figure
    from training.backtest_setup import backtest_log, period_for

    settings = settings_of(ctx)
    start, end = parse_day(first, "from"), parse_day(last, "to")
    if chart is not None and chart.suffix.lower() not in FORMATS:
        from orderguard.errors import InvalidInputError

        raise InvalidInputError.must("chart", "a file ending in .svg, .png or .pdf", chart.name)
    with open_log(settings) as log:
        period = period_for(log, first=start, last=end)
        result = backtest_log(settings, log, period=period, pack=pack, bands=bands)
    if chart is not None:  # the bands the replays were judged with
        candidate = result.candidate.replay.under.policy.bands if bands is not None and result.candidate else None
        save_chart(sweep_figure(result.live, result.candidate, bands=result.live.replay.under.policy.bands,
                                candidate_bands=candidate), chart)
    if as_json:
        from training.backtest import backtest_json

        typer.echo(json.dumps(backtest_json(result), ensure_ascii=False))
        return
    _print(wide_console(), result)
    if chart is not None:
        typer.echo(f"chart: {chart}")
