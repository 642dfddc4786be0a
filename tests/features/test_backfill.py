"""``orderguard backfill``: the point-in-time frame of the order log, the values serving computes online."""

from __future__ import annotations

import math
from datetime import timedelta
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from cli import app
from features.online import OnlineFeatures
from features.shop import default_shop_features
from features.stores import MemoryStore
from orderguard.enrich import Gazetteer
from orderguard.ingest.orderlog import OrderLog
from orderguard.ingest.state import derive_order
from orderguard.schema import Order, OrderEvent, OrderKey
from simulate.shop import IngestedShop

runner = CliRunner()


def backfill(shop: IngestedShop, tmp_path: Path, out: Path, *options: str) -> pd.DataFrame:
    result = runner.invoke(app, ["--data-dir", str(tmp_path), "--database-url", shop.database_url, "backfill",
                                 "--out", str(out), *options])
    assert result.exit_code == 0, result.output
    return pd.read_parquet(out)


@pytest.fixture(scope="module")
def full_frame(simulated_shop: IngestedShop, tmp_path_factory: pytest.TempPathFactory) -> pd.DataFrame:
    tmp = tmp_path_factory.mktemp("backfill")
    return backfill(simulated_shop, tmp, tmp / "out" / "features.parquet")


def test_one_row_per_order_with_every_feature_in_order(full_frame: pd.DataFrame,
                                                       simulated_shop: IngestedShop) -> None:
    names = default_shop_features().names
    assert list(full_frame.columns) == ["order_key", "event_time", *names]
    log = OrderLog.open(simulated_shop.database_url)
    try:
        assert len(full_frame) == log.count_orders()
    finally:
        log.close()
    assert set(full_frame["order_key"]) <= set(simulated_shop.truth)
    assert str(full_frame["event_time"].dt.tz) == "UTC"
    assert full_frame["event_time"].is_monotonic_increasing
    assert all(full_frame[n].dtype == "float64" for n in names)


def test_the_frame_equals_what_serving_computes_replaying_the_log(full_frame: pd.DataFrame,
                                                                  simulated_shop: IngestedShop) -> None:
    """Replay every event of the log in event-time order through the online engine, as serving does."""
    engine = OnlineFeatures(MemoryStore(), default_shop_features(), gazetteer=Gazetteer.build(),
                            retention_margin=timedelta(days=30))
    log = OrderLog.open(simulated_shop.database_url)
    try:
        history: dict[OrderKey, list[OrderEvent]] = {}
        final: dict[OrderKey, Order] = {}
        for event in log.iter_events():
            history.setdefault(event.key, []).append(event)
            order = derive_order(history[event.key])
            if order is not None:
                engine.apply(order)
                final[event.key] = order
    finally:
        log.close()
    rows = full_frame.set_index("order_key")
    names = engine.names
    mismatches = []
    for key, order in final.items():
        online = engine.lookup(order, as_of=order.details.created_at)
        row = rows.loc[str(key)]
        mismatches += [(str(key), n, online[n], row[n]) for n in names
                       if not (math.isclose(online[n], row[n], rel_tol=1e-9, abs_tol=1e-6)
                               or (math.isnan(online[n]) and math.isnan(row[n])))]
    assert len(final) == len(rows)
    assert mismatches == []


def test_a_partial_backfill_reads_history_and_matches_the_full_one(full_frame: pd.DataFrame,
                                                                   simulated_shop: IngestedShop,
                                                                   tmp_path: Path) -> None:
    start = simulated_shop.config.start + timedelta(days=3)
    end = start + timedelta(days=2)
    part = backfill(simulated_shop, tmp_path, tmp_path / "part.parquet", "--start", start.isoformat(),
                    "--end", end.isoformat())
    local = full_frame["event_time"].dt.tz_convert("Asia/Shanghai").dt.date
    expected = full_frame[(local >= start) & (local < end)].reset_index(drop=True)
    assert 0 < len(part) < len(full_frame)
    pd.testing.assert_frame_equal(part, expected)


@pytest.mark.parametrize(("options", "field"), [
    (["--start", "2024-13-01"], "--start"),
    (["--start", "2024-09-05", "--end", "2024-09-05"], "--end"),
])
def test_bad_bounds_are_one_line_errors(options: list[str], field: str, simulated_shop: IngestedShop,
                                        tmp_path: Path) -> None:
    result = runner.invoke(app, ["--data-dir", str(tmp_path), "--database-url", simulated_shop.database_url,
                                 "backfill", "--out", str(tmp_path / "x.parquet"), *options])
    assert result.exit_code == 2
    assert "error[invalid_input]" in result.output and field in result.output
    assert not (tmp_path / "x.parquet").exists()
