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
from datetime import UTC, date, datetime
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
    from training.pipeline import Context as TrainingContext



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

    from simulate import SimConfig
    from simulate.export import export_shop

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
    online. Label-derived features read the reviewers' labels known at each order's time.
    """
    from datetime import UTC, datetime, time, timedelta, timezone

    from features.batch import rich_progress
    from features.derived import history_start, point_in_time_features
    from features.shop import default_shop_features
    from features.specs import FeatureSet
    from orderguard.enrich import Gazetteer
    from orderguard.labels import LabelLog

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
        labels = list(LabelLog(log.engine).iter_labels(until=stop))
        frame = point_in_time_features(orders, feature_set, labels=labels, gazetteer=gazetteer, since=first,
                                       total=total, progress=progress)
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
    from features.shop import feature_set_from
    from features.stores.memory import MemoryStore
    from orderguard.enrich import Gazetteer
    from scoring.policy import Decision, decision_rank, policy_from
    from scoring.rules import rules_from
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


def _cutoff(value: str | None) -> datetime | None:
    if value is None:
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError as e:
        raise InvalidInputError(f"`--cutoff` must be an ISO date or time; got {value!r}", field="cutoff") from e
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _training_context(settings: Settings, cutoff: str | None) -> TrainingContext:
    from orderguard.labels import LabelLog
    from training.pipeline import prepare

    with _open_log(settings) as log:
        orders = list(log.iter_orders())
        labels = list(LabelLog(log.engine).iter_labels())
    return prepare(settings, orders=orders, labels=labels, cutoff=_cutoff(cutoff))


def _print_gate(console: Console, reasons: tuple[str, ...], *, passed: bool, baseline: str) -> None:
    console.print(f"[bold]gate vs {baseline}: {'PASSED' if passed else 'REFUSED'}[/bold]")
    for reason in reasons:
        console.print(f"  {reason}")


@app.command()
@user_errors
def train(
    ctx: typer.Context,
    cutoff: Annotated[str | None, typer.Option(help="Train as of this time (ISO); default: newest order.")] = None,
    promote: Annotated[bool, typer.Option("--promote", help="Make the candidate champion if the gate passes.")] = False,
    shuffle_labels: Annotated[bool, typer.Option(
        "--shuffle-labels", help="Drill: train on permuted labels; the gate must refuse the result.")] = False,
) -> None:
    """Train a candidate on reviewer labels, compare it with the champion, log it to MLflow and register it."""
    from scoring.registry import Registry, git_sha
    from training.pipeline import train as run_training

    settings = _settings(ctx)
    console = Console(width=max(Console().width, 110))  # the metrics table stays readable when piped
    context = _training_context(settings, cutoff)
    result = run_training(context, Registry.from_settings(settings), git_sha=git_sha(), promote=promote,
                          shuffle_labels=shuffle_labels)
    console.print(f"dataset as of {context.cutoff:%Y-%m-%d %H:%M} UTC: {result.train_rows:,} training orders, "
                  f"{result.holdout_rows:,} holdout orders ({context.data_window})")
    metrics = result.evaluation.metrics()
    champion = result.champion_evaluation.metrics() if result.champion_evaluation else {}
    table = Table("holdout metric", "rules only", "model only", "blend (served)", "champion blend")
    for name in ("roc_auc", "pr_auc", "precision_at_capacity", "recall_at_capacity"):
        table.add_row(name, *(f"{metrics.get(f'{who}_{name}', float('nan')):.4f}"
                              for who in ("rules", "model", "blend")),
                      f"{champion[f'blend_{name}']:.4f}" if f"blend_{name}" in champion else "-")
    console.print(table)
    _print_gate(console, result.decision.reasons, passed=result.decision.passed, baseline=result.decision.baseline)
    console.print(f"registered {result.candidate.label} (run {result.run_id}); "
                  + ("promoted to champion" if result.promoted else "champion unchanged"))


@app.command()
@user_errors
def promote(
    ctx: typer.Context,
    version: Annotated[str | None, typer.Option(help="Registered version to judge; default: the newest.")] = None,
    cutoff: Annotated[str | None, typer.Option(help="Holdout as of this time (ISO); default: newest order.")] = None,
) -> None:
    """Judge a registered model against the champion on the current holdout; promote it only if the gate passes.

    Exits 0 when promoted, 1 when the gate refuses (the reasons are printed and stored with the run).
    """
    from scoring.registry import Registry
    from training.pipeline import latest_version
    from training.pipeline import promote as run_promotion

    settings = _settings(ctx)
    registry = Registry.from_settings(settings)
    chosen = version or latest_version(registry)
    result = run_promotion(_training_context(settings, cutoff), registry, version=chosen)
    console = Console()
    _print_gate(console, result.decision.reasons, passed=result.decision.passed, baseline=result.decision.baseline)
    if not result.promoted:
        console.print(f"{result.candidate.label} refused; champion unchanged")
        raise typer.Exit(1)
    console.print(f"{result.candidate.label} is now champion; running services pick it up with "
                  "POST /v1/admin/reload-model")


@app.command()
@user_errors
def model(ctx: typer.Context) -> None:
    """Show the champion model (the one services load). Exits 1 when there is none (rules only)."""
    from scoring.registry import Registry

    settings = _settings(ctx)
    registry = Registry.from_settings(settings)
    champion = registry.champion()
    console = Console()
    if champion is None:
        console.print(f"no champion in {settings.tracking_uri}: services score with the rules only")
        raise typer.Exit(1)
    run = registry.run(champion.run_id)
    console.print(f"champion {champion.label} (run {champion.run_id}, data {run.tags.get('data_window', '?')}, "
                  f"holdout blend PR AUC {run.metrics.get('blend_pr_auc', float('nan')):.4f})")


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


@handbook_app.command("evaluate")
@user_errors
def handbook_evaluate(
    ctx: typer.Context,
    data: Annotated[Path, typer.Option(help="The handbook's transactions_raw.csv.gz.")] = Path(
        "../shared/data/handbook/transactions_raw.csv.gz"),
    protocol: Annotated[str, typer.Option(help="ch3 (one split), ch5 (4 prequential folds) or all.")] = "all",
    features: Annotated[str, typer.Option(help="book (its 15 features) or plus (15 + handbook_plus.yaml).")] = "plus",
    published: Annotated[Path | None, typer.Option(
        help="The book's published_results folder (default: beside --data).")] = None,
    seed: Annotated[int, typer.Option(help="LightGBM seed.")] = 7,
    quick: Annotated[bool, typer.Option(hidden=True, help="One small grid point (smoke runs on a slice).")] = False,
    track: Annotated[bool, typer.Option(help="Log the run (params, metrics, the table) to MLflow.")] = True,
) -> None:
    """Run the book's protocols with orderguard's features and LightGBM; print them beside the book's results.

    Hyper-parameters are chosen on the book's 4 validation folds only, then tested on
    the chapter 3 split and the chapter 5 prequential folds. The run is logged to the
    MLflow experiment ``<experiment>-handbook``.
    """
    from features.batch import rich_progress
    from training.benchmarks.handbook import (
        DEFAULT_GRID,
        QUICK_GRID,
        evaluate,
        parse_features,
        parse_protocols,
        result_table,
        summary_lines,
    )

    protocols, feature_choice = parse_protocols(protocol), parse_features(features)
    with rich_progress() as progress:
        result = evaluate(data, protocols=protocols, features=feature_choice, seed=seed, published=published,
                          candidates=QUICK_GRID if quick else DEFAULT_GRID, progress=progress)
    console = Console()
    console.print(result_table(result))
    for line in summary_lines(result):
        console.print(line, highlight=False)
    if track:
        from scoring.registry import Registry, git_sha
        from training.benchmarks.handbook import mlflow_payload

        settings = _settings(ctx)
        registry = Registry.from_settings(settings, experiment=f"{settings.training.experiment}-handbook")
        params, metrics, table_text = mlflow_payload(result)
        with registry.start_run(run_name=f"handbook {protocol} {features}",
                                tags={"git_sha": git_sha(), "benchmark": "handbook"}) as run:
            run.log_params(params)
            run.log_metrics(metrics)
            run.log_text(table_text, "handbook_results.txt")
        console.print(f"logged to MLflow run {run.run_id} ({registry.tracking_uri})", highlight=False)


def _open_log(settings: Settings) -> closing[OrderLog]:
    from orderguard.ingest.orderlog import OrderLog

    settings.data_dir.mkdir(parents=True, exist_ok=True)
    return closing(OrderLog.open(settings.database_url))


label_app = typer.Typer(no_args_is_help=True,
                        help="Reviewer labels: record verdicts, import platform dispute rulings, simulate a desk.")
app.add_typer(label_app, name="label")


@label_app.command("add")
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
    with _open_log(_settings(ctx)) as log:
        result = LabelLog(log.engine).add([label], source="cli", recorded_at=now)
    state = "added" if result.added else "already recorded"
    Console().print(f"{state}: {label.key} {label.verdict.value} at {label.labeled_at.isoformat()} by {reviewer}",
                    markup=False, highlight=False)


@label_app.command("import")
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
    with _open_log(_settings(ctx)) as log:
        result = import_label_file(file, log=LabelLog(log.engine), recorded_at=SystemClock().now(), fmt=label_fmt,
                                   mapping=columns, all_or_nothing=all_or_nothing)
    errors = Console(stderr=True)
    for error in result.errors[:20]:
        errors.print(f"{file.name}:{error.position}: {error.error.one_line()}", markup=False, highlight=False)
    if len(result.errors) > 20:
        errors.print(f"{file.name}: … and {len(result.errors) - 20} more refused rows", markup=False)
    if rejects is not None:
        result.write_rejects(rejects)
    table = Table("file", "format", "rows", "added", "duplicates", "skipped", "refused")
    table.add_row(file.name, label_fmt.value, str(result.rows), str(result.added), str(result.duplicates),
                  str(len(result.skipped)), str(len(result.errors)))
    Console().print(table)
    if result.errors:
        kept = "nothing stored" if all_or_nothing else "good rows were stored"
        errors.print(f"error[invalid_input]: {len(result.errors)} row(s) refused; {kept}", markup=False)
        raise typer.Exit(CLI_EXIT_CODE)


@label_app.command("history")
@user_errors
def label_history(
    ctx: typer.Context,
    order_key: Annotated[str, typer.Argument(help="The order: <channel>:<order id>.")],
) -> None:
    """Every verdict on one order, oldest first (times in UTC)."""
    from orderguard.errors import NotFoundError, must
    from orderguard.label_files import parse_order_key
    from orderguard.labels import LabelLog

    key = parse_order_key(order_key)
    with _open_log(_settings(ctx)) as log:
        if log.get(key) is None:
            raise NotFoundError(must("order_key", "an order in the order log", str(key)), field="order_key")
        records = LabelLog(log.engine).history(key)
    if not records:
        Console().print(f"{key}: no labels", markup=False)
        return
    console = Console(soft_wrap=True)  # one line per label, whatever the terminal width
    console.print(f"{key}: {len(records)} label(s)", markup=False, highlight=False)
    for r in records:
        console.print(f"{r.labeled_at.isoformat()}  {r.verdict.value:<19}  {r.reviewer_id}  [{r.source}]  {r.note}",
                      markup=False, highlight=False)


@label_app.command("simulate")
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
    with _open_log(_settings(ctx)) as log:
        written = write_simulated_labels(truth, engine=log.engine, until=cutoff, out=out, seed=seed)
    counts = ", ".join(f"{v.value} {n}" for v, n in sorted(written.verdicts.items()))
    Console().print(f"{written.rows} labels on {written.orders} orders ({counts}) -> {written.path}", markup=False)


rules_app = typer.Typer(no_args_is_help=True,
                        help="Rule pack tuning: suggest points from reviewer labels, write a new pack from them.")
app.add_typer(rules_app, name="rules")


def _rules_path(settings: Settings, rules: Path | None) -> Path:
    from scoring.rules import default_rules_path

    return rules or settings.scoring.rules_path or default_rules_path()


@rules_app.command("tune")
@user_errors
def rules_tune(
    ctx: typer.Context,
    labels: Annotated[Path, typer.Option(help="Generic label file (order_key, verdict, labeled_at, reviewer_id, "
                                              "note): .csv, .xlsx or .jsonl.")],
    rules: Annotated[Path | None, typer.Option(help="Rule pack to tune (default: the configured pack).")] = None,
    out: Annotated[Path | None, typer.Option(help="Write the suggestions to this YAML file (for `rules apply`).")
                   ] = None,
    min_labels: Annotated[int, typer.Option(
        min=1, help="Decided labels (fraud or false positive) a rule needs before its points move.")] = 10,
) -> None:
    """Replay the order log through the pack point-in-time and report, per rule, the current verdicts on the
    orders it fired on: precision, lift over the base rate and a suggested points change.

    The suggestion rule is documented in training/rule_tuning.py. Nothing is changed here:
    `rules apply` writes a new pack from the suggestions file.
    """
    from features.online import OnlineFeatures
    from features.shop import feature_set_from
    from features.stores.memory import MemoryStore
    from orderguard.enrich import Gazetteer
    from scoring.policy import policy_from
    from scoring.rules import load_rules_file
    from training.rule_tuning import TuningPolicy, read_current_labels, tune, write_suggestions
    from training.rules_report import replay

    settings = _settings(ctx)
    policy = TuningPolicy(min_decided=min_labels)
    current = read_current_labels(labels)  # bad labels fail before the replay
    specs = feature_set_from(settings)
    pack_path = _rules_path(settings, rules)
    pack = load_rules_file(pack_path, known_features=specs.names)
    online = OnlineFeatures(MemoryStore(), specs, gazetteer=Gazetteer.build(),
                            retention_margin=settings.features.retention)
    with _open_log(settings) as log:
        replayed = replay(log.iter_orders(), online=online, rules=pack, policy=policy_from(settings.policy))
    report = tune({r.order_key: r.codes for r in replayed}, {k: v.verdict for k, v in current.items()}, pack,
                  policy=policy)
    if report.labelled_orders == 0:
        raise InvalidInputError(f"`--labels` must name orders of the order log; none of {len(current)} does "
                                f"({labels.name})", field="labels")
    table = Table("rule", "points", "hits", "fraud", "false pos.", "investigate", "precision", "lift", "suggested",
                  "why")
    for row, s in zip(report.rows, report.suggestions, strict=True):
        lift = row.lift(report.base_rate)
        table.add_row(row.code, f"{row.points:g}", str(row.hits), str(row.confirmed_fraud), str(row.false_positive),
                      str(row.needs_investigation), "-" if row.decided == 0 else f"{row.precision:.2f}",
                      "-" if lift != lift else f"{lift:.1f}",
                      f"{s.suggested_points:g}" if s.action.value != "keep" else "=", s.reason)
    console = Console()
    console.print(table)
    console.print(f"{report.labelled_orders} labelled orders replayed ({len(current) - report.labelled_orders} labels "
                  f"name no order of the log); base rate {report.base_rate:.1%} fraud among "
                  f"{report.decided_orders} decided labels", markup=False, highlight=False)
    if out is not None:
        write_suggestions(report, out, rules=str(pack_path), labels=str(labels))
        console.print(f"{len(report.changes)} change(s) suggested -> {out}; review it, then: orderguard rules apply "
                      f"{out} --rules {pack_path} --out NEW_PACK.yaml", markup=False, highlight=False)


@rules_app.command("apply")
@user_errors
def rules_apply(
    ctx: typer.Context,
    suggestions: Annotated[Path, typer.Argument(help="Suggestions YAML written by `rules tune --out`.")],
    out: Annotated[Path, typer.Option(help="The new rule pack to write.")],
    rules: Annotated[Path | None, typer.Option(
        help="Rule pack the suggestions were made for (default: the configured pack).")] = None,
    force: Annotated[bool, typer.Option(
        "--force", help="Let --out replace an existing file, the input pack included.")] = False,
) -> None:
    """Write a new rule pack with the suggested points; only `points` change, comments and order are kept.

    The result is loaded and checked against the feature set before it is written. The
    input pack is never changed unless --out names it and --force is given.
    """
    from features.shop import feature_set_from
    from orderguard.errors import ConfigError
    from training.rule_tuning import apply_suggestions, read_suggestions, write_pack

    settings = _settings(ctx)
    pack_path = _rules_path(settings, rules)
    if out.exists() and not force:
        what = "the input pack" if out.resolve() == pack_path.resolve() else "an existing file"
        raise InvalidInputError(f"`--out` must not be {what} unless --force is given; got {str(out)!r}", field="out")
    chosen = read_suggestions(suggestions)
    try:
        text = pack_path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise ConfigError(f"`{pack_path}` must be a readable rule pack; {e}", field="rules") from e
    new_text, applied = apply_suggestions(text, chosen, source=str(pack_path))
    write_pack(new_text, out, known_features=feature_set_from(settings).names)
    table = Table("rule", "points", "new points", "why")
    for s in applied:
        table.add_row(s.code, f"{s.points:g}", f"{s.suggested_points:g}", s.reason)
    console = Console()
    console.print(table)
    console.print(f"{len(applied)} rule(s) changed -> {out}", markup=False, highlight=False)


def main() -> None:
    """Console entry point (errors are rendered by the command group)."""
    app()


if __name__ == "__main__":
    main()
