"""``orderguard backfill``: the point-in-time feature frame of the order log (``features``)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from cli.common import command_group, open_log, parse_moment, settings_of, user_errors, wide_console
from orderguard.clock import NAIVE_IS_SHOP_TIME
from orderguard.errors import InvalidInputError

app = command_group()


@app.command()
@user_errors
def backfill(
    ctx: typer.Context,
    out: Annotated[Path, typer.Option(help="Parquet file to write, e.g. var/features.parquet.")],
    start: Annotated[str | None, typer.Option(
        help=f"Only orders created from this ISO date or time ({NAIVE_IS_SHOP_TIME}). Earlier orders are "
             "still read, as history for the windows.")] = None,
    end: Annotated[str | None, typer.Option(help="Only orders created before this time (same rule).")] = None,
) -> None:
    """Build the point-in-time feature frame of the order log and write it to Parquet.

    One row per order: every feature of the configured feature set (default: the shop's)
    as of the order's creation, the order itself included -- the values serving computes
    online. Label-derived features read the reviewers' labels known at each order's time.
    """

    from features.batch import rich_progress
    from features.derived import history_start, point_in_time_features
    from features.shop import default_shop_features
    from features.specs import FeatureSet
    from orderguard.enrich import Gazetteer
    from orderguard.labels import LabelLog

    settings = settings_of(ctx)
    first, stop = parse_moment(start, "start"), parse_moment(end, "end")
    if first is not None and stop is not None and first >= stop:
        raise InvalidInputError(f"`--end` must be after --start; got {end!r}", field="end")
    specs_path = settings.features.specs_path
    feature_set = FeatureSet.from_file(specs_path) if specs_path is not None else default_shop_features()
    gazetteer = Gazetteer.build(settings.reference) if feature_set.needs_gazetteer else None
    out.parent.mkdir(parents=True, exist_ok=True)
    with open_log(settings) as log, rich_progress() as progress:
        total = log.count_orders() if first is None and stop is None else None
        orders = log.iter_orders(start=history_start(feature_set, first) if first is not None else None, end=stop)
        labels = list(LabelLog(log.engine).iter_labels(until=stop))
        frame = point_in_time_features(orders, feature_set, labels=labels, gazetteer=gazetteer, since=first,
                                       total=total, progress=progress)
    frame.to_parquet(out, index=False)
    wide_console().print(f"{len(frame)} orders x {len(feature_set)} features (set {feature_set.hash()}) -> {out}")
