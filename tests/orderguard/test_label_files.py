"""Label files (generic, Tmall refund disputes, JD arbitration), simulated reviewers and the `label` CLI."""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from openpyxl import Workbook
from typer.testing import CliRunner

from cli import app
from features.settings import Settings
from orderguard.errors import InvalidInputError
from orderguard.ingest.files import ColumnMapping
from orderguard.ingest.importer import import_file
from orderguard.ingest.orderlog import OrderLog
from orderguard.label_files import (
    LabelFormat,
    import_label_file,
    read_label_file,
    write_label_file,
)
from orderguard.labels import LabelLog
from orderguard.schema import Channel, Label, OrderKey, Verdict
from simulate import SimConfig
from simulate.export import export_shop
from simulate.reviews import ReviewPlan, TruthEntry, read_ground_truth, simulated_labels
from tests.factories import BASE_TIME, make_event

runner = CliRunner()
NOW = BASE_TIME + timedelta(days=30)
FRAUD, FP, NI = Verdict.CONFIRMED_FRAUD, Verdict.FALSE_POSITIVE, Verdict.NEEDS_INVESTIGATION
TMALL_IDS = [f"39128374650{i}" for i in range(1, 8)]
JD_IDS = [f"30215877{i:02d}" for i in range(1, 6)]
SITE_IDS = ["SO1", "SO2", "SO3"]


@pytest.fixture
def url(tmp_path: Path) -> str:
    """A SQLite order log holding Tmall, JD and own-site orders created at BASE_TIME (10:00 Beijing, 11.11)."""
    database = f"sqlite:///{tmp_path / 'og.db'}"
    with OrderLog.open(database) as log:
        log.append([make_event(channel=Channel.TMALL, order_id=i) for i in TMALL_IDS]
                   + [make_event(channel=Channel.JD, order_id=i) for i in JD_IDS]
                   + [make_event(channel=Channel.SITE, order_id=i) for i in SITE_IDS])
    return database


@pytest.fixture
def labels(url: str) -> Iterator[LabelLog]:
    log = OrderLog.open(url)
    try:
        yield LabelLog(log.engine)
    finally:
        log.close()


def write_csv(path: Path, rows: Sequence[Sequence[object]], *, encoding: str = "utf-8") -> Path:
    with path.open("w", encoding=encoding, newline="") as fh:
        csv.writer(fh, lineterminator="\n").writerows(rows)
    return path


def site(order_id: str) -> OrderKey:
    return OrderKey(Channel.SITE, order_id)


# ---------------------------------------------------------------- generic format

@pytest.mark.parametrize("suffix", [".csv", ".jsonl"])
def test_generic_file_round_trips_and_a_reimport_adds_nothing(labels: LabelLog, tmp_path: Path, suffix: str) -> None:
    written = [Label(site("SO1"), NI, BASE_TIME + timedelta(days=1), "r1", "待核实"),
               Label(site("SO1"), FRAUD, BASE_TIME + timedelta(days=2), "r2", "同设备多账号, \"驿站\""),
               Label(OrderKey(Channel.JD, JD_IDS[0]), FP, BASE_TIME + timedelta(hours=30), "r1")]
    path = tmp_path / f"labels{suffix}"
    assert write_label_file(written, path) == 3
    first = import_label_file(path, log=labels, recorded_at=NOW)
    assert (first.rows, first.added, first.duplicates, first.errors) == (3, 3, 0, ())
    assert sorted(labels.iter_labels(), key=lambda x: x.labeled_at) == sorted(written, key=lambda x: x.labeled_at)
    assert {r.source for r in labels.history(site("SO1"))} == {f"file:labels{suffix}"}
    again = import_label_file(path, log=labels, recorded_at=NOW + timedelta(hours=1))
    assert (again.added, again.duplicates) == (0, 3)
    assert labels.count() == 3


def test_bad_rows_are_reported_by_line_and_the_good_rows_kept(labels: LabelLog, tmp_path: Path) -> None:
    path = write_csv(tmp_path / "desk.csv", [
        ["order_key", "verdict", "labeled_at", "reviewer_id", "note"],
        ["site:SO1", "confirmed_fraud", "2024-11-12T10:00:00+08:00", "r1", ""],  # line 2: good
        ["site:SO2", "fraud", "2024-11-12T10:00:00+08:00", "r1", ""],  # line 3: unknown verdict
        ["site:NOPE", "false_positive", "2024-11-12T10:00:00+08:00", "r1", ""],  # line 4: not in the order log
        ["site:SO3", "误报", "2024-11-12 09:00:00", "r1", ""],  # line 5: good (alias, Beijing time)
        ["site:SO2", "false_positive", "2024-11-11 09:00:00", "r1", ""],  # line 6: before the order (10:00)
        ["ebay:1", "false_positive", "2024-11-12 09:00:00", "r1", ""],  # line 7: unknown channel
        ["site:SO2", "false_positive", "", "r1", ""],  # line 8: no time
    ])
    refused = import_label_file(path, log=labels, recorded_at=NOW, all_or_nothing=True)
    assert refused.added == 0 and labels.count() == 0
    result = import_label_file(path, log=labels, recorded_at=NOW)
    assert [(e.position, e.error.field) for e in result.errors] == [
        (3, "verdict"), (4, "order_key"), (6, "labeled_at"), (7, "order_key"), (8, "labeled_at")]
    assert result.added == 2
    assert labels.current()[site("SO3")] == Label(site("SO3"), FP, datetime(2024, 11, 12, 1, 0, tzinfo=UTC), "r1")
    rejects = tmp_path / "rejects.jsonl"
    result.write_rejects(rejects)
    rows = [json.loads(line) for line in rejects.read_text(encoding="utf-8").splitlines()]
    assert [(r["line"], r["code"]) for r in rows][:2] == [(3, "invalid_input"), (4, "not_found")]


def test_a_mapping_renames_columns_and_fills_absent_ones(labels: LabelLog, tmp_path: Path) -> None:
    path = write_csv(tmp_path / "desk.csv", [["渠道", "订单", "结论", "时间"],
                                             ["site", "SO1", "确认欺诈", "2024-11-13 15:00"]])
    mapping = ColumnMapping(columns={"渠道": "channel", "订单": "order_id", "结论": "verdict", "时间": "labeled_at"},
                            defaults={"reviewer_id": "risk-desk"})
    assert import_label_file(path, log=labels, recorded_at=NOW, mapping=mapping).added == 1
    stored = labels.current()[site("SO1")]
    assert (stored.verdict, stored.reviewer_id, stored.labeled_at) == (
        FRAUD, "risk-desk", datetime(2024, 11, 13, 7, 0, tzinfo=UTC))


def test_a_gb18030_csv_as_chinese_excel_saves_it_is_read(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "desk.csv", [["order_key", "verdict", "labeled_at", "reviewer_id", "note"],
                                             ["site:SO1", "误报", "2024-11-12 09:00:00", "张三", "老客户复购"]],
                     encoding="gb18030")
    parsed = read_label_file(path)
    assert parsed.errors == () and parsed.labels[0][1].note == "老客户复购"
    assert parsed.labels[0][1].reviewer_id == "张三"


def test_a_file_of_an_unsupported_kind_is_refused(tmp_path: Path) -> None:
    (tmp_path / "labels.txt").write_text("x", encoding="utf-8")
    with pytest.raises(InvalidInputError, match="FILE"):
        read_label_file(tmp_path / "labels.txt")


# ---------------------------------------------------------------- platform exports

TMALL_HEADER = ["退款编号", "订单编号", "买家会员名", "退款金额", "退款原因", "申请时间", "纠纷结果", "处理时间",
                "判责说明"]


def test_tmall_refund_disputes_map_rulings_to_verdicts(labels: LabelLog, tmp_path: Path) -> None:
    t = TMALL_IDS
    path = write_csv(tmp_path / "退款纠纷.csv", [
        TMALL_HEADER,
        ["RF1", f'="{t[0]}"', "tb_buyer1", "199.00", "未收到货", "2024-11-13 09:00:00", "支持卖家",
         "2024-11-15 10:30:00", "物流签收凭证有效"],  # line 2
        ["RF2", t[1], "tb_buyer2", "199.00", "商品破损", "2024-11-13 09:00:00", "支持买家", "2024-11-15 11:00:00",
         ""],  # line 3
        ["RF3", t[2], "tb_buyer3", "199.00", "七天无理由退货", "2024-11-13", "支持卖家", "2024/11/16 08:00:00",
         "超出退货期"],  # line 4
        ["RF4", t[3], "tb_buyer4", "199.00", "未收到货", "2024-11-13 09:00:00", "处理中", "", ""],  # line 5
        ["RF5", t[4], "tb_buyer5", "199.00", "空包裹/少件", "2024-11-13 09:00:00", "买家撤销",
         "2024-11-14 20:00:00", ""],  # line 6
        ["RF6", t[5], "tb_buyer6", "199.00", "未收到货", "2024-11-13 09:00:00", "其它", "2024-11-14 20:00:00",
         ""],  # line 7
        ["RF7", t[6], "tb_buyer7", "199.00", "未收到货", "2024-11-13 09:00:00", "支持买家", "", ""],  # line 8
    ])
    result = import_label_file(path, log=labels, recorded_at=NOW, fmt=LabelFormat.TMALL_DISPUTE)
    assert [(e.position, e.error.field) for e in result.errors] == [(7, "纠纷结果"), (8, "处理时间")]
    assert [s.line for s in result.skipped] == [5]
    current = labels.current()
    assert {k.channel_order_id: v.verdict for k, v in current.items()} == {
        t[0]: FRAUD, t[1]: FP, t[2]: NI, t[4]: NI}
    first = current[OrderKey(Channel.TMALL, t[0])]
    assert first.labeled_at == datetime(2024, 11, 15, 2, 30, tzinfo=UTC)
    assert first.reviewer_id == "platform:tmall"
    assert "RF1" in first.note and "未收到货" in first.note and "物流签收凭证有效" in first.note


def test_jd_arbitration_xlsx_maps_rulings_to_verdicts(labels: LabelLog, tmp_path: Path) -> None:
    workbook = Workbook()
    sheet = workbook.active
    assert sheet is not None
    sheet.append(["仲裁单号", "订单号", "服务单号", "申请类型", "申请原因", "仲裁结果", "仲裁时间", "仲裁意见"])
    ruled = datetime(2024, 11, 16, 14, 0)  # a date cell, Beijing time
    sheet.append(["ZC1", int(JD_IDS[0]), "FW1", "退货", "商品破损", "商家胜诉", ruled, "开箱视频显示完好"])
    sheet.append(["ZC2", int(JD_IDS[1]), "FW2", "退货", "质量问题", "消费者胜诉", ruled, ""])
    sheet.append(["ZC3", int(JD_IDS[2]), "FW3", "仅退款", "未收到货", "部分支持", ruled, ""])
    sheet.append(["ZC4", int(JD_IDS[3]), "FW4", "仅退款", "未收到货", "仲裁中", None, ""])
    sheet.append(["ZC5", int(JD_IDS[4]), "FW5", "换货", "发错货", "支持商家", ruled, ""])
    path = tmp_path / "售后仲裁.xlsx"
    workbook.save(path)
    result = import_label_file(path, log=labels, recorded_at=NOW, fmt=LabelFormat.JD_ARBITRATION)
    assert result.errors == () and [s.line for s in result.skipped] == [5]
    current = labels.current()
    assert {k.channel_order_id: v.verdict for k, v in current.items()} == {
        JD_IDS[0]: FRAUD, JD_IDS[1]: FP, JD_IDS[2]: NI, JD_IDS[4]: NI}
    fraud = current[OrderKey(Channel.JD, JD_IDS[0])]
    assert fraud.labeled_at == datetime(2024, 11, 16, 6, 0, tzinfo=UTC) and fraud.reviewer_id == "platform:jd"
    again = import_label_file(path, log=labels, recorded_at=NOW, fmt=LabelFormat.JD_ARBITRATION)
    assert (again.added, again.duplicates) == (0, 4)


# ---------------------------------------------------------------- simulated reviewers

def _truth(n: int) -> tuple[list[TruthEntry], dict[OrderKey, datetime]]:
    entries, created = [], {}
    for i in range(n):
        key = OrderKey(Channel.SITE, f"S{i:04d}")
        pattern, abnormal = [("device_ring", True), ("family_gifts", False), ("normal", False)][i % 3]
        entries.append(TruthEntry(key, pattern, abnormal))
        created[key] = BASE_TIME + timedelta(hours=i)
    return entries, created


def test_simulated_reviewers_label_abuse_as_fraud_and_look_alikes_as_false_positives() -> None:
    entries, created = _truth(600)
    until = BASE_TIME + timedelta(days=40)
    labels = simulated_labels(entries, created_at=created, until=until, seed=3)
    by_order: dict[OrderKey, list[Label]] = {}
    for label in labels:
        by_order.setdefault(label.key, []).append(label)
    truth = {e.key: e for e in entries}
    reviewed = {p: sum(1 for k in by_order if truth[k].pattern == p) for p in ("device_ring", "family_gifts", "normal")}
    orders_created = {p: sum(1 for e in entries if e.pattern == p and created[e.key] < until) for p in reviewed}
    assert reviewed["device_ring"] == orders_created["device_ring"]  # every abnormal order created by then
    assert 0.3 < reviewed["family_gifts"] / orders_created["family_gifts"] < 0.7
    assert reviewed["normal"] / orders_created["normal"] < 0.1
    for key, steps in by_order.items():
        final = FRAUD if truth[key].is_abnormal else FP
        assert [s.verdict for s in steps] in ([final], [NI], [NI, final])
        assert timedelta(days=1) <= steps[0].labeled_at - created[key] <= timedelta(days=7)
        assert all(s.labeled_at <= until for s in steps)
        assert created[key] < until
    assert any(len(steps) == 2 for steps in by_order.values())  # some relabels
    assert [x.labeled_at for x in labels] == sorted(x.labeled_at for x in labels)


def test_simulated_reviewers_are_deterministic_per_seed_and_per_order() -> None:
    entries, created = _truth(300)
    until = BASE_TIME + timedelta(days=10)
    first = simulated_labels(entries, created_at=created, until=until, seed=5)
    assert first == simulated_labels(list(reversed(entries)), created_at=created, until=until, seed=5)
    assert first != simulated_labels(entries, created_at=created, until=until, seed=6)
    fewer = simulated_labels(entries[:150], created_at=created, until=until, seed=5)
    assert fewer == [x for x in first if x.key in {e.key for e in entries[:150]}]
    never = simulated_labels(entries, created_at={}, until=until, seed=5)
    assert never == []


def test_a_review_plan_refuses_nonsense() -> None:
    with pytest.raises(InvalidInputError, match="lookalike_share"):
        ReviewPlan(lookalike_share=1.5)
    with pytest.raises(InvalidInputError, match="max_delay"):
        ReviewPlan(min_delay=timedelta(days=3), max_delay=timedelta(days=2))


def test_malformed_ground_truth_names_the_line(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "ground_truth.csv", [["order_key", "pattern", "is_abnormal"],
                                                     ["site:1", "normal", "false"], ["site:2", "normal", "maybe"]])
    with pytest.raises(InvalidInputError, match=r"ground_truth\.csv:3"):
        read_ground_truth(path)


# ---------------------------------------------------------------- CLI

def cli(url: str, *args: str) -> tuple[int, str]:
    result = runner.invoke(app, ["--database-url", url, "label", *args])
    return result.exit_code, result.output


def test_cli_add_then_history(url: str) -> None:
    code, out = cli(url, "add", "site:SO1", "needs_investigation", "--reviewer", "r1", "--at", "2024-11-12T10:00:00")
    assert code == 0, out
    code, out = cli(url, "add", "site:SO1", "confirmed_fraud", "--reviewer", "r2", "--note", "同设备",
                    "--at", "2024-11-13T10:00:00+08:00")
    assert code == 0, out
    code, out = cli(url, "add", "site:SO1", "confirmed_fraud", "--reviewer", "r2", "--at", "2024-11-13T10:00:00")
    assert code == 0 and "already recorded" in out
    code, out = cli(url, "history", "site:SO1")
    assert code == 0, out
    assert out.index("needs_investigation") < out.index("confirmed_fraud") and "2024-11-12T02:00:00" in out


@pytest.mark.parametrize("args", [
    ["add", "site:SO1", "fraud", "--reviewer", "r1"],  # unknown verdict
    ["add", "ebay:1", "false_positive", "--reviewer", "r1"],  # unknown channel
    ["add", "site:NOPE", "false_positive", "--reviewer", "r1"],  # not in the order log
    ["add", "site:SO1", "false_positive", "--reviewer", "r1", "--at", "yesterday"],
    ["add", "site:SO1", "false_positive", "--reviewer", "r1", "--at", "2024-11-01T00:00:00"],  # before the order
    ["history", "site:NOPE"],
    ["import", "missing.csv"],
    ["import", "missing.csv", "--format", "taobao"],
])
def test_cli_bad_input_exits_2_with_one_line(url: str, args: list[str]) -> None:
    code, out = cli(url, *args)
    assert code == 2, out
    lines = [line for line in out.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error["), out


def test_cli_import_reports_bad_rows_by_file_and_line(url: str, tmp_path: Path) -> None:
    path = write_csv(tmp_path / "desk.csv", [["order_key", "verdict", "labeled_at", "reviewer_id"],
                                             ["site:SO1", "false_positive", "2024-11-12 09:00:00", "r1"],
                                             ["site:SO2", "nonsense", "2024-11-12 09:00:00", "r1"]])
    rejects = tmp_path / "rejects.jsonl"
    code, out = cli(url, "import", str(path), "--rejects", str(rejects))
    assert code == 2 and "desk.csv:3: error[invalid_input]" in out
    assert [json.loads(r)["field"] for r in rejects.read_text(encoding="utf-8").splitlines()] == ["verdict"]
    code, out = cli(url, "history", "site:SO1")
    assert "false_positive" in out


def test_cli_imports_a_platform_export(url: str, tmp_path: Path) -> None:
    path = write_csv(tmp_path / "tmall.csv", [
        TMALL_HEADER,
        ["RF1", TMALL_IDS[0], "b", "9.9", "未收到货", "2024-11-13", "支持卖家", "2024-11-15 10:30:00", ""]])
    code, out = cli(url, "import", str(path), "--format", "tmall-dispute")
    assert code == 0, out
    code, out = cli(url, "history", f"tmall:{TMALL_IDS[0]}")
    assert "confirmed_fraud" in out and "platform:tmall" in out


def test_simulate_then_import_through_the_cli(tmp_path: Path) -> None:
    files = export_shop(SimConfig.for_period(seed=2, days=5, orders_per_day=40), tmp_path / "shop", secret=b"t")
    url = f"sqlite:///{tmp_path / 'og.db'}"
    with OrderLog.open(url) as log:
        for path in files.channels.values():
            import_file(path, channel=None, mapping=None, log=log, pii=Settings(data_dir=tmp_path).pii)
    out = tmp_path / "labels.csv"
    code, text = cli(url, "simulate", "--truth", str(files.ground_truth), "--until", "2024-09-05", "--out", str(out))
    assert code == 0, text
    written = list(csv.DictReader(out.open(encoding="utf-8")))
    assert written and all(datetime.fromisoformat(r["labeled_at"]) <= datetime(2024, 9, 4, 16, tzinfo=UTC)
                           for r in written)
    code, text = cli(url, "import", str(out))
    assert code == 0, text
    with OrderLog.open(url) as log:
        assert LabelLog(log.engine).count() == len(written)
    code, text = cli(url, "import", str(out))  # again: all duplicates
    assert code == 0, text
    with OrderLog.open(url) as log:
        assert LabelLog(log.engine).count() == len(written)
    code, text = cli(url, "simulate", "--truth", str(tmp_path / "nope.csv"), "--until", "2024-09-05",
                     "--out", str(out))
    assert code == 2
