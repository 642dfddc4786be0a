"""``orderguard label add | import | history | simulate``: reviewer verdicts (``orderguard.labels``)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from cli.common import command_group, open_log, settings_of, user_errors, wide_console
from orderguard.errors import CLI_EXIT_CODE

app = command_group(no_args_is_help=True,
                  help="Reviewer labels: record verdicts, import platform dispute rulings, simulate a desk.")


@app.command("add")
@user_errors
def label_add(
    ctx: typer.Context,
    order_key: Annotated[str, typer.Argument(help="The order: <channel>:<order id>, e.g. jd:3021587746.")],
    verdict: Annotated[str, typer.Argument(help="confirmed_fraud, false_positive or needs_investigation.")],
    reviewer: Annotated[str, typer.Option(help="Id of the reviewer giving the verdict.")],
    note: Annotated[str, typer.Option(help="Free text kept with the label.")] = "",
    at: Annotated[str | None, typer.Option(
        help="When the verdict was reached: ISO time, Beijing time without an offset (default: now).")] = None,
) -> None:
    """Record one verdict on an order; a later verdict keeps the earlier one in the history."""
    from orderguard.clock import SystemClock
    from orderguard.label_files import parse_moment, parse_order_key, parse_verdict
    from orderguard.labels import LabelLog
    from orderguard.schema import Label

    now = SystemClock().now()
    label = Label(parse_order_key(order_key), parse_verdict(verdict),
                  parse_moment(at, field="at") if at is not None else now, reviewer, note)
    with open_log(settings_of(ctx)) as log:
        result = LabelLog(log.engine).add([label], source="cli", recorded_at=now)
    state = "added" if result.added else "already recorded"
    wide_console().print(f"{state}: {label.key} {label.verdict.value} at {label.labeled_at.isoformat()} by {reviewer}",
                    markup=False, highlight=False)


@app.command("import")
@user_errors
def label_import(
    ctx: typer.Context,
    file: Annotated[Path, typer.Argument(help="Label file: .csv, .xlsx or .jsonl.")],
    fmt: Annotated[str, typer.Option("--format", help="generic, tmall-dispute (天猫退款纠纷 export) or "
                                                      "jd-arbitration (京东售后仲裁 export).")] = "generic",
    mapping: Annotated[Path | None, typer.Option(help="YAML renaming the file's columns to the format's.")] = None,
    all_or_nothing: Annotated[bool, typer.Option(
        "--all-or-nothing", help="Store nothing when any row is refused.")] = False,
    rejects: Annotated[Path | None, typer.Option(
        help="Write every refused row (line, field, reason) to this JSONL file.")] = None,
) -> None:
    """Import verdicts from a file, idempotently (a re-import adds nothing).

    Bad rows are reported as file:line and the good ones kept (unless --all-or-nothing);
    open disputes are skipped. Exits 2 when any row was refused.
    """
    from orderguard.clock import SystemClock
    from orderguard.ingest.files import ColumnMapping
    from orderguard.label_files import import_label_file, label_format
    from orderguard.labels import LabelLog

    label_fmt = label_format(fmt)
    columns = ColumnMapping.load(mapping) if mapping is not None else None
    with open_log(settings_of(ctx)) as log:
        result = import_label_file(file, log=LabelLog(log.engine), recorded_at=SystemClock().now(), fmt=label_fmt,
                                   mapping=columns, all_or_nothing=all_or_nothing)
    errors = wide_console(stderr=True)
    for error in result.errors[:20]:
        errors.print(f"{file.name}:{error.position}: {error.error.one_line()}", markup=False, highlight=False)
    if len(result.errors) > 20:
        errors.print(f"{file.name}: … and {len(result.errors) - 20} more refused rows", markup=False)
    if rejects is not None:
        result.write_rejects(rejects)
    table = Table("file", "format", "rows", "added", "duplicates", "skipped", "refused")
    table.add_row(file.name, label_fmt.value, str(result.rows), str(result.added), str(result.duplicates),
                  str(len(result.skipped)), str(len(result.errors)))
    wide_console().print(table)
    if result.errors:
        kept = "nothing stored" if all_or_nothing else "good rows were stored"
        errors.print(f"error[invalid_input]: {len(result.errors)} row(s) refused; {kept}", markup=False)
        raise typer.Exit(CLI_EXIT_CODE)


@app.command("history")
@user_errors
def label_history(
    ctx: typer.Context,
    order_key: Annotated[str, typer.Argument(help="The order: <channel>:<order id>.")],
) -> None:
    """Every verdict on one order, oldest first (times in UTC)."""
    from orderguard.errors import NotFoundError
    from orderguard.label_files import parse_order_key
    from orderguard.labels import LabelLog

    key = parse_order_key(order_key)
    with open_log(settings_of(ctx)) as log:
        if log.get(key) is None:
            raise NotFoundError.must("order_key", "an order in the order log", str(key))
        records = LabelLog(log.engine).history(key)
    if not records:
        wide_console().print(f"{key}: no labels", markup=False)
        return
    console = wide_console()  # one line per label, whatever the terminal width
    console.print(f"{key}: {len(records)} label(s)", markup=False, highlight=False)
    for r in records:
        console.print(f"{r.labeled_at.isoformat()}  {r.verdict.value:<19}  {r.reviewer_id}  [{r.source}]  {r.note}",
                      markup=False, highlight=False)


@app.command("simulate")
@user_errors
def label_simulate(
    ctx: typer.Context,
    truth: Annotated[Path, typer.Option(help="ground_truth.csv written by `orderguard generate`.")],
    until: Annotated[str, typer.Option(
        help="Cutoff: YYYY-MM-DD (midnight, Beijing time) or an ISO time; later labels are not written.")],
    out: Annotated[Path, typer.Option(help="Label file to write (generic format, .csv or .jsonl).")],
    seed: Annotated[int, typer.Option(help="Seed of the reviewers' draws.")] = 1,
) -> None:
    """Play the review desk of a simulated shop: label the ingested orders as reviewers would by --until."""
    from orderguard.label_files import parse_moment
    from simulate.reviews import write_simulated_labels

    cutoff = parse_moment(until, field="until")
    with open_log(settings_of(ctx)) as log:
        written = write_simulated_labels(truth, engine=log.engine, until=cutoff, out=out, seed=seed)
    counts = ", ".join(f"{v.value} {n}" for v, n in sorted(written.verdicts.items()))
    wide_console().print(f"{written.rows} labels on {written.orders} orders ({counts}) -> {written.path}", markup=False)
