"""``orderguard policy shadow-report``: the shadow candidate's recorded decisions against the live ones.

The figures are defined in ``serving.shadow_report``; this renders them as tables, or as
one JSON object with ``--json``.
"""

from __future__ import annotations

import json
from typing import Annotated

import typer
from rich.table import Table

from cli.common import command_group, open_log, parse_moment, settings_of, user_errors, wide_console

#: Commands merged into ``orderguard policy``.
app = command_group()


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{value:.1%}"


@app.command("shadow-report")
@user_errors
def shadow_report_command(
    ctx: typer.Context,
    since: Annotated[str | None, typer.Option("--from", help="Start (shop time unless it has an offset); default: "
                                                             "when the shadow started.")] = None,
    until: Annotated[str | None, typer.Option("--to", help="End (exclusive); default: now.")] = None,
    version: Annotated[int | None, typer.Option(help="The shadow version to report on; default: the running "
                                                     "one, else the newest that ran.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object instead of tables (for scripts).")
                       ] = False,
) -> None:
    """Compare live and shadow decisions on the orders both judged and the labels given since the shadow started:
    per decision, volume per day, precision, recall, false-positive rate, money at risk caught, the live x shadow
    matrix and the labelled orders whose decision would change."""
    from datetime import UTC, datetime

    from features.shop import feature_set_from
    from scoring.pack_store import PackStore
    from serving.shadow_report import DECISIONS, labelled_changes, report_json, shadow_report

    settings = settings_of(ctx)
    start, end = parse_moment(since, "from"), parse_moment(until, "to")
    with open_log(settings) as log:
        store = PackStore(log.engine, known_features=feature_set_from(settings).names)
        report = shadow_report(log, store, now=datetime.now(UTC), version=version, since=start, until=end)
    if as_json:
        typer.echo(json.dumps(report_json(report), ensure_ascii=False))
        return
    console = wide_console()
    console.print(f"shadow {report.shadow} against live {', '.join(report.live_versions) or '-'}; "
                  f"{report.start:%Y-%m-%d %H:%M} to {report.end:%Y-%m-%d %H:%M} UTC; {report.orders} orders, "
                  f"{report.labelled} labelled since the shadow started"
                  + (f"; {report.errors} where the candidate failed" if report.errors else ""),
                  markup=False, highlight=False)
    volume = Table("decision", "live", "live / day", "shadow", "shadow / day")
    for d in DECISIONS:
        volume.add_row(d.value, str(report.live.decisions[d.value]), f"{report.live.per_day[d.value]:.1f}",
                       str(report.candidate.decisions[d.value]), f"{report.candidate.per_day[d.value]:.1f}")
    console.print(volume)
    quality = Table("flagged at or above", "side", "flagged", "precision", "recall", "false-positive rate")
    for name, side in (("live", report.live), ("shadow", report.candidate)):
        for q in side.quality:
            quality.add_row(q.threshold.value, name, str(q.flagged), _pct(q.precision), _pct(q.recall),
                            _pct(q.false_positive_rate))
    console.print(quality)
    console.print(f"money at risk caught (confirmed fraud at review or above): live "
                  f"{report.live.money_caught_fen / 100:,.2f} yuan, shadow "
                  f"{report.candidate.money_caught_fen / 100:,.2f} yuan", markup=False, highlight=False)
    matrix = Table("live \\ shadow", *(d.value for d in DECISIONS))
    for d in DECISIONS:
        matrix.add_row(d.value, *(str(report.matrix[d.value][s.value]) for s in DECISIONS))
    console.print(matrix)
    moves = labelled_changes(report)
    changed = Table("order", "verdict", "live", "shadow", "paid (yuan)")
    for r in report.changed:
        changed.add_row(str(r.order_key), r.verdict.value if r.verdict else "", r.live.value, r.shadow.value,
                        f"{r.paid_fen / 100:,.2f}")
    console.print(f"{len(report.changed)} labelled orders would change ({moves['stricter']} stricter, "
                  f"{moves['looser']} looser)", markup=False, highlight=False)
    if report.changed:
        console.print(changed)
