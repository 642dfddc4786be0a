"""Exports: the same pool gives the same bytes in every format, and each file reads back as the pool."""

from __future__ import annotations

import csv
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from openpyxl import load_workbook

from features.settings import Settings
from orderguard.errors import InvalidInputError
from orderguard.ingest.orderlog import OrderLog
from segments.build import TrustPool
from segments.criteria import load_criteria
from segments.export import Format, parse_format, write
from tests.segments.shop import AS_OF, DENY, fill


def _export(settings: Settings, folder: Path, fmt: Format, *, phones: bool = False) -> tuple[Path, list[str]]:
    with OrderLog.open(settings.database_url) as log:
        log.migrate()
        with TrustPool.build(log.engine, settings, load_criteria("standard"), as_of=AS_OF, deny=DENY) as built:
            path = folder / f"pool.{fmt.value}"
            seen: list[tuple[int, int]] = []
            assert write(built.relation(phones=phones), path, fmt, as_of=AS_OF,
                         progress=lambda done, total: seen.append((done, total))) == 3
            assert seen[-1] == (3, 3)
            _, rows = built.rows()
            return path, sorted(str(r[0]) for r in rows)


@pytest.mark.parametrize("fmt", list(Format))
def test_the_same_as_of_gives_the_same_bytes(tmp_path: Path, fmt: Format) -> None:
    settings = Settings(data_dir=tmp_path)
    with OrderLog.open(settings.database_url) as log:
        log.migrate()
        fill(log)
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    first, ids = _export(settings, tmp_path / "a", fmt)
    second, _ = _export(settings, tmp_path / "b", fmt)
    assert first.read_bytes() == second.read_bytes()
    if fmt is Format.CSV:
        with first.open(newline="", encoding="utf-8") as f:
            read = list(csv.DictReader(f))
        assert [r["customer_id"] for r in read] == ids and read[0]["last_order_at"].endswith("Z")
    elif fmt is Format.PARQUET:
        assert pq.read_table(first).column("customer_id").to_pylist() == ids
    else:
        sheet = load_workbook(first, read_only=True).active
        values = list(sheet.values)
        assert values[0][0] == "customer_id" and [v[0] for v in values[1:]] == ids
    assert not [p for p in first.parent.iterdir() if p.name.startswith(".")]  # no temp file left behind


def test_phones_are_hashes_unless_asked_for(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path)
    with OrderLog.open(settings.database_url) as log:
        log.migrate()
        fill(log)
    hashed, _ = _export(settings, tmp_path, Format.CSV)
    assert "138****0000" not in hashed.read_text(encoding="utf-8") and "ph-alice" in hashed.read_text(encoding="utf-8")
    masked, _ = _export(settings, tmp_path, Format.CSV, phones=True)
    header = masked.read_text(encoding="utf-8").splitlines()[0]
    assert header.endswith(",phones") and "138****0000" in masked.read_text(encoding="utf-8")


def test_an_unknown_format_names_the_choices() -> None:
    with pytest.raises(InvalidInputError, match="csv, xlsx, parquet"):
        parse_format("xls")
    assert parse_format(" CSV ") is Format.CSV
