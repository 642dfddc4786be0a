"""``orderguard generate``: a simulated shop's channel exports, fulfilment reports and ground truth (``simulate``)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from cli.common import command_group, parse_day, user_errors, wide_console

app = command_group()


@app.command()
@user_errors
def generate(
    out: Annotated[Path, typer.Option(
        help="Output folder for channel payload files, fulfilment reports and ground truth.")],
    days: Annotated[int, typer.Option(min=1, max=3650, help="Days of trading to simulate.")] = 90,
    seed: Annotated[int, typer.Option(help="Random seed: the same seed gives the same shop, byte for byte.")] = 1,
    orders_per_day: Annotated[int, typer.Option(min=1, help="Orders on an ordinary day (promotions have more).")
                              ] = 500,
    start: Annotated[str, typer.Option(
        help="First day, YYYY-MM-DD (the shop's calendar: Beijing time).")] = "2024-09-01",
) -> None:
    """Simulate a Hangzhou pet-products shop on all six channels (deterministic per seed).

    One promotion day runs at ~10x volume: 11.11 when the period covers it, else the middle day.
    The shop's own systems' fulfilment reports (payment callbacks, ERP, warehouse, carriers),
    with faults planted around the promotion, go to OUT/fulfilment/ with their truth.
    """
    import json

    from simulate import SimConfig
    from simulate.export import export_shop

    first_day = parse_day(start, "start")
    assert first_day is not None  # --start has a default
    config = SimConfig.for_period(seed=seed, days=days, orders_per_day=orders_per_day, start=first_day)
    files = export_shop(config, out, secret=f"orderguard-sim-{seed}".encode())
    manifest = json.loads(files.manifest.read_text(encoding="utf-8"))
    table = Table("channel", "file")
    for channel, path in files.channels.items():
        table.add_row(channel.value, str(path))
    table.add_row("fulfilment", str(files.fulfilment))
    console = wide_console()
    console.print(table)
    steps = manifest["fulfilment"]
    console.print(f"orders: {manifest['orders']['total']}  events: {manifest['events']['total']}  "
                  f"abnormal share: {manifest['abnormal_share']}  ground truth: {files.ground_truth}")
    console.print(f"fulfilment reports: {steps['events']}  failing checks: {steps['truth_rows']} on "
                  f"{steps['faulty_orders']} orders  fulfilment truth: {files.fulfilment_truth}")
