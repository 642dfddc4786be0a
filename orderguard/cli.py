"""The ``orderguard`` command line (Typer).

The CLI is the composition root: it builds the one :class:`Settings` in the callback
and passes it down. Commands that belong to other packages (``serve`` → ``serving``)
import them inside the command, so the kernel itself never imports them at load time.
Every user error prints one line ``error[code]: message`` and exits with code 2.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from contextlib import closing
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, ParamSpec, TypeVar

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from orderguard.errors import CLI_EXIT_CODE, InvalidInputError, OrderGuardError
from orderguard.settings import Settings

if TYPE_CHECKING:
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


app = typer.Typer(add_completion=False, no_args_is_help=True,
                  help="orderguard: order-risk service for multi-channel shops.")


def _settings(ctx: typer.Context) -> Settings:
    settings: Settings = ctx.obj
    return settings


@app.callback()
def main_callback(
    ctx: typer.Context,
    data_dir: Annotated[Path | None, typer.Option(help="Where embedded databases live (default: ./var).")] = None,
    database_url: Annotated[str | None, typer.Option(
        help="Order log URL, e.g. postgresql+psycopg://user@127.0.0.1/orderguard (default: SQLite in data dir).")
    ] = None,
) -> None:
    """Build the settings once (environment ORDERGUARD_*, then these options)."""
    settings = Settings()
    if data_dir is not None:
        settings = settings.model_copy(update={"data_dir": data_dir})
    if database_url is not None:
        settings = settings.model_copy(
            update={"database": settings.database.model_copy(update={"url": database_url})})
    ctx.obj = settings


def _progress(console: Console) -> Progress:
    return Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                    TimeRemainingColumn(), console=console, transient=True)


@app.command()
@user_errors
def ingest(
    ctx: typer.Context,
    files: Annotated[list[Path], typer.Argument(help="Export files: .jsonl, .csv or .xlsx.")],
    channel: Annotated[str | None, typer.Option(
        help="Channel of the payloads (tmall, jd, douyin, kuaishou, wechat, site). "
             "Default: the file name, e.g. jd.jsonl.")] = None,
    mapping: Annotated[Path | None, typer.Option(help="YAML mapping export columns to payload fields.")] = None,
    all_or_nothing: Annotated[bool, typer.Option(
        "--all-or-nothing", help="Store nothing from a file that has any bad row.")] = False,
    rejects: Annotated[Path | None, typer.Option(
        help="Write every refused row (line, field, reason) to this JSONL file.")] = None,
    batch_size: Annotated[int, typer.Option(min=1, help="Rows per database transaction.")] = 1000,
) -> None:
    """Import exported order files into the order log, idempotently.

    Bad rows are reported with their line number and reason; good rows are kept (unless
    --all-or-nothing). Exits 2 when any row was refused.
    """
    from orderguard.ingest.importer import import_file  # keeps `orderguard --help` fast

    settings = _settings(ctx)
    console = Console(stderr=True)
    table = Table("file", "channel", "rows", "inserted", "duplicates", "conflicts", "refused")
    refused_total = 0
    with _open_log(settings) as log, _progress(console) as progress:
        for path in files:
            result = import_file(path, channel=channel, mapping=mapping, log=log, settings=settings,
                                 all_or_nothing=all_or_nothing, batch_size=batch_size, progress=progress)
            table.add_row(path.name, result.channel, str(result.rows), str(result.report.inserted),
                          str(result.report.duplicates), str(result.report.conflicts),
                          str(len(result.report.errors)))
            refused_total += len(result.report.errors)
            for error in result.report.errors[:20]:
                console.print(f"{path.name}:{error.position}: {error.error.one_line()}", markup=False,
                              highlight=False)
            if len(result.report.errors) > 20:
                console.print(f"{path.name}: … and {len(result.report.errors) - 20} more refused rows")
            if rejects is not None:
                result.write_rejects(rejects)
    Console().print(table)
    if refused_total:
        kept = "nothing stored from files with bad rows" if all_or_nothing else "good rows were stored"
        console.print(f"error[invalid_input]: {refused_total} row(s) refused; {kept}", markup=False)
        raise typer.Exit(CLI_EXIT_CODE)


@app.command()
@user_errors
def generate(
    out: Annotated[Path, typer.Option(help="Output folder for channel payload files and ground truth.")],
    days: Annotated[int, typer.Option(min=1, max=3650)] = 90,
    seed: Annotated[int, typer.Option()] = 1,
    orders_per_day: Annotated[int, typer.Option(min=1)] = 500,
    start: Annotated[str, typer.Option(help="First day, YYYY-MM-DD.")] = "2024-09-01",
) -> None:
    """Simulate a Hangzhou pet-products shop on all six channels (deterministic per seed).

    One promotion day runs at ~10x volume: 11.11 when the period covers it, else the middle day.
    """
    import json

    from orderguard.simulate import SimConfig
    from orderguard.simulate.export import export_shop

    first_day = _day(start, "start")
    assert first_day is not None  # --start has a default
    config = SimConfig.for_period(seed=seed, days=days, orders_per_day=orders_per_day, start=first_day)
    files = export_shop(config, out, secret=f"orderguard-sim-{seed}".encode())
    manifest = json.loads(files.manifest.read_text(encoding="utf-8"))
    table = Table("channel", "file")
    for channel, path in files.channels.items():
        table.add_row(channel.value, str(path))
    console = Console()
    console.print(table)
    console.print(f"orders: {manifest['orders']['total']}  events: {manifest['events']['total']}  "
                  f"abnormal share: {manifest['abnormal_share']}  ground truth: {files.ground_truth}")


@app.command()
@user_errors
def backfill(
    ctx: typer.Context,
    out: Annotated[Path, typer.Option(help="Parquet file to write, e.g. var/features.parquet.")],
    start: Annotated[str | None, typer.Option(
        help="Only orders created from this time: YYYY-MM-DD (midnight, Beijing time) or an ISO time "
             "with offset. Earlier orders are still read, as history for the windows.")] = None,
    end: Annotated[str | None, typer.Option(help="Only orders created before this time (same formats).")] = None,
) -> None:
    """Build the point-in-time feature frame of the order log and write it to Parquet.

    One row per order: every feature of the configured feature set (default: the shop's)
    as of the order's creation, the order itself included -- the values serving computes
    online. Reviewer labels are not part of the order log, so label-derived features
    count none here.
    """
    from datetime import UTC, datetime, time, timedelta, timezone

    from features.batch import rich_progress
    from features.derived import history_start, point_in_time_features
    from features.shop import default_shop_features
    from features.specs import FeatureSet
    from orderguard.enrich import Gazetteer

    def when(text: str | None, field: str) -> datetime | None:
        if text is None:
            return None
        beijing = timezone(timedelta(hours=8))  # the shop's calendar: days start at Beijing midnight
        try:
            parsed = (datetime.combine(date.fromisoformat(text), time(0), tzinfo=beijing) if len(text) == 10
                      else datetime.fromisoformat(text))
        except ValueError as e:
            raise InvalidInputError(f"`--{field}` must be a date YYYY-MM-DD or an ISO time; got {text!r}",
                                    field=field) from e
        return (parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=beijing)).astimezone(UTC)

    settings = _settings(ctx)
    first, stop = when(start, "start"), when(end, "end")
    if first is not None and stop is not None and first >= stop:
        raise InvalidInputError(f"`--end` must be after --start; got {end!r}", field="end")
    specs_path = settings.features.specs_path
    feature_set = FeatureSet.from_file(specs_path) if specs_path is not None else default_shop_features()
    gazetteer = Gazetteer.build() if feature_set.needs_gazetteer else None
    out.parent.mkdir(parents=True, exist_ok=True)
    with _open_log(settings) as log, rich_progress() as progress:
        total = log.count_orders() if first is None and stop is None else None
        orders = log.iter_orders(start=history_start(feature_set, first) if first is not None else None, end=stop)
        frame = point_in_time_features(orders, feature_set, gazetteer=gazetteer, since=first, total=total,
                                       progress=progress)
    frame.to_parquet(out, index=False)
    Console().print(f"{len(frame)} orders x {len(feature_set)} features (set {feature_set.hash()}) -> {out}")


@app.command()
@user_errors
def serve(
    ctx: typer.Context,
    host: Annotated[str | None, typer.Option(help="Bind address (default from settings: 127.0.0.1).")] = None,
    port: Annotated[int | None, typer.Option(help="Port (default from settings: 8000).")] = None,
) -> None:
    """Run the HTTP service (one worker; see README for production settings)."""
    import uvicorn

    from serving.app import create_app

    settings = _settings(ctx)
    uvicorn.run(create_app(settings), host=host or settings.api.host, port=port or settings.api.port,
                log_level="info", access_log=False)


@app.command("rules-report")
@user_errors
def rules_report(
    ctx: typer.Context,
    truth: Annotated[Path | None, typer.Option(help="ground_truth.csv of a simulated shop (recall, FPR).")] = None,
    flag_at: Annotated[str, typer.Option(help="Decision that counts as flagged: verify, review or hold.")] = "review",
) -> None:
    """Replay the order log through the rule pack (rules only) and report what it flags, by pattern."""
    from features.online import OnlineFeatures
    from features.rules import rules_from
    from features.shop import feature_set_from
    from features.stores.memory import MemoryStore
    from orderguard.enrich import Gazetteer
    from orderguard.policy import Decision, decision_rank, policy_from
    from training.rules_report import read_truth, replay, report

    settings = _settings(ctx)
    try:
        threshold = Decision(flag_at)
    except ValueError as e:
        raise InvalidInputError(f"`--flag-at` must be verify, review or hold; got {flag_at!r}", field="flag_at") from e
    specs = feature_set_from(settings)
    online = OnlineFeatures(MemoryStore(), specs, gazetteer=Gazetteer.build(),
                            retention_margin=settings.features.retention)
    with _open_log(settings) as log:
        replayed = replay(log.iter_orders(), online=online, rules=rules_from(settings, specs),
                          policy=policy_from(settings.policy))
    console = Console()
    if truth is None:
        flagged = sum(1 for r in replayed if decision_rank(r.decision) >= decision_rank(threshold))
        console.print(f"{len(replayed)} orders replayed; {flagged} at or above {threshold.value}")
        return
    result = report(replayed, read_truth(truth), flag_at=threshold)
    table = Table("pattern", "abnormal", "orders", f">= {threshold.value}", "rate", "groups caught")
    for row in result.rows:
        table.add_row(row.pattern, "yes" if row.abnormal else "no", str(row.orders), str(row.flagged),
                      f"{row.rate:.1%}", f"{row.groups_caught}/{row.groups}" if row.groups else "")
    console.print(table)
    console.print(f"recall {result.recall:.1%}  false-positive rate {result.false_positive_rate:.2%}  "
                  f"precision {result.precision:.1%}")


handbook_app = typer.Typer(no_args_is_help=True,
                           help="The fraud-detection handbook's public benchmark (simulated card transactions).")
app.add_typer(handbook_app, name="handbook")


def _day(value: str | None, option: str) -> date | None:
    if value is None:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError as e:
        raise InvalidInputError(f"`--{option}` must be a date YYYY-MM-DD; got {value!r}", field=option) from e


@handbook_app.command("features")
@user_errors
def handbook_features(
    data: Annotated[Path, typer.Option(help="The handbook's transactions_raw.csv.gz, "
                                            "e.g. ../shared/data/handbook/transactions_raw.csv.gz.")],
    out: Annotated[Path, typer.Option(help="Parquet file to write: TRANSACTION_ID + the book's 15 features.")],
    start: Annotated[str | None, typer.Option(help="First day to output, YYYY-MM-DD (UTC, inclusive).")] = None,
    end: Annotated[str | None, typer.Option(help="Last day to output, YYYY-MM-DD (UTC, inclusive).")] = None,
) -> None:
    """Compute the book's 15 baseline features from FeatureSpecs with the batch engine.

    Windows reach back before --start as far as they need; labels are known 7 days
    after their transaction.
    """
    import time

    from features.batch import rich_progress
    from training.benchmarks.handbook_features import write_handbook_features

    first, last = _day(start, "start"), _day(end, "end")
    started = time.perf_counter()
    with rich_progress() as progress:
        run = write_handbook_features(data, out, start=first, end=last, progress=progress)
    Console().print(f"wrote {run.rows:,} transactions x 15 features to {run.path} "
                    f"in {time.perf_counter() - started:.1f} s")


def _open_log(settings: Settings) -> closing[OrderLog]:
    from orderguard.ingest.orderlog import OrderLog

    settings.data_dir.mkdir(parents=True, exist_ok=True)
    return closing(OrderLog.open(settings.database_url))


def main() -> None:
    """Console entry point (errors are rendered by the command group)."""
    app()


if __name__ == "__main__":
    main()
