"""Bulk label files: the generic format and two platform dispute exports.

A shop learns the truth about an order from its own reviewers and from the platforms'
dispute rulings. Both arrive as spreadsheets; this module turns their rows into
:class:`~orderguard.schema.Label` s for :class:`~orderguard.labels.LabelLog`. Files are
CSV (UTF-8, or GB18030 as Chinese Excel saves it), XLSX or JSONL, read by
:mod:`orderguard.ingest.files`; every row keeps its line number (the header is line 1)
so a bad row is reported as ``file:line: message``.

Formats (``--format``):

``generic``
    Columns ``order_key`` (``jd:3021587746``) — or ``channel`` and ``order_id`` —,
    ``verdict`` (``confirmed_fraud`` / ``false_positive`` / ``needs_investigation``, or
    确认欺诈 / 误报 / 待调查), ``labeled_at``, ``reviewer_id`` and an optional ``note``.
    This is what ``orderguard label simulate`` writes.

``tmall-dispute`` — Tmall / Taobao refund disputes (退款纠纷), seller centre export
    Columns 订单编号 (order), 退款编号, 退款原因 (the buyer's claim), 纠纷结果 (the
    platform's ruling), 处理时间 (time of the ruling, Beijing time) and 判责说明. The
    reviewer is ``platform:tmall``.

``jd-arbitration`` — JD after-sale arbitration (售后仲裁), JD POP merchant back-office export
    Columns 订单号 (order), 服务单号, 申请原因 (the claim), 仲裁结果 (the ruling),
    仲裁时间 (Beijing time) and 仲裁意见. The reviewer is ``platform:jd``.

How a ruling becomes a verdict (both platforms). A *loss claim* is a refund reason
saying the goods never arrived, arrived empty, short or broken (未收到货, 空包, 少件 /
漏发, 破损 / 损坏, 丢件 …): the claims abusers make on parcels they did receive.

* ruled for the seller (支持卖家 / 卖家胜诉; JD 支持商家 / 商家胜诉 / 驳回用户申请): the
  platform found the claim false → ``confirmed_fraud`` on a loss claim, else
  ``needs_investigation`` (a refused no-reason return is not fraud by itself);
* ruled for the buyer (支持买家 / 买家胜诉; JD 支持消费者 / 消费者胜诉 / 支持用户 /
  用户胜诉): the claim was upheld → ``false_positive``;
* partly for each (JD 部分支持) → ``needs_investigation``;
* withdrawn by the buyer (买家撤销 / 买家撤诉; JD 用户撤销 / 撤销仲裁) →
  ``needs_investigation`` on a loss claim (escalated, then dropped), else skipped;
* still open or settled between the parties (处理中, 待小二处理, 待判定, 协商一致;
  JD 仲裁中, 待仲裁, 双方协商一致) → skipped: no ruling, no verdict.

Skipped rows are counted, not errors. A ruling text not in these lists is an error
naming the column, so a new platform wording is noticed rather than guessed.

A ``--mapping`` YAML renames the file's columns to the format's column titles and fills
absent ones (:class:`~orderguard.ingest.files.ColumnMapping`), e.g. a generic file with
Chinese titles::

    columns: {订单: order_key, 结论: verdict, 时间: labeled_at}
    defaults: {reviewer_id: risk-desk}
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from types import MappingProxyType
from typing import Any

from orderguard.clock import as_utc
from orderguard.errors import InvalidInputError, OrderGuardError
from orderguard.ingest.files import ColumnMapping, Record, read_records
from orderguard.ingest.normalize import parse_time
from orderguard.ingest.service import ItemError
from orderguard.labels import LabelLog
from orderguard.schema import Channel, Label, OrderKey, Verdict

#: Columns of the generic format, in the order :func:`write_label_file` writes them.
GENERIC_COLUMNS = ("order_key", "verdict", "labeled_at", "reviewer_id", "note")

#: Chinese names a reviewer may write instead of the verdict values.
VERDICT_ALIASES: Mapping[str, Verdict] = MappingProxyType({
    "确认欺诈": Verdict.CONFIRMED_FRAUD, "欺诈": Verdict.CONFIRMED_FRAUD,
    "误报": Verdict.FALSE_POSITIVE, "正常": Verdict.FALSE_POSITIVE,
    "待调查": Verdict.NEEDS_INVESTIGATION, "待核实": Verdict.NEEDS_INVESTIGATION,
})

#: Words of a refund reason that claim the goods were lost, short or broken.
LOSS_CLAIM_WORDS = ("未收到", "没收到", "未送达", "未送到", "空包", "少件", "漏发", "缺件", "破损", "损坏", "丢件",
                    "丢失")


class LabelFormat(StrEnum):
    """Layout of a label file."""

    GENERIC = "generic"
    TMALL_DISPUTE = "tmall-dispute"
    JD_ARBITRATION = "jd-arbitration"


class Ruling(StrEnum):
    """A platform's dispute outcome, whatever its wording."""

    SELLER = "seller"  # ruled for the seller: the buyer's claim was refused
    BUYER = "buyer"  # ruled for the buyer: the claim was upheld
    PARTIAL = "partial"
    WITHDRAWN = "withdrawn"
    OPEN = "open"  # not ruled yet, or settled between the parties: no verdict


#: Tmall / Taobao ruling wordings (whitespace removed).
TMALL_RULINGS: Mapping[str, Ruling] = MappingProxyType({
    "支持卖家": Ruling.SELLER, "卖家胜诉": Ruling.SELLER, "判定卖家胜诉": Ruling.SELLER,
    "支持买家": Ruling.BUYER, "买家胜诉": Ruling.BUYER, "判定买家胜诉": Ruling.BUYER,
    "买家撤销": Ruling.WITHDRAWN, "买家撤销纠纷": Ruling.WITHDRAWN, "买家撤诉": Ruling.WITHDRAWN,
    "处理中": Ruling.OPEN, "待小二处理": Ruling.OPEN, "待判定": Ruling.OPEN, "协商一致": Ruling.OPEN,
})

#: JD ruling wordings (whitespace removed).
JD_RULINGS: Mapping[str, Ruling] = MappingProxyType({
    "支持商家": Ruling.SELLER, "商家胜诉": Ruling.SELLER, "驳回用户申请": Ruling.SELLER,
    "支持消费者": Ruling.BUYER, "消费者胜诉": Ruling.BUYER, "支持用户": Ruling.BUYER, "用户胜诉": Ruling.BUYER,
    "部分支持": Ruling.PARTIAL,
    "用户撤销": Ruling.WITHDRAWN, "撤销仲裁": Ruling.WITHDRAWN,
    "仲裁中": Ruling.OPEN, "待仲裁": Ruling.OPEN, "双方协商一致": Ruling.OPEN,
})


@dataclass(frozen=True, slots=True)
class Skipped:
    """A row that carries no verdict (an open dispute), with the reason."""

    line: int
    reason: str


@dataclass(frozen=True, slots=True)
class Skip:
    """Returned by a row reader for a row to skip."""

    reason: str


def verdict_of(ruling: Ruling, *, loss_claim: bool) -> Verdict | None:
    """The verdict a platform ruling stands for (``None``: no verdict), see the module docstring.

    >>> verdict_of(Ruling.SELLER, loss_claim=True), verdict_of(Ruling.BUYER, loss_claim=True)
    (<Verdict.CONFIRMED_FRAUD: 'confirmed_fraud'>, <Verdict.FALSE_POSITIVE: 'false_positive'>)
    >>> verdict_of(Ruling.WITHDRAWN, loss_claim=False) is None
    True
    """
    if ruling is Ruling.SELLER:
        return Verdict.CONFIRMED_FRAUD if loss_claim else Verdict.NEEDS_INVESTIGATION
    if ruling is Ruling.BUYER:
        return Verdict.FALSE_POSITIVE
    if ruling is Ruling.PARTIAL:
        return Verdict.NEEDS_INVESTIGATION
    if ruling is Ruling.WITHDRAWN:
        return Verdict.NEEDS_INVESTIGATION if loss_claim else None
    return None


def is_loss_claim(reason: str) -> bool:
    """Whether a refund reason claims the goods were lost, short or broken.

    >>> is_loss_claim("未收到货"), is_loss_claim("商品破损/少件"), is_loss_claim("七天无理由退货")
    (True, True, False)
    """
    return any(word in reason for word in LOSS_CLAIM_WORDS)


def cell_text(value: Any) -> str:
    """A cell as text, without the guards spreadsheets put around long numbers.

    Exports write order numbers as ``="3912837465"``, with a leading apostrophe or a tab
    so that Excel keeps all digits; XLSX gives whole numbers as floats.

    >>> cell_text('="3912837465"'), cell_text("'3021587746"), cell_text(3021587746.0), cell_text(None)
    ('3912837465', '3021587746', '3021587746', '')
    """
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    text = str(value).strip().lstrip("'\t").strip()
    if text.startswith('="') and text.endswith('"'):
        text = text[2:-1].strip()
    return text


def cell_time(value: Any, *, field: str) -> datetime:
    """A time cell → tz-aware UTC; times without an offset are Beijing time (the platforms' clock).

    >>> cell_time("2024-11-20 15:30:00", field="t").isoformat()
    '2024-11-20T07:30:00+00:00'
    """
    if isinstance(value, datetime):  # an XLSX date cell
        return as_utc(value)
    text = cell_text(value)
    if not text:
        raise InvalidInputError(f"`{field}` is required", field=field)
    return parse_time(text, field=field)


def _required(row: Mapping[str, Any], title: str) -> str:
    text = cell_text(row.get(title))
    if not text:
        raise InvalidInputError(f"`{title}` is required", field=title)
    return text


def _ruling(row: Mapping[str, Any], title: str, table: Mapping[str, Ruling]) -> Ruling:
    text = "".join(cell_text(row.get(title)).split())
    if not text:
        raise InvalidInputError(f"`{title}` is required", field=title)
    found = table.get(text)
    if found is None:
        raise InvalidInputError.must(title, f"one of {', '.join(table)}", text)
    return found


def _generic_row(row: Mapping[str, Any]) -> Label:
    order = row.get("order")
    if isinstance(order, Mapping):  # JSONL rows may nest the order like the API does
        row = {**row, "channel": order.get("channel"), "order_id": order.get("order_id")}
    key_text = cell_text(row.get("order_key"))
    if key_text:
        key = parse_order_key(key_text)
    else:
        try:
            key = OrderKey(Channel(_required(row, "channel")), _required(row, "order_id"))
        except ValueError as e:
            raise InvalidInputError.must("channel", f"one of {', '.join(c.value for c in Channel)}",
                                         row.get("channel")) from e
    verdict = parse_verdict(_required(row, "verdict"))
    return Label(key, verdict, cell_time(row.get("labeled_at"), field="labeled_at"), _required(row, "reviewer_id"),
                 cell_text(row.get("note")))


def _dispute_row(row: Mapping[str, Any], *, channel: Channel, order_title: str, ruling_title: str,
                 rulings: Mapping[str, Ruling], reason_title: str, time_title: str, case_title: str,
                 remark_title: str, platform: str) -> Label | Skip:
    order_id = _required(row, order_title)
    ruling = _ruling(row, ruling_title, rulings)
    reason = cell_text(row.get(reason_title))
    ruling_text = cell_text(row.get(ruling_title))
    verdict = verdict_of(ruling, loss_claim=is_loss_claim(reason))
    if verdict is None:
        return Skip(f"{ruling_title} {ruling_text!r}: no verdict ({reason or 'no reason given'})")
    case = cell_text(row.get(case_title))
    remark = cell_text(row.get(remark_title))
    note = f"{platform} {case}: {reason or '-'} → {ruling_text}" + (f"; {remark}" if remark else "")
    return Label(OrderKey(channel, order_id), verdict, cell_time(row.get(time_title), field=time_title),
                 f"platform:{channel.value}", note.strip())


def _tmall_row(row: Mapping[str, Any]) -> Label | Skip:
    return _dispute_row(row, channel=Channel.TMALL, order_title="订单编号", ruling_title="纠纷结果",
                        rulings=TMALL_RULINGS, reason_title="退款原因", time_title="处理时间",
                        case_title="退款编号", remark_title="判责说明", platform="天猫退款纠纷")


def _jd_row(row: Mapping[str, Any]) -> Label | Skip:
    return _dispute_row(row, channel=Channel.JD, order_title="订单号", ruling_title="仲裁结果",
                        rulings=JD_RULINGS, reason_title="申请原因", time_title="仲裁时间",
                        case_title="服务单号", remark_title="仲裁意见", platform="京东售后仲裁")


_READERS: Mapping[LabelFormat, Callable[[Mapping[str, Any]], Label | Skip]] = MappingProxyType({
    LabelFormat.GENERIC: _generic_row,
    LabelFormat.TMALL_DISPUTE: _tmall_row,
    LabelFormat.JD_ARBITRATION: _jd_row,
})


def parse_verdict(text: str) -> Verdict:
    """A verdict by value or Chinese alias (see :data:`VERDICT_ALIASES`).

    >>> parse_verdict("误报"), parse_verdict("Confirmed_Fraud")
    (<Verdict.FALSE_POSITIVE: 'false_positive'>, <Verdict.CONFIRMED_FRAUD: 'confirmed_fraud'>)
    """
    clean = text.strip()
    found = VERDICT_ALIASES.get(clean)
    if found is not None:
        return found
    try:
        return Verdict(clean.lower())
    except ValueError as e:
        raise InvalidInputError.must("verdict", f"one of {', '.join(v.value for v in Verdict)}", text) from e


def parse_order_key(text: str, *, field: str = "order_key") -> OrderKey:
    """``<channel>:<order id>`` → :class:`OrderKey`, or an error naming ``field``.

    >>> str(parse_order_key(" jd:3021587746 "))
    'jd:3021587746'
    """
    try:
        return OrderKey.parse(text.strip())
    except ValueError as e:
        raise InvalidInputError.must(field, "<channel>:<order id> with a known channel "
                                            f"({', '.join(c.value for c in Channel)})", text) from e


def parse_moment(text: str, *, field: str) -> datetime:
    """A date (midnight, Beijing time) or an ISO time (no offset: Beijing time) → tz-aware UTC.

    Beijing because the shop's day and its reviewers' clocks are Beijing time.

    >>> parse_moment("2024-11-20", field="until").isoformat()
    '2024-11-19T16:00:00+00:00'
    >>> parse_moment("2024-11-20T10:00:00+00:00", field="at").isoformat()
    '2024-11-20T10:00:00+00:00'
    """
    try:
        parsed = datetime.fromisoformat(text.strip())
    except ValueError as e:
        raise InvalidInputError.must(field, "a date YYYY-MM-DD or an ISO time", text) from e
    return as_utc(parsed)


def label_format(name: str) -> LabelFormat:
    """The format called ``name``, or an error listing the known ones."""
    try:
        return LabelFormat(name)
    except ValueError as e:
        raise InvalidInputError.must("format", f"one of {', '.join(f.value for f in LabelFormat)}", name) from e


def _read_csv(path: Path) -> Iterator[Record]:
    """CSV rows by line number; UTF-8 (with or without BOM), else GB18030 as Chinese Excel saves it."""
    data = path.read_bytes()
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        try:
            text = data.decode("gb18030")
        except UnicodeDecodeError as e:
            raise InvalidInputError.must("FILE", "UTF-8 or GB18030 text", path.name) from e
    reader = csv.DictReader(io.StringIO(text, newline=""))
    for row in reader:
        yield reader.line_num, {k.strip(): v for k, v in row.items() if k is not None}


def _records(path: Path) -> Iterator[Record]:
    records = read_records(path)  # checks the suffix and that the file exists; reads JSONL and XLSX
    if path.suffix.lower() == ".csv":
        return _read_csv(path)
    return records


def _mapped(row: Mapping[str, Any], mapping: ColumnMapping | None) -> Mapping[str, Any]:
    """The row through the mapping: renamed or transformed columns (``orderguard.ingest.transforms``), and
    ``defaults`` for what the row leaves empty. A value that cannot be transformed is an ``InvalidInputError``."""
    if mapping is None:
        return row
    return mapping.apply(row)


@dataclass(frozen=True, slots=True)
class ParsedLabelFile:
    """The rows of one label file, read but not stored.

    Attributes:
        labels: ``(line, label)`` of every row that carries a verdict.
        errors: unreadable rows (``ItemError.position`` is the line number).
        skipped: rows without a verdict (open disputes).
        rows: number of data rows read.
    """

    labels: tuple[tuple[int, Label], ...]
    errors: tuple[ItemError, ...]
    skipped: tuple[Skipped, ...]
    rows: int


def read_label_file(path: Path, *, fmt: LabelFormat = LabelFormat.GENERIC,
                    mapping: ColumnMapping | None = None) -> ParsedLabelFile:
    """Read every row of a label file; bad rows are collected, not raised.

    Raises:
        InvalidInputError: the file itself cannot be read (suffix, missing, encoding).
    """
    reader = _READERS[fmt]
    labels: list[tuple[int, Label]] = []
    errors: list[ItemError] = []
    skipped: list[Skipped] = []
    rows = 0
    for line, record in _records(path):
        rows += 1
        if isinstance(record, OrderGuardError):
            errors.append(ItemError(line, record))
            continue
        if not isinstance(record, Mapping):
            errors.append(ItemError(line, InvalidInputError(f"line {line} must be an object; got "
                                                            f"{type(record).__name__}", field="row")))
            continue
        try:
            result = reader(_mapped(record, mapping))
        except InvalidInputError as e:
            errors.append(ItemError(line, e))
            continue
        if isinstance(result, Skip):
            skipped.append(Skipped(line, result.reason))
        else:
            labels.append((line, result))
    return ParsedLabelFile(tuple(labels), tuple(errors), tuple(skipped), rows)


@dataclass(frozen=True, slots=True)
class LabelImportResult:
    """What one label file contributed.

    Attributes:
        errors: refused rows, by line: unreadable, or refused by the label log (unknown
            order, label before the order, conflicting verdict …).
        stored: the labels newly stored (empty when refused as a whole).
    """

    path: Path
    format: LabelFormat
    rows: int
    added: int
    duplicates: int
    skipped: tuple[Skipped, ...]
    errors: tuple[ItemError, ...]
    stored: tuple[Label, ...] = field(default=())

    def write_rejects(self, target: Path) -> None:
        """Append refused rows (file, line, code, field, message) as JSONL."""
        target.parent.mkdir(parents=True, exist_ok=True)
        with target.open("a", encoding="utf-8") as fh:
            for error in self.errors:
                row = {"file": str(self.path), "line": error.position, **error.error.to_dict()}
                fh.write(json.dumps(row, ensure_ascii=False) + "\n")


def import_label_file(path: Path, *, log: LabelLog, recorded_at: datetime, fmt: LabelFormat = LabelFormat.GENERIC,
                      mapping: ColumnMapping | None = None, all_or_nothing: bool = False) -> LabelImportResult:
    """Read a label file and store its good rows (all of them or none with ``all_or_nothing``).

    Idempotent: importing the same file again adds nothing (every row is a duplicate).
    The source of the stored labels is ``file:<file name>``.
    """
    parsed = read_label_file(path, fmt=fmt, mapping=mapping)
    labels = [label for _, label in parsed.labels]
    problems = log.check(labels, recorded_at=recorded_at)
    refused = {p.index for p in problems}
    errors = sorted([*parsed.errors, *(ItemError(parsed.labels[p.index][0], p.error) for p in problems)],
                    key=lambda e: e.position)
    if all_or_nothing and errors:
        return LabelImportResult(path, fmt, parsed.rows, 0, 0, parsed.skipped, tuple(errors))
    good = [label for i, label in enumerate(labels) if i not in refused]
    result = log.add(good, source=f"file:{path.name}", recorded_at=recorded_at)
    return LabelImportResult(path, fmt, parsed.rows, result.added, result.duplicates, parsed.skipped,
                             tuple(errors), result.stored)


def write_label_file(labels: Iterable[Label], path: Path) -> int:
    """Write labels in the generic format (CSV, or JSONL for a ``.jsonl`` path); returns rows written.

    Times are written as ISO 8601 UTC with the offset, so the file means the same
    wherever it is read.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    count = 0
    if path.suffix.lower() in (".jsonl", ".ndjson"):
        with path.open("w", encoding="utf-8", newline="\n") as fh:
            for label in labels:
                fh.write(json.dumps(_generic_values(label), ensure_ascii=False) + "\n")
                count += 1
        return count
    if path.suffix.lower() != ".csv":
        raise InvalidInputError.must("out", "a .csv or .jsonl path", path.name)
    with path.open("w", encoding="utf-8", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=GENERIC_COLUMNS, lineterminator="\n")
        writer.writeheader()
        for label in labels:
            writer.writerow(_generic_values(label))
            count += 1
    return count


def _generic_values(label: Label) -> dict[str, str]:
    return {"order_key": str(label.key), "verdict": label.verdict.value,
            "labeled_at": label.labeled_at.astimezone(UTC).isoformat(), "reviewer_id": label.reviewer_id,
            "note": label.note}
