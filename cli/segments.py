"""``orderguard trust-pool``: export the trusted-customer pool, explain an account, list the presets."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.table import Table

from cli.common import command_group, open_log, progress_bar, settings_of, user_errors, wide_console

if TYPE_CHECKING:
    from segments.build import TrustPool

app = command_group(invoke_without_command=True,
                    help="The trusted-customer pool marketing may reward: export it, or explain why an account "
                         "is not in it.")

_AS_OF_HELP = ("The day whose close the pool is computed at (YYYY-MM-DD, shop time), or an ISO time; only orders, "
               "labels and scores known by then count (default: the close of yesterday).")
_CRITERIA_HELP = "A preset (standard, loose, strict) or a criteria YAML file (default: settings segments.criteria)."


def _build(ctx: typer.Context, as_of: str | None, criteria: str | None) -> TrustPool:
    from orderguard.clock import SystemClock
    from segments.build import TrustPool, resolve_as_of
    from segments.criteria import load_criteria

    settings = settings_of(ctx)
    chosen = load_criteria(criteria or settings.segments.criteria)
    moment = resolve_as_of(as_of, now=SystemClock().now(), field="--as-of")
    console = wide_console(stderr=True)
    with open_log(settings) as log, progress_bar(console) as bars:
        tasks: dict[str, Any] = {}

        def report(stage: str, done: int, total: int | None) -> None:
            if stage not in tasks:
                tasks[stage] = bars.add_task(f"reading {stage}" if stage != "pool" else "computing the pool",
                                             total=total)
            bars.update(tasks[stage], completed=done, total=total)

        return TrustPool.build(log.engine, settings, chosen, as_of=moment, progress=report)


@app.callback()
@user_errors
def trust_pool(
    ctx: typer.Context,
    out: Annotated[Path | None, typer.Option(help="The file to write (required unless a sub-command is given).")]
    = None,
    fmt: Annotated[str | None, typer.Option("--format", help="csv, xlsx or parquet (default: the --out suffix).")]
    = None,
    as_of: Annotated[str | None, typer.Option("--as-of", help=_AS_OF_HELP)] = None,
    criteria: Annotated[str | None, typer.Option(help=_CRITERIA_HELP)] = None,
    with_phones: Annotated[bool, typer.Option(
        "--with-phones", help="Add the phones as the channels mask them (138****1234); without it a row carries "
                              "only the keyed phone hashes. Clear numbers are never stored.")] = False,
) -> None:
    """Export the pool: one row per customer (their channel accounts, tier, the metrics that qualified them).

    Same as-of, same criteria, same data: the same bytes, in every format.
    """
    if ctx.invoked_subcommand is not None:
        ctx.obj = {"as_of": as_of, "criteria": criteria}
        return
    from orderguard.errors import InvalidInputError
    from segments.export import parse_format, write

    if out is None:
        raise InvalidInputError.must("--out", "the file to write", "nothing")
    chosen_format = parse_format(fmt if fmt is not None else out.suffix.lstrip(".") or "?", field="--format")
    with _build(ctx, as_of, criteria) as pool:
        with progress_bar(wide_console(stderr=True)) as bars:
            task = bars.add_task(f"writing {out.name}", total=pool.stats.pool)
            rows = write(pool.relation(phones=with_phones), out, chosen_format, as_of=pool.as_of,
                         progress=lambda done, total: bars.update(task, completed=done, total=total))
        console = wide_console()
        console.print(f"{rows} customers in the pool (of {pool.stats.customers}) as of {pool.as_of.isoformat()}, "
                      f"criteria {pool.criteria.name} ({pool.criteria.digest}) -> {out}", markup=False,
                      highlight=False)
        table = Table("check", "customers failing", title="why the others are not in it")
        for name, count in pool.stats.failing.items():
            table.add_row(name, str(count))
        console.print(table)


@app.command("explain")
@user_errors
def explain(
    ctx: typer.Context,
    account: Annotated[str, typer.Argument(help="The account: <channel>:<account id>, e.g. jd:jd_4f2a9c.")],
    as_of: Annotated[str | None, typer.Option("--as-of", help=_AS_OF_HELP)] = None,
    criteria: Annotated[str | None, typer.Option(help=_CRITERIA_HELP)] = None,
    lang: Annotated[str, typer.Option(help="Reason language: zh or en.")] = "en",
) -> None:
    """Say whether an account's customer is in the pool and, if not, which criteria it fails with the values."""
    from orderguard.errors import InvalidInputError

    if lang not in ("zh", "en"):
        raise InvalidInputError.must("--lang", "zh or en", lang)
    parent = ctx.parent.obj if ctx.parent is not None and isinstance(ctx.parent.obj, dict) else {}
    with _build(ctx, as_of or parent.get("as_of"), criteria or parent.get("criteria")) as pool:
        result = pool.explain(account.strip())
        console = wide_console()
        if not result.found:
            raise InvalidInputError.must("account", f"an account with an order before {pool.as_of.isoformat()}",
                                         account)
        state = f"in the pool ({result.tier})" if result.in_pool else "not in the pool"
        console.print(f"{account}: customer {result.customer_id} ({' '.join(result.accounts)}) is {state} "
                      f"as of {pool.as_of.isoformat()}, criteria {pool.criteria.name}", markup=False, highlight=False)
        table = Table("check", "value", "bar", "passes", "reason")
        for check in result.checks:
            table.add_row(check.check, f"{check.value:g}", f"{check.op.value} {check.threshold:g}",
                          "yes" if check.passes else "no", (check.reason_zh if lang == "zh" else check.reason_en) or "")
        console.print(table)
        for link in result.links:
            console.print(f"  linked to {link.bad_account} ({link.why}) via {link.via}", markup=False,
                          highlight=False)


@app.command("presets")
@user_errors
def presets() -> None:
    """List the shipped criteria presets and their bars."""
    from segments.criteria import PRESETS, load_criteria

    loaded = [load_criteria(name) for name in PRESETS]
    table = Table("check", *PRESETS)
    for check in loaded[0].checks:
        cells = []
        for criteria in loaded:
            other = criteria.check(check.name)
            cells.append(f"{other.op.value} {other.threshold:g}" if other else "off")
        table.add_row(check.name, *cells)
    table.add_row("tiers", *(", ".join(t.name for t in c.tiers) for c in loaded))
    wide_console().print(table)
