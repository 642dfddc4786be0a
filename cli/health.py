"""``orderguard health``: fulfilment reports in from files, the order-health sweep replayed at any moment."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from cli.common import command_group, open_log, settings_of, user_errors, wide_console
from orderguard.errors import CLI_EXIT_CODE, InvalidInputError, NotFoundError

app = command_group(help="Order health: fulfilment reports, health checks, sweeps (replays) of the monitor.")


@app.command("ingest")
@user_errors
def ingest_reports(
    ctx: typer.Context,
    files: Annotated[list[Path], typer.Argument(help="Fulfilment report files: .jsonl, .json or .csv.")],
    all_or_nothing: Annotated[bool, typer.Option(
        "--all-or-nothing", help="Store nothing from a file that has any bad row.")] = False,
) -> None:
    """Store fulfilment reports (payment callbacks, ERP syncs, warehouse scans, carrier tracking, complaints).

    The same rules as POST /v1/fulfilment: a bad row is reported with its line and reason,
    the good rows are kept, a repeat is a duplicate. Exits 2 when any row was refused.
    """
    from orderguard.clock import SystemClock
    from orderguard.fulfilment import FulfilmentLog
    from orderguard.fulfilment_files import import_reports

    missing = [str(p) for p in files if not p.is_file()]
    if missing:
        raise NotFoundError(f"`files` must be existing files; no such file: {', '.join(missing)}", field="files")
    settings = settings_of(ctx)
    console = wide_console(stderr=True)
    table = Table("file", "rows", "inserted", "duplicates", "conflicts", "refused")
    refused = 0
    with open_log(settings, create=True) as log:
        steps = FulfilmentLog(log.engine)
        for path in files:
            result = import_reports(path, steps, received_at=SystemClock().now(), all_or_nothing=all_or_nothing)
            table.add_row(path.name, str(result.rows), str(result.inserted), str(result.duplicates),
                          str(result.conflicts), str(len(result.errors)))
            refused += len(result.errors)
            for line, error in result.errors[:20]:
                console.print(f"{path.name}:{line}: {error.one_line()}", markup=False, highlight=False)
            if len(result.errors) > 20:
                console.print(f"{path.name}: … and {len(result.errors) - 20} more refused rows")
    wide_console().print(table)
    if refused:
        console.print(f"error[invalid_input]: {refused} row(s) refused", markup=False)
        raise typer.Exit(CLI_EXIT_CODE)


@app.command("checks")
@user_errors
def show_checks(ctx: typer.Context) -> None:
    """The health checks in force (ORDERGUARD_HEALTH__CHECKS): stage, score component, anchor, deadline."""
    from health.checks import load_checks

    config = load_checks(settings_of(ctx).health.checks)
    table = Table("check", "stage", "component", "after", "expect", "deadline", "per channel", "text")
    for c in config.checks:
        table.add_row(c.id, c.stage, f"{c.component} ({config.weights[c.component]:.0f})", ",".join(c.after),
                      ",".join(c.expect), str(c.within) if c.within else "-",
                      ", ".join(f"{k.value} {v}" for k, v in c.channels.items()) or "-", c.text_zh)
    console = wide_console()
    console.print(table)
    console.print(f"{config.name} ({config.digest}): needs action below {config.action_below:.0f}; yellow "
                  f"{config.yellow_at:.0f}-{config.action_below - 1:.0f}, orange {config.orange_at:.0f}-"
                  f"{config.yellow_at - 1:.0f}, red below {config.orange_at:.0f}; the shop alert below "
                  f"{config.overall_alert_below:.0f}")


@app.command("sweep")
@user_errors
def sweep(
    ctx: typer.Context,
    as_of: Annotated[str, typer.Option(help="Sweep at this moment (ISO time; no offset = Beijing time).")],
    since: Annotated[str | None, typer.Option(
        "--from", help="Replay sweeps from this moment to --as-of every --every (first-flagged times as the "
                       "service would have found them).")] = None,
    every: Annotated[str, typer.Option(help="Sweep interval of a replay, e.g. 1m.")] = "1m",
    horizon: Annotated[str, typer.Option(help="How far before the first sweep events are loaded.")] = "14d",
    as_json: Annotated[bool, typer.Option("--json", help="Print the result as JSON.")] = False,
    limit: Annotated[int, typer.Option(min=1, max=1000, help="Stuck orders listed.")] = 20,
    record: Annotated[bool, typer.Option(
        "--record", help="Also store each sweep's findings and snapshot, as the service does (fills the "
                         "dashboard's chart, e.g. after a deployment).")] = False,
) -> None:
    """Replay the order-health sweep on event time: what was stuck at --as-of, and why.

    Reads the stored channel events and fulfilment reports with event time before each
    sweep (nothing is written unless --record). With --from, sweeps every --every in
    between and reports when each finding was first flagged.
    """
    from health.checks import load_checks
    from health.replay import replay
    from health.store import HealthStore
    from health.sweeper import Sweeper
    from orderguard.clock import parse_moment
    from orderguard.durations import parse_duration
    from orderguard.fulfilment import FulfilmentLog

    settings = settings_of(ctx)
    end = parse_moment(as_of, field="as_of")
    start = parse_moment(since, field="from") if since else end
    if start > end:
        raise InvalidInputError.must("from", f"at or before --as-of ({as_of})", since)
    step = timedelta(microseconds=parse_duration(every, field="every")[0])
    back = timedelta(microseconds=parse_duration(horizon, field="horizon")[0])
    if (end - start) / step > 100_000:
        raise InvalidInputError.must("every", "a step giving at most 100000 sweeps", every)
    config = load_checks(settings.health.checks)
    sweeper = Sweeper(config, horizon=back)
    first_flagged: dict[tuple[str, str], str] = {}
    with open_log(settings) as log:
        store = HealthStore(log.engine) if record else None
        for result in replay(sweeper, log, FulfilmentLog(log.engine), start=start, end=end, every=step,
                             horizon=back):
            for f in result.opened:
                first_flagged.setdefault((f.order_key, f.check_id), f.flagged_at.isoformat())
            if store is not None:
                store.record(result)
        if store is not None:
            store.reconcile({(k, c) for k, c, _ in sweeper.open_findings()}, end)
    stuck = sorted(((w, sweeper.track(w.order_key)) for w in sweeper.worst(limit)), key=lambda p: p[0].score)
    if as_json:
        out = {"as_of": end.isoformat(), "overall": result.overall, "orders": result.orders, **result.summary(),
               "first_flagged": [{"order_key": k, "check": c, "flagged_at": t}
                                 for (k, c), t in sorted(first_flagged.items(), key=lambda kv: kv[1])]}
        typer.echo(json.dumps(out, ensure_ascii=False, indent=1))
        return
    console = wide_console()
    console.print(f"as of {end.isoformat()}: overall health {result.overall:.1f} over {result.orders} orders in the "
                  f"pipeline; tiers {result.tiers}")
    table = Table("order", "score", "tier", "failing checks (oldest due first)")
    for health, _ in stuck:
        table.add_row(health.order_key, f"{health.score:.0f}", health.tier,
                      "; ".join(config.check(c).text_zh for c in health.checks))
    console.print(table)
    if since:
        console.print(f"{len(first_flagged)} finding(s) flagged between {start.isoformat()} and {end.isoformat()}")
