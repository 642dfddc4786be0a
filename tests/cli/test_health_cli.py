"""``orderguard health``: reports from files (bad rows named, exit 2), the checks in force, and replayed sweeps."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from cli import app
from features.settings import Settings
from orderguard.fulfilment import FulfilmentLog
from orderguard.ingest.orderlog import OrderLog
from tests.health.shop import Shop, fill


@pytest.fixture
def shop(tmp_path: Path) -> tuple[Path, Shop]:
    return tmp_path, fill(Settings(data_dir=tmp_path))


def run(data: Path, *args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(app, ["--data-dir", str(data), "health", *args])
    return result.exit_code, result.stdout, result.stderr


def test_a_replay_flags_each_fault_when_the_service_would_have(shop: tuple[Path, Shop]) -> None:
    data, keys = shop
    code, stdout, stderr = run(data, "sweep", "--from", "2024-11-11T10:00", "--as-of", "2024-11-11T20:00",
                               "--json")
    assert code == 0, stderr
    body = json.loads(stdout)
    flagged = {(f["order_key"], f["check"]): f["flagged_at"] for f in body["first_flagged"]}
    assert flagged == {
        (str(keys.bad_address), "address_incomplete"): "2024-11-11T02:07:00+00:00",
        (str(keys.lost_callback), "payment_callback"): "2024-11-11T02:10:00+00:00",
        (str(keys.lost_callback), "erp_sync"): "2024-11-11T02:15:00+00:00",
        (str(keys.lost_callback), "inventory_lock"): "2024-11-11T02:45:00+00:00",
        (str(keys.stuck_in_warehouse), "out_scan"): "2024-11-11T11:01:00+00:00"}
    assert body["tiers"]["red"] == 1 and body["orders"] == 8
    code, stdout, _ = run(data, "sweep", "--as-of", "2024-11-11T10:30")  # one sweep, on event time
    assert code == 0 and str(keys.lost_callback) in stdout and str(keys.stuck_in_warehouse) not in stdout


def test_reports_from_jsonl_and_csv_with_bad_rows_named(shop: tuple[Path, Shop]) -> None:
    data, keys = shop
    jsonl = data / "wms.jsonl"
    good = {"channel": "site", "order_id": keys.stuck_in_warehouse.channel_order_id, "kind": "out_scan",
            "event_id": "wms-late", "time": "2024-11-11T21:00:00+08:00", "source": "wms"}
    jsonl.write_text("\n".join([json.dumps(good), json.dumps({**good, "kind": "beamed"}), "{not json"]) + "\n",
                     encoding="utf-8")
    code, _, stderr = run(data, "ingest", str(jsonl))
    assert code == 2
    assert "wms.jsonl:2: error[invalid_input]: `kind` must be one of" in stderr and "wms.jsonl:3:" in stderr
    csv_file = data / "carrier.csv"
    csv_file.write_text("channel,order_id,kind,event_id,time,carrier,waybill,node\n"
                        f"site,{keys.stuck_in_warehouse.channel_order_id},tracking,zto-1,2024-11-12T08:00:00+08:00,"
                        "zto,ZT1,运输中\n", encoding="utf-8")
    code, _, stderr = run(data, "ingest", str(csv_file), str(jsonl), "--all-or-nothing")
    assert code == 2 and "refused" in stderr
    with OrderLog.open(Settings(data_dir=data).database_url) as log:
        stored = FulfilmentLog(log.engine).of_order(keys.stuck_in_warehouse)
    assert [(s.kind.value, s.event_id) for s in stored][-2:] == [("out_scan", "wms-late"), ("tracking", "zto-1")]
    code, _, _ = run(data, "ingest", str(jsonl))  # the good row again: a duplicate, still exit 2 for the bad ones
    assert code == 2


def test_one_line_errors(shop: tuple[Path, Shop]) -> None:
    data, _ = shop
    assert run(data, "sweep", "--as-of", "soon")[0] == 2
    code, _, stderr = run(data, "sweep", "--as-of", "2024-11-11", "--from", "2024-11-12")
    assert code == 2 and "`from` must be at or before --as-of" in stderr
    code, _, stderr = run(data, "ingest", str(data / "missing.jsonl"))
    assert code == 2 and "no such file" in stderr
    code, stdout, _ = run(data, "checks")
    assert code == 0 and "payment_callback" in stdout and "red below 50" in stdout
