"""``orderguard handbook simulate | features | evaluate``: the fraud-detection handbook's public benchmark."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from cli.common import command_group, parse_day, settings_of, user_errors, wide_console

app = command_group(no_args_is_help=True,
                  help="The fraud-detection handbook's public benchmark (simulated card transactions).")


@app.command("simulate")
@user_errors
def handbook_simulate(
    out: Annotated[Path, typer.Option(help="CSV file to write (gzip when it ends in .gz).")],
    seed: Annotated[int, typer.Option(help="Random seed: same seed and sizes, same file.")] = 7,
    customers: Annotated[int, typer.Option(help="Number of customers (the book: 4,990).")] = 400,
    terminals: Annotated[int, typer.Option(help="Number of terminals (the book: 10,000).")] = 800,
    days: Annotated[int, typer.Option(help="Calendar days from 2018-04-01 (the book: 183).")] = 183,
) -> None:
    """Write transactions in the handbook's format with its generator's three fraud scenarios.

    For running `features` and `evaluate` without the book's own file; the figures are
    not comparable with the book's (no published results beside it).
    """
    from simulate.handbook import HandbookShape, write_handbook_transactions

    shape = HandbookShape(seed=seed, customers=customers, terminals=terminals, days=days)
    try:
        rows = write_handbook_transactions(out, shape)
    except OSError as e:
        from orderguard.errors import InvalidInputError

        raise InvalidInputError.must("out", "a writable file path", f"{out}: {e.strerror or e}") from e
    wide_console().print(f"wrote {rows:,} transactions to {out}")


@app.command("features")
@user_errors
def handbook_features(
    data: Annotated[Path, typer.Option(help="The handbook's transactions_raw.csv.gz, "
                                            "e.g. ../shared/data/handbook/transactions_raw.csv.gz.")],
    out: Annotated[Path, typer.Option(help="Parquet file to write: TRANSACTION_ID + the book's 15 features.")],
    start: Annotated[str | None, typer.Option(
        help="First day to output, YYYY-MM-DD (inclusive; the handbook's own calendar is UTC).")] = None,
    end: Annotated[str | None, typer.Option(
        help="Last day to output, YYYY-MM-DD (inclusive; the handbook's own calendar is UTC).")] = None,
) -> None:
    """Compute the book's 15 baseline features from FeatureSpecs with the batch engine.

    Windows reach back before --start as far as they need; labels are known 7 days
    after their transaction.
    """
    import time

    from features.batch import rich_progress
    from training.benchmarks.handbook_features import write_handbook_features

    first, last = parse_day(start, "start"), parse_day(end, "end")
    started = time.perf_counter()
    with rich_progress() as progress:
        run = write_handbook_features(data, out, start=first, end=last, progress=progress)
    wide_console().print(f"wrote {run.rows:,} transactions x 15 features to {run.path} "
                    f"in {time.perf_counter() - started:.1f} s")


@app.command("evaluate")
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
    console = wide_console()
    console.print(result_table(result))
    for line in summary_lines(result):
        console.print(line, highlight=False)
    if track:
        from scoring.registry import Registry, git_sha
        from training.benchmarks.handbook import mlflow_payload

        settings = settings_of(ctx)
        registry = Registry.from_settings(settings, experiment=f"{settings.training.experiment}-handbook")
        params, metrics, table_text = mlflow_payload(result)
        with registry.start_run(run_name=f"handbook {protocol} {features}",
                                tags={"git_sha": git_sha(), "benchmark": "handbook"}) as run:
            run.log_params(params)
            run.log_metrics(metrics)
            run.log_text(table_text, "handbook_results.txt")
        console.print(f"logged to MLflow run {run.run_id} ({registry.tracking_uri})", highlight=False)
