"""On a simulated promotion (small), through the real ways in, every planted and natural fault of the truth is
flagged within its deadline plus one sweep, and no order outside the truth is flagged."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from pathlib import Path

from features.settings import Settings
from health.checks import load_checks
from health.replay import replay
from health.sweeper import Sweeper
from orderguard.fulfilment import FulfilmentLog
from orderguard.fulfilment_files import import_reports
from orderguard.ingest.importer import import_file
from orderguard.ingest.orderlog import OrderLog
from orderguard.schema import OrderKey
from simulate import SimConfig
from simulate.export import export_shop

EVERY = timedelta(minutes=1)


def test_every_fault_is_flagged_in_time_and_nothing_else(tmp_path: Path) -> None:
    sim = SimConfig.for_period(seed=3, days=3, orders_per_day=150, start=date(2024, 11, 10))
    files = export_shop(sim, tmp_path / "shop", secret=b"t")
    config = load_checks()
    settings = Settings(data_dir=tmp_path / "var")
    first: dict[tuple[str, str], datetime] = {}
    with OrderLog.open(settings.database_url) as log:
        log.migrate()
        for path in files.channels.values():
            assert not import_file(path, channel=None, mapping=None, log=log, pii=settings.pii).report.errors
        steps = FulfilmentLog(log.engine)
        assert not import_reports(files.fulfilment, steps, received_at=datetime.now(UTC)).errors
        for result in replay(Sweeper(config), log, steps, start=sim.start_at, end=sim.end_at - timedelta(seconds=1),
                             every=EVERY, horizon=timedelta(days=1)):
            for f in result.opened:
                first.setdefault((f.order_key, f.check_id), f.flagged_at)
    lines = files.fulfilment_truth.read_text(encoding="utf-8").splitlines()
    header, rows = lines[0].split(","), [dict(zip(lines[0].split(","), r.split(","), strict=True)) for r in lines[1:]]
    assert header == ["order_key", "fault", "check", "anchor_at"]
    faults = {row["fault"] for row in rows}
    assert {"lost_payment_callback", "warehouse_backlog", "carrier_outage", "incomplete_address",
            "duplicate_order"} <= faults, faults
    late = []
    for row in rows:
        check = config.check(row["check"])
        due = datetime.fromisoformat(row["anchor_at"]) + check.deadline(OrderKey.parse(row["order_key"]).channel)
        flagged = first.get((row["order_key"], row["check"]))
        if flagged is None or flagged > due + EVERY:
            late.append((row, flagged))
    assert late == []
    faulty = {row["order_key"] for row in rows}
    assert sorted(k for k in first if k[0] not in faulty) == []  # no false alarm
